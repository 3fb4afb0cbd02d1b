"""The skfolio adapter against external references: PyPortfolioOpt's HRP weights on real prices,
skfolio's own direct call, and an independent HRP written here (scipy linkage + recursive bisection).

Prices: PyPortfolioOpt's test resources (MIT), 20 US stocks 1989-2018, read from ../shared."""

import math

import numpy as np
import pandas as pd
import pytest
import scipy.cluster.hierarchy as sch
import scipy.spatial.distance as ssd

from tests.conftest import SHARED
from tokenomics.adapters import optimizer
from tokenomics.adapters.skfolio_pairwise import pairwise_moments
from tokenomics.core.errors import UsageProblem

DATA = SHARED / "data" / "prices" / "pyportfolioopt"


@pytest.fixture(scope="module")
def prices():
    if not (DATA / "stock_prices.csv").exists():
        pytest.skip("needs ../shared/data/prices/pyportfolioopt")
    return pd.read_csv(DATA / "stock_prices.csv", parse_dates=True, index_col="date")


@pytest.fixture(scope="module")
def reference():
    return pd.read_csv(DATA / "weights_hrp.csv", index_col=0).iloc[:, 0]


def independent_hrp(returns: pd.DataFrame) -> pd.Series:
    """Lopez de Prado's HRP from the paper, with pandas' pairwise moments: single linkage on
    sqrt((1 - rho) / 2), leaves in dendrogram order, then recursive bisection by cluster variance."""
    cov, corr = returns.cov(), returns.corr()
    dist = np.sqrt(np.clip((1.0 - corr.values) / 2.0, 0.0, 1.0))
    link = sch.linkage(ssd.squareform(dist, checks=False), method="single")
    order = [returns.columns[i] for i in sch.leaves_list(link)]
    w = pd.Series(1.0, index=order)

    def cluster_var(items):
        c = cov.loc[items, items].values
        ivp = 1.0 / np.diag(c)
        ivp /= ivp.sum()
        return float(ivp @ c @ ivp)

    stack = [order]
    while stack:
        items = stack.pop()
        if len(items) < 2:
            continue
        left, right = items[: len(items) // 2], items[len(items) // 2:]
        vl, vr = cluster_var(left), cluster_var(right)
        alpha = 1.0 - vl / (vl + vr)
        w[left] *= alpha
        w[right] *= 1.0 - alpha
        stack += [left, right]
    return w


def test_classic_hrp_reproduces_pyportfolioopt_weights(prices, reference):
    # PyPortfolioOpt: returns = prices.pct_change().dropna(how="all") over the whole file, moments
    # pairwise over the periods each pair has in common (the file is ragged before 2014-09-19)
    returns = optimizer.returns_from_prices(prices)
    assert len(returns) == len(prices) - 1 and returns.isna().any().any()
    w = pd.Series(optimizer.hrp(returns)).reindex(reference.index)
    assert np.abs(w - reference).max() < 1e-6
    assert math.isclose(w.sum(), 1.0, abs_tol=1e-12)
    # the same history on the complete period alone gives clearly different weights: the period matters
    complete = optimizer.returns_from_prices(prices.dropna())
    assert np.abs(pd.Series(optimizer.hrp(complete)).reindex(reference.index) - reference).max() > 0.01


def test_classic_hrp_matches_skfolio_direct_call(prices):
    from skfolio.cluster import HierarchicalClustering, LinkageMethod
    from skfolio.distance import PearsonDistance
    from skfolio.measures import RiskMeasure
    from skfolio.optimization import HierarchicalRiskParity
    from skfolio.seriation import HierarchicalSeriation

    # skfolio's own estimators refuse NaN, so the direct call runs on the complete period
    returns = prices.dropna().pct_change().dropna()
    direct = HierarchicalRiskParity(
        risk_measure=RiskMeasure.VARIANCE, distance_estimator=PearsonDistance(),
        seriation_estimator=HierarchicalSeriation(
            hierarchical_clustering_estimator=HierarchicalClustering(linkage_method=LinkageMethod.SINGLE),
            optimal_ordering=False),
    ).fit(returns)
    ours = optimizer.hrp(optimizer.returns_from_prices(prices.dropna()))
    assert np.abs(np.array([ours[c] for c in returns.columns]) - direct.weights_).max() < 1e-6


@pytest.mark.parametrize("complete", [False, True])
def test_independent_hrp_agrees(prices, reference, complete):
    px = prices.dropna() if complete else prices
    returns = optimizer.returns_from_prices(px)
    ours = pd.Series(optimizer.hrp(returns))
    theirs = independent_hrp(returns).reindex(ours.index)
    assert np.abs(ours - theirs).max() < 1e-4
    if not complete:
        assert np.abs(theirs.reindex(reference.index) - reference).max() < 1e-4


def test_pairwise_moments_equal_pandas(prices):
    returns = optimizer.returns_from_prices(prices)
    cov, corr = pairwise_moments(returns.values)
    assert np.abs(cov - returns.cov().values).max() < 1e-15
    assert np.abs(corr - returns.corr().values).max() < 1e-12


def test_bounded_hrp_and_mean_variance_stay_within_bounds(prices):
    returns = optimizer.returns_from_prices(prices.loc["2016":])
    for w in (optimizer.hrp(returns, min_weight=0.03, max_weight=0.08),
              optimizer.mean_variance(returns, "max-sharpe", max_weight=0.1),
              optimizer.mean_variance(returns, "min-variance", min_weight=0.01, max_weight=0.2),
              optimizer.inverse_vol(returns, max_weight=0.07)):
        assert sum(w.values()) == pytest.approx(1.0, abs=1e-6)
        assert min(w.values()) >= -1e-9 and max(w.values()) <= 0.2 + 1e-6


def test_mean_variance_targets_and_frontier(prices):
    returns = optimizer.returns_from_prices(prices.loc["2016":])
    ppy = optimizer.periods_per_year(returns.index)
    assert 240 < ppy < 260  # trading days a year
    cov, _ = pairwise_moments(returns.values)
    mu = returns.mean().values

    def annual(w):
        x = np.array([w[c] for c in returns.columns])
        return float(mu @ x) * ppy, math.sqrt(float(x @ cov @ x) * ppy)

    minvar = annual(optimizer.mean_variance(returns, "min-variance", max_weight=0.3))
    tr = annual(optimizer.mean_variance(returns, "target-return", max_weight=0.3, target=minvar[0] + 0.1))
    assert tr[0] >= minvar[0] + 0.1 - 1e-4 and tr[1] >= minvar[1]
    rk = annual(optimizer.mean_variance(returns, "target-risk", max_weight=0.3, target=minvar[1] + 0.05))
    assert rk[1] <= minvar[1] + 0.05 + 1e-4 and rk[0] >= minvar[0]
    sharpe = annual(optimizer.mean_variance(returns, "max-sharpe", max_weight=0.3))
    frontier = optimizer.efficient_frontier(returns, 8, max_weight=0.3)
    assert len(frontier) == 8
    rets = [p["expected_return"] for p in frontier]
    vols = [p["volatility"] for p in frontier]
    assert rets == sorted(rets) and vols == sorted(vols)
    assert vols[0] == pytest.approx(minvar[1], abs=1e-4)
    # no frontier point beats the max-Sharpe portfolio's Sharpe ratio
    assert max(p["sharpe"] for p in frontier) <= sharpe[0] / sharpe[1] + 1e-3


def test_impossible_bounds_are_a_usage_problem(prices):
    returns = optimizer.returns_from_prices(prices.loc["2017":])
    with pytest.raises(UsageProblem):
        optimizer.hrp(returns, max_weight=0.04)  # 20 assets at 4% cannot reach 100%
    with pytest.raises(UsageProblem):
        optimizer.mean_variance(returns, "target-return")  # no --target
