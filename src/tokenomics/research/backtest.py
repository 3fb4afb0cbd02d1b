"""Backtests over the store's history, through the very code that trades.

The sentiment strategy replays history tick by tick with `run`'s own tick function (fetch-news ->
score -> signal -> size -> trade -> check-exits), the model strategy with `run --strategy model`'s
steps (model signals on the bars closed by now -> size -> trade -> check-exits), on a Runtime whose store is a fresh temporary
SQLite file and whose sim clock starts at the backtest's first step. What differs from live is
only where the outside world comes from:

- prices: the bars of the main store; a decision at time t sees the close of the last bar that
  closed at or before t, and a market order fills at the open of the next bar (`backtest.fill:
  next_open`) or at that last close (`close`), with the paper broker's fees and slippage;
- news: the sim world's articles of each step plus any article of the main store, each
  delivered once its `created_at` has passed;
- scores: cached by (scorer, article id) in the main store's cache table, so a second backtest
  scores nothing again.

The SMA strategy runs the fast path of core.backtest over one symbol's stored bars.
"""

from __future__ import annotations

import bisect
import json
import math
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tokenomics.core import backtest as bt
from tokenomics.core.bars import canonical_timeframe, minutes_timeframe, timeframe_seconds
from tokenomics.core.errors import UsageProblem
from tokenomics.core.models import Article, Score
from tokenomics.core.money import lot_size
from tokenomics.logs import progress
from tokenomics.research import bars as bars_mod
from tokenomics.runtime import SIM_CLOCK, Options, Runtime
from tokenomics.store import Store, iso, parse_ts, utcnow

STRATEGIES = ("sma", "sentiment", "model")
SMA_JOBS_PER_WORKER = 100  # an SMA sweep starts one more worker process per this many combinations
CACHE_PREFIX = "score:"


# --- history in the main store ---------------------------------------------------------------
def timeframe(rt: Runtime) -> str:
    return minutes_timeframe(rt.settings.sim.step_minutes)


def epoch_seconds(texts: Any) -> np.ndarray:
    """The store's ISO timestamps (UTC, "+00:00") as epoch seconds, parsed by numpy in one go."""
    texts = list(texts)
    if texts and all(t.endswith("+00:00") for t in (texts[0], texts[-1])):
        try:
            stamps = np.array([t[:-6] for t in texts], dtype="datetime64[s]")
            return stamps.astype(np.int64).astype(float)
        except ValueError:
            pass
    return np.array([datetime.fromisoformat(t).timestamp() for t in texts], dtype=float)


def iso_seconds(epochs: Any) -> list[str]:
    """Epoch seconds as the store's ISO text, in one go."""
    stamps = np.asarray(epochs, dtype=float).astype(np.int64).astype("datetime64[s]")
    return [t + "+00:00" for t in np.datetime_as_string(stamps, unit="s").tolist()]


class Bars:
    """One source's bars as they become known: a bar keyed by its open time t0 closes at t0 + tf."""

    def __init__(self, store: Store, source: str, tf: str, step: timedelta, symbols: list[str] | None = None,
                 since: datetime | None = None, until: datetime | None = None):
        self.step = step
        self.data: dict[str, tuple[list[float], list[float], list[float]]] = {}
        sql, args = "SELECT symbol, ts, open, close FROM bars WHERE source = ? AND timeframe = ?", [source, tf]
        if symbols:
            sql += f" AND symbol IN ({', '.join('?' * len(symbols))})"
            args += list(symbols)
        if since is not None:
            sql += " AND ts >= ?"
            args.append(iso(since))
        if until is not None:
            sql += " AND ts <= ?"
            args.append(iso(until))
        rows = store.execute(sql + " ORDER BY symbol, ts", args).fetchall()
        if rows:
            syms, texts, opens, closes = zip(*rows)
            epochs = epoch_seconds(texts)
            cuts = [0] + [i for i in range(1, len(syms)) if syms[i] != syms[i - 1]] + [len(syms)]
            for a, b in zip(cuts, cuts[1:]):
                self.data[syms[a]] = (epochs[a:b].tolist(), list(opens[a:b]), list(closes[a:b]))

    def last_close(self, symbol: str, t: datetime) -> float | None:
        """Close of the last bar closed at or before t."""
        ts, _, closes = self.data.get(symbol, ([], [], []))
        i = bisect.bisect_right(ts, t.timestamp() - self.step.total_seconds()) - 1
        return closes[i] if i >= 0 else None

    def next_open(self, symbol: str, t: datetime) -> float | None:
        """Open of the first bar opening at or after t (where an order sent at t fills)."""
        ts, opens, _ = self.data.get(symbol, ([], [], []))
        i = bisect.bisect_left(ts, t.timestamp())
        return opens[i] if i < len(ts) else None

    def arrays(self, symbol: str, t0: datetime, t1: datetime) -> tuple[list[float], np.ndarray, np.ndarray]:
        ts, opens, closes = self.data.get(symbol, ([], [], []))
        i, j = bisect.bisect_left(ts, t0.timestamp()), bisect.bisect_right(ts, t1.timestamp())
        return ts[i:j], np.asarray(opens[i:j]), np.asarray(closes[i:j])


_BARS_CACHE: dict[tuple, Bars] = {}  # a sweep worker's bars, loaded once for all its combinations


def cached_bars(store: Store, source: str, tf: str, step: timedelta, symbols: list[str],
                since: datetime | None = None, until: datetime | None = None) -> Bars:
    """Bars for a sweep job: the worker process reads and parses a window's bars once and reuses them
    for every combination it runs (the key holds the store's newest bar rowid: new bars, new read)."""
    newest = store.scalar("SELECT MAX(rowid) FROM bars")
    key = (str(store.path), source, tf, tuple(symbols), since, until, newest)
    if key not in _BARS_CACHE:
        _BARS_CACHE.clear()
        _BARS_CACHE[key] = Bars(store, source, tf, step, symbols, since, until)
    return _BARS_CACHE[key]


# --- the score cache -------------------------------------------------------------------------
class CachedScorer:
    """Wraps the configured scorer: scores found in the main store's cache are never asked again."""

    def __init__(self, inner: Any, store: Store):
        self.inner, self.store = inner, store
        self.name = inner.name
        self.scored = 0  # articles the inner scorer was asked about
        self.seen: set[str] = set()  # articles delivered to the replay's score step
        self.tokens = 0  # the inner scorer's LLM tokens (its llm_calls rows in the main store)
        self.cost_usd = 0.0

    @property
    def articles(self) -> int:
        return len(self.seen)

    def key(self, article_id: str) -> str:
        return f"{CACHE_PREFIX}{self.name}:{article_id}"

    def score(self, articles: list[Article]) -> list[Score]:
        out: list[Score] = []
        missing: list[Article] = []
        for a in articles:
            row = self.store.one("SELECT value FROM cache WHERE key = ?", [self.key(a.id)])
            if row is None:
                missing.append(a)
                continue
            out += [Score(a.id, s["symbol"], s["sentiment"], s["conviction"], s["reason"], self.name)
                    for s in json.loads(row["value"])]
        self.seen.update(a.id for a in articles)
        if missing:
            mark = self.store.scalar("SELECT COALESCE(MAX(id), 0) FROM llm_calls")
            fresh = self.inner.score(missing)
            self.scored += len(missing)
            spent = self.store.one("SELECT COALESCE(SUM(total_tokens), 0) AS t, COALESCE(SUM(cost_usd), 0) AS c "
                                   "FROM llm_calls WHERE id > ?", [mark])
            self.tokens += int(spent["t"])
            self.cost_usd += float(spent["c"])
            by_id: dict[str, list[dict]] = {a.id: [] for a in missing}
            for s in fresh:
                by_id[s.article_id].append({"symbol": s.symbol, "sentiment": s.sentiment,
                                            "conviction": int(s.conviction), "reason": s.reason})
            with self.store.tx():
                for aid, scores in by_id.items():
                    self.store.execute("INSERT OR REPLACE INTO cache(key, value, updated_at) VALUES (?, ?, ?)",
                                       [self.key(aid), json.dumps(scores), iso(utcnow())])
            out += fresh
        return out


# --- news as it was known ----------------------------------------------------------------------
class HistoryNews:
    """The sim world's articles of the steps since the last fetch (sim history only), plus the main
    store's articles published since then; nothing created after now."""

    name = "history"
    CURSOR = "news:history:step"

    def __init__(self, rt: "ReplayRuntime"):
        self.rt = rt

    def fetch(self, store: Store) -> list[Article]:
        from tokenomics.trading.news import article_from_row

        step = self.rt.sim_step()
        last = store.get_cursor(self.CURSOR)
        first = int(last) + 1 if last is not None else step
        since = self.rt.time_of(first - 1)
        now = self.rt.now()
        seen: dict[str, Article] = {}
        if self.rt.clock is None:
            for k in range(first, step + 1):
                for a in self.rt.world.articles(k):
                    seen[a.id] = a
        for r in self.rt.main.store.all("SELECT * FROM articles WHERE created_at > ? AND created_at <= ? "
                                        "AND (status IS NULL OR status != 'duplicate') ORDER BY created_at, id",
                                        [iso(since), iso(now)]):
            seen.setdefault(r["id"], article_from_row(r))
        return [a for a in seen.values() if a.created_at <= now]

    def commit(self, store: Store) -> None:
        store.set_cursor(self.CURSOR, str(self.rt.sim_step()))


# --- the replay runtime ------------------------------------------------------------------------
class ReplayRuntime(Runtime):
    """A Runtime over a fresh store, with history's prices, news and cached scores.

    Its clock is the sim clock's steps (sim history) or, over stored bars, `clock`: the window's
    start, then the close of every bar of the replayed symbols (equities only trade in their
    sessions, so their bars step session by session; crypto's around the clock)."""

    def __init__(self, main: Runtime, settings: Any, db: Path, bars: Bars, scorer: CachedScorer,
                 clock: list[datetime] | None = None, calendar: Any = None):
        super().__init__(Options(db=db, mode="sim"))
        self.main, self._bars, self.clock = main, bars, clock
        self.__dict__["settings"] = settings
        self.__dict__["calendar"] = calendar if calendar is not None else main.calendar
        if clock is None:
            self.__dict__["world"] = main.world
        self.__dict__["scorer"] = scorer

    @cached_property
    def store(self) -> Store:
        st = Runtime.store.func(self)
        st.execute("PRAGMA synchronous = OFF")  # a throwaway file: no need to survive a power cut
        return st

    def time_of(self, step: int) -> datetime:
        return self.world.time_of(step) if self.clock is None else self.clock[step]

    def now(self) -> datetime:
        return super().now() if self.clock is None else self.clock[self.sim_step()]

    def advance(self, steps: int = 1) -> datetime:
        if self.clock is None:
            return super().advance(steps)
        step = self.sim_step() + steps
        self._set_clock(step)
        return self.clock[step]

    def _set_clock(self, step: int) -> None:
        with self.store.tx():
            self.store.execute("INSERT OR REPLACE INTO clock(name, step, now) VALUES (?, ?, ?)",
                               [SIM_CLOCK, step, iso(self.time_of(step))])

    def price(self, symbol: str) -> float:
        p = self._bars.last_close(symbol, self.now())
        if p is not None:
            return p
        if self.clock is None:
            return self.world.price(symbol, 0)
        p = self._bars.next_open(symbol, self.now())  # not yet traded in the window: its first price
        return p if p is not None else 0.0

    def tradable(self, symbol: str, at: datetime | None = None) -> bool:
        """Over stored bars: a symbol trades at t once it has a closed bar and a next bar for the
        order to fill in; intraday equity bars also need an open session (daily bars' closes fall
        outside sessions: their orders fill at the next session's open)."""
        if self.clock is None:
            return super().tradable(symbol, at)
        at = at or self.now()
        if self._bars.last_close(symbol, at) is None or self._bars.next_open(symbol, at) is None:
            return False
        if not self.settings.trading.market_hours_only or self._bars.step >= timedelta(days=1):
            return True
        return self.calendar.is_open(self.asset_class(symbol), at)

    def fill_price(self, symbol: str) -> float:
        if self.settings.backtest.fill == "next_open":
            p = self._bars.next_open(symbol, self.now())
            if p is not None:
                return p
        return self.price(symbol)

    @cached_property
    def broker(self):
        from tokenomics.adapters.brokers.paper import PaperBroker

        s = self.settings
        return PaperBroker(self.store, self.fill_price, self.now, capital=s.capital,
                           slippage_bps=s.broker.slippage_bps, fee_bps=s.broker.fee_bps)

    def news_provider(self):
        return HistoryNews(self)

    def start_at(self, step: int) -> None:
        self._set_clock(step)


# --- the window: sim steps, or stored bars -------------------------------------------------------
@dataclass
class Window:
    first: int  # the step the backtest starts at (its equity's starting point)
    last: int
    source: str = "sim"  # or the stored bars': file, ccxt:<exchange>, alpaca
    timeframe: str | None = None
    symbols: tuple[str, ...] = ()
    start: str | None = None  # stored bars: the window's first moment (ISO) ...
    end: str | None = None  # ... and its last (the last bar's close)
    note: str | None = None  # what the window could not give (said in the output)

    @property
    def stored(self) -> bool:
        return self.source != "sim"

    def as_job(self) -> tuple:
        return (self.first, self.last, self.source, self.timeframe, tuple(self.symbols), self.start, self.end,
                self.note)


def _when(text: str, opt: str) -> datetime:
    try:
        dt = parse_ts(text)
    except ValueError:
        raise UsageProblem(f"{opt}: not an ISO date or time: {text!r}") from None
    return dt if dt.tzinfo is not None else dt.replace(tzinfo=timezone.utc)


def resolve_source(rt: Runtime, source: str | None, tf: str | None,
                   symbols: list[str] | None) -> tuple[str, str | None, tuple[str, ...]]:
    """The bars a backtest replays: (source as stored, timeframe, symbols). Without --source: the
    configured `bars.source` when it is not sim, else the one non-sim source the store holds, else
    the sim world (also when the store has nothing else)."""
    from tokenomics.research.bars import SOURCES

    st = rt.store
    symbols = [x.strip().upper() for x in symbols or [] if x.strip()]
    kinds = [r["source"] for r in st.all("SELECT DISTINCT source FROM bars WHERE source != 'sim'")]
    if source is None:
        cfg = rt.settings.bars.source
        if cfg != "sim":
            source = cfg
        elif len(kinds) == 1:
            source = kinds[0]
        else:
            source = "sim"
    if source == "sim":
        sim_tf = timeframe(rt)
        if tf and timeframe_seconds(tf) != timeframe_seconds(sim_tf):
            raise UsageProblem(f"--timeframe {tf}: sim bars have the sim step ({sim_tf}) as timeframe")
        return "sim", sim_tf, tuple(symbols)
    if source == "ccxt":
        exchange = f"ccxt:{rt.settings.bars.exchange}"
        ccxt_kinds = [k for k in kinds if k.startswith("ccxt:")]
        source = exchange if exchange in kinds or len(ccxt_kinds) != 1 else ccxt_kinds[0]
    elif source not in SOURCES and not source.startswith("ccxt:"):
        raise UsageProblem(f"--source must be one of {', '.join(SOURCES)} (got {source!r})")
    hint = f"tokenomics fetch-bars --source {source.split(':')[0]}" + (f" --timeframe {tf}" if tf else "")
    tfs = [r["timeframe"] for r in st.all("SELECT DISTINCT timeframe FROM bars WHERE source = ?", [source])]
    if not tfs:
        raise UsageProblem(f"the store has no {source} bars", hint=hint)
    if tf is None:
        cfg_tf = rt.settings.bars.timeframe
        if len(tfs) == 1:
            tf = tfs[0]
        elif cfg_tf in tfs:
            tf = cfg_tf
        else:
            raise UsageProblem(f"{source} bars are stored in several timeframes ({', '.join(sorted(tfs))}): "
                               "give --timeframe")
    try:
        tf = canonical_timeframe(tf)  # 60m and 1h: one timeframe
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    stored = [r["symbol"] for r in st.all("SELECT DISTINCT symbol FROM bars WHERE source = ? AND timeframe = ? "
                                          "ORDER BY symbol", [source, tf])]
    if not stored:
        raise UsageProblem(f"the store has no {source} {tf} bars (it has {', '.join(sorted(tfs))})", hint=hint)
    missing = [x for x in symbols if x not in stored]
    if missing:
        raise UsageProblem(f"no {source} {tf} bars of {', '.join(missing)} in the store "
                           f"(stored: {', '.join(stored[:20])})", hint=hint)
    return source, tf, tuple(symbols or stored)


def stored_clock(store: Store, source: str, tf: str, symbols: tuple[str, ...], start: datetime | None,
                 end: datetime | None, as_epochs: bool = False) -> list[datetime] | np.ndarray:
    """The replay's moments over stored bars: the first bar's open, then every bar's close, of the
    bars opening at or after `start` and closing by `end`."""
    step = timeframe_seconds(tf)
    sql = (f"SELECT DISTINCT ts FROM bars WHERE source = ? AND timeframe = ? "
           f"AND symbol IN ({', '.join('?' * len(symbols))})")
    args: list[Any] = [source, tf, *symbols]
    if start is not None:
        sql += " AND ts >= ?"
        args.append(iso(start))
    if end is not None:
        sql += " AND ts <= ?"
        args.append(iso(end - timedelta(seconds=step)))
    opens = epoch_seconds(r[0] for r in store.execute(sql, args).fetchall())
    clock = np.unique(np.concatenate([opens[:1], opens + step])) if len(opens) else opens
    if as_epochs:
        return clock
    return [datetime.fromtimestamp(t, timezone.utc) for t in clock.tolist()]


def window(rt: Runtime, start: str | None, end: str | None, steps: int | None, *, source: str | None = None,
           tf: str | None = None, symbols: list[str] | None = None) -> Window:
    """The moments to replay: sim steps [start, end] (or the last `steps` ending at end/now), or,
    over stored bars, their bars from start (default: the first stored) to end (default: the last)."""
    source, tf, syms = resolve_source(rt, source, tf, symbols)
    if source != "sim":
        t0 = _when(start, "--start") if start else None
        t1 = _when(end, "--end") if end else None
        clock = stored_clock(rt.store, source, tf, syms, t0, t1, as_epochs=True)
        note = None
        if steps and not start:
            if len(clock) - 1 < steps:
                note = f"--steps {steps}: the store holds {max(len(clock) - 1, 0)} {tf} bars in the window; ran those"
            clock = clock[-(steps + 1):]
        if len(clock) < 2:
            raise UsageProblem(f"empty backtest window: no {source} {tf} bars of {', '.join(syms)} between "
                               f"{start or 'the first'} and {end or 'the last'}",
                               hint="widen --start/--end (the window defaults to the stored range)")
        first, last = iso_seconds([clock[0], clock[-1]])
        return Window(0, len(clock) - 1, source, tf, syms, first, last, note)

    now_step = rt.sim_step()
    sim = rt.settings.sim
    delta = timedelta(minutes=sim.step_minutes)

    def step_of(text: str, opt: str) -> int:
        dt = _when(text, opt)
        return max(int((dt - sim.start) / delta), 0)

    last = step_of(end, "--end") if end else now_step
    if last > now_step:
        raise UsageProblem(f"--end is after the sim clock's now ({iso(rt.now())}): history ends there",
                           hint="to backtest stored bars, give --source file|ccxt|alpaca")
    wanted = steps or rt.settings.backtest.steps
    first = step_of(start, "--start") if start else last - wanted
    note = None
    if first < 0:
        note = f"--steps {wanted}: the sim history holds {last} steps before the window's end; ran {last}"
    first = max(first, 0)
    if first >= last:
        raise UsageProblem(f"empty backtest window: steps {first}..{last}",
                           hint="give --start before --end, or more --steps")
    return Window(first, last, "sim", tf, syms, note=note)


def periods_per_year(rt: Runtime, asset_class: str = "crypto", tf: str | None = None,
                     times: list[float] | None = None) -> float:
    """Annualisation of a backtest's per-bar returns: the one function `risk` uses too (the asset
    class's calendar, or what the bar times show), `backtest.periods_per_year` overrides."""
    from tokenomics.core.metrics import periods_per_year as ppy

    return ppy(tf or timeframe(rt), asset_class, times, rt.settings.backtest.periods_per_year)


def asset_class_of(symbols: list[str] | tuple[str, ...], rt: Runtime) -> str:
    return "crypto" if symbols and all(rt.asset_class(x) == "crypto" for x in symbols) else "equity"


def benchmark_metrics(curve: np.ndarray, start_equity: float, ppy: float) -> dict:
    m = bt.run_metrics(curve, start_equity=start_equity, periods_per_year=ppy, pnls=[], exposure=1.0,
                       traded_notional=0.0, fees=0.0)
    keep = ("final_equity", "total_return", "cagr", "volatility", "sharpe", "sortino", "max_drawdown")
    return {"strategy": "buy and hold, equal weights, from each symbol's first price in the window, no costs",
            **{k: m[k] for k in keep}}


def run_sma(rt: Runtime, w: Window, params: dict, s: Any, curves: bool = True, reuse_bars: bool = False) -> dict:
    unknown = sorted(set(params) - {"symbol", "fast", "slow"})
    if unknown:
        raise UsageProblem(f"sma: unknown parameter(s) {unknown}; use fast, slow, symbol or dotted settings keys")
    fast, slow = int(params.get("fast", s.backtest.sma_fast)), int(params.get("slow", s.backtest.sma_slow))
    if fast >= slow:
        raise UsageProblem(f"sma: fast ({fast}) must be shorter than slow ({slow})")
    if params.get("symbol"):
        symbols = [str(params["symbol"]).upper()]
    elif w.symbols:
        symbols = list(w.symbols)
    else:
        symbols = [s.backtest.symbol or (s.universe.crypto or s.universe.symbols)[0]]
    if w.stored:
        missing = [x for x in symbols if x not in w.symbols]
        if missing:
            raise UsageProblem(f"sma: no {w.source} {w.timeframe} bars of {', '.join(missing)} in the window")
        step = timedelta(seconds=timeframe_seconds(w.timeframe))
        t0, t1 = parse_ts(w.start), parse_ts(w.end) - step
        bars = (cached_bars if reuse_bars else Bars)(rt.store, w.source, w.timeframe, step, symbols, t0, t1)
        tf = w.timeframe
    else:
        for x in symbols:
            if x not in s.universe.symbols:
                raise UsageProblem(f"symbol {x!r} is not in the universe ({', '.join(s.universe.symbols)})")
        bars_mod.ensure_sim_bars(rt, w.first + 1, w.last)
        step = rt.world.step_delta
        bars = (cached_bars if reuse_bars else Bars)(rt.store, "sim", timeframe(rt), step, symbols)
        t0, t1 = rt.world.time_of(w.first), rt.world.time_of(w.last - 1)
        tf = timeframe(rt)
    alloc = float(s.capital) / len(symbols)
    tz = timezone.utc
    trades: list[dict] = []
    per: list[tuple[np.ndarray, np.ndarray, np.ndarray, bt.Result]] = []
    for sym in symbols:
        ts, opens, closes = bars.arrays(sym, t0, t1)
        if len(ts) < slow + 2:
            raise UsageProblem(f"sma: {len(ts)} bars of {sym} in the window, need more than slow + 1 ({slow + 1})",
                               hint="widen the window with --start or --steps")
        ac = rt.asset_class(sym)
        costs = bt.Costs(fee=s.broker.fee_bps / 1e4, slippage=s.broker.slippage_bps / 1e4, fill=s.backtest.fill,
                         fractional=s.backtest.fractional, lot=lot_size(ac))
        res = bt.sma_crossover(opens, closes, fast, slow, cash=alloc, costs=costs)

        def at(i: int | None, ts: list[float] = ts) -> str | None:
            return None if i is None else datetime.fromtimestamp(ts[i], tz=tz).isoformat(timespec="seconds")

        trades += [{"symbol": sym, "qty": t.size, "entry_at": at(t.entry_bar), "entry_price": t.entry_price,
                    "exit_at": at(t.exit_bar), "exit_price": t.exit_price,
                    "fees": round(t.fees, 2), "pnl": None if t.pnl is None else round(t.pnl, 2)} for t in res.trades]
        per.append((np.asarray(ts) + step.total_seconds(), closes, res.equity, res))
    # one portfolio: each symbol's equity (its share of the capital) marked at its bars' closes
    axis = np.unique(np.concatenate([p[0] for p in per]))
    equity = np.zeros(len(axis))
    bench = np.zeros(len(axis))
    held = np.zeros(len(axis))
    for close_t, closes, eq, res in per:
        i = np.searchsorted(close_t, axis, side="right") - 1
        known = i >= 0
        equity += np.where(known, eq[np.maximum(i, 0)], alloc)
        bench += np.where(known, alloc * closes[np.maximum(i, 0)] / closes[0], alloc)
        held += np.where(known, res.exposure[np.maximum(i, 0)], False)
    ac = asset_class_of(symbols, rt)
    ppy = periods_per_year(rt, ac, tf, axis.tolist())
    results = [p[3] for p in per]
    metrics = bt.run_metrics(equity, start_equity=float(s.capital), periods_per_year=ppy,
                             pnls=[t.pnl for r in results for t in r.closed], exposure=float(np.mean(held > 0)),
                             traded_notional=sum(r.traded_notional for r in results),
                             fees=sum(r.fees for r in results))
    out = {"params": {"symbol": symbols[0] if len(symbols) == 1 else ",".join(symbols), "fast": fast, "slow": slow},
           "metrics": metrics, "trades": trades, "benchmark": benchmark_metrics(bench, float(s.capital), ppy)}
    if curves:  # a sweep's rows leave them out unless asked (--curves): tens of thousands of points each
        times = iso_seconds(axis)
        out["equity"] = [[t, e] for t, e in zip(times, np.round(equity, 2).tolist())]
        out["benchmark_equity"] = [[t, e] for t, e in zip(times, np.round(bench, 2).tolist())]
    return out


def apply_overrides(settings: Any, overrides: dict[str, Any]) -> Any:
    """Settings with dotted keys replaced (validated like the YAML: unknown keys exit 2)."""
    if not overrides:
        return settings
    from pydantic import ValidationError

    data = settings.model_dump()
    for key, value in overrides.items():
        node = data
        *parents, leaf = key.split(".")
        for p in parents:
            if not isinstance(node.get(p), dict):
                raise UsageProblem(f"unknown setting {key!r}")
            node = node[p]
        if leaf not in node:
            raise UsageProblem(f"unknown setting {key!r}")
        node[leaf] = value
    try:
        return type(settings).model_validate(data)
    except ValidationError as exc:
        raise UsageProblem(f"invalid setting in {sorted(overrides)}: {exc.errors()[0]['msg']}") from None


def replay_settings(settings: Any, symbols: tuple[str, ...], tf: str) -> Any:
    """Settings of a replay over stored bars: the replayed symbols are the universe, the paper broker
    trades them, on the replay's own clock. News is read at bar closes, so an article stays fresh for
    at least one bar (`signals.max_age_minutes` is raised to the timeframe when shorter)."""
    from tokenomics.config import UniverseSettings

    u = UniverseSettings(equities=[x for x in symbols if "/" not in x], crypto=[x for x in symbols if "/" in x])
    max_age = max(settings.signals.max_age_minutes, timeframe_seconds(tf) / 60)
    return settings.model_copy(update={
        "universe": u, "mode": "sim", "broker": settings.broker.model_copy(update={"provider": "paper"}),
        "signals": settings.signals.model_copy(update={"max_age_minutes": max_age})})


def cutoff_warning(settings: Any, strategy: str, start: datetime) -> str | None:
    """A sentiment backtest scored by an LLM over news from before the model's training cut-off."""
    cutoff = settings.sentiment.training_cutoff
    if strategy != "sentiment" or settings.sentiment.provider != "gemini" or cutoff is None:
        return None
    if start.date() <= cutoff:
        return (f"the window starts {start.date()}, before {settings.sentiment.model}'s training cut-off "
                f"({cutoff}, sentiment.training_cutoff): the model may know how the story ended")
    return None


def run_chain(rt: Runtime, strategy: str, w: Window, params: dict, settings: Any, scorer: Any | None = None,
              batch: bool = True) -> dict:
    """Replay [first, last] through `run`'s tick and the strategy's steps on a fresh store; return
    trades, equity, metrics. The model strategy predicts every bar of the window in one batch first
    (`batch`; without it, each step computes its features and predicts, as `run` does)."""
    import threading

    from tokenomics.config import LogSettings
    from tokenomics.logs import setup_logging
    from tokenomics.research import ml
    from tokenomics.trading import account
    from tokenomics.trading.loop import steps_for, tick

    model = None
    if strategy == "model":
        unknown = sorted(set(params) - {"model"})
        if unknown:
            raise UsageProblem(f"model: unknown parameter(s) {unknown}; use model or dotted settings keys "
                               "such as ml.min_probability or exits.stop_loss_pct")
        model = params.get("model") or settings.ml.model
        card = ml.load_model(ml.model_path(settings.ml.models_dir, model)).card
        source, tf = card["source"], canonical_timeframe(card["timeframe"])
    elif params:
        raise UsageProblem(f"sentiment: unknown parameter(s) {sorted(params)}; use dotted settings keys "
                           "such as sentiment.min_conviction or exits.stop_loss_pct")
    else:
        source, tf = "sim", timeframe(rt)
    clock = calendar = None
    if w.stored:  # the chosen bars, whatever the model was trained on (its features are scale-free)
        source, tf = w.source, w.timeframe
        clock = stored_clock(rt.store, source, tf, w.symbols, parse_ts(w.start), parse_ts(w.end))
        if len(clock) != w.last - w.first + 1:
            raise UsageProblem("the stored bars changed since the window was planned; run again")
        settings = replay_settings(settings, w.symbols, tf)
        from tokenomics.adapters.calendar import MarketCalendar

        calendar = MarketCalendar.around(rt.store, clock[0], clock[-1])
        t0, t1 = clock[0], clock[-1]
        symbols = list(w.symbols)
    else:
        if source == "sim":  # the model's features need bars from before the window
            warmup = bars_mod.sim_steps_for(ml.LOOKBACK_BARS) if model else 0
            bars_mod.ensure_sim_bars(rt, w.first + 1 - warmup, w.last)
        t0, t1 = rt.world.time_of(w.first), rt.world.time_of(w.last)
        symbols = list(settings.universe.symbols)
    step = timedelta(seconds=timeframe_seconds(tf))
    bars = Bars(rt.store, source, tf, step, symbols, until=t1)
    if model and not any(bars.arrays(sym, t0, t1)[0] for sym in symbols):
        raise UsageProblem(f"model {model!r} predicts on {source} {tf} bars and the store has none of the "
                           "universe's symbols in the backtest window",
                           hint=f"tokenomics fetch-bars --source {source} --timeframe {tf}")
    cached = CachedScorer(scorer if scorer is not None else rt.scorer, rt.store)
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="tokenomics-backtest-", dir=shm if shm.is_dir() else None) as tmp:
        settings = settings.model_copy(update={"logs": LogSettings(dir=Path(tmp) / "logs",
                                                                   level=settings.logs.level)})
        rep = ReplayRuntime(rt, settings, Path(tmp) / "replay.db", bars, cached, clock, calendar)
        if w.stored:
            rep.model_bars = (source, tf)  # the model predicts on the replayed bars
        try:
            rep.start_at(w.first)
            if model or w.stored:  # features and volatility read these, each bounded by the replay's now
                warmup = max(ml.LOOKBACK_BARS if model else 0, settings.sizing.vol_lookback_bars + 1)
                copy_bars(rt.store, rep.store, source, tf, symbols, warmup, t0, t1)
            if model and batch:
                rep.predictions = ml.Predictions(ml.load_model(ml.model_path(settings.ml.models_dir, model)),
                                                 rep.store, source, tf, symbols)
            start_equity = account.mark_to_market(rep)["equity"]
            stop = threading.Event()
            steps = steps_for(rep, strategy, model)
            with progress(f"backtest {strategy}", w.last - w.first) as advance:
                for n in range(1, w.last - w.first + 1):
                    tick(rep, n, stop, steps)
                    advance(1)
            out = collect(rep, start_equity, bars, symbols, tf if w.stored else None)
        finally:
            rep.close()
            setup_logging(rt.settings.logs.dir, rt.settings.logs.level, rt.opts.verbose, rt.settings.logs.output)
    out["scored"] = cached.scored
    out["articles"] = cached.articles
    out["tokens"], out["cost_usd"] = cached.tokens, cached.cost_usd
    if model:
        out["params"] = {"model": model}
    return out


def copy_bars(src: Store, dst: Store, source: str, tf: str, symbols: list[str], warmup: int, t0: datetime,
              t1: datetime) -> int:
    """Each symbol's last `warmup` bars before t0 and its bars of [t0, t1], from the main store into
    the replay store. Every read of them in the replay is bounded by the replay clock's now
    (the model's `load_frame(until=...)`, sizing's `recent_bars`), never a later bar."""
    n = 0
    with dst.tx():
        for sym in symbols:
            q, key = "SELECT * FROM bars WHERE source = ? AND timeframe = ? AND symbol = ? AND ts ", [source, tf, sym]
            n += dst.insert_ignore("bars", src.all(q + "< ? ORDER BY ts DESC LIMIT ?", [*key, iso(t0), warmup]))
            n += dst.insert_ignore("bars", src.all(q + "BETWEEN ? AND ? ORDER BY ts", [*key, iso(t0), iso(t1)]))
    return n


def collect(rep: ReplayRuntime, start_equity: float, bars: Bars | None = None, symbols: list[str] | None = None,
            tf: str | None = None) -> dict:
    st = rep.store
    eq = st.all("SELECT ts, equity, positions_value FROM equity ORDER BY ts")
    curve = np.array([r["equity"] for r in eq[1:]])
    trades = st.all("SELECT symbol, qty, entry_price, exit_price, fees, pnl, opened_at, closed_at, exit_reason "
                    "FROM trades ORDER BY closed_at, symbol")
    traded = st.scalar("SELECT COALESCE(SUM(qty * price), 0) FROM fills") or 0.0
    fees = st.scalar("SELECT COALESCE(SUM(fee), 0) FROM fills") or 0.0
    exposure = float(np.mean([r["positions_value"] > 0 for r in eq[1:]])) if len(eq) > 1 else 0.0
    times = [parse_ts(r["ts"]).timestamp() for r in eq]
    # over stored bars the curve is marked at the symbols' bar closes; in the sim, every step around the clock
    ppy = periods_per_year(rep, asset_class_of(symbols or [], rep) if tf else "crypto", tf, times)
    metrics = bt.run_metrics(curve, start_equity=start_equity, periods_per_year=ppy,
                             pnls=[t["pnl"] for t in trades], exposure=exposure, traded_notional=traded, fees=fees)
    open_positions = st.positions()
    decisions = st.all("SELECT id, symbol, side, source, strength, status, status_reason, notional, size_detail, "
                       "created_at FROM signals ORDER BY created_at, id")
    orders = st.all("SELECT client_order_id, signal_id, symbol, side, intent, status, filled_qty, filled_avg_price, "
                    "fees, created_at FROM orders ORDER BY created_at, client_order_id")
    out = {"metrics": metrics, "trades": trades, "open_positions": len(open_positions),
           "equity": [[r["ts"], r["equity"]] for r in eq], "signals": decisions, "orders": orders}
    if bars is not None and symbols and len(eq) > 1:
        alloc = start_equity / len(symbols)
        bench = np.zeros(len(times))
        for sym in symbols:
            px = [bars.last_close(sym, datetime.fromtimestamp(t, timezone.utc)) for t in times]
            base = next((p for p in px if p is not None), None)
            bench += [alloc if p is None or base is None else alloc * p / base for p in px]
        out["benchmark"] = benchmark_metrics(bench[1:], start_equity, ppy)
        out["benchmark_equity"] = [[r["ts"], round(float(b), 2)] for r, b in zip(eq, bench)]
    return out


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise UsageProblem(f"--strategy must be one of {', '.join(STRATEGIES)} (got {strategy!r})")


def run_backtest(rt: Runtime, strategy: str, w: Window, params: dict, scorer: Any | None = None,
                 curves: bool = True, reuse_bars: bool = False, batch: bool = True) -> dict:
    """One backtest. Dotted params (`broker.fee_bps`) override settings; plain ones are the strategy's.
    Without `curves` the equity and benchmark curves are left out (sweeps)."""
    check_strategy(strategy)
    settings = apply_overrides(rt.settings, {k: v for k, v in params.items() if "." in k})
    own = {k: v for k, v in params.items() if "." not in k}
    if strategy == "sma":
        out = run_sma(rt, w, own, settings, curves, reuse_bars)
    else:
        out = run_chain(rt, strategy, w, own, settings, scorer, batch)
        if not curves:
            out.pop("equity", None)
            out.pop("benchmark_equity", None)
    if w.stored:
        span = {"source": w.source, "timeframe": w.timeframe, "symbols": list(w.symbols), "start": w.start,
                "end": w.end}
    else:
        span = {"source": "sim", "timeframe": timeframe(rt), "start": iso(rt.world.time_of(w.first)),
                "end": iso(rt.world.time_of(w.last))}
    out.update(strategy=strategy, params={**params, **out.get("params", {})}, **span, steps=w.last - w.first)
    warnings = [x for x in [w.note, cutoff_warning(settings, strategy, parse_ts(span["start"])),
                            *out.pop("warnings", [])] if x]
    if warnings:
        out["warnings"] = warnings
    return out


def save(rt: Runtime, result: dict) -> int:
    """Keep a backtest's result in the main store's backtests table; return its id.

    One plain INSERT as the transaction's first statement, so parallel sweep workers wait for
    each other (busy timeout) instead of failing on a stale read snapshot."""
    row = [result["strategy"], json.dumps(result["params"], sort_keys=True), result["start"], result["end"],
           result["steps"], json.dumps(result["metrics"]), json.dumps(result["trades"]),
           json.dumps(result.get("equity", [])), iso(utcnow())]
    with rt.store.tx():
        cur = rt.store.execute('INSERT INTO backtests(strategy, params, start, "end", steps, metrics, trades, '
                               'equity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', row)
        return int(cur.lastrowid)


CURVES = ("equity", "benchmark_equity")


def finite_result(out: dict) -> dict:
    """A result made JSON-safe: its numbers, except the curves (finite by construction, and long)."""
    return {k: v if k in CURVES else finite(v) for k, v in out.items()}


def finite(value: Any) -> Any:
    """JSON has no NaN or infinity: those become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


# --- sweeps ----------------------------------------------------------------------------------------
def grid_combinations(specs: list[str]) -> list[dict[str, Any]]:
    """`key=v1,v2` specs -> every combination, values parsed as YAML scalars (5, 2.5, true, AAPL)."""
    import itertools

    import yaml

    axes: list[tuple[str, list[Any]]] = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key.strip() or not values.strip():
            raise UsageProblem(f"--grid {spec!r}: expected param=v1,v2,...", hint="--grid fast=5,10 --grid slow=30,50")
        axes.append((key.strip(), [yaml.safe_load(v.strip()) for v in values.split(",") if v.strip()]))
    keys = [k for k, _ in axes]
    if len(set(keys)) != len(keys):
        raise UsageProblem(f"--grid names a parameter twice: {keys}")
    return [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in axes))]


_RUNTIMES: dict[tuple, Runtime] = {}  # a sweep worker's runtime (settings parsed, store open), one per store


def grid_job(job: dict) -> dict:
    """One combination of a sweep, in a worker process: run, save, return a row.

    The worker keeps its runtime and the bars it parsed for the next combination of the same window;
    the saved result and the row hold no equity curve unless `job["curves"]` (`--curves`)."""
    key = (str(job["config"]), str(job["db"]), job["mode"])
    rt = _RUNTIMES.get(key)
    if rt is None:
        for old in _RUNTIMES.values():
            old.close()
        _RUNTIMES.clear()
        rt = _RUNTIMES[key] = Runtime(Options(config=job["config"], db=job["db"], mode=job["mode"]))
    keep = bool(job.get("curves"))
    out = run_backtest(rt, job["strategy"], Window(*job["window"]), job["params"], curves=keep, reuse_bars=True)
    out = finite_result(out)
    row = {"id": save(rt, out), **job["params"], **out["metrics"]}
    if keep:
        row["equity"] = out.get("equity", [])
    return row


def release_workers() -> None:
    """Close the runtime a sweep kept open in this process (after an in-process sweep)."""
    for rt in _RUNTIMES.values():
        rt.close()
    _RUNTIMES.clear()
    _BARS_CACHE.clear()
