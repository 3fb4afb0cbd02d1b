"""Output consistency (issue 14): --jsonl is one row per item with the same fields as --json's rows
(and says on stderr why it printed none); --steps says when it clamps; float noise rounded in output."""

from __future__ import annotations

import json


def jsonl(cli, *args: str) -> tuple[list[dict], str]:
    proc = cli(*args, "--jsonl")
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()], proc.stderr


def test_jsonl_is_one_row_per_item_with_the_fields_of_the_json_rows(cli):
    assert cli("run", "--loop", "--ticks", "60", "--interval", "0", "--json").returncode == 0
    status = cli.json("status")
    assert status["positions"], "the sim run should hold something"
    lines, _ = jsonl(cli, "status")
    kinds = {"positions": "position", "open_orders": "open_order", "halts": "halt", "providers": "provider",
             "last_runs": "last_run", "failed_articles": "failed_article"}
    account = {k: v for k, v in status.items() if k not in kinds}
    assert lines[0] == {"kind": "account", **account} and "cash" in lines[0] and "equity" in lines[0]
    assert lines[1:] == [{"kind": kind, **row} for key, kind in kinds.items() for row in status[key]]

    symbol = status["positions"][0]["symbol"]
    explain = cli.json("explain", symbol)
    lines, _ = jsonl(cli, "explain", symbol)
    assert lines[0] == {"kind": "summary", "query": symbol, "symbol": symbol, "state": explain["state"]}
    items = lines[1:]
    assert [x["kind"] for x in items][:3] == ["article", "score", "signal"]
    for x in items:
        kind = x.pop("kind")
        key = {"article": "articles", "score": "scores", "risk_decision": "risk_decisions", "fill": "fills"}.get(kind)
        assert (x in explain[key]) if key else x == explain[kind], kind

    risk = cli.json("risk", "--window", "10")
    lines, _ = jsonl(cli, "risk", "--window", "10")
    assert risk["rolling"] and lines == risk["rolling"]


def test_jsonl_with_no_rows_says_why_on_stderr(cli):
    lines, stderr = jsonl(cli, "risk")
    assert lines == []
    assert "no rolling" in stderr and "0 observations" in stderr and "--window 100" in stderr


def test_reconcile_and_health_with_no_rows_say_why_on_stderr(cli):
    assert cli("run", "--once", "--json").returncode == 0
    lines, stderr = jsonl(cli, "reconcile")
    assert lines == [] and "no differences" in stderr
    lines, stderr = jsonl(cli, "health")
    assert lines == [] and "no provider is failing" in stderr


def test_backtest_steps_says_when_it_clamps(cli):
    proc = cli("backtest", "--strategy", "sma", "--steps", "100000", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "--steps 100000" in proc.stderr and "ran 500" in proc.stderr
    assert json.loads(proc.stdout)["warnings"] == ["--steps 100000: the sim history holds 500 steps before the "
                                                   "window's end; ran 500"]


def _floats(v):
    if isinstance(v, float):
        yield v
    elif isinstance(v, dict):
        for x in v.values():
            yield from _floats(x)
    elif isinstance(v, list):
        for x in v:
            yield from _floats(x)


def test_json_output_has_no_float_noise(cli):
    """Floats in the output are what a person would write (99259.675035, not 99259.67503500001: at most
    12 significant digits); the store keeps full precision."""
    run = cli("run", "--loop", "--ticks", "20", "--interval", "0", "--jsonl")
    backtest = cli("backtest", "--strategy", "sma", "--steps", "200", "--json")
    for proc in (run, backtest):
        assert proc.returncode == 0, proc.stderr
        docs = [json.loads(line) for line in proc.stdout.splitlines()]
        noisy = [x for d in docs for x in _floats(d) if len(repr(abs(x)).split("e")[0].replace(".", "").strip("0")) > 12]
        assert not noisy, noisy[:5]
    assert json.loads(backtest.stdout)["trades"]


def test_1h_and_60m_are_the_same_timeframe_everywhere(cli):
    """Stored, read, trained and backtested under one spelling (the largest whole unit: 1h, 1d), whichever
    spelling was typed."""
    sim = cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD")
    assert sim["rows"][0]["timeframe"] == "1h"
    rows = ["ts,open,high,low,close"] + [f"2017-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z,{1000 + i},{1001 + i},"
                                         f"{999 + i},{1000.5 + i}" for i in range(200)]
    (cli.cwd / "x.csv").write_text("\n".join(rows) + "\n")
    first = cli.json("fetch-bars", "--source", "file", "--file", "x.csv", "--symbol", "X", "-t", "60m")
    assert first["new"] == 200 and first["rows"][0]["timeframe"] == "1h"
    again = cli.json("fetch-bars", "--source", "file", "--file", "x.csv", "--symbol", "X", "-t", "1h")
    assert again["new"] == 0
    for source, symbol in (("file", "X"), ("sim", "BTC/USD")):
        a = cli.json("risk", "--symbols", symbol, "--source", source, "--timeframe", "60m")
        b = cli.json("risk", "--symbols", symbol, "--source", source, "--timeframe", "1h")
        assert a == b and a["observations"] > 100 and a["timeframe"] == "1h"
    a = cli.json("backtest", "--strategy", "sma", "--source", "file", "--symbol", "X", "--timeframe", "60m")
    b = cli.json("backtest", "--strategy", "sma", "--source", "file", "--symbol", "X", "--timeframe", "1h")
    assert a["metrics"] == b["metrics"] and a["timeframe"] == "1h"
    assert cli("fetch-bars", "--source", "file", "--file", "x.csv", "-s", "Y", "-t", "1440m").returncode == 0
    assert cli.json("risk", "--symbols", "Y", "--source", "file", "--timeframe", "1d")["timeframe"] == "1d"


def _stderr_in_a_terminal(cli, *args: str) -> tuple[int, str, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout piped): what a person at a terminal sees."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tokenomics.cli", *args], cwd=cli.cwd, stdout=subprocess.PIPE,
                            stderr=slave, env={**cli.env, "TERM": "xterm", "COLUMNS": "100"})
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    out = proc.stdout.read().decode()
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, out, b"".join(chunks).decode(errors="replace")


def test_train_and_backtest_show_progress_on_a_terminal_and_not_in_a_pipe(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    rc, out, err = _stderr_in_a_terminal(cli, "train", "--name", "m", "--folds", "2", "--param", "n_estimators=5",
                                         "--param", "n_jobs=1", "--json")
    assert rc == 0 and json.loads(out)["name"] == "m"
    assert "train m: folds" in err, err
    rc, out, err = _stderr_in_a_terminal(cli, "backtest", "--strategy", "sentiment", "--steps", "30", "--json")
    assert rc == 0 and "metrics" in json.loads(out)
    assert "backtest sentiment" in err, err
    rc, out, err = _stderr_in_a_terminal(cli, "backtest", "--strategy", "sma", "--steps", "300", "--grid",
                                         "fast=5,10", "--executor", "inline", "--json")
    assert rc == 0 and len(json.loads(out)["rows"]) == 2
    assert "grid: 2 combinations" in err, err
    piped = cli("train", "--name", "m2", "--folds", "2", "--param", "n_estimators=5", "--param", "n_jobs=1")
    assert piped.returncode == 0 and "folds" not in piped.stderr  # a pipe or a log file gets no bar


def test_a_store_with_bars_under_another_spelling_is_brought_to_one_timeframe(cli):
    """Bars stored as 60m by an earlier version are found as 1h (a migration respells them once)."""
    import sqlite3

    rows = ["ts,open,high,low,close"] + [f"2017-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z,{1000 + i},{1001 + i},"
                                         f"{999 + i},{1000.5 + i}" for i in range(200)]
    (cli.cwd / "x.csv").write_text("\n".join(rows) + "\n")
    assert cli.json("fetch-bars", "--source", "file", "--file", "x.csv", "--symbol", "X", "-t", "1h")["new"] == 200
    conn = sqlite3.connect(cli.cwd / "store.db")
    with conn:  # as an earlier version wrote them: 60m, and 1d bars as 24h; the schema one version back
        conn.execute("UPDATE bars SET timeframe = '60m'")
        conn.execute("INSERT INTO bars(source, symbol, timeframe, ts, open, high, low, close) "
                     "SELECT source, 'Y', '24h', ts, open, high, low, close FROM bars WHERE ts LIKE '%T00:00:00%'")
        conn.execute("UPDATE meta SET value = value - 1 WHERE key = 'schema_version'")
    conn.close()
    doc = cli.json("risk", "--symbol", "X", "--source", "file", "--timeframe", "60m")
    assert doc["timeframe"] == "1h" and doc["observations"] == 199
    assert cli.json("fetch-bars", "--source", "file", "--file", "x.csv", "--symbol", "X", "-t", "1h")["new"] == 0
    conn = sqlite3.connect(cli.cwd / "store.db")
    try:
        assert dict(conn.execute("SELECT timeframe, COUNT(*) FROM bars GROUP BY timeframe").fetchall()) == {
            "1h": 200, "1d": 9}
    finally:
        conn.close()
