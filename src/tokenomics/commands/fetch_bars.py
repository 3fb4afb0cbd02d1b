"""fetch-bars: OHLCV bars from the sim market, a CSV/Parquet file, a ccxt exchange or Alpaca into the store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import typer

from tokenomics.commands import symbol_list
from tokenomics.core.errors import UsageProblem
from tokenomics.output import emit

app = typer.Typer()


@app.command()
def fetch_bars(
    ctx: typer.Context,
    source: str = typer.Option(None, "--source", help="sim | file | ccxt | alpaca (default: bars.source)."),
    symbol: list[str] = typer.Option(None, "--symbol", "-s", help="Symbol(s) to fetch (default: bars.symbols, "
                                     "else the universe (ccxt: its crypto); for a file: its symbol column)."),
    timeframe: str = typer.Option(None, "--timeframe", "-t", help="1m, 15m, 1h, 1d... (default: bars.timeframe; "
                                  "sim: the sim step)."),
    file: Path = typer.Option(None, "--file", help="CSV, Parquet or Arrow file for --source file."),
    exchange: str = typer.Option(None, "--exchange", help="ccxt exchange id (default: bars.exchange)."),
    since: datetime = typer.Option(None, "--since", help="First bar of a first ccxt or alpaca fetch (default: bars.since)."),
) -> None:
    """Fetch bars into the store, keyed by (source, symbol, timeframe, ts). Re-runs insert nothing twice;
    each page is committed, so an interrupted fetch resumes from the last stored bar. Gaps are reported."""
    from tokenomics.core.bars import canonical_timeframe
    from tokenomics.research import bars
    from tokenomics.store import utcnow

    rt = ctx.obj
    cfg = rt.settings.bars
    source = source or cfg.source
    if source not in bars.SOURCES:
        raise UsageProblem(f"--source must be one of {', '.join(bars.SOURCES)} (got {source!r})")
    symbols = symbol_list(symbol) or None
    try:
        tf = canonical_timeframe(timeframe or cfg.timeframe)  # 60m and 1h: one timeframe, stored as 1h
    except ValueError as exc:
        raise UsageProblem(str(exc)) from None
    if source == "alpaca":
        from tokenomics.adapters.market.alpaca import alpaca_timeframe

        alpaca_timeframe(tf)  # exit 2 before any connection
    if source == "sim" and timeframe:
        raise UsageProblem("sim bars have the sim step as timeframe: drop --timeframe")
    if source == "file":  # read and checked before the run is recorded: a refused file leaves the store as it was
        if file is None:
            raise UsageProblem("--source file needs --file PATH")
        if symbols and len(symbols) > 1:
            raise UsageProblem("--source file takes one --symbol (or a symbol column in the file)")
        from_file = bars.read_file(file, symbols[0] if symbols else None, tf)
    with rt.store.run("fetch-bars", rt.mode) as counts:
        if source == "sim":
            rows = bars.fetch_sim(rt, symbols or cfg.symbols or rt.settings.universe.symbols)
        elif source == "file":
            rows = bars.store_file(rt, *from_file, tf)
        else:
            start = since or cfg.since
            if start.tzinfo is None:
                start = start.replace(tzinfo=cfg.since.tzinfo)
            if source == "ccxt":
                from tokenomics.adapters.marketdata import make_exchange

                ex = make_exchange(exchange or cfg.exchange, cfg.rate_limit_ms)
                rows = bars.fetch_ccxt(rt.store, ex, symbols or cfg.symbols or rt.settings.universe.crypto, tf,
                                       start, utcnow(), cfg.page_limit)
            else:
                from tokenomics.adapters.alpaca_http import canonical

                u = rt.settings.universe
                wanted = [canonical(s, u.crypto) for s in symbols or cfg.symbols or u.symbols]  # BTCUSD: BTC/USD
                rows = bars.fetch_alpaca(rt.store, rt.alpaca_data, wanted, tf, start, utcnow(), cfg.page_limit)
        counts.update(fetched=sum(r["fetched"] for r in rows), new=sum(r["new"] for r in rows))
    doc = {"source": source, "fetched": sum(r["fetched"] for r in rows), "new": sum(r["new"] for r in rows),
           "gaps": sum(r["gaps"] for r in rows)}
    if source != "sim":
        doc["invalid"] = sum(r["invalid"] for r in rows)  # impossible bars left out (with a warning)
    doc["rows"] = rows
    emit(rt, doc, title="fetch-bars", columns=["symbol", "timeframe", "fetched", "new", "last", "gaps", "missing_bars",
                                               *(["invalid"] if source != "sim" else [])])

