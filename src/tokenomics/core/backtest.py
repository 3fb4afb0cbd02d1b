"""The fast backtest path: long-only signal backtests over OHLC arrays, and the metrics of a run.

Pure numpy. Conventions (those of backtesting.py 0.6, so results can be checked against it):

- A signal seen at bar i is an order filled at bar i + 1's open (`fill="next_open"`), or at bar
  i's close (`fill="close"`), booked when bar i + 1 is processed. An order placed on the last bar
  is never filled.
- Fees are a fraction of each fill's notional, charged on entry and on exit. Slippage moves each
  fill against us: buys at price * (1 + slippage), sells at price * (1 - slippage).
- Sizing: `size=None` puts all the equity in (whole units unless `fractional`); a size in (0, 1)
  is a fraction of equity; a size >= 1 is a fixed number of units. An entry the cash cannot pay
  for (fees included) is cancelled.
- The equity curve is marked at each bar's close; a position still open at the end is valued
  at the last close (not closed).
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass, field

import numpy as np

FULL_EQUITY = 1 - sys.float_info.epsilon  # "all in", as backtesting.py sizes its default order
FILLS = ("next_open", "close")


@dataclass(frozen=True)
class Costs:
    fee: float = 0.0  # fraction of notional per side (0.001 = 10 bps)
    slippage: float = 0.0  # fraction of price per side
    fill: str = "next_open"  # or "close"
    fractional: bool = False  # whole units unless True
    lot: float = 1e-8  # smallest fractional unit

    def __post_init__(self) -> None:
        if self.fill not in FILLS:
            raise ValueError(f"fill must be one of {FILLS}, got {self.fill!r}")
        if not 0 <= self.fee < 0.1 or not 0 <= self.slippage < 0.1:
            raise ValueError("fee and slippage are fractions in [0, 0.1)")


@dataclass(frozen=True)
class Trade:
    entry_bar: int
    exit_bar: int | None  # None: still open at the end
    size: float
    entry_price: float
    exit_price: float | None
    fees: float
    pnl: float | None  # net of both fees; None while open

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Result:
    trades: list[Trade]
    equity: np.ndarray  # marked at each bar's close
    cash: float
    fees: float
    exposure: np.ndarray = field(repr=False)  # True on bars that end with a position
    traded_notional: float = 0.0

    @property
    def final_equity(self) -> float:
        return float(self.equity[-1])

    @property
    def closed(self) -> list[Trade]:
        return [t for t in self.trades if t.exit_bar is not None]


def sma(x: np.ndarray, n: int) -> np.ndarray:
    """Simple moving average, NaN for the first n - 1 values: pandas' rolling mean, bit for bit.

    backtesting.py's strategies (and its examples' `SMA`) average with `Series.rolling(n).mean()`,
    a running sum with Kahan compensation; a per-window mean differs from it in the last bit, and
    where two averages tie mathematically that last bit decides whether `crossover` fires. Using the
    same arithmetic makes every such tie fall the same way as in the reference."""
    if n < 1:
        raise ValueError("n must be >= 1")
    import pandas as pd  # a dependency of exchange_calendars; imported only here (~0.3 s)

    x = np.asarray(x, dtype=float)
    return pd.Series(x).rolling(n).mean().to_numpy(dtype=float, copy=True)


def crossover(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """True at bar i when a crosses above b: a[i-1] < b[i-1] and a[i] > b[i], exactly
    backtesting.py's `lib.crossover` (strict comparisons, no tolerance; NaN never crosses).

    So a crossing that passes through an exact tie (below, equal, above) is no crossing at all."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    out = np.zeros(len(a), dtype=bool)
    with np.errstate(invalid="ignore"):
        out[1:] = (a[:-1] < b[:-1]) & (a[1:] > b[1:])
    return out


def sma_cross_signals(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    """Entries where SMA(fast) crosses above SMA(slow); exits where it crosses below."""
    if fast >= slow:
        raise ValueError(f"fast ({fast}) must be shorter than slow ({slow})")
    f, s = sma(close, fast), sma(close, slow)
    return crossover(f, s), crossover(s, f)


def _units(equity: float, price: float, fee: float, size: float | None, c: Costs) -> float:
    order = FULL_EQUITY if size is None else size
    per_unit = price + (order * price * fee) / order  # as backtesting.py writes it, to the last bit
    if order < 1:
        frac = order
        if c.fractional:
            return math.floor(equity * frac / per_unit / c.lot) * c.lot
        return float(int((equity * 1.0 * frac) // per_unit))
    units = size if c.fractional else float(int(size))
    return units if units * per_unit <= equity else 0.0


def run_signals(open_: np.ndarray, close: np.ndarray, entries: np.ndarray, exits: np.ndarray, *,
                cash: float = 10_000.0, costs: Costs = Costs(), size: float | None = None) -> Result:
    """Backtest long-only entry/exit signals; one position at a time (see the module conventions)."""
    open_ = np.asarray(open_, dtype=float)
    close = np.asarray(close, dtype=float)
    n = len(close)
    if not (len(open_) == len(entries) == len(exits) == n):
        raise ValueError("open, close, entries and exits must have the same length")
    entry_bars = np.flatnonzero(entries[: n - 1])  # a signal on the last bar has no fill bar
    exit_bars = np.flatnonzero(exits[: n - 1])
    on_close = costs.fill == "close"
    fee, slip = costs.fee, costs.slippage
    trades: list[Trade] = []
    changes = [0]  # bars from which `cash_after` holds
    cash_after = [cash]
    units_arr = np.zeros(n)
    entry_arr = np.zeros(n)
    fees = turnover = 0.0
    t = 0
    while True:
        j = np.searchsorted(entry_bars, t)
        if j >= len(entry_bars):
            break
        sig = int(entry_bars[j])
        k = sig + 1  # the bar on which the order is processed
        raw = close[sig] if on_close else open_[k]
        price = raw * (1 + slip)
        units = _units(cash, price, fee, size, costs)
        if units <= 0:
            t = k  # cancelled for lack of cash; look for the next signal
            continue
        entry_fee = units * price * fee
        cash -= entry_fee
        fees += entry_fee
        turnover += units * price
        changes.append(k)
        cash_after.append(cash)
        x = np.searchsorted(exit_bars, k)
        if x >= len(exit_bars):
            units_arr[k:] = units
            entry_arr[k:] = price
            trades.append(Trade(k - on_close, None, units, price, None, entry_fee, None))
            break
        xsig = int(exit_bars[x])
        m = xsig + 1
        exit_price = (close[xsig] if on_close else open_[m]) * (1 - slip)
        exit_fee = units * exit_price * fee
        gross = units * (exit_price - price)
        cash += gross - exit_fee
        fees += exit_fee
        turnover += units * exit_price
        changes.append(m)
        cash_after.append(cash)
        units_arr[k:m] = units
        entry_arr[k:m] = price
        trades.append(Trade(k - on_close, m - on_close, units, price, exit_price, entry_fee + exit_fee,
                            gross - exit_fee - entry_fee))
        t = m  # after the exit fill, a signal on bar m may enter again
    idx = np.searchsorted(np.asarray(changes), np.arange(n), side="right") - 1
    cash_curve = np.asarray(cash_after)[idx]
    equity = cash_curve + (close * units_arr - units_arr * entry_arr)
    return Result(trades, equity, float(cash_after[-1]), fees, units_arr > 0, turnover)


def sma_crossover(open_: np.ndarray, close: np.ndarray, fast: int = 10, slow: int = 30, **kw) -> Result:
    """The reference strategy: long on SMA(fast) crossing above SMA(slow), flat on crossing below."""
    entries, exits = sma_cross_signals(np.asarray(close, dtype=float), fast, slow)
    return run_signals(open_, close, entries, exits, **kw)


# --- the metrics of a run --------------------------------------------------------------------
def returns_of(equity: np.ndarray, start: float | None = None) -> np.ndarray:
    """Per-bar simple returns of an equity curve (with `start` as the value before the first bar)."""
    eq = np.asarray(equity, dtype=float)
    if start is not None:
        eq = np.concatenate([[start], eq])
    return eq[1:] / eq[:-1] - 1 if len(eq) > 1 else np.zeros(0)


def max_drawdown(equity: np.ndarray) -> float:
    """Worst fall from a running peak, as a negative fraction (0 when it never fell)."""
    eq = np.asarray(equity, dtype=float)
    if len(eq) == 0:
        return 0.0
    peak = np.maximum.accumulate(eq)
    return float(np.min(eq / peak - 1))


def drawdown_curve(equity: np.ndarray) -> np.ndarray:
    eq = np.asarray(equity, dtype=float)
    return eq / np.maximum.accumulate(eq) - 1 if len(eq) else eq


def run_metrics(equity: np.ndarray, *, start_equity: float, periods_per_year: float, pnls: list[float],
                exposure: float, traded_notional: float, fees: float) -> dict:
    """Return, CAGR, volatility, Sharpe, Sortino (rf = 0, the quantstats/empyrical definitions),
    max drawdown (from the starting value), win rate, profit factor, exposure, turnover, fees."""
    eq = np.asarray(equity, dtype=float)
    r = returns_of(eq, start_equity)
    final = float(eq[-1]) if len(eq) else start_equity
    years = len(r) / periods_per_year if periods_per_year > 0 else 0.0
    total = final / start_equity - 1
    sd = float(np.std(r, ddof=1)) if len(r) > 1 else 0.0
    mean = float(np.mean(r)) if len(r) else 0.0
    downside = float(np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))) if len(r) else 0.0
    ann = math.sqrt(periods_per_year)
    wins = [p for p in pnls if p > 0]
    losses = [p for p in pnls if p < 0]
    return {
        "start_equity": round(start_equity, 2),
        "final_equity": round(final, 2),
        "total_return": total,
        "cagr": (final / start_equity) ** (1 / years) - 1 if years > 0 and final > 0 else None,
        "volatility": sd * ann,
        "sharpe": mean / sd * ann if sd > 0 else None,
        "sortino": mean * periods_per_year / (downside * ann) if downside > 0 else None,
        "max_drawdown": max_drawdown(np.concatenate([[start_equity], eq])),
        "trades": len(pnls),
        "win_rate": len(wins) / len(pnls) if pnls else None,
        "profit_factor": sum(wins) / -sum(losses) if losses else None,
        "exposure": exposure,
        "turnover": traded_notional / float(np.mean(np.concatenate([[start_equity], eq]))),
        "fees": round(fees, 2),
    }


def result_metrics(res: Result, *, start_equity: float, periods_per_year: float) -> dict:
    return run_metrics(res.equity, start_equity=start_equity, periods_per_year=periods_per_year,
                       pnls=[t.pnl for t in res.closed], exposure=float(np.mean(res.exposure)) if len(res.exposure)
                       else 0.0, traded_notional=res.traded_notional, fees=res.fees)
