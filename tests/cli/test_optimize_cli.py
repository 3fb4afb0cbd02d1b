"""optimize, backtest --executor and train --grid through the real CLI (no Ray here: tests/integration/test_ray.py)."""

from __future__ import annotations

import sqlite3

import pytest

pytest.importorskip("optuna")

OPT = ["optimize", "--strategy", "sma", "--steps", "300", "--param", "fast=3..20", "--param", "slow=21..60",
       "--param", "symbol=BTC/USD,ETH/USD", "--trials", "8", "--batch", "4", "--top", "3", "--holdout", "0.25",
       "--executor", "inline"]


def test_optimize_prints_the_best_trials_with_their_holdout_and_resumes(cli) -> None:
    doc = cli.json(*OPT)
    assert doc["trials"] == 8 and doc["evaluated"] == 8 and doc["sampler"] == "tpe" and doc["seed"] == 0
    assert doc["storage"].startswith("sqlite:///") and doc["storage"].endswith("store.db")
    best = doc["best"]
    assert best and [r["rank"] for r in best] == list(range(1, len(best) + 1))
    assert all(r["value"] == r["sharpe"] for r in best)
    assert [r["value"] for r in best] == sorted((r["value"] for r in best), reverse=True)
    assert all("holdout_sharpe" in r and "holdout_total_return" in r for r in best)
    again = cli.json(*OPT)  # the same command: the same study, nothing left to run
    assert again["study"] == doc["study"] and again["evaluated"] == 0 and again["resumed_from"] == 8
    assert [r["value"] for r in again["best"]] == [r["value"] for r in best]
    more = cli.json(*[("10" if a == "8" else a) for a in OPT])  # --trials 10: two more
    assert more["study"] == doc["study"] and more["evaluated"] == 2
    with sqlite3.connect(cli.cwd / "store.db") as db:
        n = db.execute("SELECT COUNT(*) FROM backtests").fetchone()[0]
        studies = db.execute("SELECT study_name FROM studies").fetchall()
    assert n == 8 + 2 + 3 * len(best)  # every trial, plus the holdout runs of the best, each invocation
    assert studies == [(doc["study"],)]
    assert cli("doctor", "--json").returncode == 0  # Optuna's tables beside ours do not upset the store


def test_optimize_bad_usage_exits_2_naming_the_parameter(cli) -> None:
    proc = cli("optimize", "--param", "fast=5..x")
    assert proc.returncode == 2 and "fast" in proc.stderr and proc.stdout == ""
    proc = cli("optimize", "--param", "exits.stop_loss_pct=0..5:log")
    assert proc.returncode == 2 and "exits.stop_loss_pct" in proc.stderr
    proc = cli("optimize", "--param", "fast=5..20", "--objective", "luck")
    assert proc.returncode == 2 and "--objective" in proc.stderr
    proc = cli("optimize", "--param", "nope=1..5", "--executor", "inline", "--steps", "300")
    assert proc.returncode == 2 and "nope" in proc.stderr
    proc = cli("optimize", "--param", "fast=5..20", "--executor", "spark")
    assert proc.returncode == 2 and "--executor" in proc.stderr


def test_backtest_grid_takes_an_executor_and_address_needs_ray(cli) -> None:
    doc = cli.json("backtest", "--strategy", "sma", "--steps", "300", "--grid", "fast=5,10", "--grid", "slow=30",
                   "--executor", "inline")
    assert [r["fast"] for r in doc["rows"]] == [5, 10]
    proc = cli("backtest", "--strategy", "sma", "--grid", "fast=5,10", "--executor", "local", "--address", "auto")
    assert proc.returncode == 2 and "--executor ray" in proc.stderr


def test_train_grid_compares_out_of_sample_metrics_without_saving_a_model(cli) -> None:
    cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD")
    doc = cli.json("train", "--grid", "C=0.1,1.0", "--grid", "max_iter=100,200", "--classifier",
                   "sklearn.linear_model.LogisticRegression", "--param", "random_state=0", "--folds", "3",
                   "--executor", "inline")
    rows = doc["grid"]
    assert [(r["C"], r["max_iter"]) for r in rows] == [(0.1, 100), (0.1, 200), (1.0, 100), (1.0, 200)]
    assert all({"accuracy", "roc_auc", "brier", "net_return", "folds"} <= set(r) for r in rows)
    assert not (cli.cwd / "trained_models").exists()
    proc = cli("train", "--grid", "bogus=1,2", "--classifier", "sklearn.linear_model.LogisticRegression",
               "--param", "random_state=0")
    assert proc.returncode == 2 and "bogus" in proc.stderr
    assert cli("train").returncode == 2  # --name, or --grid


def test_optimize_over_stored_daily_bars_splits_the_holdout_by_bars(cli) -> None:
    pytest.importorskip("backtesting")
    from backtesting.test import GOOG

    GOOG.rename_axis("Date").to_csv(cli.cwd / "goog.csv")
    cli.json("fetch-bars", "--source", "file", "--file", "goog.csv", "--symbol", "GOOG", "--timeframe", "1d")
    doc = cli.json("optimize", "--strategy", "sma", "--source", "file", "--symbol", "GOOG", "--param",
                   "fast=5..30", "--param", "slow=40..120:10", "--trials", "6", "--holdout", "0.3", "--top", "2",
                   "--min-trades", "3", "--executor", "inline")
    ins, oos = doc["in_sample"], doc["holdout"]
    assert ins["source"] == oos["source"] == "file" and ins["symbols"] == ["GOOG"]
    assert ins["start"].startswith("2004-08-19") and ins["end"] == oos["start"] and oos["end"].startswith("2013-03-0")
    assert oos["bars"] == pytest.approx(0.3 * (ins["bars"] + oos["bars"]), abs=1)
    assert doc["best"] and all(r["trades"] >= 3 and "holdout_sharpe" in r for r in doc["best"])
