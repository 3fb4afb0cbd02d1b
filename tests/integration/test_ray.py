"""The Ray executor on a local Ray (2 CPUs): the same grid rows as the process pool, data by value
(never the store file), Optuna trials as Ray tasks, training grids."""

from __future__ import annotations

from pathlib import Path

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("optuna")

from tokenomics.executors import InlineExecutor, LocalProcessExecutor, RayExecutor, sweep_scratch  # noqa: E402
from tokenomics.research import backtest as replay  # noqa: E402
from tokenomics.research import search, sweeps  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    ours = not ray.is_initialized()
    if ours:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    if ours:
        ray.shutdown()
        sweep_scratch(wait=2.0)


def without_ids(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "id"} for r in rows]


def test_a_grid_through_ray_gives_the_process_pools_rows_from_data_sent_by_value(rt, local_ray) -> None:
    w = replay.window(rt, None, None, 300)
    combos = replay.grid_combinations(["fast=5,10", "slow=20,30", "symbol=ETH/USD,BTC/USD"])
    pool = sweeps.run_cells(rt, LocalProcessExecutor(2), "sma", w, combos)
    ex = RayExecutor()
    try:
        on_ray = sweeps.run_cells(rt, ex, "sma", w, combos)
        assert without_ids(on_ray) == without_ids(pool) and len(pool) == 8
        assert len({r["id"] for r in pool + on_ray}) == 16  # Ray's rows are saved in the main store too
        saved = rt.store.all("SELECT params, metrics, trades, equity FROM backtests WHERE id IN (?, ?)",
                             [pool[3]["id"], on_ray[3]["id"]])
        assert saved[0] == saved[1]
        # the workers never open the store file: jobs that name a store that does not exist still run
        snap = sweeps.make_snapshot(rt, "sma", combos)
        jobs = [{**j, "db": Path("/nonexistent/store.db"), "config": Path("/nonexistent/settings.yaml")}
                for j in sweeps.jobs_for(rt, "sma", w, combos)]
        out = ex.map(sweeps.portable_job, jobs, shared=snap)
        assert without_ids([o["row"] for o in out]) == without_ids(pool)
    finally:
        ex.close()
    assert ray.is_initialized()  # the executor leaves a Ray it did not start running


def test_optuna_trials_and_training_grids_run_as_ray_tasks(rt, local_ray, tmp_path) -> None:
    from tests.integration.test_train import fill

    w = replay.window(rt, None, None, 300)
    args = dict(strategy="sma", w=w, space=search.parse_space(["fast=3..20", "slow=21..60"]), trials=8, batch=4,
                seed=1, top=2, holdout=0.25)
    ex = RayExecutor()
    try:
        on_ray = search.search(rt, ex, study="ray", **args)
        inline = search.search(rt, InlineExecutor(), study="inline", **args)
        keep = ("fast", "slow", "value", "holdout_sharpe", "holdout_total_return", "holdout_trades")
        assert [{k: r[k] for k in keep} for r in on_ray["best"]] == [{k: r[k] for k in keep} for r in inline["best"]]
        assert on_ray["evaluated"] == 8

        from tokenomics.research import ml
        from tokenomics.core import features as F

        fill(rt.store, "AAA", 900, 1)
        data = ml.dataset(rt.store, "file", ["AAA"], "1h", list(F.FEATURES), 5, 0.0)
        combos = replay.grid_combinations(["C=0.1,1.0"])
        targs = {"classifier": "sklearn.linear_model.LogisticRegression", "cv": "walk-forward", "folds": 3,
                 "horizon": 5, "embargo": 10, "min_probability": 0.55, "cost_rate": 0.0015}
        grid_ray = sweeps.train_grid(ex, data, combos, {"max_iter": 200}, targs)
        grid_inline = sweeps.train_grid(InlineExecutor(), data, combos, {"max_iter": 200}, targs)
        assert grid_ray == grid_inline and [r["C"] for r in grid_ray] == [0.1, 1.0]
        assert {"accuracy", "roc_auc", "net_return", "folds"} <= set(grid_ray[0])
    finally:
        ex.close()


def test_the_commands_take_executor_ray_and_stop_the_ray_they_started(cli) -> None:
    grid = cli.json("backtest", "--strategy", "sma", "--steps", "300", "--grid", "fast=5,10", "--grid", "slow=30",
                    "--executor", "ray", "--workers", "2")
    pool = cli.json("backtest", "--strategy", "sma", "--steps", "300", "--grid", "fast=5,10", "--grid", "slow=30",
                    "--executor", "local", "--workers", "2")
    assert without_ids(grid["rows"]) == without_ids(pool["rows"])


def test_a_grid_over_stored_bars_through_ray_equals_inline(rt, local_ray) -> None:
    pytest.importorskip("backtesting")
    from backtesting.test import GOOG

    from tokenomics.store import iso

    rows = [{"source": "file", "symbol": "GOOG", "timeframe": "1d", "ts": iso(ts.tz_localize("UTC").to_pydatetime()),
             "open": r.Open, "high": r.High, "low": r.Low, "close": r.Close, "volume": float(r.Volume)}
            for ts, r in GOOG.iterrows()]
    rt.store.insert_ignore("bars", rows)
    w = replay.window(rt, None, None, None, source="file", tf="1d", symbols=["GOOG"])
    assert w.stored and w.last - w.first == len(GOOG)
    combos = replay.grid_combinations(["fast=5,10", "slow=20,40"])
    ex = RayExecutor()
    try:
        assert without_ids(sweeps.run_cells(rt, ex, "sma", w, combos)) == \
            without_ids(sweeps.run_cells(rt, InlineExecutor(), "sma", w, combos))
    finally:
        ex.close()
