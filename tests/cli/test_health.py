"""`tokenomics health`: exit codes for a fresh store, a starting, a ticking, a stopped and a stale
loop, and for a provider failing shorter and longer than health.provider_down_minutes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

from tokenomics.store import iso


def health(cli, *args: str, env: dict | None = None) -> tuple[int, dict, str]:
    proc = cli("health", "--json", *args, env=env)
    return proc.returncode, json.loads(proc.stdout), proc.stderr


def set_heartbeat(cli, **cols) -> None:
    con = sqlite3.connect(cli.cwd / "store.db")
    with con:
        for k, v in cols.items():
            con.execute(f"UPDATE heartbeat SET {k} = ? WHERE name = 'run'", [v])
    con.close()


def ago(seconds: float) -> str:
    return iso(datetime.now(timezone.utc) - timedelta(seconds=seconds))


def test_fresh_store_is_unhealthy_with_the_reason(cli):
    code, doc, err = health(cli)
    assert code == 1 and not doc["ok"]
    assert "never started" in doc["reasons"][0] and "unhealthy: no heartbeat" in err


def test_a_ticking_loop_is_healthy_and_a_stopped_one_is_not(cli):
    proc = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--loop", "--interval", "0.2", "--json"],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        doc: dict = {}
        while time.monotonic() < deadline:
            code, doc, _ = health(cli)
            if code == 0 and doc.get("tick", 0) >= 2:
                break
            time.sleep(0.3)
        assert doc["ok"] and doc["state"] == "ticking" and doc["form"] == "loop" and doc["pid"] == proc.pid
        assert doc["steps"] == {s: "ok" for s in ("fetch-news", "score", "signal", "size", "trade", "check-exits")}
        assert doc["limit_seconds"] == 3 * 0.2 + 60
        ticked = doc["tick"]
        time.sleep(1.0)
        assert health(cli)[1]["tick"] > ticked  # it keeps beating
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    code, doc, err = health(cli)
    assert code == 1 and doc["state"] == "stopped" and "the loop stopped" in err


def test_a_stale_loop_is_unhealthy_and_a_starting_one_is_not(cli):
    assert cli("run", "--once", "--json").returncode == 0
    assert health(cli)[0] == 0  # run --once: judged against the cron default of 300 s
    set_heartbeat(cli, form="loop", state="ticking", interval_seconds=10, beat_at=ago(80))
    assert health(cli)[0] == 0  # 80 s < 3 x 10 s + 60 s
    set_heartbeat(cli, beat_at=ago(100))
    code, doc, err = health(cli)
    assert code == 1 and "over the limit of 90 s (3 x 10 s + 60 s)" in doc["reasons"][0] and "tick 1" in err
    assert health(cli, "--interval", "60")[0] == 0  # the probe may say how often the loop ticks
    code, doc, _ = health(cli, env={"TOKENOMICS_HEALTH__MAX_MISSED_TICKS": "1", "TOKENOMICS_HEALTH__GRACE_SECONDS": "0"})
    assert code == 1 and "limit of 10 s" in doc["reasons"][0]
    set_heartbeat(cli, state="starting", tick=0, beat_at=ago(5))
    assert health(cli)[0] == 0  # started, first tick under way
    set_heartbeat(cli, beat_at=ago(3600))
    code, doc, _ = health(cli)
    assert code == 1 and "last started" in doc["reasons"][0]


def test_a_provider_failing_longer_than_the_threshold_is_unhealthy(cli):
    assert cli("run", "--once", "--json").returncode == 0
    steps = {"fetch-news": {"status": "failed", "error": "HTTP 503", "provider": "news (alpaca)",
                            "failing_since": ago(60 * 10)},
             "check-exits": {"status": "ok", "error": None, "provider": "broker (alpaca)", "failing_since": None}}
    set_heartbeat(cli, steps=json.dumps(steps))
    code, doc, _ = health(cli)
    assert code == 0 and doc["failing"][0]["step"] == "fetch-news"  # 10 min < 15
    steps["fetch-news"]["failing_since"] = ago(60 * 20)
    set_heartbeat(cli, steps=json.dumps(steps))
    code, doc, err = health(cli)
    assert code == 1 and "news (alpaca) failing since" in err and "HTTP 503" in err
    code, _, _ = health(cli, env={"TOKENOMICS_HEALTH__PROVIDER_DOWN_MINUTES": "30"})
    assert code == 0


def test_the_heartbeat_follows_failing_steps(rt):
    """Monitor.after_tick records each step's status from `runs`; failing_since survives until an ok."""
    from tokenomics.trading.monitor import Monitor, health as check

    mon = Monitor(rt, form="loop", interval=1.0, strategy="sentiment")
    mon.start()
    sinces = []
    for n, fail in enumerate([True, True, False], start=1):
        since = mon.mark()
        try:
            with rt.store.run("score", rt.mode):
                if fail:
                    raise RuntimeError("timeout")
        except RuntimeError:
            pass
        mon.after_tick(None, since, n)
        sinces.append(check(rt)["failing"])
    assert sinces[0] and sinces[0] == sinces[1] and sinces[0][0]["provider"] == "scorer (offline)"
    assert sinces[2] == []
    mon.stop("ticks")
    assert check(rt)["state"] == "stopped"
