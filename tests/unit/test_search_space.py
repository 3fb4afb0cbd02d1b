"""optimize's parameter ranges, objectives and holdout split (no Optuna study here)."""

from __future__ import annotations

import pytest

from tokenomics.core.errors import UsageProblem
from tokenomics.research import search
from tokenomics.research.backtest import Window


def test_ranges_parse_to_int_float_log_step_and_choices() -> None:
    p = search.parse_param("fast=5..50")
    assert (p.kind, p.low, p.high, p.log, p.step) == ("int", 5, 50, False, None)
    p = search.parse_param("exits.stop_loss_pct=1.0..5.0:log")
    assert (p.name, p.kind, p.low, p.high, p.log) == ("exits.stop_loss_pct", "float", 1.0, 5.0, True)
    p = search.parse_param("x=0..1:0.1")
    assert (p.kind, p.step) == ("float", 0.1)
    p = search.parse_param("slow=20..200:10")
    assert (p.kind, p.step) == ("int", 10)
    p = search.parse_param("symbol=BTC/USD,ETH/USD")
    assert (p.kind, p.choices) == ("choice", ("BTC/USD", "ETH/USD"))
    assert search.parse_param("slow=30").choices == (30,)  # a fixed value
    assert search.parse_param("exits.exit_on_bearish=true,false").choices == (True, False)


@pytest.mark.parametrize("spec", ["fast=5..x", "fast=50..5", "fast=0..5:log", "fast=1..5:-1", "fast=1..5:lg",
                                  "fast=", "fast=1,1"])
def test_bad_ranges_are_usage_problems_naming_the_parameter(spec: str) -> None:
    with pytest.raises(UsageProblem, match="fast"):
        search.parse_param(spec)


def test_space_rejects_a_parameter_named_twice_and_an_empty_space() -> None:
    with pytest.raises(UsageProblem, match="fast"):
        search.parse_space(["fast=1..3", "fast=4..6"])
    with pytest.raises(UsageProblem):
        search.parse_space([])
    with pytest.raises(UsageProblem, match="="):
        search.parse_space(["fast"])


def test_distributions_follow_the_ranges() -> None:
    pytest.importorskip("optuna")
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    d = search.parse_param("fast=5..50").distribution()
    assert isinstance(d, IntDistribution) and (d.low, d.high, d.step) == (5, 50, 1)
    d = search.parse_param("s=1.0..5.0:log").distribution()
    assert isinstance(d, FloatDistribution) and d.log and (d.low, d.high) == (1.0, 5.0)
    d = search.parse_param("sym=A,B").distribution()
    assert isinstance(d, CategoricalDistribution) and d.choices == ("A", "B")


def test_objectives_calmar_is_cagr_over_the_drawdown_and_undefined_values_are_none() -> None:
    m = {"sharpe": 1.5, "sortino": None, "cagr": 0.2, "max_drawdown": -0.1, "total_return": 0.05}
    assert search.objective_value(m, "sharpe") == 1.5
    assert search.objective_value(m, "sortino") is None
    assert search.objective_value(m, "calmar") == pytest.approx(2.0)
    assert search.objective_value({**m, "max_drawdown": 0.0}, "calmar") is None
    assert search.objective_value(m, "total_return") == 0.05
    assert search.objective_value({"sharpe": float("nan")}, "sharpe") is None


def test_holdout_is_the_end_of_the_window_and_options_are_checked() -> None:
    ins, oos = search.split(None, Window(100, 400), 0.25)
    assert (ins.first, ins.last, oos.first, oos.last) == (100, 325, 325, 400)
    assert search.split(None, Window(100, 400), 0.0) == (Window(100, 400), None)
    with pytest.raises(UsageProblem, match="too short"):
        search.split(None, Window(0, 3), 0.5)
    for bad in (dict(objective="profit"), dict(sampler="grid"), dict(holdout=1.0), dict(trials=0)):
        args = {"objective": "sharpe", "sampler": "tpe", "trials": 5, "holdout": 0.2, "top": 3, "batch": 2, **bad}
        with pytest.raises(UsageProblem):
            search.check_options(**args)
