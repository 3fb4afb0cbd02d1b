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
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from tokenomics.core import backtest as bt
from tokenomics.core.bars import timeframe_seconds
from tokenomics.core.errors import UsageProblem
from tokenomics.core.models import Article, Score
from tokenomics.core.money import lot_size
from tokenomics.research import bars as bars_mod
from tokenomics.runtime import SIM_CLOCK, Options, Runtime
from tokenomics.store import Store, iso, parse_ts, utcnow

STRATEGIES = ("sma", "sentiment", "model")
CACHE_PREFIX = "score:"


# --- history in the main store ---------------------------------------------------------------
def timeframe(rt: Runtime) -> str:
    return f"{rt.settings.sim.step_minutes}m"


class Bars:
    """One source's bars as they become known: a bar keyed by its open time t0 closes at t0 + tf."""

    def __init__(self, store: Store, source: str, tf: str, step: timedelta):
        self.step = step
        self.data: dict[str, tuple[list[float], list[float], list[float]]] = {}
        rows = store.all("SELECT symbol, ts, open, close FROM bars WHERE source = ? AND timeframe = ? "
                         "ORDER BY symbol, ts", [source, tf])
        for r in rows:
            ts, opens, closes = self.data.setdefault(r["symbol"], ([], [], []))
            ts.append(parse_ts(r["ts"]).timestamp())
            opens.append(r["open"])
            closes.append(r["close"])

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


# --- the score cache -------------------------------------------------------------------------
class CachedScorer:
    """Wraps the configured scorer: scores found in the main store's cache are never asked again."""

    def __init__(self, inner: Any, store: Store):
        self.inner, self.store = inner, store
        self.name = inner.name
        self.scored = 0  # articles the inner scorer was asked about

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
        if missing:
            fresh = self.inner.score(missing)
            self.scored += len(missing)
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
    """The sim world's articles of the steps since the last fetch, plus the main store's articles
    published since then; nothing created after now."""

    name = "history"
    CURSOR = "news:history:step"

    def __init__(self, rt: "ReplayRuntime"):
        self.rt = rt

    def fetch(self, store: Store) -> list[Article]:
        from tokenomics.trading.news import article_from_row

        step = self.rt.sim_step()
        last = store.get_cursor(self.CURSOR)
        first = int(last) + 1 if last is not None else step
        since = self.rt.world.time_of(first - 1)
        now = self.rt.now()
        seen: dict[str, Article] = {}
        for k in range(first, step + 1):
            for a in self.rt.world.articles(k):
                seen[a.id] = a
        for r in self.rt.main.store.all("SELECT * FROM articles WHERE created_at > ? AND created_at <= ? "
                                        "ORDER BY created_at, id", [iso(since), iso(now)]):
            seen.setdefault(r["id"], article_from_row(r))
        return [a for a in seen.values() if a.created_at <= now]

    def commit(self, store: Store) -> None:
        store.set_cursor(self.CURSOR, str(self.rt.sim_step()))


# --- the replay runtime ------------------------------------------------------------------------
class ReplayRuntime(Runtime):
    """A Runtime over a fresh store, with history's prices, news and cached scores."""

    def __init__(self, main: Runtime, settings: Any, db: Path, bars: Bars, scorer: CachedScorer):
        super().__init__(Options(db=db, mode="sim"))
        self.main, self._bars = main, bars
        self.__dict__["settings"] = settings
        self.__dict__["calendar"] = main.calendar
        self.__dict__["world"] = main.world
        self.__dict__["scorer"] = scorer

    @cached_property
    def store(self) -> Store:
        st = Runtime.store.func(self)
        st.execute("PRAGMA synchronous = OFF")  # a throwaway file: no need to survive a power cut
        return st

    def price(self, symbol: str) -> float:
        p = self._bars.last_close(symbol, self.now())
        return p if p is not None else self.world.price(symbol, 0)

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
        with self.store.tx():
            self.store.execute("INSERT OR REPLACE INTO clock(name, step, now) VALUES (?, ?, ?)",
                               [SIM_CLOCK, step, iso(self.world.time_of(step))])


# --- running one backtest ----------------------------------------------------------------------
@dataclass
class Window:
    first: int  # the step the backtest starts at (its equity's starting point)
    last: int


def window(rt: Runtime, start: str | None, end: str | None, steps: int | None) -> Window:
    """Steps of the sim history to replay: [start, end], or the last `steps` ending at end/now."""
    now_step = rt.sim_step()
    sim = rt.settings.sim
    delta = timedelta(minutes=sim.step_minutes)

    def step_of(text: str, opt: str) -> int:
        try:
            dt = parse_ts(text)
        except ValueError:
            raise UsageProblem(f"{opt}: not an ISO date or time: {text!r}") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=sim.start.tzinfo)
        return max(int((dt - sim.start) / delta), 0)

    last = step_of(end, "--end") if end else now_step
    if last > now_step:
        raise UsageProblem(f"--end is after the sim clock's now ({iso(rt.now())}): history ends there")
    first = step_of(start, "--start") if start else last - (steps or rt.settings.backtest.steps)
    first = max(first, 0)
    if first >= last:
        raise UsageProblem(f"empty backtest window: steps {first}..{last}",
                           hint="give --start before --end, or more --steps")
    return Window(first, last)


def periods_per_year(rt: Runtime, asset_class: str = "crypto") -> float:
    minutes = rt.settings.sim.step_minutes
    return (252 * 6.5 * 60 if asset_class == "equity" else 365.25 * 24 * 60) / minutes


def run_sma(rt: Runtime, w: Window, params: dict, s: Any) -> dict:
    symbol = params.get("symbol") or s.backtest.symbol or (s.universe.crypto or s.universe.symbols)[0]
    if symbol not in s.universe.symbols:
        raise UsageProblem(f"symbol {symbol!r} is not in the universe ({', '.join(s.universe.symbols)})")
    unknown = sorted(set(params) - {"symbol", "fast", "slow"})
    if unknown:
        raise UsageProblem(f"sma: unknown parameter(s) {unknown}; use fast, slow, symbol or dotted settings keys")
    fast, slow = int(params.get("fast", s.backtest.sma_fast)), int(params.get("slow", s.backtest.sma_slow))
    if fast >= slow:
        raise UsageProblem(f"sma: fast ({fast}) must be shorter than slow ({slow})")
    bars_mod.ensure_sim_bars(rt, w.first + 1, w.last)
    bars = Bars(rt.store, "sim", timeframe(rt), rt.world.step_delta)
    ts, opens, closes = bars.arrays(symbol, rt.world.time_of(w.first), rt.world.time_of(w.last - 1))
    if len(ts) < slow + 2:
        raise UsageProblem(f"sma: {len(ts)} bars of {symbol} in the window, need more than slow + 1 ({slow + 1})",
                           hint="widen the window with --start or --steps")
    ac = rt.asset_class(symbol)
    costs = bt.Costs(fee=s.broker.fee_bps / 1e4, slippage=s.broker.slippage_bps / 1e4, fill=s.backtest.fill,
                     fractional=True, lot=lot_size(ac))
    res = bt.sma_crossover(opens, closes, fast, slow, cash=float(s.capital), costs=costs)
    times = [iso(datetime.fromtimestamp(t, tz=rt.settings.sim.start.tzinfo) + rt.world.step_delta) for t in ts]
    bar_time = [iso(datetime.fromtimestamp(t, tz=rt.settings.sim.start.tzinfo)) for t in ts]
    trades = [{"symbol": symbol, "qty": t.size, "entry_at": bar_time[t.entry_bar], "entry_price": t.entry_price,
               "exit_at": bar_time[t.exit_bar] if t.exit_bar is not None else None, "exit_price": t.exit_price,
               "fees": round(t.fees, 2), "pnl": None if t.pnl is None else round(t.pnl, 2)} for t in res.trades]
    metrics = bt.result_metrics(res, start_equity=float(s.capital), periods_per_year=periods_per_year(rt, ac))
    return {"params": {"symbol": symbol, "fast": fast, "slow": slow}, "metrics": metrics, "trades": trades,
            "equity": [[t, round(float(e), 2)] for t, e in zip(times, res.equity)]}


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


def run_chain(rt: Runtime, strategy: str, w: Window, params: dict, settings: Any, scorer: Any | None = None) -> dict:
    """Replay [first, last] through `run`'s tick and the strategy's steps on a fresh store; return
    trades, equity, metrics."""
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
        source, tf = card["source"], card["timeframe"]
    elif params:
        raise UsageProblem(f"sentiment: unknown parameter(s) {sorted(params)}; use dotted settings keys "
                           "such as sentiment.min_conviction or exits.stop_loss_pct")
    else:
        source, tf = "sim", timeframe(rt)
    if source == "sim":  # the model's features need bars from before the window
        warmup = bars_mod.sim_steps_for(ml.LOOKBACK_BARS) if model else 0
        bars_mod.ensure_sim_bars(rt, w.first + 1 - warmup, w.last)
    step = timedelta(seconds=timeframe_seconds(tf))
    bars = Bars(rt.store, source, tf, step)
    if model and not any(bars.arrays(sym, rt.world.time_of(w.first), rt.world.time_of(w.last))[0]
                         for sym in settings.universe.symbols):
        raise UsageProblem(f"model {model!r} predicts on {source} {tf} bars and the store has none of the "
                           "universe's symbols in the backtest window",
                           hint=f"tokenomics fetch-bars --source {source} --timeframe {tf}")
    cached = CachedScorer(scorer if scorer is not None else rt.scorer, rt.store)
    shm = Path("/dev/shm")
    with tempfile.TemporaryDirectory(prefix="tokenomics-backtest-", dir=shm if shm.is_dir() else None) as tmp:
        settings = settings.model_copy(update={"logs": LogSettings(dir=Path(tmp) / "logs",
                                                                   level=settings.logs.level)})
        rep = ReplayRuntime(rt, settings, Path(tmp) / "replay.db", bars, cached)
        try:
            rep.start_at(w.first)
            if model:
                copy_bars(rt.store, rep.store, source, tf, settings.universe.symbols, ml.LOOKBACK_BARS,
                          rt.world.time_of(w.first), rt.world.time_of(w.last))
            start_equity = account.mark_to_market(rep)["equity"]
            stop = threading.Event()
            steps = steps_for(rep, strategy, model)
            for n in range(1, w.last - w.first + 1):
                tick(rep, n, stop, steps)
            out = collect(rep, start_equity)
        finally:
            rep.close()
            setup_logging(rt.settings.logs.dir, rt.settings.logs.level, rt.opts.verbose, rt.settings.logs.output)
    out["scored"] = cached.scored
    if model:
        out["params"] = {"model": model}
    return out


def copy_bars(src: Store, dst: Store, source: str, tf: str, symbols: list[str], warmup: int, t0: datetime,
              t1: datetime) -> int:
    """Each symbol's last `warmup` bars before t0 and its bars of [t0, t1], from the main store into
    the replay store. The model step reads only the bars closed by the replay clock's now
    (`load_frame(until=...)`), never a later one."""
    n = 0
    with dst.tx():
        for sym in symbols:
            q, key = "SELECT * FROM bars WHERE source = ? AND timeframe = ? AND symbol = ? AND ts ", [source, tf, sym]
            n += dst.insert_ignore("bars", src.all(q + "< ? ORDER BY ts DESC LIMIT ?", [*key, iso(t0), warmup]))
            n += dst.insert_ignore("bars", src.all(q + "BETWEEN ? AND ? ORDER BY ts", [*key, iso(t0), iso(t1)]))
    return n


def collect(rep: ReplayRuntime, start_equity: float) -> dict:
    st = rep.store
    eq = st.all("SELECT ts, equity, positions_value FROM equity ORDER BY ts")
    curve = np.array([r["equity"] for r in eq[1:]])
    trades = st.all("SELECT symbol, qty, entry_price, exit_price, fees, pnl, opened_at, closed_at, exit_reason "
                    "FROM trades ORDER BY closed_at, symbol")
    traded = st.scalar("SELECT COALESCE(SUM(qty * price), 0) FROM fills") or 0.0
    fees = st.scalar("SELECT COALESCE(SUM(fee), 0) FROM fills") or 0.0
    exposure = float(np.mean([r["positions_value"] > 0 for r in eq[1:]])) if len(eq) > 1 else 0.0
    metrics = bt.run_metrics(curve, start_equity=start_equity, periods_per_year=periods_per_year(rep),
                             pnls=[t["pnl"] for t in trades], exposure=exposure, traded_notional=traded, fees=fees)
    open_positions = st.positions()
    decisions = st.all("SELECT id, symbol, side, source, strength, status, status_reason, notional, created_at "
                       "FROM signals ORDER BY created_at, id")
    orders = st.all("SELECT client_order_id, signal_id, symbol, side, intent, status, filled_qty, filled_avg_price, "
                    "fees, created_at FROM orders ORDER BY created_at, client_order_id")
    return {"metrics": metrics, "trades": trades, "open_positions": len(open_positions),
            "equity": [[r["ts"], r["equity"]] for r in eq], "signals": decisions, "orders": orders}


def check_strategy(strategy: str) -> None:
    if strategy not in STRATEGIES:
        raise UsageProblem(f"--strategy must be one of {', '.join(STRATEGIES)} (got {strategy!r})")


def run_backtest(rt: Runtime, strategy: str, w: Window, params: dict, scorer: Any | None = None) -> dict:
    """One backtest. Dotted params (`broker.fee_bps`) override settings; plain ones are the strategy's."""
    check_strategy(strategy)
    settings = apply_overrides(rt.settings, {k: v for k, v in params.items() if "." in k})
    own = {k: v for k, v in params.items() if "." not in k}
    if strategy == "sma":
        out = run_sma(rt, w, own, settings)
    else:
        out = run_chain(rt, strategy, w, own, settings, scorer)
    out.update(strategy=strategy, params={**params, **out.get("params", {})}, start=iso(rt.world.time_of(w.first)),
               end=iso(rt.world.time_of(w.last)), steps=w.last - w.first)
    return out


def save(rt: Runtime, result: dict) -> int:
    """Keep a backtest's result in the main store's backtests table; return its id.

    One plain INSERT as the transaction's first statement, so parallel sweep workers wait for
    each other (busy timeout) instead of failing on a stale read snapshot."""
    row = [result["strategy"], json.dumps(result["params"], sort_keys=True), result["start"], result["end"],
           result["steps"], json.dumps(result["metrics"]), json.dumps(result["trades"]),
           json.dumps(result["equity"]), iso(utcnow())]
    with rt.store.tx():
        cur = rt.store.execute('INSERT INTO backtests(strategy, params, start, "end", steps, metrics, trades, '
                               'equity, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', row)
        return int(cur.lastrowid)


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


def grid_job(job: dict) -> dict:
    """One combination of a sweep, in a worker process: open the store, run, save, return a row."""
    rt = Runtime(Options(config=job["config"], db=job["db"], mode=job["mode"]))
    try:
        out = run_backtest(rt, job["strategy"], Window(*job["window"]), job["params"])
        return {"id": save(rt, finite(out)), **job["params"], **finite(out["metrics"])}
    finally:
        rt.close()
