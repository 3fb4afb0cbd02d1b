"""Risk and performance metrics over a series of simple periodic returns. Pure numpy.

Definitions follow empyrical-reloaded 0.7 / quantstats 0.0.86 (see the README's risk section):

- volatility = std(r, ddof=1) * sqrt(ppy), where ppy is the number of periods per year;
- Sharpe = mean(r - rf) / std(r - rf, ddof=1) * sqrt(ppy), with rf the per-period risk-free rate
  converted from an annual rate as (1 + rf_annual) ** (1 / ppy) - 1;
- Sortino = mean(r - rf) * ppy / (sqrt(mean(min(r - rf, 0) ** 2)) * sqrt(ppy)): the downside
  deviation is taken over ALL observations (gains count as zeros);
- max drawdown from the compounded curve with a starting value of 1 before the first return,
  so a loss on the first period counts; its duration in periods from the peak to the recovery
  (or to the end of the series when it has not recovered);
- Calmar = CAGR / |max drawdown|, CAGR = final value ** (ppy / n) - 1;
- historical VaR = the alpha-percentile of r with linear interpolation (alpha = 1 - confidence);
  historical CVaR = the mean of the int((n - 1) * alpha) + 1 lowest returns (empyrical);
- parametric VaR = mu + sigma * z_alpha and parametric CVaR (Gaussian expected shortfall)
  = mu - sigma * pdf(z_alpha) / alpha, with sigma = std(r, ddof=1) (quantstats).

Every value is a loss as a negative return (VaR -0.03 means a 3 % loss). Undefined values
(too few observations, zero dispersion) are NaN.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

import numpy as np

MINUTES_PER_YEAR_24_7 = 365 * 24 * 60
EQUITY_MINUTES_PER_YEAR = 252 * 6.5 * 60
TRADING_DAYS = 252

_UNITS = {"m": 1, "min": 1, "h": 60, "d": 24 * 60, "w": 7 * 24 * 60}


def timeframe_minutes(timeframe: str) -> int:
    """'1m' -> 1, '60m' -> 60, '4h' -> 240, '1d' -> 1440, '1w' -> 10080."""
    tf = timeframe.strip().lower()
    for unit in sorted(_UNITS, key=len, reverse=True):
        if tf.endswith(unit) and tf[: -len(unit)].isdigit():
            return int(tf[: -len(unit)]) * _UNITS[unit]
    raise ValueError(f"unknown timeframe {timeframe!r} (use e.g. 1m, 60m, 1h, 1d, 1w)")


def periods_per_year(timeframe: str, asset_class: str = "equity", times: list[float] | None = None,
                     override: float | None = None) -> float:
    """Annualisation factor of bars of one timeframe: trading days a year times bars a day.

    The asset class's calendar gives both: equities 252 sessions of 6.5 hours (daily bars: 252,
    weekly: 52), crypto 365 days around the clock (daily: 365, hourly: 8760). Given the bars' open
    times (epoch seconds), what the series shows wins where it departs from that calendar: the
    median number of bars per UTC date when 3 % off (the sim's equities have 6 hourly bars a
    session, Alpaca's 7), and, over at least 90 days, the bars per year when 1 % off (hourly FX:
    about 260 days of 24 bars, not a US equity's 252 of 6.5). `override` replaces it all."""
    if override:
        return float(override)
    minutes = timeframe_minutes(timeframe)
    if minutes >= 7 * 24 * 60:
        return 52.0 * 7 * 24 * 60 / minutes
    days = 365.0 if asset_class == "crypto" else float(TRADING_DAYS)
    per_day = 24 * 60 / minutes if asset_class == "crypto" or minutes >= 24 * 60 else EQUITY_MINUTES_PER_YEAR / (
        TRADING_DAYS * minutes)
    if times is not None and len(times) >= 3:
        t = np.asarray(times, dtype=float)
        _, counts = np.unique(np.floor(t / 86400), return_counts=True)
        seen = float(np.median(counts))
        if minutes < 24 * 60 and abs(seen / per_day - 1) > 0.03:
            per_day = seen
        span_days = (t.max() - t.min()) / 86400 + minutes / 1440
        if span_days >= 90:
            seen_total = len(t) * 365.25 / span_days
            if abs(seen_total / (days * per_day) - 1) > 0.01:
                return seen_total
    return days * per_day


def periods_per_year_from_spacing(seconds: float) -> float:
    """Annualisation factor of a calendar-time series (e.g. an equity curve sampled every tick)."""
    if seconds <= 0:
        raise ValueError("spacing must be positive")
    return MINUTES_PER_YEAR_24_7 * 60 / seconds


def rf_per_period(rf_annual: float, ppy: float) -> float:
    """An annual risk-free rate as a per-period rate, compounded: (1 + rf) ** (1 / ppy) - 1."""
    return (1.0 + rf_annual) ** (1.0 / ppy) - 1.0


def simple_returns(values: np.ndarray) -> np.ndarray:
    """Period returns of a value series (equity or prices): v[t] / v[t-1] - 1."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return np.empty(0)
    return v[1:] / v[:-1] - 1.0


def portfolio_returns(asset_returns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Returns of a portfolio rebalanced to fixed weights every period: r_p = R @ w."""
    r = np.asarray(asset_returns, dtype=float)
    w = np.asarray(weights, dtype=float)
    if r.ndim != 2 or r.shape[1] != len(w):
        raise ValueError(f"need a (periods, {len(w)}) matrix of returns, got shape {r.shape}")
    return r @ w


def _clean(r: np.ndarray) -> np.ndarray:
    r = np.asarray(r, dtype=float)
    return r[~np.isnan(r)]


def volatility(r: np.ndarray, ppy: float) -> float:
    r = _clean(r)
    if len(r) < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(ppy))


def sharpe(r: np.ndarray, ppy: float, rf: float = 0.0) -> float:
    """rf is per period (see rf_per_period)."""
    x = _clean(r) - rf
    if len(x) < 2:
        return math.nan
    sd = np.std(x, ddof=1)
    if sd == 0:
        return math.nan
    return float(np.mean(x) / sd * math.sqrt(ppy))


def downside_deviation(r: np.ndarray, ppy: float, mar: float = 0.0) -> float:
    """Annualised root mean square of min(r - mar, 0) over ALL observations."""
    x = _clean(r) - mar
    if len(x) < 1:
        return math.nan
    return float(math.sqrt(np.mean(np.minimum(x, 0.0) ** 2)) * math.sqrt(ppy))


def sortino(r: np.ndarray, ppy: float, mar: float = 0.0) -> float:
    """mar is the per-period minimum acceptable return (the risk-free rate by default in `summary`)."""
    x = _clean(r)
    if len(x) < 1:
        return math.nan
    dd = downside_deviation(x, ppy, mar)
    if dd == 0:
        return math.inf if np.mean(x - mar) > 0 else math.nan
    return float(np.mean(x - mar) * ppy / dd)


def wealth(r: np.ndarray, start: float = 1.0) -> np.ndarray:
    """The compounded curve with the starting value first: len(r) + 1 points."""
    return start * np.concatenate([[1.0], np.cumprod(1.0 + _clean(r))])


def drawdowns(r: np.ndarray) -> np.ndarray:
    """Drawdown at each point of the compounded curve (starting value included): <= 0."""
    w = wealth(r)
    return w / np.maximum.accumulate(w) - 1.0


def max_drawdown(r: np.ndarray) -> float:
    r = _clean(r)
    if len(r) < 1:
        return math.nan
    return float(drawdowns(r).min())


@dataclass(frozen=True)
class DrawdownSpell:
    depth: float  # the worst drawdown of the spell, <= 0
    peak: int  # index into the curve (0 = the starting value) of the peak before the spell
    trough: int
    end: int  # index where the curve regained the peak, or the last index if it has not
    recovered: bool

    @property
    def duration(self) -> int:
        """Periods from the peak to the recovery (or to the end of the data)."""
        return self.end - self.peak


def longest_drawdown(r: np.ndarray) -> DrawdownSpell | None:
    """The longest spell under water on the compounded curve; None when it never fell."""
    dd = drawdowns(r)
    best: DrawdownSpell | None = None
    i, n = 0, len(dd)
    while i < n:
        if dd[i] < 0:
            peak = i - 1
            j = i
            while j < n and dd[j] < 0:
                j += 1
            recovered = j < n
            end = j if recovered else n - 1
            trough = peak + 1 + int(np.argmin(dd[peak + 1 : j]))
            spell = DrawdownSpell(float(dd[trough]), peak, trough, end, recovered)
            if best is None or spell.duration > best.duration:
                best = spell
            i = j
        else:
            i += 1
    return best


def max_drawdown_spell(r: np.ndarray) -> DrawdownSpell | None:
    """The spell holding the maximum drawdown, with its duration; None when it never fell."""
    dd = drawdowns(r)
    if len(dd) == 0 or dd.min() >= 0:
        return None
    trough = int(np.argmin(dd))
    peak = int(np.argmax(wealth(r)[: trough + 1]))
    after = np.nonzero(dd[trough:] >= 0)[0]
    recovered = len(after) > 0
    end = trough + int(after[0]) if recovered else len(dd) - 1
    return DrawdownSpell(float(dd[trough]), peak, trough, end, recovered)


def cagr(r: np.ndarray, ppy: float) -> float:
    r = _clean(r)
    if len(r) < 1:
        return math.nan
    final = float(np.prod(1.0 + r))
    return final ** (ppy / len(r)) - 1.0


def calmar(r: np.ndarray, ppy: float) -> float:
    mdd = max_drawdown(r)
    if not mdd < 0:
        return math.nan
    out = cagr(r, ppy) / abs(mdd)
    return math.nan if math.isinf(out) else out


def _alpha(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    return 1.0 - confidence


def var_historical(r: np.ndarray, confidence: float = 0.95) -> float:
    r = _clean(r)
    if len(r) < 1:
        return math.nan
    return float(np.percentile(r, 100.0 * _alpha(confidence)))


def cvar_historical(r: np.ndarray, confidence: float = 0.95) -> float:
    """Mean of the returns at or below the alpha-quantile: the int((n-1)*alpha)+1 lowest."""
    r = _clean(r)
    if len(r) < 1:
        return math.nan
    k = int((len(r) - 1) * _alpha(confidence))
    return float(np.mean(np.partition(r, k)[: k + 1]))


def var_parametric(r: np.ndarray, confidence: float = 0.95) -> float:
    r = _clean(r)
    if len(r) < 2:
        return math.nan
    z = NormalDist().inv_cdf(_alpha(confidence))
    return float(np.mean(r) + np.std(r, ddof=1) * z)


def cvar_parametric(r: np.ndarray, confidence: float = 0.95) -> float:
    """Gaussian expected shortfall: mu - sigma * pdf(z_alpha) / alpha."""
    r = _clean(r)
    if len(r) < 2:
        return math.nan
    a = _alpha(confidence)
    z = NormalDist().inv_cdf(a)
    return float(np.mean(r) - np.std(r, ddof=1) * NormalDist().pdf(z) / a)


@dataclass(frozen=True)
class Summary:
    observations: int
    periods_per_year: float
    rf_annual: float
    confidence: float
    total_return: float
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    calmar: float
    max_drawdown: float
    max_drawdown_duration: int  # periods from the peak to recovery (or the end) of the deepest spell
    longest_drawdown_duration: int  # periods of the longest spell under water
    var_historical: float
    cvar_historical: float
    var_parametric: float
    cvar_parametric: float

    def as_dict(self) -> dict:
        return asdict(self)


def summary(r: np.ndarray, ppy: float, *, rf_annual: float = 0.0, confidence: float = 0.95) -> Summary:
    r = _clean(r)
    rf = rf_per_period(rf_annual, ppy)
    spell = max_drawdown_spell(r)
    longest = longest_drawdown(r)
    return Summary(
        observations=len(r), periods_per_year=ppy, rf_annual=rf_annual, confidence=confidence,
        total_return=float(np.prod(1.0 + r) - 1.0) if len(r) else math.nan,
        cagr=cagr(r, ppy), volatility=volatility(r, ppy), sharpe=sharpe(r, ppy, rf),
        sortino=sortino(r, ppy, rf), calmar=calmar(r, ppy), max_drawdown=max_drawdown(r),
        max_drawdown_duration=spell.duration if spell else 0,
        longest_drawdown_duration=longest.duration if longest else 0,
        var_historical=var_historical(r, confidence), cvar_historical=cvar_historical(r, confidence),
        var_parametric=var_parametric(r, confidence), cvar_parametric=cvar_parametric(r, confidence),
    )


def rolling(r: np.ndarray, window: int, ppy: float, *, rf_annual: float = 0.0,
            confidence: float = 0.95) -> dict[str, np.ndarray]:
    """Each metric over every window of `window` consecutive returns (len(r) - window + 1 values;
    value i covers r[i : i + window], so it is known at the end of return i + window - 1)."""
    r = _clean(r)
    if window < 2:
        raise ValueError("the rolling window needs at least 2 returns")
    n = len(r) - window + 1
    if n < 1:
        return {k: np.empty(0) for k in ("volatility", "sharpe", "sortino", "max_drawdown",
                                        "var_historical", "cvar_historical")}
    windows = np.lib.stride_tricks.sliding_window_view(r, window)
    rf = rf_per_period(rf_annual, ppy)
    return {
        "volatility": np.array([volatility(w, ppy) for w in windows]),
        "sharpe": np.array([sharpe(w, ppy, rf) for w in windows]),
        "sortino": np.array([sortino(w, ppy, rf) for w in windows]),
        "max_drawdown": np.array([max_drawdown(w) for w in windows]),
        "var_historical": np.array([var_historical(w, confidence) for w in windows]),
        "cvar_historical": np.array([cvar_historical(w, confidence) for w in windows]),
    }
