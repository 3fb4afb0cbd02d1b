"""Read-only reports over the store: risk metrics (the `risk` command) and plots.

The arithmetic lives in core.metrics; this module only loads series and shapes documents.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

import numpy as np

from tokenomics.core import metrics
from tokenomics.core.bars import canonical_timeframe, minutes_timeframe
from tokenomics.core.errors import UsageProblem
from tokenomics.runtime import Runtime
from tokenomics.store import parse_ts


def clean(value):
    """JSON-safe: NaN and infinities become None; numpy scalars become floats."""
    if isinstance(value, dict):
        return {k: clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return v if math.isfinite(v) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def equity_series(rt: Runtime) -> tuple[list[str], np.ndarray, float]:
    """The account's equity history: timestamps, values, and the annualisation factor of its
    spacing (the median interval between points, in calendar time)."""
    rows = rt.store.all("SELECT ts, equity FROM equity ORDER BY ts")
    ts = [r["ts"] for r in rows]
    values = np.array([r["equity"] for r in rows], dtype=float)
    if len(ts) >= 2:
        gaps = np.diff([parse_ts(t).timestamp() for t in ts])
        ppy = metrics.periods_per_year_from_spacing(float(np.median(gaps)))
    else:
        ppy = metrics.periods_per_year_from_spacing(rt.settings.sim.step_minutes * 60)
    return ts, values, ppy


def bar_source(rt: Runtime, symbol: str, timeframe: str, source: str | None) -> str | None:
    """The one source a symbol's bars are read from: `source` (ccxt: the configured exchange's, or the
    only ccxt exchange stored), else the only source holding its bars at this timeframe; two sources
    are never mixed into one series (exit 2: choose with --source). None: no stored bars."""
    have = [r["source"] for r in rt.store.all(
        "SELECT DISTINCT source FROM bars WHERE symbol = ? AND timeframe = ? ORDER BY source", [symbol, timeframe])]
    if source is None:
        if len(have) > 1:
            raise UsageProblem(f"{symbol} {timeframe} bars come from several sources ({', '.join(have)}): "
                               "choose one with --source")
        return have[0] if have else None
    if source == "ccxt":
        mine = f"ccxt:{rt.settings.bars.exchange}"
        ccxt = [h for h in have if h.startswith("ccxt:")]
        source = mine if mine in have or len(ccxt) != 1 else ccxt[0]
    if source != "sim" and source not in have:
        raise UsageProblem(f"no {source} {timeframe} bars for {symbol} in the store"
                           + (f" (sources: {', '.join(have)})" if have else ""),
                           hint=f"tokenomics fetch-bars --source {source.split(':')[0]} --symbol {symbol}")
    return source


def symbol_closes(rt: Runtime, symbol: str, timeframe: str, lookback: int,
                  source: str | None = None) -> dict[str, float]:
    """ts -> close of a symbol's last `lookback` bars of one source (see bar_source); else (sim) the sim market."""
    src = bar_source(rt, symbol, timeframe, source)
    if src is not None:
        rows = rt.store.all(
            "SELECT ts, close FROM (SELECT ts, close FROM bars WHERE symbol = ? AND timeframe = ? AND source = ? "
            "ORDER BY ts DESC LIMIT ?) ORDER BY ts", [symbol, timeframe, src, lookback])
        if rows:
            return {r["ts"]: r["close"] for r in rows}
    if (src in (None, "sim") and rt.mode == "sim" and timeframe == sim_timeframe(rt)
            and symbol in rt.settings.universe.symbols):
        step = rt.sim_step()
        bars = rt.world.bars(max(step - lookback * 3, 1), step, (symbol,))
        return {b["ts"]: b["close"] for b in bars[-lookback:]}
    return {}


def sim_timeframe(rt: Runtime) -> str:
    return minutes_timeframe(rt.settings.sim.step_minutes)


def bar_returns(rt: Runtime, symbols: list[str], weights: list[float], timeframe: str,
                lookback: int, source: str | None = None,
                override: float | None = None) -> tuple[list[str], np.ndarray, float]:
    """Returns of a fixed-weight portfolio of symbols on their common bar timestamps."""
    closes = {}
    for sym in symbols:
        closes[sym] = symbol_closes(rt, sym, timeframe, lookback + 1, source)
        if len(closes[sym]) < 2:
            raise UsageProblem(f"no {timeframe} bars for {sym} in the store",
                               hint="fetch bars first, or use the sim timeframe "
                                    f"{sim_timeframe(rt)} in sim mode")
    common = sorted(set.intersection(*(set(c) for c in closes.values())))
    prices = np.array([[closes[s][t] for s in symbols] for t in common], dtype=float)
    asset_returns = prices[1:] / prices[:-1] - 1.0 if len(prices) >= 2 else np.empty((0, len(symbols)))
    classes = {rt.asset_class(s) for s in symbols}
    ppy = metrics.periods_per_year(timeframe, "crypto" if classes == {"crypto"} else "equity",
                                   [parse_ts(t).timestamp() for t in common], override)
    return common, metrics.portfolio_returns(asset_returns, np.array(weights)), ppy


def parse_symbols(symbols: str | None, weights: str | None) -> tuple[list[str], list[float]]:
    syms = [s.strip().upper() for s in (symbols or "").split(",") if s.strip()]
    if not syms:
        if weights:
            raise UsageProblem("--weights needs --symbol")
        return [], []
    if not weights:
        return syms, [1.0 / len(syms)] * len(syms)
    try:
        w = [float(x) for x in weights.split(",")]
    except ValueError:
        raise UsageProblem(f"--weights must be numbers separated by commas, got {weights!r}") from None
    if len(w) != len(syms):
        raise UsageProblem(f"--weights has {len(w)} values for {len(syms)} symbols")
    if abs(sum(w) - 1.0) > 1e-6:
        raise UsageProblem(f"--weights must sum to 1 (got {sum(w):g})")
    return syms, w


def risk_report(rt: Runtime, *, symbols: str | None = None, weights: str | None = None,
                timeframe: str | None = None, lookback: int = 1000, window: int | None = None,
                confidence: float | None = None, source: str | None = None,
                periods_per_year: float | None = None) -> tuple[dict, list[str], np.ndarray]:
    """The metrics document, plus the timestamps and returns it was computed from."""
    r_cfg = rt.settings.risk
    confidence = r_cfg.var_confidence if confidence is None else confidence
    if not 0.5 < confidence < 1:
        raise UsageProblem(f"--confidence must be between 0.5 and 1, got {confidence}")
    window = r_cfg.metrics_window if window is None else window
    if window < 2:
        raise UsageProblem("--window must be at least 2")
    syms, w = parse_symbols(symbols, weights)
    if syms:
        try:
            tf = canonical_timeframe(timeframe) if timeframe else sim_timeframe(rt)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
        ts, r, ppy = bar_returns(rt, syms, w, tf, lookback, source, periods_per_year)
        basis = {"basis": "bars", "symbols": syms, "weights": w, "timeframe": tf, "source": source}
        ret_ts = ts[1:]
    else:
        ts, values, ppy = equity_series(rt)
        ppy = periods_per_year or ppy
        r = metrics.simple_returns(values)
        basis = {"basis": "equity", "symbols": [], "weights": [], "timeframe": None}
        ret_ts = ts[1:]
    s = metrics.summary(r, ppy, rf_annual=r_cfg.risk_free_rate, confidence=confidence)
    spell = metrics.max_drawdown_spell(r)
    doc = {
        **basis, "start": ts[0] if ts else None, "end": ts[-1] if ts else None, **s.as_dict(),
        "var_method": "historical (linear percentile) and parametric (normal)",
        "max_drawdown_peak": ts[spell.peak] if spell else None,
        "max_drawdown_trough": ts[spell.trough] if spell else None,
        "max_drawdown_recovered": spell.recovered if spell else None,
        "rolling_window": window,
    }
    roll = metrics.rolling(r, window, ppy, rf_annual=r_cfg.risk_free_rate, confidence=confidence)
    n_roll = len(roll["volatility"])
    doc["rolling"] = [
        {"ts": ret_ts[window - 1 + i], **{k: v[i] for k, v in roll.items()}} for i in range(n_roll)
    ]
    return clean(doc), ts, r


def plot(ts: list[str], r: np.ndarray, out_dir: Path, title: str) -> list[str]:
    """Write equity.png (the compounded curve, starting at 1) and drawdown.png; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if len(ts) < 2:
        raise UsageProblem("not enough history to plot (need at least two points)")
    out_dir.mkdir(parents=True, exist_ok=True)
    x = [datetime.fromisoformat(t) for t in ts]
    paths = []
    for name, y, label in (("equity", metrics.wealth(r), "growth of 1"),
                           ("drawdown", metrics.drawdowns(r) * 100, "drawdown, %")):
        fig, ax = plt.subplots(figsize=(10, 4))
        if name == "drawdown":
            ax.fill_between(x, y, 0, color="tab:red", alpha=0.4)
        ax.plot(x, y, color="tab:red" if name == "drawdown" else "tab:blue", linewidth=1)
        ax.set_title(f"{title}: {name}")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        path = out_dir / f"{name}.png"
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(str(path))
    return paths
