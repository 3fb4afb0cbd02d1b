"""Target weights from a portfolio library: skfolio (the `portfolio` extra), imported only here.

Why skfolio (see ../shared/notes/quant-conventions.md): BSD-3, a stable sklearn-style API, the
lightest install of the three compared (no full cvxpy, no numba), and the only one that applies
min/max weights inside HRP's recursive bisection (PyPortfolioOpt has no bounded HRP; riskfolio
clips and redistributes). Its defaults (Ward linkage, optimal leaf ordering) are not classic HRP,
so every setting is passed explicitly.

Inputs are period returns (a pandas DataFrame, one column per symbol, NaN where a symbol has no
return yet); moments use pairwise-complete periods (skfolio_pairwise), as pandas/PyPortfolioOpt do.
All weights are long-only and fully invested (sum 1), within [min_weight, max_weight].
"""

from __future__ import annotations

import math
import warnings
from typing import Any

from tokenomics.core import rebalance as rb
from tokenomics.core.errors import TokenomicsError

HRP = "hrp"
MEAN_VARIANCE = ("max-sharpe", "min-variance", "target-return", "target-risk")
METHODS = (HRP, *MEAN_VARIANCE, "equal", "inverse-vol")
LINKAGES = ("single", "ward", "average", "complete")


class OptimizationFailed(TokenomicsError):
    exit_code = 1


def returns_from_prices(prices: Any) -> Any:
    """Simple returns of a close-price DataFrame (NaN where a symbol has no price), each symbol over
    its own consecutive prices, so a symbol that does not trade at some timestamps (equities out of
    session) keeps every return it has; rows where no symbol has a return are dropped. On a frame
    without interior gaps this is PyPortfolioOpt's prices.pct_change().dropna(how="all")."""
    import pandas as pd

    cols = {c: prices[c].dropna().pct_change(fill_method=None) for c in prices.columns}
    return pd.concat(cols, axis=1, sort=True).dropna(how="all")


def periods_per_year(index: Any) -> float:
    """Observed return periods per year, from the index's span (252-ish for daily equities)."""
    span_days = (index[-1] - index[0]).total_seconds() / 86400.0
    if len(index) < 2 or span_days <= 0:
        raise ValueError("need at least two timestamps to annualise")
    return (len(index) - 1) / (span_days / 365.25)


def _prior(nearest: bool = True) -> Any:
    from skfolio.prior import EmpiricalPrior

    from tokenomics.adapters.skfolio_pairwise import PairwiseCovariance, PairwiseMu

    return EmpiricalPrior(mu_estimator=PairwiseMu(), covariance_estimator=PairwiseCovariance(nearest=nearest))


def _fit(model: Any, returns: Any) -> Any:
    from skfolio.exceptions import OptimizationError

    with warnings.catch_warnings():
        # the prior zero-fills missing scenarios; variance-based methods use only the moments
        warnings.filterwarnings("ignore", message=".*zero-filled.*")
        try:
            return model.fit(returns)
        except (OptimizationError, ValueError) as exc:
            raise OptimizationFailed(f"the optimiser failed: {str(exc).splitlines()[0][:300]}",
                                     hint="try --method hrp, or looser --min-weight/--max-weight") from None


def _bounds(n: int, min_weight: float, max_weight: float) -> None:
    try:
        rb.check_bounds(n, min_weight, max_weight)
    except ValueError as exc:
        from tokenomics.core.errors import UsageProblem

        raise UsageProblem(f"weight bounds: {exc}") from None


def _as_dict(columns: Any, weights: Any) -> dict[str, float]:
    return {str(c): float(max(w, 0.0)) for c, w in zip(columns, weights, strict=True)}


def hrp(returns: Any, *, linkage: str = "single", optimal_ordering: bool = False,
        min_weight: float = 0.0, max_weight: float = 1.0) -> dict[str, float]:
    """Hierarchical Risk Parity. The defaults are the classic HRP of Lopez de Prado (2016):
    Pearson distance sqrt((1 - rho) / 2), single linkage, no leaf reordering, variance as risk."""
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    from tokenomics.adapters.skfolio_pairwise import PairwisePearsonDistance

    _bounds(returns.shape[1], min_weight, max_weight)
    model = HierarchicalRiskParity(
        risk_measure=RiskMeasure.VARIANCE,
        prior_estimator=_prior(nearest=False),
        distance_estimator=PairwisePearsonDistance(),
        distance_from_prior=False,  # correlations from the returns themselves, pairwise
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod(linkage)),
            optimal_ordering=optimal_ordering),
        min_weights=min_weight, max_weights=max_weight,
    )
    return _as_dict(returns.columns, _fit(model, returns).weights_)


def mean_variance(returns: Any, objective: str, *, min_weight: float = 0.0, max_weight: float = 1.0,
                  target: float | None = None, risk_free: float = 0.0,
                  annualisation: float | None = None) -> dict[str, float]:
    """Mean-variance weights: max-sharpe, min-variance, target-return (least variance for at least
    `target` annual return) or target-risk (most return for at most `target` annual volatility).
    `risk_free` and `target` are annual; `annualisation` is return periods per year."""
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk, ObjectiveFunction

    _bounds(returns.shape[1], min_weight, max_weight)
    ppy = annualisation or periods_per_year(returns.index)
    kw: dict[str, Any] = dict(prior_estimator=_prior(), min_weights=min_weight, max_weights=max_weight)
    if objective == "max-sharpe":
        kw |= dict(objective_function=ObjectiveFunction.MAXIMIZE_RATIO,
                   risk_measure=RiskMeasure.STANDARD_DEVIATION, risk_free_rate=risk_free / ppy)
    elif objective == "min-variance":
        kw |= dict(objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.VARIANCE)
    elif objective in ("target-return", "target-risk"):
        if target is None:
            from tokenomics.core.errors import UsageProblem

            raise UsageProblem(f"--method {objective} needs --target (annual, e.g. 0.15 for 15%)")
        if objective == "target-return":
            kw |= dict(objective_function=ObjectiveFunction.MINIMIZE_RISK, risk_measure=RiskMeasure.VARIANCE,
                       min_return=target / ppy)
        else:
            kw |= dict(objective_function=ObjectiveFunction.MAXIMIZE_RETURN, risk_measure=RiskMeasure.VARIANCE,
                       max_standard_deviation=target / math.sqrt(ppy))
    else:
        raise ValueError(f"unknown mean-variance objective {objective!r}")
    return _as_dict(returns.columns, _fit(MeanRisk(**kw), returns).weights_)


def efficient_frontier(returns: Any, points: int = 20, *, min_weight: float = 0.0, max_weight: float = 1.0,
                       risk_free: float = 0.0, annualisation: float | None = None) -> list[dict]:
    """`points` portfolios along the efficient frontier, from least variance up to most return,
    each with its annualised expected return, volatility, Sharpe ratio and weights."""
    import numpy as np
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import MeanRisk

    _bounds(returns.shape[1], min_weight, max_weight)
    ppy = annualisation or periods_per_year(returns.index)
    model = _fit(MeanRisk(risk_measure=RiskMeasure.VARIANCE, efficient_frontier_size=points, prior_estimator=_prior(),
                          min_weights=min_weight, max_weights=max_weight), returns)
    dist = model.prior_estimator_.return_distribution_
    out = []
    for w in np.atleast_2d(model.weights_):
        mu = float(dist.mu @ w) * ppy
        vol = math.sqrt(max(float(w @ dist.covariance @ w), 0.0) * ppy)
        out.append({"expected_return": round(mu, 6), "volatility": round(vol, 6),
                    "sharpe": round((mu - risk_free) / vol, 4) if vol > 0 else None,
                    "weights": {k: round(v, 6) for k, v in _as_dict(returns.columns, w).items()}})
    return out


def inverse_vol(returns: Any, *, min_weight: float = 0.0, max_weight: float = 1.0) -> dict[str, float]:
    _bounds(returns.shape[1], min_weight, max_weight)
    vols = {str(c): rb.volatility(returns[c].tolist()) for c in returns.columns}
    return rb.clip_weights(rb.inverse_vol_weights(vols), min_weight, max_weight)


def target_weights(method: str, returns: Any, *, min_weight: float = 0.0, max_weight: float = 1.0,
                   linkage: str = "single", target: float | None = None, risk_free: float = 0.0) -> dict[str, float]:
    """Dispatch on the method name (one of METHODS)."""
    if method == HRP:
        return hrp(returns, linkage=linkage, min_weight=min_weight, max_weight=max_weight)
    if method in MEAN_VARIANCE:
        return mean_variance(returns, method, min_weight=min_weight, max_weight=max_weight, target=target,
                             risk_free=risk_free)
    if method == "inverse-vol":
        return inverse_vol(returns, min_weight=min_weight, max_weight=max_weight)
    if method == "equal":
        _bounds(returns.shape[1], min_weight, max_weight)
        return rb.equal_weights([str(c) for c in returns.columns])
    raise ValueError(f"unknown method {method!r}; one of {', '.join(METHODS)}")
