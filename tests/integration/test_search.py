"""optimize's search in process: a seeded study repeats itself, resumes after an interruption, keeps
its trials as backtest rows and its study in the store."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("optuna")

from tokenomics.executors import InlineExecutor  # noqa: E402
from tokenomics.research import backtest as replay  # noqa: E402
from tokenomics.research import search  # noqa: E402

SPACE = ["fast=3..20", "slow=21..60", "symbol=BTC/USD,ETH/USD"]


def run(rt, executor=None, **kw):
    args = dict(strategy="sma", w=replay.window(rt, None, None, 300), space=search.parse_space(SPACE),
                trials=12, batch=4, seed=3, top=3, min_trades=1)
    args.update(kw)
    return search.search(rt, executor or InlineExecutor(), **args)


def finished(rt, study: str) -> list[tuple]:
    import optuna
    from optuna.trial import TrialState

    st = optuna.load_study(study_name=study, storage=f"sqlite:///{rt.db_path.resolve()}")
    done = st.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    return [(tuple(sorted(t.params.items())), t.value) for t in sorted(done, key=lambda t: t.number)]


class Interrupting(InlineExecutor):
    """Stops the search (as Ctrl-C would) on its second batch, after the first was told."""

    def __init__(self):
        self.calls = 0

    def map(self, fn, jobs, shared=None):
        self.calls += 1
        if self.calls == 2:
            raise KeyboardInterrupt
        return super().map(fn, jobs, shared)


def test_a_seeded_search_gives_the_same_best_trial_twice(rt) -> None:
    first = run(rt, study="one")
    second = run(rt, study="two")
    assert first["best"] and first["trials"] == 12 and first["evaluated"] == 12
    strip = [{k: v for k, v in r.items() if k not in ("trial", "backtest_id")} for r in first["best"]]
    assert strip == [{k: v for k, v in r.items() if k not in ("trial", "backtest_id")} for r in second["best"]]
    assert finished(rt, "one") == finished(rt, "two")
    run(rt, study="three", seed=4)
    assert finished(rt, "three") != finished(rt, "one")  # the seed matters
    # every trial is a saved backtest, like a grid row
    best = first["best"][0]
    row = rt.store.one("SELECT params, metrics FROM backtests WHERE id = ?", [best["backtest_id"]])
    assert json.loads(row["params"]) == {k: best[k] for k in ("fast", "slow", "symbol")}
    assert json.loads(row["metrics"])["sharpe"] == pytest.approx(best["value"])
    tables = {r["name"] for r in rt.store.all("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"studies", "trials", "backtests"} <= tables  # Optuna's tables beside ours, in the store


def test_an_interrupted_search_resumes_from_the_store_to_the_same_trials(rt) -> None:
    whole = run(rt, study="whole")
    with pytest.raises(KeyboardInterrupt):
        run(rt, Interrupting(), study="cut")
    assert len(finished(rt, "cut")) == 4  # the first batch was told; the second was asked, never told
    resumed = run(rt, study="cut")
    assert (resumed["resumed_from"], resumed["failed_stale"], resumed["evaluated"]) == (4, 4, 8)
    assert finished(rt, "cut") == finished(rt, "whole")
    assert [r["value"] for r in resumed["best"]] == [r["value"] for r in whole["best"]]
    again = run(rt, study="cut")  # nothing left to do
    assert again["evaluated"] == 0 and again["best"] == resumed["best"]


def test_min_trades_prunes_and_the_holdout_is_scored_beside_in_sample(rt) -> None:
    doc = run(rt, study="h", holdout=0.3, min_trades=3, objective="total_return")
    assert doc["holdout"]["share"] == 0.3 and doc["in_sample"]["end"] == doc["holdout"]["start"]
    assert all(r["trades"] >= 3 for r in doc["best"]) and doc["pruned"] >= 1
    for r in doc["best"]:
        assert "holdout_total_return" in r and r["holdout_id"] != r["backtest_id"]
        oos = rt.store.one("SELECT start, params FROM backtests WHERE id = ?", [r["holdout_id"]])
        assert oos["start"] == doc["holdout"]["start"]
        assert json.loads(oos["params"]) == {k: r[k] for k in ("fast", "slow", "symbol")}
