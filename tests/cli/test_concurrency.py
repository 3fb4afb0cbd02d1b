"""Separate processes on one store, as cron runs them beside `run --loop`: nobody dies of
'database is locked', nothing is sent twice, the books balance to the cent; signals during shutdown,
runs of killed processes, and doctor's view of both."""

import json
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.cli.test_loop import books_balance, wait_for_ticks

CHAIN = (["fetch-news"], ["score"], ["signal"], ["size"], ["trade"], ["check-exits"], ["status"])


def invariants(cli) -> None:
    con = sqlite3.connect(cli.cwd / "store.db")
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    dup = con.execute("SELECT signal_id, COUNT(*) FROM orders GROUP BY signal_id HAVING COUNT(*) > 1").fetchall()
    assert dup == []  # one order per signal
    # every stored order reached the (paper) broker exactly once, and every fill is booked
    assert con.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == \
        con.execute("SELECT COUNT(*) FROM paper_orders").fetchone()[0]
    assert con.execute("SELECT COUNT(*) FROM orders WHERE status = 'filled'").fetchone()[0] == \
        con.execute("SELECT COUNT(*) FROM paper_orders WHERE status = 'filled'").fetchone()[0]
    assert con.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    status = cli.json("status")
    books_balance(status)
    paper = con.execute("SELECT COALESCE(ROUND(SUM(cash_flow), 2), 0) FROM paper_orders "
                        "WHERE status = 'filled'").fetchone()[0]
    assert status["cash"] == pytest.approx(10000 + paper, abs=0.005)  # to the cent


@pytest.mark.slow
def test_the_loop_beside_cron_chains_never_dies_of_a_locked_store(cli):
    env = {"TOKENOMICS_TRADING__LOCK_TIMEOUT_SECONDS": "60"}
    cli.json("run", "--once", env=env)  # the store, its calendar and the scorer's first run exist
    loop = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--loop", "--ticks", "60",
                             "--interval", "0", "--json"], cwd=cli.cwd, env={**cli.env, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    failures = []
    rounds = 0
    while loop.poll() is None and rounds < 3:
        rounds += 1
        workers = [subprocess.Popen([sys.executable, "-m", "tokenomics.cli", *args, "--json"], cwd=cli.cwd,
                                    env={**cli.env, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True) for args in CHAIN]
        for w, args in zip(workers, CHAIN):
            _, err = w.communicate(timeout=300)
            if w.returncode != 0:
                failures.append((args, w.returncode, err[-800:]))
    out, err = loop.communicate(timeout=600)
    assert loop.returncode == 0, err[-2000:]
    assert failures == []
    assert json.loads(out)["ticks"] == 60
    invariants(cli)


def test_run_once_at_the_same_instant_all_succeed_and_each_moves_the_clock(cli):
    cli.json("run", "--once")
    before = cli.json("status")["now"]
    procs = [subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--once", "--json"], cwd=cli.cwd,
                              env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(5)]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0] * 5, [e[-800:] for _, e in results]
    assert not any("Traceback" in e for _, e in results)
    con = sqlite3.connect(cli.cwd / "store.db")
    steps = con.execute("SELECT step FROM clock WHERE name = 'sim'").fetchone()[0]
    start = con.execute("SELECT COUNT(*) FROM runs WHERE command = 'fetch-news' AND status = 'ok'").fetchone()[0]
    assert start == 6  # six ticks, each at its own step
    assert cli.json("status")["now"] > before and steps == 500 + 6
    invariants(cli)


def test_a_second_signal_during_shutdown_still_exits_0_with_the_summary(cli):
    proc = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--loop", "--interval", "0", "--json"],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_ticks(cli, 3)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:  # more signals while it finishes
        time.sleep(0.01)
        proc.send_signal(signal.SIGTERM if int(time.monotonic() * 100) % 2 else signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err[-2000:]
    summary = json.loads(out)
    assert summary["stopped_by"] == "signal"
    con = sqlite3.connect(cli.cwd / "store.db")
    assert con.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0] == 0
    books_balance(cli.json("status"))


def test_a_killed_process_shows_its_run_as_died_in_status_and_doctor(cli):
    proc = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", "run", "--loop", "--interval", "0"],
                            cwd=cli.cwd, env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_ticks(cli, 2)
    proc.kill()
    proc.wait()
    con = sqlite3.connect(cli.cwd / "store.db")
    with con:  # make sure one row is left 'running' whichever step the kill landed in
        con.execute("INSERT INTO runs(command, mode, pid, started_at, status) VALUES ('trade', 'sim', ?, "
                    "'2026-01-01T00:00:00+00:00', 'running')", [proc.pid])
    status = cli.json("status")
    assert {r["command"]: r["status"] for r in status["last_runs"]}["trade"] == "died"
    doc = json.loads(cli("doctor", "--json").stdout)
    runs = {c["check"]: c for c in doc["checks"]}["runs"]
    assert "died" in runs["detail"] and "trade" in runs["detail"]


def test_doctor_reports_low_free_space(cli):
    doc = json.loads(cli("doctor", "--json", env={"TOKENOMICS_STORE__MIN_FREE_MB": "100000000"}).stdout)
    space = {c["check"]: c for c in doc["checks"]}["disk space"]
    assert not space["ok"] and "free" in space["detail"] and "store.min_free_mb" in space["detail"]
    doc = json.loads(cli("doctor", "--json").stdout)
    assert {c["check"]: c for c in doc["checks"]}["disk space"]["ok"]
