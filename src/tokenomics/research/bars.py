"""fetch-bars over the store: sources -> the bars table, incremental and resumable; bars -> frames.

Every page is committed in its own transaction with insert-ignore on (source, symbol, timeframe, ts),
so a re-run inserts nothing twice and an interrupted fetch resumes from the last stored bar.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from tokenomics.core.bars import bar_problem, find_gaps, minutes_timeframe, timeframe_seconds
from tokenomics.core.errors import UsageProblem
from tokenomics.logs import app_log, progress
from tokenomics.store import Store, iso, parse_ts

SOURCES = ("sim", "file", "ccxt", "alpaca")


def last_ts(store: Store, source: str, symbol: str, timeframe: str) -> datetime | None:
    v = store.scalar("SELECT MAX(ts) FROM bars WHERE source = ? AND symbol = ? AND timeframe = ?",
                     [source, symbol, timeframe])
    return parse_ts(v) if v else None


def store_rows(store: Store, rows: list[dict]) -> int:
    return store.bulk_insert("bars", rows)


def gaps(store: Store, source: str, symbol: str, timeframe: str, since: str | None = None,
         invalid: frozenset[datetime] = frozenset()) -> list[dict]:
    """Missing bars, counted against the asset class's calendar: an equity's bars exist only in NYSE
    sessions (nights, weekends and holidays are no gaps); crypto trades around the clock. Bars at
    `invalid` times were in the source but refused (reported as invalid, not as gaps)."""
    times = [parse_ts(r["ts"]) for r in store.all(
        "SELECT ts FROM bars WHERE source = ? AND symbol = ? AND timeframe = ? AND ts >= ? ORDER BY ts",
        [source, symbol, timeframe, since or ""])]
    expected = None
    if "/" not in symbol and len(times) > 1:  # an equity (crypto symbols are pairs)
        from tokenomics.adapters.calendar import MarketCalendar

        cal = MarketCalendar.around(store, times[0], times[-1])
        expected = lambda a, b: cal.trades_during("equity", a, b)  # noqa: E731
    if invalid:
        inner = expected
        expected = lambda a, b: a not in invalid and (inner is None or inner(a, b))  # noqa: E731
    return find_gaps(times, timeframe_seconds(timeframe), expected)


def _summary(store: Store, source: str, symbol: str, timeframe: str, fetched: int, new: int,
             first_new: str | None, invalid: frozenset[datetime] = frozenset()) -> dict:
    g = gaps(store, source, symbol, timeframe, first_new, invalid) if first_new else []
    if g and source != "sim":
        app_log.warning("%s %s %s: %d gaps (%d bars missing) in the fetched range", source, symbol, timeframe,
                        len(g), sum(x["missing"] for x in g))
    last = last_ts(store, source, symbol, timeframe)
    return {"source": source, "symbol": symbol, "timeframe": timeframe, "fetched": fetched, "new": new,
            "last": last.isoformat() if last else None,
            "gaps": len(g), "missing_bars": sum(x["missing"] for x in g), "gap_list": g[:10]}


def fetch_sim(rt, symbols: Iterable[str]) -> list[dict]:
    """Sim bars from the first step after each symbol's last stored bar up to now (never the future)."""
    world = rt.world
    tf = minutes_timeframe(rt.settings.sim.step_minutes)
    now_step = rt.sim_step()
    symbols = list(symbols)
    unknown = [s for s in symbols if s not in world.symbols]
    if unknown:
        raise UsageProblem(f"{', '.join(unknown)} not in the sim universe ({', '.join(world.symbols)})")
    first = {}
    for sym in symbols:
        last = last_ts(rt.store, "sim", sym, tf)
        first[sym] = world.step_at(last) + 2 if last else 1  # the bar of step k opens at t[k-1]
    stats = {sym: {"fetched": 0, "new": 0, "first_new": None} for sym in symbols}
    start = min(first.values(), default=now_step + 1)
    with progress("sim bars", max(now_step - start + 1, 0)) as advance:
        for a in range(start, now_step + 1, 1000):
            b = min(a + 999, now_step)
            rows = [r for r in world.bars(a, b) if r["symbol"] in first
                    and world.step_at(parse_ts(r["ts"])) + 1 >= first[r["symbol"]]]
            for sym in symbols:
                mine = [r for r in rows if r["symbol"] == sym]
                n = store_rows(rt.store, mine)
                st = stats[sym]
                st["fetched"] += len(mine)
                st["new"] += n
                if n and st["first_new"] is None:
                    st["first_new"] = mine[0]["ts"]
            advance(b - a + 1)
    return [_summary(rt.store, "sim", sym, tf, stats[sym]["fetched"], stats[sym]["new"], stats[sym]["first_new"])
            for sym in symbols]


def ensure_sim_bars(rt, first: int, last: int) -> int:
    """Store the sim market's bars of steps [first, last] (natural keys: nothing is stored twice)."""
    tf = minutes_timeframe(rt.settings.sim.step_minutes)
    first = max(first, 1)
    have = rt.store.scalar(
        "SELECT COUNT(DISTINCT ts) FROM bars WHERE source = 'sim' AND timeframe = ? AND ts >= ? AND ts <= ?",
        [tf, iso(rt.world.time_of(first - 1)), iso(rt.world.time_of(last - 1))])
    if have and have >= last - first + 1:
        return 0
    rows = rt.world.bars(first, last)
    for r in rows:
        r["ts"] = iso(parse_ts(r["ts"]))
    with rt.store.tx():
        return rt.store.insert_ignore("bars", rows)


def sim_steps_for(bars_needed: int) -> int:
    """Sim steps that hold at least `bars_needed` bars of every symbol: equities trade 6.5 of every
    24 hours on 5 days of 7 (about 5.2 steps per bar at any step length); 6 leaves room for holidays."""
    return 6 * bars_needed


def sync_sim_bars(rt, lookback: int) -> int:
    """Store the sim bars closed by now that the store lacks, back to `lookback` steps ago (a pure
    function of the clock: nothing from the future). Cheap when called every tick."""
    step = rt.sim_step()
    last = rt.store.scalar("SELECT MAX(ts) FROM bars WHERE source = 'sim' AND timeframe = ?",
                           [minutes_timeframe(rt.settings.sim.step_minutes)])
    first = max(step - lookback, rt.world.step_at(parse_ts(last)) + 2 if last else 1)
    return ensure_sim_bars(rt, first, step) if first <= step else 0


def read_file(path: Path, symbol: str | None, timeframe: str) -> tuple[list[dict], list[dict]]:
    """A file's valid bars and its invalid rows (unreadable time or price, impossible bar), read before
    any write: a file with no valid bar is refused (exit 2, the store untouched); otherwise the invalid
    rows are left out with one warning naming the first few."""
    from tokenomics.adapters.marketdata import read_file as read

    rows, invalid = read(path, symbol, timeframe)
    if not rows:
        raise UsageProblem(f"{path}: no valid bar ({len(invalid)} row(s) refused): {_examples(invalid)}",
                           hint="a bar needs a readable time and finite prices > 0 with low <= open, close <= high")
    if invalid:
        app_log.warning("%s: %d invalid row(s) of %d left out: %s", path, len(invalid), len(rows) + len(invalid),
                        _examples(invalid), extra={"step": "fetch-bars", "invalid": len(invalid)})
    return rows, invalid


def store_file(rt, rows: list[dict], invalid: list[dict], timeframe: str) -> list[dict]:
    """read_file's bars into the store; a row left out is counted as invalid, not as a gap."""
    out = []
    for sym in sorted({r["symbol"] for r in rows}):
        mine = [r for r in rows if r["symbol"] == sym]
        bad = [r for r in invalid if r["symbol"] == sym]
        new = 0
        with progress(f"file {sym}", len(mine)) as advance:
            for i in range(0, len(mine), 5000):
                new += store_rows(rt.store, mine[i:i + 5000])
                advance(len(mine[i:i + 5000]))
        times = frozenset(parse_ts(r["ts"]) for r in bad if r["ts"])
        out.append({**_summary(rt.store, "file", sym, timeframe, len(mine), new, mine[0]["ts"] if new else None,
                               times), "invalid": len(bad)})
    return out


def fetch_file(rt, path: Path, symbol: str | None, timeframe: str) -> list[dict]:
    return store_file(rt, *read_file(path, symbol, timeframe), timeframe)


def _examples(invalid: list[dict], n: int = 3) -> str:
    text = "; ".join(f"{r['where']}: {r['problem']}" for r in invalid[:n])
    return text + (f"; and {len(invalid) - n} more" if len(invalid) > n else "")


def fetch_incremental(store: Store, source: str, label: str, symbols: Iterable[str], timeframe: str,
                      since: datetime, until: datetime,
                      pages: Callable[[str, datetime], Iterable[list[dict]]]) -> list[dict]:
    """Each symbol starts after its last stored bar (else at `since`); pages(symbol, start) commit one by one."""
    tf_s = timeframe_seconds(timeframe)
    out = []
    for sym in symbols:
        last = last_ts(store, source, sym, timeframe)
        start = last + timedelta(seconds=tf_s) if last else since
        total = max(int((until - start).total_seconds()) // tf_s, 0)
        fetched = new = 0
        first_new = None
        invalid: list[dict] = []
        with progress(f"{label} {sym} {timeframe}", total) as advance:
            for page in pages(sym, start):
                fetched += len(page)
                page, bad = valid_bars(page)
                invalid += bad
                n = store_rows(store, page)
                if n and first_new is None:
                    first_new = page[0]["ts"]
                new += n
                advance(len(page))
        if invalid:
            app_log.warning("%s %s %s: %d invalid bar(s) left out: %s", label, sym, timeframe, len(invalid),
                            _examples(invalid), extra={"step": "fetch-bars", "invalid": len(invalid)})
        out.append({**_summary(store, source, sym, timeframe, fetched, new,
                               (last.isoformat() if last else first_new) if new else None,
                               frozenset(parse_ts(r["ts"]) for r in invalid)), "invalid": len(invalid)})
    return out


def valid_bars(rows: list[dict]) -> tuple[list[dict], list[dict]]:
    """A provider's page split into valid bars and the impossible ones (core.bars.bar_problem), each
    of those as {where: its time, problem, symbol, ts}."""
    good, bad = [], []
    for r in rows:
        problem = bar_problem(r["open"], r["high"], r["low"], r["close"], r.get("volume"))
        if problem:
            bad.append({"where": r["ts"], "problem": problem, "symbol": r["symbol"], "ts": r["ts"]})
        else:
            good.append(r)
    return good, bad


def fetch_ccxt(store: Store, exchange: Any, symbols: Iterable[str], timeframe: str, since: datetime,
               until: datetime, page_limit: int = 1000) -> list[dict]:
    """Incremental: each symbol starts after its last stored bar (else at `since`); pages commit one by one."""
    from tokenomics.adapters.marketdata import ccxt_pages

    until_ms = int(until.timestamp() * 1000)
    return fetch_incremental(
        store, f"ccxt:{exchange.id}", exchange.id, symbols, timeframe, since, until,
        lambda sym, start: ccxt_pages(exchange, sym, timeframe, int(start.timestamp() * 1000), until_ms, page_limit))


def fetch_alpaca(store: Store, md: Any, symbols: Iterable[str], timeframe: str, since: datetime,
                 until: datetime, page_limit: int = 1000) -> list[dict]:
    """Alpaca bars (stocks, and crypto as BTC/USD) stored with source "alpaca"; incremental like ccxt."""
    from tokenomics.adapters.marketdata import alpaca_pages

    return fetch_incremental(store, "alpaca", "alpaca", symbols, timeframe, since, until,
                             lambda sym, start: alpaca_pages(md, sym, timeframe, start, until, page_limit))


def load_frame(store: Store, source: str, symbol: str, timeframe: str, until: datetime | None = None,
               limit: int | None = None):
    """One symbol's stored bars as a polars frame (ts as UTC datetime), oldest first."""
    import polars as pl

    sql = ("SELECT ts, open, high, low, close, volume FROM bars WHERE source = ? AND symbol = ? "
           "AND timeframe = ? AND ts <= ? ORDER BY ts DESC")
    params: list[Any] = [source, symbol, timeframe, (until or datetime.max.replace(tzinfo=timezone.utc)).isoformat()]
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    rows = store.all(sql, params)
    schema = {"ts": pl.String, "open": pl.Float64, "high": pl.Float64, "low": pl.Float64, "close": pl.Float64,
              "volume": pl.Float64}
    df = pl.DataFrame(rows[::-1], schema=schema, orient="row")
    return df.with_columns(pl.col("ts").str.to_datetime(time_zone="UTC"), pl.col("volume").fill_null(0.0))


def stored_symbols(store: Store, source: str, timeframe: str) -> list[str]:
    return [r["symbol"] for r in store.all(
        "SELECT DISTINCT symbol FROM bars WHERE source = ? AND timeframe = ? ORDER BY symbol", [source, timeframe])]
