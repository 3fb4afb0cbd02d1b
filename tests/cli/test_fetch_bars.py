"""fetch-bars through the real CLI: sim and file sources, idempotent re-runs, clear usage errors."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED

BTC_1M = SHARED / "data" / "prices" / "freqtrade" / "UNITTEST_BTC-1m.feather"


def test_sim_bars_are_stored_once_and_only_up_to_now(cli):
    first = cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD", "--symbol", "AAPL")
    btc = next(r for r in first["rows"] if r["symbol"] == "BTC/USD")
    assert btc["timeframe"] == "1h" and btc["new"] == 500  # crypto trades every step up to the sim's now
    aapl = next(r for r in first["rows"] if r["symbol"] == "AAPL")
    assert 0 < aapl["new"] < 500  # equities trade only in NYSE sessions: nights and weekends are no gaps, but
    # the sim's bars close at its steps, so the session's last hour (20:00-21:00 UTC in winter) has none
    assert aapl["gaps"] > 0 and all(g["missing"] == 1 and g["after"].endswith("T19:00:00+00:00")
                                    for g in aapl["gap_list"])
    status = cli.json("status")
    assert btc["last"] < status["now"]  # the newest bar is one that has closed
    again = cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD", "--symbol", "AAPL")
    assert again["new"] == 0
    assert cli.json("fetch-news", "--advance", "3")  # the clock moves: only the new bars come in
    later = cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD")
    assert later["new"] == 3


def test_csv_import_detects_columns_and_is_idempotent(cli):
    (cli.cwd / "bars.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-03-01 15:00:00,10,11,9,10.5,100\n"
        "2024-03-01 16:00:00,10.5,12,10,11,120\n"
        "2024-03-01 18:00:00,11,11.5,10.5,11.2,90\n"
    )
    out = cli.json("fetch-bars", "--source", "file", "--file", "bars.csv", "--symbol", "xyz", "-t", "1h")
    assert out["new"] == 3 and out["rows"][0]["symbol"] == "XYZ"
    assert out["rows"][0]["gaps"] == 1 and out["rows"][0]["missing_bars"] == 1
    assert out["rows"][0]["last"] == "2024-03-01T18:00:00+00:00"
    assert cli.json("fetch-bars", "--source", "file", "--file", "bars.csv", "--symbol", "XYZ", "-t", "1h")["new"] == 0


def test_feather_import_of_real_btc_minutes(cli):
    import pytest

    if not BTC_1M.exists():
        pytest.skip("shared freqtrade data absent")
    out = cli.json("fetch-bars", "--source", "file", "--file", str(BTC_1M), "--symbol", "BTC/USDT", "-t", "1m")
    assert out["new"] == 13681 and out["gaps"] == 538


def test_usage_errors_exit_2(cli):
    assert cli("fetch-bars", "--source", "nope").returncode == 2
    assert cli("fetch-bars", "--source", "file").returncode == 2
    (cli.cwd / "bad.csv").write_text("a,b\n1,2\n")
    proc = cli("fetch-bars", "--source", "file", "--file", "bad.csv", "--symbol", "X")
    assert proc.returncode == 2 and "time column" in proc.stderr
    assert cli("fetch-bars", "--source", "file", "--file", "bad.csv", "-t", "7x").returncode == 2


def test_alpaca_bars_from_config_are_stored_once_and_errors_name_the_symbol(cli):
    from datetime import datetime, timedelta, timezone

    from tests.fakes import ALPACA_KEY, ALPACA_SECRET, FakeProviders

    start = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=6)
    (cli.cwd / "config").mkdir()
    with FakeProviders() as fake:
        (cli.cwd / "config" / "settings.yaml").write_text(
            f"bars: {{source: alpaca, timeframe: 1h, symbols: [AAPL, BTCUSD], since: '{start.isoformat()}'}}\n"
            f"broker: {{data_url: '{fake.url}', timeout_seconds: 5}}\n")
        env = {"ALPACA_API_KEY": ALPACA_KEY, "ALPACA_SECRET_KEY": ALPACA_SECRET}
        for sym in ("AAPL", "BTC/USD"):
            fake.add_bars(sym, start, 7, timedelta(hours=1))  # the 7th is still forming
        out = cli.json("fetch-bars", env=env)
        assert out["source"] == "alpaca" and out["new"] == 12
        assert {r["symbol"]: r["new"] for r in out["rows"]} == {"AAPL": 6, "BTC/USD": 6}
        assert cli.json("fetch-bars", env=env)["new"] == 0

        fake.bars_errors["MSFT"] = 500
        proc = cli("fetch-bars", "-s", "AAPL", "-s", "MSFT", env=env)
        assert proc.returncode == 1 and "MSFT" in proc.stderr and "500" in proc.stderr
        assert ALPACA_KEY not in proc.stderr + proc.stdout and ALPACA_SECRET not in proc.stderr + proc.stdout

        asked = len(fake.bar_queries)
        bad = cli("fetch-bars", "--timeframe", "2d", env=env)
        assert bad.returncode == 2 and "--timeframe" in bad.stderr and len(fake.bar_queries) == asked
        nokeys = cli("fetch-bars", env={"ALPACA_API_KEY": "", "ALPACA_SECRET_KEY": ""})
        assert nokeys.returncode == 2 and "ALPACA_API_KEY" in nokeys.stderr


def test_gaps_are_counted_against_the_asset_class_calendar(cli):
    """Daily GOOG (shipped with backtesting.py): weekends and NYSE holidays are no gaps (once 463);
    a session day taken out is one."""
    import pytest

    pytest.importorskip("backtesting")
    from backtesting.test import GOOG

    df = GOOG.rename_axis("Date").drop(GOOG.index[100])
    df.to_csv(cli.cwd / "goog.csv")
    out = cli.json("fetch-bars", "--source", "file", "--file", "goog.csv", "--symbol", "GOOG", "-t", "1d")
    row = out["rows"][0]
    assert (row["gaps"], row["missing_bars"]) == (1, 1)
    assert row["gap_list"][0]["after"].startswith(str(GOOG.index[99].date()))


def _bars_in_store(cli) -> list[tuple]:
    import sqlite3

    conn = sqlite3.connect(cli.cwd / "store.db")
    try:
        return conn.execute("SELECT ts, open, high, low, close FROM bars ORDER BY ts").fetchall()
    except sqlite3.OperationalError:  # no store at all
        return []
    finally:
        conn.close()


def test_impossible_bars_are_dropped_with_a_count_and_a_warning_naming_line_and_rule(cli):
    (cli.cwd / "bars.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n"
        "2024-03-01 10:00:00,10,11,9,10.5,100\n"      # line 2: good
        "2024-03-01 11:00:00,-1,12,-2,11,120\n"       # line 3: price <= 0
        "2024-03-01 12:00:00,10,9,11,10,1\n"          # line 4: high < low
        "2024-03-01 13:00:00,10,inf,9,10,1\n"         # line 5: not finite
        "2024-03-01 14:00:00,13,12,10,11,1\n"         # line 6: open above high
        "2024-03-01 15:00:00,10,12,10,9,1\n"          # line 7: close below low
        "2024-03-01 16:00:00,10,11,9,NaN,1\n"         # line 8: NaN
        "2024-03-01 17:00:00,,,,,\n"                  # line 9: empty
        "2024-03-01 18:00:00,10,11,9,abc,1\n"         # line 10: text in a price column
        "yesterday noon,10,11,9,10,1\n"               # line 11: no time
        "2024-03-01 20:00:00,10,11,9,10,100\n"        # line 12: good
    )
    proc = cli("fetch-bars", "--source", "file", "--file", "bars.csv", "--symbol", "X", "-t", "1h", "--json")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "error:" not in proc.stderr
    out = json.loads(proc.stdout)
    assert out["new"] == 2 and out["invalid"] == 9
    # the refused rows are invalid, not gaps; only 19:00 is a gap (its row's time was unreadable)
    assert out["rows"][0]["invalid"] == 9
    assert out["gaps"] == 1 and out["rows"][0]["gap_list"] == [
        {"after": "2024-03-01T10:00:00+00:00", "before": "2024-03-01T20:00:00+00:00", "missing": 1}]
    warning = [line for line in proc.stderr.splitlines() if "invalid" in line]
    assert len(warning) == 1, proc.stderr
    for needle in ("bars.csv", "9 invalid", "line 3", "<= 0"):
        assert needle in warning[0], (needle, warning[0])
    assert [b[0] for b in _bars_in_store(cli)] == ["2024-03-01T10:00:00+00:00", "2024-03-01T20:00:00+00:00"]


@pytest.mark.parametrize("rows,needles", [
    ("2024-03-01 10:00:00,10,11,9,abc,1\n", ["line 2", "close", "'abc'", "not a number"]),
    ("not a date,10,11,9,10,1\n", ["line 2", "'not a date'", "not a date/time"]),
    ("2024-03-01 10:00:00,0,11,9,10,1\n", ["line 2", "open", "<= 0"]),
    ("2024-03-01 10:00:00,10,9,11,10,1\n", ["line 2", "high 9", "below low 11"]),
    ("2024-03-01 10:00:00,10,11,9,12,1\n", ["line 2", "close 12", "outside low-high"]),
    ("2024-03-01 10:00:00,10,11,9,NaN,1\n", ["line 2", "close", "missing"]),
])
def test_a_file_with_no_valid_bar_is_refused_naming_the_line_and_the_rule(cli, rows, needles):
    (cli.cwd / "bad.csv").write_text("Date,Open,High,Low,Close,Volume\n" + rows)
    proc = cli("fetch-bars", "--source", "file", "--file", "bad.csv", "--symbol", "X", "-t", "1h")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in ["bad.csv", "no valid bar", *needles]:
        assert needle in errors[0], (needle, errors[0])
    assert _bars_in_store(cli) == []
