"""Position sizing: how many dollars a signal asks for (before the risk gate caps it)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def fixed_range(strength: float, *, min_usd: float, max_usd: float, floor: float = 0.0) -> float:
    """Map strength (0..1) linearly onto min_usd..max_usd, with `floor` mapping to min_usd.

    With floor = min_conviction / 100, a signal at the threshold gets min_usd and a
    certain one (strength 1) gets max_usd.
    """
    if not 0.0 <= floor < 1.0:
        raise ValueError("floor must be in [0, 1)")
    s = min(max(strength, floor), 1.0)
    frac = (s - floor) / (1.0 - floor)
    return round(min_usd + frac * (max_usd - min_usd), 2)


# --- fractional Kelly with a prior ------------------------------------------------------------
@dataclass(frozen=True)
class TradeStats:
    """Closed trades of one signal source: counts and mean absolute returns (fractions)."""

    wins: int = 0
    losses: int = 0
    avg_win: float = 0.0
    avg_loss: float = 0.0

    @property
    def n(self) -> int:
        return self.wins + self.losses

    @classmethod
    def of(cls, returns: Sequence[float]) -> "TradeStats":
        wins = [r for r in returns if r > 0]
        losses = [-r for r in returns if r <= 0]
        return cls(len(wins), len(losses), sum(wins) / len(wins) if wins else 0.0,
                   sum(losses) / len(losses) if losses else 0.0)


@dataclass(frozen=True)
class KellyEstimate:
    win_rate: float  # posterior
    payoff: float  # posterior average win / average loss
    full: float  # full Kelly fraction of equity, clipped to [0, 1]


def kelly_estimate(stats: TradeStats, *, prior_trades: float, prior_win_rate: float,
                   prior_payoff: float) -> KellyEstimate:
    """Kelly f* = p - (1 - p) / b from a win rate and payoff ratio shrunk towards a prior.

    The prior counts as `prior_trades` trades: p = (wins + k p0) / (n + k); the payoff ratio
    b = (n b_obs + k b0) / (n + k), where b_obs is observed only when there are wins and losses.
    A young history stays near the prior's (small) stake; a long losing one goes to zero.
    """
    n, k = stats.n, prior_trades
    if n + k <= 0:
        return KellyEstimate(prior_win_rate, prior_payoff, 0.0)
    p = (stats.wins + k * prior_win_rate) / (n + k)
    observed = stats.avg_win / stats.avg_loss if stats.wins and stats.losses and stats.avg_loss > 0 else prior_payoff
    b = (n * observed + k * prior_payoff) / (n + k)
    f = p - (1.0 - p) / b if b > 0 else 0.0
    return KellyEstimate(p, b, min(max(f, 0.0), 1.0))


def kelly(strength: float, *, equity: float, estimate: KellyEstimate, fraction: float) -> float:
    """Dollars: equity x fraction x f* x signal strength."""
    return round(max(equity, 0.0) * fraction * estimate.full * min(max(strength, 0.0), 1.0), 2)


# --- volatility targeting ---------------------------------------------------------------------
def realized_volatility(closes: Sequence[float], ppy: float) -> float | None:
    """Annualised std (ddof=1) of simple close-to-close returns; None with fewer than 3 closes."""
    if len(closes) < 3:
        return None
    r = [closes[i] / closes[i - 1] - 1.0 for i in range(1, len(closes))]
    mean = sum(r) / len(r)
    var = sum((x - mean) ** 2 for x in r) / (len(r) - 1)
    return math.sqrt(var * ppy)


def atr_wilder(high: Sequence[float], low: Sequence[float], close: Sequence[float], n: int = 14) -> float | None:
    """The last Wilder ATR(n), TA-Lib's convention: true ranges from bar 1, seeded with the mean of
    the first n of them, then atr = (prev * (n - 1) + tr) / n. None before n + 1 bars."""
    if len(close) < n + 1:
        return None
    tr = [max(high[i] - low[i], abs(high[i] - close[i - 1]), abs(low[i] - close[i - 1]))
          for i in range(1, len(close))]
    atr = sum(tr[:n]) / n
    for x in tr[n:]:
        atr = (atr * (n - 1) + x) / n
    return atr


def atr_volatility(high: Sequence[float], low: Sequence[float], close: Sequence[float], ppy: float,
                   n: int = 14) -> float | None:
    """ATR as a fraction of the last close, annualised: a range-based volatility estimate."""
    atr = atr_wilder(high, low, close, n)
    if atr is None or close[-1] <= 0:
        return None
    return atr / close[-1] * math.sqrt(ppy)


def vol_target(strength: float, *, equity: float, asset_vol: float | None, target_vol: float,
               slots: int) -> float:
    """Dollars such that the position's annualised volatility contribution (weight x asset vol)
    is target_vol / slots: a full book of `slots` positions, perfectly correlated, meets the target.
    Zero when the asset's volatility is unknown."""
    if not asset_vol or asset_vol <= 0 or slots < 1:
        return 0.0
    weight = target_vol / slots / asset_vol
    return round(max(equity, 0.0) * weight * min(max(strength, 0.0), 1.0), 2)


# --- adaptive blend ---------------------------------------------------------------------------
BLENDED = ("fixed", "kelly", "vol-target")


def adaptive_weights(history: Sequence[tuple[dict[str, float], float]]) -> dict[str, float]:
    """Weights of the blended methods from recent closed trades.

    history: (each method's candidate dollars for the trade, the trade's return in percent).
    A method's performance is its size-weighted mean return in percent, what each dollar it
    would have put in made; weights are a softmax of those (one percentage point = a factor e).
    No history: equal weights.
    """
    perf = {}
    for m in BLENDED:
        sized = sum(c.get(m, 0.0) for c, _ in history)
        perf[m] = sum(c.get(m, 0.0) * r for c, r in history) / sized if sized > 0 else 0.0
    top = max(perf.values())
    raw = {m: math.exp(p - top) for m, p in perf.items()}
    total = sum(raw.values())
    return {m: raw[m] / total for m in BLENDED}


def adaptive(candidates: dict[str, float], weights: dict[str, float]) -> float:
    return round(sum(weights[m] * candidates[m] for m in BLENDED), 2)
