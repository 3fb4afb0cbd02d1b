"""The main job end to end: the sim loop opens and closes trades, the books balance, re-runs
send nothing twice, and a killed process loses nothing it committed."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tokenomics.trading.orders import client_order_id


def books_balance(doc: dict) -> None:
    total = doc["cash"] + sum(p["market_value"] for p in doc["positions"])
    assert abs(total - doc["equity"]) < 0.005
    assert abs(doc["positions_value"] - sum(p["market_value"] for p in doc["positions"])) < 0.005


@pytest.fixture(scope="module")
def looped(tmp_path_factory):
    from tests.conftest import CLI

    cli = CLI(tmp_path_factory.mktemp("loop"))
    proc = cli("run", "--loop", "--ticks", "200", "--interval", "0", "--json")
    assert proc.returncode == 0, proc.stderr
    return cli, json.loads(proc.stdout), proc.stderr


def test_200_ticks_open_and_close_trades(looped):
    cli, summary, stderr = looped
    assert summary["ticks"] == 200
    assert summary["opened"] > 0 and summary["closed"] > 0
    assert "BUY" in stderr and "SELL" in stderr  # progress is shown on stderr
    status = cli.json("status")
    books_balance(status)
    assert status["closed_trades"] == summary["closed"]
    con = sqlite3.connect(cli.cwd / "store.db")
    realized = con.execute("SELECT ROUND(SUM(pnl), 2) FROM trades").fetchone()[0]
    assert status["realized_pnl"] == pytest.approx(realized)
    # cash is exactly capital plus every fill's cash flow, and the broker agrees with the store
    paper = con.execute("SELECT ROUND(SUM(cash_flow), 2) FROM paper_orders WHERE status = 'filled'").fetchone()[0]
    assert status["cash"] == pytest.approx(10000 + paper, abs=0.005)


def test_exit_reasons_are_the_configured_rules(looped):
    cli, _, _ = looped
    con = sqlite3.connect(cli.cwd / "store.db")
    reasons = {r for (r,) in con.execute("SELECT DISTINCT exit_reason FROM trades")}
    assert reasons and reasons <= {"stop_loss", "take_profit", "max_hold", "bearish_news"}
    # stop-losses lose and take-profits win
    for reason, pnl in con.execute("SELECT exit_reason, return_pct FROM trades"):
        if reason == "take_profit":
            assert pnl > 5
        if reason == "stop_loss":
            assert pnl < -2


def test_equities_trade_only_in_nyse_sessions(looped):
    cli, _, _ = looped
    from datetime import datetime

    import exchange_calendars as xcals

    cal = xcals.get_calendar("XNYS", start="2026-01-01", end="2026-12-31")
    con = sqlite3.connect(cli.cwd / "store.db")
    rows = con.execute("SELECT symbol, ts FROM paper_orders WHERE symbol NOT LIKE '%/%'").fetchall()
    assert rows
    for _sym, ts in rows:
        assert cal.is_open_on_minute(datetime.fromisoformat(ts)), ts


def test_rerunning_trade_sends_no_duplicate_order(looped):
    cli, _, _ = looped
    con = sqlite3.connect(cli.cwd / "store.db")
    before = con.execute("SELECT COUNT(*) FROM paper_orders").fetchone()[0]
    for _ in range(2):
        out = cli.json("trade")
        assert out["orders"] == 0
    cli.json("check-exits")
    assert con.execute("SELECT COUNT(*) FROM paper_orders").fetchone()[0] == before
    # one order per signal, one broker order per stored order
    assert con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == before
    dup = con.execute("SELECT signal_id, COUNT(*) FROM orders GROUP BY signal_id HAVING COUNT(*) > 1").fetchall()
    assert dup == []


def test_run_once_twice_advances_and_never_duplicates(cli):
    for _ in range(3):
        cli.json("run", "--once", "--interval", "0")
    con = sqlite3.connect(cli.cwd / "store.db")
    assert con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == \
        con.execute("SELECT COUNT(*) FROM paper_orders").fetchone()[0]
    runs = con.execute("SELECT COUNT(*) FROM runs WHERE command = 'fetch-news' AND status = 'ok'").fetchone()[0]
    assert runs == 3


def wait_for_ticks(cli, n: int, timeout: float = 300) -> None:
    """Wait until the loop has committed n trade steps (start-up loads the model and calendar)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            con = sqlite3.connect(cli.cwd / "store.db", timeout=5)
            done = con.execute("SELECT COUNT(*) FROM runs WHERE command = 'trade' AND status = 'ok'").fetchone()[0]
            con.close()
            if done >= n:
                return
        except sqlite3.OperationalError:
            pass  # the store is not created yet
        time.sleep(0.2)
    raise AssertionError(f"the loop did not reach {n} ticks in {timeout} s")


def test_sigterm_finishes_the_step_and_exits_0(cli):
    proc = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--loop", "--interval", "0.05", "--json"],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_ticks(cli, 3)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary["stopped_by"] == "signal" and summary["ticks"] >= 1
    con = sqlite3.connect(cli.cwd / "store.db")
    assert con.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    books_balance(cli.json("status"))


def test_sigkill_loses_nothing_committed(cli):
    proc = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--loop", "--interval", "0"],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_ticks(cli, 10)
    proc.kill()
    proc.wait()
    con = sqlite3.connect(cli.cwd / "store.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    ids = lambda sql: {r[0] for r in con.execute(sql)}  # noqa: E731
    sent = ids("SELECT client_order_id FROM paper_orders")
    recorded = ids("SELECT client_order_id FROM orders")
    sized = {client_order_id(r) for r in ids("SELECT id FROM signals WHERE status = 'sized'")}
    cli.json("trade")  # finishes whatever was in flight; a signal already ordered is never sent again
    # (the kill may land between size and trade: a signal still 'sized' is sent now, once)
    assert ids("SELECT client_order_id FROM paper_orders") - sent <= recorded | sized
    booked = con.execute("SELECT COUNT(*) FROM orders WHERE status = 'filled'").fetchone()[0]
    filled = con.execute("SELECT COUNT(*) FROM paper_orders WHERE status = 'filled'").fetchone()[0]
    assert booked == filled
    books_balance(cli.json("status"))


def test_score_reads_articles_from_a_pipe(cli):
    fetched = cli("fetch-news", "--advance", "10", "--jsonl")
    assert fetched.returncode == 0
    n = len(fetched.stdout.splitlines())
    extra = json.dumps({"id": "wire-1", "headline": "Acme beats estimates and raises full-year guidance",
                        "symbols": ["AAPL"], "created_at": "2026-01-26T14:00:00Z"})
    out = cli.json("score", "-", input=fetched.stdout + extra + "\n")
    assert out["articles"] == n + 1
    bad = cli("score", "-", input='{"headline": "no id"}\n')
    assert bad.returncode == 2 and "'id'" in bad.stderr
