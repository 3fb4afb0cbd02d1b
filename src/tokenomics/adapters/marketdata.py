"""Market data sources: the sim market, CSV/Parquet files, any ccxt exchange, and Alpaca.

Each yields bar rows {source, symbol, timeframe, ts (ISO open time, UTC), open, high, low, close,
volume} in pages, oldest first, so the caller can commit page by page and resume.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tokenomics.core.errors import ProviderError, UsageProblem
from tokenomics.store import iso

TS_NAMES = ("ts", "timestamp", "date", "datetime", "time", "open_time")
OHLCV = ("open", "high", "low", "close", "volume")


def _parse_time_text(values: list[str | None]) -> list[datetime | None]:
    """ISO-8601 texts the column-wide parse left out (another format than the column's first value)."""
    out: list[datetime | None] = []
    for v in values:
        try:
            t = datetime.fromisoformat(v.strip().replace("Z", "+00:00")) if v else None
        except ValueError:
            t = None
        out.append(t if t is None or t.tzinfo else t.replace(tzinfo=timezone.utc))
    return out


def read_file(path: Path, symbol: str | None, timeframe: str, source: str = "file") -> tuple[list[dict], list[dict]]:
    """Bars from a CSV or Parquet (or Arrow IPC/feather) file; columns found by name, case-insensitive.

    The time column is the first of ts/timestamp/date/datetime/time/open_time; numbers are taken as
    epoch seconds or milliseconds (by magnitude). A `symbol` column is used when --symbol is not given.
    Returns (valid bars, invalid rows): a row with an unreadable time or price, or an impossible bar
    (core.bars.bar_problem), is left out and described as {where: "line N" (CSV) or "row N", problem,
    symbol, ts (None when unreadable)}.
    """
    import polars as pl

    from tokenomics.core.bars import bar_problem

    if not path.exists():
        raise UsageProblem(f"--file not found: {path}")
    if path.is_dir():
        raise UsageProblem(f"--file {path} is a folder, not a file")
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            df = pl.read_parquet(path)
        elif suffix in (".feather", ".arrow", ".ipc"):
            df = pl.read_ipc(path)
        else:
            df = pl.read_csv(path, try_parse_dates=True)
    except Exception as exc:  # polars raises several exception types for unreadable files
        raise UsageProblem(f"cannot read {path}: {' '.join(str(exc).split())[:300]}") from None
    cols = {c.lower(): c for c in df.columns}
    ts_col = next((cols[n] for n in TS_NAMES if n in cols), None)
    missing = [n for n in OHLCV[:4] if n not in cols]
    if ts_col is None or missing:
        raise UsageProblem(
            f"{path}: need a time column ({'/'.join(TS_NAMES)}) and open, high, low, close "
            f"(found {', '.join(df.columns)})")
    if symbol is None and "symbol" not in cols:
        raise UsageProblem(f"{path} has no symbol column: give --symbol")
    raw_ts = df[ts_col]
    ts = raw_ts
    if ts.dtype.is_numeric():
        finite = ts.cast(pl.Float64).filter(ts.cast(pl.Float64).is_finite())
        unit = "ms" if finite.len() and float(finite.abs().max()) > 1e11 else "s"
        ts = pl.from_epoch(ts.cast(pl.Int64, strict=False), time_unit=unit).dt.replace_time_zone("UTC")
    elif ts.dtype == pl.String:
        ts = ts.str.to_datetime(time_zone="UTC", strict=False)
        lost = (ts.is_null() & raw_ts.is_not_null()).arg_true().to_list()
        if lost:  # another ISO format than the first row's: parsed one by one
            ts = ts.scatter(lost, pl.Series(_parse_time_text(raw_ts.gather(lost).to_list()),
                                            dtype=pl.Datetime("us", "UTC")))
    elif ts.dtype == pl.Date:
        ts = ts.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
    elif isinstance(ts.dtype, pl.Datetime) and ts.dtype.time_zone is None:
        ts = ts.dt.replace_time_zone("UTC")
    elif not isinstance(ts.dtype, pl.Datetime):
        raise UsageProblem(f"{path}: the time column {ts_col!r} holds {ts.dtype}, not times")
    ts = ts.dt.convert_time_zone("UTC")
    n = df.height
    names = [*OHLCV[:4], *(["volume"] if "volume" in cols else [])]
    frame = pl.DataFrame({
        "symbol": df[cols["symbol"]].cast(pl.String).str.to_uppercase() if symbol is None else [symbol] * n,
        "ts": ts.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "raw_ts": raw_ts.cast(pl.String),
        **{c: df[cols[c]].cast(pl.Float64, strict=False) for c in names},
        **{f"raw_{c}": df[cols[c]].cast(pl.String) for c in names},
    })
    first_line = 2 if suffix not in (".parquet", ".feather", ".arrow", ".ipc") else 1
    where = "line" if first_line == 2 else "row"
    o, h, lo, c = (pl.col(x) for x in OHLCV[:4])
    ok = pl.col("ts").is_not_null() & pl.col("symbol").is_not_null() & (pl.col("symbol") != "")
    for x in (o, h, lo, c):
        ok = ok & x.is_not_null() & x.is_finite() & (x > 0)
    ok = ok & (h >= lo) & o.is_between(lo, h) & c.is_between(lo, h)
    if "volume" in names:
        v = pl.col("volume")
        ok = ok & (v.is_null() | v.is_nan() | (v.is_finite() & (v >= 0)))
    frame = frame.with_row_index("row").with_columns(ok.fill_null(False).alias("ok"))
    good = frame.filter(pl.col("ok")).select(
        pl.lit(source).alias("source"), "symbol", pl.lit(timeframe).alias("timeframe"), "ts", *OHLCV[:4],
        (pl.col("volume").fill_nan(None) if "volume" in names else pl.lit(None, dtype=pl.Float64)).alias("volume"),
    ).sort("symbol", "ts").to_dicts()
    invalid = []
    for r in frame.filter(~pl.col("ok")).iter_rows(named=True):  # the few bad rows: say why, one by one
        if r["ts"] is None:
            problem = f"time {r['raw_ts']!r} is not a date/time" if r["raw_ts"] is not None else "time is missing"
        else:
            problem = next((f"{x} {r['raw_' + x]!r} is not a number" for x in names
                            if r[x] is None and r["raw_" + x] not in (None, "")), None)
        if problem is None and not r["symbol"]:
            problem = "symbol is missing"
        problem = problem or bar_problem(r["open"], r["high"], r["low"], r["close"], r.get("volume")) or "invalid"
        invalid.append({"where": f"{where} {r['row'] + first_line}", "problem": problem, "symbol": r["symbol"],
                        "ts": r["ts"]})
    return good, invalid


def make_exchange(exchange_id: str, rate_limit_ms: int | None = None, sandbox: bool = False) -> Any:
    import ccxt

    cls = getattr(ccxt, exchange_id, None)
    if cls is None or exchange_id not in ccxt.exchanges:
        raise UsageProblem(f"unknown ccxt exchange id {exchange_id!r}", hint="e.g. binance, kraken, coinbase")
    opts: dict[str, Any] = {"enableRateLimit": True}
    if rate_limit_ms is not None:
        opts["rateLimit"] = rate_limit_ms
    ex = cls(opts)
    if sandbox:
        ex.set_sandbox_mode(True)
    return ex


def ccxt_pages(ex: Any, symbol: str, timeframe: str, since_ms: int, until_ms: int,
               limit: int = 1000) -> Iterator[list[dict]]:
    """fetch_ohlcv page by page from since_ms (inclusive) until until_ms (exclusive), oldest first.

    Stops at an empty page or one that does not move forward. Bars whose period has not ended
    by until_ms (the still-forming bar) are left out.
    """
    import ccxt

    from tokenomics.core.bars import timeframe_seconds

    tf_ms = timeframe_seconds(timeframe) * 1000
    source = f"ccxt:{ex.id}"
    since = since_ms
    while since < until_ms:
        try:
            raw = ex.fetch_ohlcv(symbol, timeframe, since=since, limit=limit)
        except ccxt.BadSymbol as exc:
            raise UsageProblem(f"{ex.id} does not list {symbol}: {exc}") from None
        except ccxt.BaseError as exc:
            raise ProviderError(f"{ex.id} fetch_ohlcv({symbol}, {timeframe}) failed: {type(exc).__name__}: {exc}",
                                hint="re-run: the fetch resumes from the last stored bar") from None
        rows = [
            {"source": source, "symbol": symbol, "timeframe": timeframe,
             "ts": iso(datetime.fromtimestamp(c[0] / 1000, timezone.utc)), "open": float(c[1]),
             "high": float(c[2]), "low": float(c[3]), "close": float(c[4]),
             "volume": None if c[5] is None else float(c[5])}
            for c in raw if c[0] >= since and c[0] + tf_ms <= until_ms
        ]
        if rows:
            yield rows
        if not raw or raw[-1][0] < since:
            return
        nxt = int(raw[-1][0]) + tf_ms
        if nxt <= since:
            return
        since = nxt


def alpaca_pages(md: Any, symbol: str, timeframe: str, start: datetime, until: datetime,
                 limit: int = 1000) -> Iterator[list[dict]]:
    """Alpaca bars page by page from start (inclusive) until `until`, oldest first, at most `limit` a page.

    Each page asks from the bar after the previous page's last one; it stops at a short page or one that
    does not move forward. Bars whose period has not ended by `until` (the still-forming bar) are left out.
    """
    from datetime import timedelta

    from tokenomics.adapters.market.alpaca import alpaca_timeframe
    from tokenomics.core.bars import timeframe_seconds

    step = timedelta(seconds=timeframe_seconds(timeframe))
    tf = alpaca_timeframe(timeframe)
    while start + step <= until:
        raw = md.bars(symbol, tf, start, until - step, limit)
        rows = []
        for b in raw:
            ts = datetime.fromisoformat(b["t"].replace("Z", "+00:00")).astimezone(timezone.utc)
            if start <= ts and ts + step <= until:
                rows.append({"source": "alpaca", "symbol": symbol, "timeframe": timeframe, "ts": iso(ts),
                             "open": float(b["o"]), "high": float(b["h"]), "low": float(b["l"]),
                             "close": float(b["c"]), "volume": None if b.get("v") is None else float(b["v"])})
        if rows:
            yield rows
        if len(raw) < limit or not rows:
            return
        start = datetime.fromisoformat(rows[-1]["ts"]) + step
