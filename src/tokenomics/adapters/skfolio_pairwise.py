"""skfolio estimators for ragged histories: moments from pairwise-complete observations.

Assets listed at different times leave NaN returns before their first price. skfolio's default
estimators refuse NaN; these use, for each pair of assets, every period in which both have a
return, as pandas' DataFrame.cov()/corr() and PyPortfolioOpt do. On complete data they equal
skfolio's EmpiricalMu, EmpiricalCovariance (ddof=1) and PearsonDistance.

This module imports skfolio at the top: import it only inside the functions that optimise.
"""

from __future__ import annotations

import numpy as np
import sklearn.utils.validation as skv
from skfolio.distance import BaseDistance
from skfolio.moments import BaseCovariance, BaseMu


def pairwise_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(covariance, correlation), each entry over the periods where both assets have a return.

    The correlation of a pair uses the standard deviations over that same overlap (pandas' corr),
    so it is not the covariance rescaled by whole-history variances."""
    m = np.isfinite(x).astype(float)
    z = np.where(m > 0, x, 0.0)
    n = m.T @ m  # overlap counts
    if (n < 2).any():
        raise ValueError("every pair of assets needs at least two returns in common")
    s = z.T @ m  # s[i, j] = sum of asset i's returns over the periods where j has one
    cov = (z.T @ z - s * s.T / n) / (n - 1)
    var_overlap = ((z * z).T @ m - s * s / n) / (n - 1)  # var of i over its overlap with j
    corr = cov / np.sqrt(var_overlap * var_overlap.T)
    np.fill_diagonal(corr, 1.0)
    return cov, np.clip(corr, -1.0, 1.0)


class PairwiseMu(BaseMu):
    """Mean of each asset's available returns."""

    def __init__(self) -> None:
        pass

    def fit(self, X, y=None) -> "PairwiseMu":  # noqa: N803 (sklearn's signature)
        X = skv.validate_data(self, X, ensure_all_finite="allow-nan")
        self.mu_ = np.nanmean(X, axis=0)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class PairwiseCovariance(BaseCovariance):
    """Sample covariance (ddof=1) over pairwise-complete periods; made positive definite if needed."""

    def __init__(self, nearest: bool = True) -> None:
        super().__init__(nearest=nearest)

    def fit(self, X, y=None) -> "PairwiseCovariance":  # noqa: N803
        X = skv.validate_data(self, X, ensure_all_finite="allow-nan")
        cov, _ = pairwise_moments(X)
        self._set_covariance(cov)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


class PairwisePearsonDistance(BaseDistance):
    """Pearson distance sqrt((1 - corr) / 2) on pairwise-complete correlations."""

    def __init__(self) -> None:
        pass

    def fit(self, X, y=None) -> "PairwisePearsonDistance":  # noqa: N803
        X = skv.validate_data(self, X, ensure_all_finite="allow-nan")
        _, corr = pairwise_moments(X)
        self.codependence_ = corr
        self.distance_ = np.sqrt(np.clip(0.5 * (1.0 - corr), 0.0, 1.0))
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags
