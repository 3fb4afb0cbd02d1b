"""The daemon against a broker and a news API that fail the way real ones do (loopback fakes, the real
alpaca-py and google-genai): transient faults are recorded per step and the loop goes on, with exits
checked on every tick; a bad key stops it with exit 1 naming the provider."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from tests.fakes import ALPACA_KEY, ALPACA_SECRET, GEMINI_KEY, FakeProviders

KEYS = {"ALPACA_API_KEY": ALPACA_KEY, "ALPACA_SECRET_KEY": ALPACA_SECRET, "GOOGLE_API_KEY": GEMINI_KEY}
ARGS = ("--mode", "paper", "--config", "paper.yaml")


@pytest.fixture
def fake():
    with FakeProviders() as f:
        yield f


def write_config(cli, url: str, extra: str = "") -> None:
    (cli.cwd / "paper.yaml").write_text(f"""
mode: paper
universe: {{equities: [AAPL], crypto: [BTC/USD]}}
news: {{provider: alpaca, alpaca_url: "{url}", retries: 0}}
sentiment: {{provider: gemini, base_url: "{url}", retries: 1, backoff_seconds: 0}}
broker: {{provider: alpaca, trading_url: "{url}", data_url: "{url}", timeout_seconds: 5}}
{extra}
""")


def recent(minutes: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes)).isoformat(timespec="seconds").replace("+00:00", "Z")


def open_positions(cli, fake) -> None:
    write_config(cli, fake.url)
    fake.add_news(1, "Apple smashes earnings expectations", ["AAPL"], recent(5))
    fake.add_news(2, "Bitcoin ETF inflows hit a record", ["BTCUSD"], recent(4))
    out = cli.json("run", "--once", *ARGS, env=KEYS)
    assert out["opened"] == 2


def runs(cli, command: str) -> list[tuple[str, str]]:
    db = sqlite3.connect(cli.cwd / "store.db")
    return db.execute("SELECT status, COALESCE(error, '') FROM runs WHERE command = ? ORDER BY id", [command]).fetchall()


def test_loop_keeps_ticking_through_news_500s_and_a_reset_and_exits_every_tick(cli, fake):
    open_positions(cli, fake)
    before = len(runs(cli, "check-exits"))
    fake.down["/v1beta1/news"] = 500  # the news API is down for the whole run
    # and the broker drops the connection of every try of one read (a single reset is retried: 1 + 3 retries)
    fake.faults["/v2/positions"] = ["reset"] * 4
    fake.prices["BTC/USD"] = 95000.0 * 0.9  # BTC falls through its stop: check-exits must sell it anyway
    proc = cli("run", "--loop", "--ticks", "4", "--interval", "0", *ARGS, "--json", env=KEYS)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["ticks"] == 4 and summary["closed"] == 1
    assert [p for p in fake.posts if p["side"] == "sell" and p["symbol"] == "BTC/USD"]
    exits = runs(cli, "check-exits")[before:]
    assert [s for s, _e in exits] == ["ok"] * 4  # exits were checked on every tick
    news = runs(cli, "fetch-news")[1:]
    assert news[0][0] == "failed" and "HTTP 500" in news[0][1]
    # back-off: after the second failure in a row the failing provider is left alone for a tick
    assert [s for s, _e in news] == ["failed", "failed", "skipped", "failed"]
    assert "reconcile" in {c for (c,) in sqlite3.connect(cli.cwd / "store.db").execute(
        "SELECT command FROM runs WHERE status = 'failed'")}  # the reset, recorded as the step's failure
    status = cli.json("status", *ARGS, env=KEYS)
    news_health = next(p for p in status["providers"] if p["provider"] == "news (alpaca)")
    assert news_health["status"] == "failing" and "HTTP 500" in news_health["last_error"]
    assert news_health["failing_since"] <= news_health["last_error_at"] and news_health["failures"] == 3
    broker_health = next(p for p in status["providers"] if p["provider"] == "broker (alpaca)")
    assert broker_health["status"] == "ok" and broker_health["last_error"]  # failed once, then recovered


def test_a_429_asking_for_a_long_wait_is_honoured_across_ticks(cli, fake):
    """Retry-After longer than a request's own retries may wait: the loop leaves the provider alone until
    then (asking again sooner is what gets an API key or an IP banned), and says until when."""
    open_positions(cli, fake)
    fake.script["/v1beta1/news"] = [(429, {"message": "too many requests"}, {"Retry-After": "120"})]
    asked = []
    fake.on_request = lambda method, path: asked.append(path) if path == "/v1beta1/news" else None
    proc = cli("run", "--loop", "--ticks", "4", "--interval", "0", *ARGS, "--json", env=KEYS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ticks"] == 4
    assert len(asked) == 1  # the 429 itself; the next three ticks did not ask within the 120 s
    news = runs(cli, "fetch-news")[1:]
    assert [s for s, _e in news] == ["failed", "skipped", "skipped", "skipped"] and "HTTP 429" in news[0][1]
    row = sqlite3.connect(cli.cwd / "store.db").execute(
        "SELECT retry_until FROM provider_health WHERE provider = 'news (alpaca)'").fetchone()
    until = datetime.fromisoformat(row[0])
    assert timedelta(seconds=100) < until - datetime.now(timezone.utc) <= timedelta(seconds=120)
    assert [s for s, _e in runs(cli, "check-exits")][-4:] == ["ok"] * 4  # exits never wait
    status = cli.json("status", *ARGS, env=KEYS)
    assert next(p for p in status["providers"] if p["provider"] == "news (alpaca)")["retry_until"] == row[0]


def test_non_json_answers_and_rate_limits_are_transient_too(cli, fake):
    open_positions(cli, fake)
    fake.faults["/v1beta1/news"] = ["html"]
    fake.faults["/v2/orders:by_client_order_id"] = ["html"]
    proc = cli("run", "--loop", "--ticks", "2", "--interval", "0", *ARGS, "--json", env=KEYS)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ticks"] == 2


def test_a_rejected_key_stops_the_loop_with_exit_1_naming_the_provider(cli, fake):
    open_positions(cli, fake)
    fake.down["/v2/"] = 401
    proc = cli("run", "--loop", "--ticks", "5", "--interval", "0", *ARGS, env=KEYS)
    assert proc.returncode == 1
    assert "alpaca" in proc.stderr and "ALPACA_API_KEY" in proc.stderr
    assert ALPACA_KEY not in proc.stderr


def test_no_equity_order_once_alpacas_clock_says_closed_however_long_the_loop_has_run(cli, fake):
    write_config(cli, fake.url)
    (cli.cwd / "paper.yaml").write_text((cli.cwd / "paper.yaml").read_text().replace("[AAPL]", "[AAPL, MSFT]"))
    fake.prices["MSFT"] = 400.0
    fake.add_news(1, "Apple smashes earnings expectations", ["AAPL"], recent(5))
    clock_reads: list[str] = []
    news_reads: list[str] = []

    def hook(method: str, path: str) -> None:
        if path == "/v2/clock":
            clock_reads.append(path)
            fake.market_open = len(clock_reads) < 2  # the bell rings after the loop's first reading
        if path == "/v1beta1/news":
            news_reads.append(path)
            if len(news_reads) == 2:  # news for another stock arrives on the second tick
                fake.add_news(2, "Microsoft smashes earnings expectations", ["MSFT"], recent(1))

    fake.on_request = hook
    proc = cli("run", "--loop", "--ticks", "3", "--interval", "0", *ARGS, "--json", env=KEYS)
    assert proc.returncode == 0, proc.stderr
    assert [p["symbol"] for p in fake.posts] == ["AAPL"]  # bought while open; MSFT never sent after the close
    assert len(clock_reads) >= 3  # the clock is read again on every tick


def test_status_works_while_market_data_fails_and_names_the_failing_provider(cli, fake):
    open_positions(cli, fake)
    fake.down["/v2/stocks/trades/latest"] = 503
    fake.down["/v1beta3/crypto"] = "reset"
    cli("run", "--once", *ARGS, env=KEYS)
    status = cli.json("status", *ARGS, env=KEYS)
    assert {p["symbol"] for p in status["positions"]} == {"AAPL", "BTC/USD"}
    assert all(p["price_source"].startswith("last mark") for p in status["positions"])
    failing = {p["provider"] for p in status["providers"] if p["status"] == "failing"}
    assert "market data (alpaca)" in failing
