"""The rebalance step over the store: price history, current allocation, the plan, and its execution
through the same idempotent order path and risk gate as `trade` (orders.create_order + orders.send).

Heavy libraries (pandas, skfolio, matplotlib) are imported inside the functions that need them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tokenomics.core import rebalance as rb
from tokenomics.core import risk
from tokenomics.core.errors import ConfigError, ProviderError, Refused
from tokenomics.core.money import cents
from tokenomics.runtime import Runtime
from tokenomics.store import iso
from tokenomics.trading import account, orders


# --- inputs ----------------------------------------------------------------------------------
def price_history(rt: Runtime, symbols: list[str], lookback: int) -> tuple[Any, str]:
    """Close prices (a DataFrame: UTC timestamps x symbols, NaN where a symbol has no bar) of the
    last `lookback` bars per symbol before now, and where they came from: the stored bars of the
    (source, timeframe) that covers every symbol, else the sim world's last `lookback` steps."""
    import pandas as pd

    now = iso(rt.now())
    marks = ",".join("?" * len(symbols))
    best = rt.store.one(
        f"SELECT source, timeframe, COUNT(DISTINCT symbol) AS n, COUNT(*) AS rows FROM bars "
        f"WHERE symbol IN ({marks}) AND ts < ? GROUP BY source, timeframe ORDER BY n DESC, rows DESC LIMIT 1",
        [*symbols, now])
    if best and best["n"] == len(symbols):
        rows = rt.store.all(
            f"SELECT symbol, ts, close FROM (SELECT symbol, ts, close, ROW_NUMBER() OVER "
            f"(PARTITION BY symbol ORDER BY ts DESC) AS rn FROM bars WHERE source = ? AND timeframe = ? "
            f"AND symbol IN ({marks}) AND ts < ?) WHERE rn <= ?",
            [best["source"], best["timeframe"], *symbols, now, lookback])
        origin = f"bars:{best['source']}/{best['timeframe']}"
    elif rt.mode == "sim":
        step = rt.sim_step()
        rows = rt.world.bars(max(step - lookback + 1, 1), step, symbols)
        origin = f"sim:{lookback} steps"
    else:
        raise ProviderError(f"no stored bars cover {', '.join(symbols)}", hint="run `tokenomics fetch-bars` first")
    if not rows:
        raise ProviderError("no price history for the rebalance symbols")
    frame = pd.DataFrame(rows)
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    wide = frame.pivot_table(index="ts", columns="symbol", values="close", aggfunc="last").sort_index()
    missing = [s for s in symbols if s not in wide.columns or wide[s].count() < 3]
    if missing:
        raise ProviderError(f"too little price history for {', '.join(missing)} (need 3 bars or more)",
                            hint="raise --lookback or fetch more bars")
    return wide[symbols], origin


@dataclass
class Allocation:
    """The account as the configured broker sees it: market value, quantity and price of each held
    universe symbol, the cash, and the holdings outside the universe (reported, never traded, and
    not part of the equity the weights are fractions of)."""

    source: str  # store (the paper broker's account) | alpaca | ccxt
    values: dict[str, float] = field(default_factory=dict)
    qtys: dict[str, float] = field(default_factory=dict)
    prices: dict[str, float] = field(default_factory=dict)
    cash: float = 0.0
    cash_currency: str = "USD"
    unmanaged: list[dict] = field(default_factory=list)

    def hold(self, symbol: str, qty: float, price: float) -> None:
        self.qtys[symbol], self.prices[symbol], self.values[symbol] = qty, price, cents(qty * price)

    def as_dict(self) -> dict:
        return {"source": self.source, "cash_currency": self.cash_currency,
                "positions": [{"symbol": s, "qty": self.qtys[s], "price": self.prices[s], "value": self.values[s]}
                              for s in sorted(self.values)], "unmanaged": self.unmanaged}


def current_allocation(rt: Runtime) -> Allocation:
    """The account at now: the store's book with the paper broker (sim); in paper and live modes the
    broker's own positions and cash (Alpaca), or balances (ccxt: a pair's base currency valued at its
    ticker, the pairs' quote currency as cash)."""
    name = rt.broker.name
    if name == "alpaca":
        return _alpaca_allocation(rt)
    if name == "ccxt":
        return _ccxt_allocation(rt)
    alloc = Allocation("store", cash=rt.store.cash(rt.settings.capital))
    for p in rt.store.positions():
        alloc.hold(p["symbol"], p["qty"], rt.price(p["symbol"]))
    return alloc


def _alpaca_allocation(rt: Runtime) -> Allocation:
    universe = set(rt.settings.universe.symbols)
    alloc = Allocation("alpaca", cash=cents(rt.broker.account()["cash"]))
    for h in rt.broker.holdings():
        if abs(h["qty"]) <= 1e-12:
            continue
        if h["symbol"] in universe:
            alloc.hold(h["symbol"], h["qty"], rt.price(h["symbol"]))
        else:
            alloc.unmanaged.append({"symbol": h["symbol"], "qty": h["qty"], "price": h["price"],
                                    "value": None if h["value"] is None else cents(h["value"])})
    return alloc


def quote_currency(pairs: list[str]) -> str:
    quotes = sorted({p.split("/")[1] for p in pairs})
    if len(quotes) != 1:
        raise ConfigError(f"universe.crypto: rebalancing on an exchange needs one quote currency for every pair "
                          f"(got {', '.join(quotes) or 'no pairs'})", hint="e.g. BTC/USDT and ETH/USDT")
    return quotes[0]


def _ccxt_allocation(rt: Runtime) -> Allocation:
    pairs = rt.settings.universe.crypto
    quote = quote_currency(pairs)
    balances = rt.broker.positions()  # currency -> total balance
    alloc = Allocation("ccxt", cash=cents(balances.get(quote, 0.0)), cash_currency=quote)
    bases = {p.split("/")[0]: p for p in pairs}
    for currency, amount in sorted(balances.items()):
        if currency == quote or abs(amount) <= 1e-12:
            continue
        if currency in bases:
            alloc.hold(bases[currency], amount, rt.price(bases[currency]))
            continue
        pair = f"{currency}/{quote}"
        price = rt.broker.price(pair) if rt.broker.has_market(pair) else None
        alloc.unmanaged.append({"symbol": currency, "qty": amount, "price": price,
                                "value": None if price is None else cents(amount * price)})
    return alloc


def store_mismatch(rt: Runtime, alloc: Allocation) -> list[str]:
    """Universe symbols whose quantity at the broker differs from the store's book."""
    universe = set(rt.settings.universe.symbols)
    ours = {p["symbol"]: p["qty"] for p in rt.store.positions() if p["symbol"] in universe}
    return [f"{s} (store {ours.get(s, 0.0):g}, broker {alloc.qtys.get(s, 0.0):g})"
            for s in sorted(set(ours) | set(alloc.qtys))
            if abs(ours.get(s, 0.0) - alloc.qtys.get(s, 0.0)) > 1e-9 * max(1.0, abs(ours.get(s, 0.0)))]


def account_warnings(rt: Runtime, alloc: Allocation) -> list[str]:
    if alloc.source == "store":
        return []
    differ = store_mismatch(rt, alloc)
    out = [f"store and broker differ on {', '.join(differ)}: --execute is refused until "
           "`tokenomics reconcile --accept`"] if differ else []
    if alloc.unmanaged:
        out.append(f"{len(alloc.unmanaged)} holding(s) outside the universe are left alone and not counted in "
                   "equity (see account.unmanaged)")
    return out


def make_plan(rt: Runtime, target: dict[str, float], min_trade_usd: float, band: float,
              alloc: Allocation | None = None) -> rb.Plan:
    alloc = alloc or current_allocation(rt)
    prices = {**alloc.prices, **{s: rt.price(s) for s in target}}
    b = rt.settings.broker
    return rb.plan_rebalance(values=alloc.values, qtys=alloc.qtys, prices=prices, cash=alloc.cash, target=target,
                             min_trade_usd=min_trade_usd, band=band, fee_bps=b.fee_bps,
                             slippage_bps=b.slippage_bps)


def gate_view(rt: Runtime) -> risk.Portfolio:
    """The portfolio the buy gate sees: the store's (pending entries, halts, cooldowns), with cash,
    equity and positions as the broker reports them when trading at a real broker."""
    pf = account.portfolio(rt)
    if rt.broker.name == "paper":
        return pf
    alloc = current_allocation(rt)
    return replace(pf, cash=alloc.cash, equity=cents(alloc.cash + sum(alloc.values.values())),
                   positions=dict(alloc.values), asset_classes={**pf.asset_classes,
                                                               **{s: rt.asset_class(s) for s in alloc.values}})


# --- execution -------------------------------------------------------------------------------
def _signal_row(rt: Runtime, sid: str, t: rb.Trade, pid: str, status: str, reason: str,
                notional: float | None) -> dict:
    now = iso(rt.now())
    return {"id": sid, "symbol": t.symbol, "side": t.side, "source": "rebalance", "strength": 1.0,
            "reason": f"rebalance {t.current_weight:.4f} -> {t.target_weight:.4f}", "ref": pid,
            "asset_class": rt.asset_class(t.symbol), "created_at": now, "status": status,
            "status_reason": reason, "size_method": "rebalance", "notional": notional, "updated_at": now}


def execute(rt: Runtime, target: dict[str, float], pid: str, min_trade_usd: float,
            band: float) -> tuple[rb.Plan, list[dict], Allocation]:
    """Plan and send, under the trading lock. Each (plan, symbol) is one signal with a deterministic
    id, so its order is made at most once: running the same plan again sends nothing. Refused while
    the store and the broker disagree (an open reconcile difference, or different quantities)."""
    st = rt.store
    results: list[dict] = []
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        orders.resume_unfinished(rt)
        account.mark_to_market(rt)
        if st.scalar("SELECT COUNT(*) FROM reconcile_diffs WHERE status = 'open'"):
            raise Refused("store and broker differ: no rebalance orders until they agree",
                          hint="see `tokenomics reconcile`; `tokenomics reconcile --accept` adopts the broker's view")
        alloc = current_allocation(rt)
        differ = store_mismatch(rt, alloc) if alloc.source != "store" else []
        if differ:
            raise Refused(f"store and broker hold different quantities of {', '.join(differ)}",
                          hint="run `tokenomics reconcile`, then `tokenomics reconcile --accept` to adopt the "
                               "broker's view")
        plan = make_plan(rt, target, min_trade_usd, band, alloc)
        lim = account.limits(rt)
        for t in plan.planned:
            sid = f"rebalance:{pid}:{t.symbol}"
            base = {"signal_id": sid, "symbol": t.symbol, "side": t.side}
            seen = st.one("SELECT status FROM signals WHERE id = ?", [sid])
            if seen:
                results.append({**base, "status": "done", "detail": f"already in this plan ({seen['status']})"})
                continue
            if not rt.tradable(t.symbol):
                results.append({**base, "status": "waiting", "detail": "market closed; run again when it opens"})
                continue
            if t.side == "sell":
                held = next((p for p in st.positions() if p["symbol"] == t.symbol), None)
                value = cents(held["qty"] * t.price) if held else 0.0
                d = risk.gate(risk.Proposal(t.symbol, "sell", cents(t.notional), "exit"),
                              risk.Portfolio(0, 0, {t.symbol: value} if held else {}), lim)
                qty, notional, intent = min(t.qty or 0.0, held["qty"] if held else 0.0), None, "exit"
            else:
                pf = gate_view(rt)
                d = rb.gate_buy(t.symbol, cents(t.notional), pf.positions.get(t.symbol, 0.0), pf, lim, rt.cost_rate,
                               rt.asset_class(t.symbol))
                qty, notional, intent = None, d.approved, "entry"
            order = None
            with st.tx():
                account.record_decision(rt, sid, "rebalance", cents(t.notional), d)
                st.insert_ignore("signals", [_signal_row(rt, sid, t, pid, "sized" if d.accepted else "rejected",
                                                         f"{d.decision}: {d.rule}", notional)])
                if d.accepted:
                    order = orders.create_order(rt, signal_id=sid, symbol=t.symbol, side=t.side, intent=intent,
                                                reason="rebalance", notional=notional, qty=qty)
            if order is None:
                results.append({**base, "status": "rejected", "detail": f"{d.rule}: {d.detail}"})
                continue
            r = orders.send(rt, order)
            results.append({**base, "status": r["status"], "client_order_id": r["client_order_id"],
                            "qty": r["qty"], "price": r["price"], "detail": r["error"] or d.rule})
        account.mark_to_market(rt)
    return plan, results, alloc


# --- output ----------------------------------------------------------------------------------
def plot(path: Path, current: dict[str, float], target: dict[str, float], frontier: list[dict],
         title: str) -> Path:
    """A PNG of current vs target weights (and the efficient frontier when computed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    symbols = sorted(set(current) | set(target) - {"cash"}) + ["cash"]
    ncols = 2 if frontier else 1
    fig, axes = plt.subplots(1, ncols, figsize=(7 * ncols, 4.5), squeeze=False)
    ax = axes[0][0]
    xs = range(len(symbols))
    ax.bar([x - 0.2 for x in xs], [current.get(s, 0.0) * 100 for s in symbols], width=0.4, label="current")
    ax.bar([x + 0.2 for x in xs], [target.get(s, 0.0) * 100 for s in symbols], width=0.4, label="target")
    ax.set_xticks(list(xs), symbols, rotation=45, ha="right")
    ax.set_ylabel("weight, % of equity")
    ax.set_title(title)
    ax.legend()
    if frontier:
        fx = axes[0][1]
        fx.plot([p["volatility"] * 100 for p in frontier], [p["expected_return"] * 100 for p in frontier], "o-")
        fx.set_xlabel("volatility, % a year")
        fx.set_ylabel("expected return, % a year")
        fx.set_title("efficient frontier")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
