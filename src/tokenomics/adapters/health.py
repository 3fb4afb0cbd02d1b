"""doctor's provider checks: keys present (names only, never values), connectivity, clock, account."""

from __future__ import annotations

from collections.abc import Callable

from tokenomics import keys


def key_check(provider: str) -> str:
    """Raise naming the missing variables; else say which are set."""
    keys.require(provider)
    return f"{provider} keys present: " + ", ".join(n for n, ok in keys.status(provider).items() if ok)


def provider_checks(rt) -> list[tuple[str, Callable[[], str]]]:
    """(name, check) for every real provider the config uses; each check raises with what is wrong."""
    s = rt.settings
    out: list[tuple[str, Callable[[], str]]] = []
    used = []
    live_paper = s.broker.provider == "paper"  # provider_checks runs in paper/live only: the book at live prices
    alpaca_prices = live_paper and (bool(s.universe.equities) or s.broker.crypto_prices == "alpaca")
    if s.news.provider == "alpaca" or s.broker.provider == "alpaca" or alpaca_prices:
        used.append("alpaca")
    if s.sentiment.provider == "gemini":
        used.append("gemini")
    if s.broker.provider == "ccxt":
        used.append("ccxt")
    for p in used:
        out.append((f"{p} keys", lambda p=p: key_check(p)))
    if s.broker.provider == "alpaca":
        def account() -> str:
            a = rt.broker.account()
            if a["status"] != "ACTIVE" or a["trading_blocked"]:
                raise RuntimeError(f"account status {a['status']}, trading blocked: {a['trading_blocked']}")
            return f"account {a['status']} ({'paper' if rt.broker.paper else 'LIVE'}), cash {a['cash']:,.2f}"

        def clock() -> str:
            c = rt.broker.clock()
            return f"market open: {c['is_open']} (server time {c['timestamp']}, next open {c['next_open']})"

        out += [("alpaca account", account), ("alpaca clock", clock)]
    if s.broker.provider == "ccxt":
        out.append(("ccxt exchange", lambda: rt.broker.check()))
    if live_paper:
        out.append(("prices", lambda: price_check(rt)))
    return out


def price_check(rt) -> str:
    """Where the store's paper broker takes its live prices, with one latest price (and its age) per source."""
    from tokenomics.store import utcnow

    s = rt.settings
    lp = rt.live_prices
    where = lp.describe()
    parts = []
    for cls, symbols in (("equity", s.universe.equities), ("crypto", s.universe.crypto)):
        if not symbols:
            continue
        sym = symbols[0]
        price, ts = lp.source(sym).quote(sym)
        age = f", last trade {(utcnow() - ts).total_seconds():.0f} s ago" if ts is not None else ""
        parts.append(f"{cls} from {where[cls]}: {sym} {price}{age}")
    return (f"paper broker in the store at live prices (fills within {s.broker.max_price_age_seconds:g} s of the "
            f"last trade, {s.broker.slippage_bps:g} bps slippage, {s.broker.fee_bps:g} bps fee); "
            + "; ".join(parts))
