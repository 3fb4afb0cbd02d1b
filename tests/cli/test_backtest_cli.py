"""`tokenomics backtest` end to end: JSON metrics, the backtests table, the offline report, grids."""

from __future__ import annotations

import sqlite3

import pytest

from tokenomics.research import backtest as replay
from tokenomics.core.errors import UsageProblem

METRICS = {"total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown", "win_rate",
           "profit_factor", "exposure", "turnover", "fees"}


def test_sma_backtest_prints_metrics_saves_and_writes_an_offline_report(cli) -> None:
    doc = cli.json("backtest", "--strategy", "sma", "--steps", "300", "--grid", "symbol=BTC/USD",
                   "--report", "out/report.html")
    assert METRICS <= set(doc["metrics"])
    assert doc["params"] == {"symbol": "BTC/USD", "fast": 10, "slow": 30}
    assert doc["trades"] and doc["metrics"]["trades"] == sum(1 for t in doc["trades"] if t["pnl"] is not None)
    assert doc["metrics"]["final_equity"] == doc["equity"][-1][1]
    page = (cli.cwd / "out" / "report.html").read_text()
    assert page.count("<svg") == 2 and "<polyline" in page
    assert "<script" not in page and "<link" not in page and 'src="' not in page  # nothing to fetch
    with sqlite3.connect(cli.cwd / "store.db") as db:
        (n, strategy, metrics) = db.execute("SELECT COUNT(*), strategy, metrics FROM backtests").fetchone()
    assert n == 1 and strategy == "sma" and '"sharpe"' in metrics


def test_grid_runs_every_combination_in_worker_processes(cli) -> None:
    doc = cli.json("backtest", "--strategy", "sma", "--steps", "300", "--grid", "fast=5,10",
                   "--grid", "slow=20,30", "--grid", "symbol=ETH/USD", "--workers", "2")
    rows = doc["rows"]
    assert [(r["fast"], r["slow"]) for r in rows] == [(5, 20), (5, 30), (10, 20), (10, 30)]
    assert len({r["id"] for r in rows}) == 4
    assert len({r["final_equity"] for r in rows}) > 1  # the parameters matter
    with sqlite3.connect(cli.cwd / "store.db") as db:
        assert db.execute("SELECT COUNT(*) FROM backtests").fetchone()[0] == 4


def test_model_strategy_replays_the_shipped_model_and_prints_metrics(cli) -> None:
    cli.env["TOKENOMICS_ML__MIN_PROBABILITY"] = "0.5"  # enough predictions pass to trade in a short window
    doc = cli.json("backtest", "--strategy", "model", "--steps", "36")
    assert METRICS <= set(doc["metrics"]) and doc["params"] == {"model": "sim-example"}
    assert doc["trades"] or doc["open_positions"], "a 0.5 threshold trades within 36 steps"
    assert doc["scored"] == 0  # no news is read: the model strategy runs on bars alone
    assert {t["symbol"] for t in doc["trades"]} <= {"BTC/USD", "ETH/USD"}  # equities lack history at step 500
    assert doc["metrics"]["final_equity"] == doc["equity"][-1][1]
    proc = cli("backtest", "--strategy", "model", "--grid", "model=nope")
    assert proc.returncode == 2 and "nope" in proc.stderr and proc.stdout == ""


def test_bad_usage_exits_2(cli) -> None:
    proc = cli("backtest", "--strategy", "sma", "--grid", "fast")
    assert proc.returncode == 2 and "param=v1,v2" in proc.stderr
    proc = cli("backtest", "--end", "2099-01-01")
    assert proc.returncode == 2 and "after the sim clock" in proc.stderr
    with pytest.raises(UsageProblem):
        replay.check_strategy("nope")


def test_sentiment_backtest_runs_offline_and_reuses_its_scores(cli) -> None:
    first = cli.json("backtest", "--strategy", "sentiment", "--steps", "24")
    assert METRICS <= set(first["metrics"]) and first["scored"] > 0
    second = cli.json("backtest", "--strategy", "sentiment", "--steps", "24")
    assert second["scored"] == 0 and second["metrics"] == first["metrics"]


def test_grid_combinations_and_setting_overrides() -> None:
    combos = replay.grid_combinations(["a=1,2", "b.c=x,true"])
    assert combos == [{"a": 1, "b.c": "x"}, {"a": 1, "b.c": True}, {"a": 2, "b.c": "x"}, {"a": 2, "b.c": True}]
    from tokenomics.config import Settings

    s = replay.apply_overrides(Settings(), {"sentiment.min_conviction": 60, "broker.fee_bps": 2.5})
    assert s.sentiment.min_conviction == 60 and s.broker.fee_bps == 2.5
    with pytest.raises(UsageProblem):
        replay.apply_overrides(Settings(), {"sentiment.nope": 1})
    with pytest.raises(UsageProblem):
        replay.apply_overrides(Settings(), {"sentiment.min_conviction": 500})
    with pytest.raises(UsageProblem):
        replay.grid_combinations(["fast=1", "fast=2"])
