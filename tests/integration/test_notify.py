"""Notifications through apprise to a loopback webhook receiver (apprise's json:// POSTs
{"version", "title", "message", "type", "attachments"}): a payload for each event, `notify --test`,
secrets from the environment, and a receiver that fails or hangs never stopping the loop."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

pytest.importorskip("apprise")


class Receiver:
    """A loopback webhook: records each JSON body; answers `status`; `hold` blocks every request."""

    def __init__(self, status: int = 200):
        self.status = status
        self.bodies: list[dict] = []
        self.hold = threading.Event()
        self.hold.set()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.hold.wait(30)
                outer.bodies.append(json.loads(body))
                self.send_response(outer.status)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"json://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def titles(self) -> list[str]:
        return [b["title"] for b in self.bodies]

    def close(self):
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def write_config(cli, url: str, extra: str = "") -> str:
    path = cli.cwd / "cfg.yaml"
    path.write_text(f"notify:\n  urls: ['{url}']\n  timeout_seconds: 10\n{extra}")
    return str(path)


# A sim world that in 40 hourly ticks opens and closes positions, fires a daily loss halt, rolls the
# day (lifting it) and passes 17:00 New York (the daily summary).
BUSY = """risk:
  daily_loss_limit_pct: 0.01
exits:
  stop_loss_pct: 0.3
  take_profit_pct: 0.3
sentiment:
  min_conviction: 50
"""


def test_every_event_of_a_loop_reaches_the_webhook(cli, receiver):
    cfg = write_config(cli, receiver.url, BUSY)
    summary = cli.json("--config", cfg, "run", "--loop", "--ticks", "40", "--interval", "0")
    assert summary["opened"] >= 1 and summary["closed"] >= 1
    by_title = receiver.titles()
    assert all(b["version"] == "1.0" and b["type"] in ("info", "success", "warning", "failure")
               for b in receiver.bodies)
    first, last = receiver.bodies[0], receiver.bodies[-1]
    assert first["title"] == "tokenomics: loop started (sim)" and "strategy sentiment" in first["message"]
    assert last["title"] == "tokenomics: loop stopped (ticks)"
    entries = [b for b in receiver.bodies if b["title"].startswith("tokenomics: bought ")]
    assert len(entries) == summary["opened"]
    assert all(b["message"].startswith("entry: ") and " at " in b["message"] for b in entries)
    exits = [b for b in receiver.bodies if b["title"].startswith("tokenomics: sold ")]
    assert len(exits) == summary["closed"]
    pnl = sum(float(b["title"].rsplit("P&L ", 1)[1].replace(",", "")) for b in exits)
    assert pnl == pytest.approx(summary["realized_pnl"], abs=0.011 * len(exits))
    assert all(b["type"] == ("success" if "P&L +" in b["title"] else "warning") for b in exits)
    halts = [b for b in receiver.bodies if b["title"] == "tokenomics: HALT daily_loss_limit"]
    assert halts and all(b["type"] == "failure" and "no new entries" in b["message"] for b in halts)
    assert "tokenomics: halt lifted: daily_loss_limit" in by_title
    summaries = [b for b in receiver.bodies if b["title"].startswith("tokenomics: daily summary ")]
    assert len(summaries) == 2  # 26 and 27 January, once each
    assert "equity " in summaries[0]["message"] and "realized P&L" in summaries[0]["message"]
    assert not any(" down" in t or " up" in t for t in by_title)  # every provider worked


def test_events_are_selectable(cli, receiver):
    cfg = write_config(cli, receiver.url, BUSY + "\n") 
    text = (cli.cwd / "cfg.yaml").read_text().replace("timeout_seconds: 10", "timeout_seconds: 10\n  events: [exit]")
    (cli.cwd / "cfg.yaml").write_text(text)
    summary = cli.json("--config", cfg, "run", "--loop", "--ticks", "40", "--interval", "0")
    assert summary["closed"] >= 1
    assert receiver.titles() and all(t.startswith("tokenomics: sold ") for t in receiver.titles())


def test_notify_test_reaches_each_url_with_secrets_from_the_environment(cli, receiver):
    cfg = write_config(cli, "json://127.0.0.1:${HOOK_PORT}/hook")
    proc = cli("--config", cfg, "notify", "--test", "--json", env={"HOOK_PORT": str(receiver.port)})
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["ok"] and doc["targets"] == [{"target": "JSON #0", "ok": True}]
    assert str(receiver.port) not in proc.stdout  # URLs hold secrets: shown by service and index only
    assert receiver.bodies == [{"version": "1.0", "title": "tokenomics test (sim)",
                                "message": "tokenomics can reach you.", "attachments": [], "type": "info"}]
    missing = cli("--config", cfg, "notify", "--test")
    assert missing.returncode == 2 and "HOOK_PORT" in missing.stderr
    run = cli("--config", cfg, "run", "--once")  # the loop refuses to start without it, before any tick
    assert run.returncode == 2 and "notify.urls[0]: HOOK_PORT is not set" in run.stderr
    assert "tick" not in run.stderr


def test_notify_test_exits_1_when_refused_and_2_without_urls(cli):
    bad = Receiver(status=500)
    try:
        cfg = write_config(cli, bad.url)
        proc = cli("--config", cfg, "notify", "--test")
        assert proc.returncode == 1 and "JSON #0" in proc.stderr
        assert len(bad.bodies) == 1
    finally:
        bad.close()
    proc = cli("notify", "--test")
    assert proc.returncode == 2 and "notify.urls" in proc.stderr
    unknown = write_config(cli, "nosuchservice://x")
    proc = cli("--config", unknown, "notify")
    assert proc.returncode == 2 and "notify.urls[0]" in proc.stderr


def test_a_failing_receiver_never_stops_the_loop_and_is_retried_once(cli):
    bad = Receiver(status=500)
    try:
        cfg = write_config(cli, bad.url, BUSY)
        summary = cli.json("--config", cfg, "run", "--loop", "--ticks", "40", "--interval", "0")
        assert summary["ticks"] == 40 and summary["opened"] >= 1
        titles = bad.titles()
        entries = [t for t in titles if t.startswith("tokenomics: bought ")]
        assert entries and all(entries.count(t) == 2 for t in set(entries))  # first try + one retry, no more
    finally:
        bad.close()
    log = (cli.cwd / "logs" / "app.log").read_text()
    assert "retrying on the next tick" in log and "failed twice; dropped" in log


def test_a_hanging_or_absent_receiver_does_not_block_the_loop(cli):
    hung = Receiver()
    hung.hold.clear()  # every request waits until the test releases it
    try:
        cfg = write_config(cli, hung.url, BUSY)
        text = (cli.cwd / "cfg.yaml").read_text().replace("timeout_seconds: 10", "timeout_seconds: 1")
        (cli.cwd / "cfg.yaml").write_text(text)
        summary = cli.json("--config", cfg, "run", "--loop", "--ticks", "40", "--interval", "0")
        assert summary["ticks"] == 40  # finished while the receiver still held its first request
        assert hung.bodies == []
    finally:
        hung.close()
    closed = Receiver()
    url = closed.url
    closed.close()  # nothing listens on that port any more: connection refused
    cfg = write_config(cli, url)
    summary = cli.json("--config", cfg, "run", "--loop", "--ticks", "5", "--interval", "0")
    assert summary["ticks"] == 5


def test_provider_down_and_up_are_notified_once_each(rt, receiver):
    from tokenomics.trading.monitor import Monitor

    rt.settings.notify.urls = [receiver.url]
    mon = Monitor(rt, form="loop", interval=1.0, strategy="sentiment")
    mon.start()
    for n, fail in enumerate([True, True, False, False], start=1):
        since = mon.mark()
        try:
            with rt.store.run("fetch-news", rt.mode):
                if fail:
                    raise RuntimeError("HTTP 503 from the news API")
        except RuntimeError:
            pass
        mon.after_tick({"now": rt.now().isoformat(), "equity": 1.0, "cash": 1.0}, since, n)
    mon.stop("ticks")
    titles = receiver.titles()
    assert titles.count("tokenomics: news (sim) down") == 1 and titles.count("tokenomics: news (sim) up") == 1
    down = next(b for b in receiver.bodies if b["title"] == "tokenomics: news (sim) down")
    assert down["type"] == "failure" and "HTTP 503" in down["message"]
    assert titles.index("tokenomics: news (sim) down") < titles.index("tokenomics: news (sim) up")
