"""Store vs broker: finish open orders from the broker's view, compare positions, record every
difference, and (with accept) adopt the broker's view. orders.trade sends no new entry while a
difference is open.

Adopting a position the broker holds beyond the store's book books a filled entry at the market
price (the store's cash pays for it, as the broker's did).

Adopting a position the broker shows closed (or smaller) books it like any exit: a sell fill at
the price the broker sold it for (its most recent filled sells of the symbol since the position
opened that tokenomics did not send: a hand close, or a stop held at the broker), else at the
current market price, through orders.apply_update, so the trades table, realized P&L and the
store's cash stay consistent. The row says which price was used."""

from __future__ import annotations

import json

from tokenomics.adapters.brokers.base import Fill, OrderUpdate
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts
from tokenomics.trading import orders

TOLERANCE = 1e-9
STOP_TYPES = ("stop", "stop_limit", "trailing_stop")


def broker_positions(rt: Runtime) -> dict[str, float]:
    b = rt.broker
    if b.name == "paper":
        return b.holdings()
    held = b.positions()
    if b.name == "ccxt":  # balances per currency: a pair's position is its base currency's balance
        return {s: held.get(s.split("/")[0], 0.0) for s in rt.settings.universe.crypto if held.get(s.split("/")[0])}
    # a holding outside the universe that tokenomics never held is not its business (nor its to trade)
    mine = set(rt.settings.universe.symbols) | {p["symbol"] for p in rt.store.positions()}
    return {s: q for s, q in held.items() if s in mine}


def open_diffs(rt: Runtime) -> list[dict]:
    return rt.store.all("SELECT * FROM reconcile_diffs WHERE status = 'open' ORDER BY id")


def reconcile(rt: Runtime, accept: bool = False) -> dict:
    st = rt.store
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        adopted = orders.resume_unfinished(rt)  # fills and closes that happened while we were down
        theirs = broker_positions(rt)
        ours = {p["symbol"]: p for p in st.positions()}
        now = iso(rt.now())
        found = []
        for sym in sorted(set(theirs) | set(ours)):
            mine = ours[sym]["qty"] if sym in ours else 0.0
            if abs(mine - theirs.get(sym, 0.0)) > TOLERANCE * max(1.0, abs(mine)):
                found.append({"kind": "position_qty", "symbol": sym, "store_view": mine,
                              "broker_view": theirs.get(sym, 0.0)})
        # what each reduction sold for (shown, and booked on accept): asked before any write transaction
        exits = {d["symbol"]: exit_fill(rt, ours[d["symbol"]], ours[d["symbol"]]["qty"] - d["broker_view"])
                 for d in found if d["symbol"] in ours and d["broker_view"] < d["store_view"]}
        for d in found:
            if d["symbol"] in exits:
                d.update(exit_price=exits[d["symbol"]]["price"], price_source=exits[d["symbol"]]["source"])
        with st.tx(durable=True):
            st.execute("UPDATE reconcile_diffs SET status = 'resolved', resolved_at = ? WHERE status = 'open'", [now])
            for d in found:
                st.insert("reconcile_diffs", {
                    "found_at": now, "kind": d["kind"], "symbol": d["symbol"], "client_order_id": None,
                    "store_view": json.dumps(d["store_view"]), "broker_view": json.dumps(d["broker_view"]),
                    "status": "accepted" if accept else "open", "resolved_at": now if accept else None})
                if accept and d["symbol"] in exits:
                    coid, booked = book_exit(rt, ours[d["symbol"]], exits[d["symbol"]])
                    closed = booked["closed"] if booked else None
                    d.update(client_order_id=coid, closed=closed is not None,
                             realized_pnl=closed["pnl"] if closed else None)
                    if booked and not closed:  # a part sold: its gain, before fees
                        after = st.scalar("SELECT realized_partial FROM positions WHERE symbol = ?", [d["symbol"]])
                        d["partial_gain"] = round(after - ours[d["symbol"]]["realized_partial"], 2)
                elif accept:
                    adopt(rt, d["symbol"], d["broker_view"], ours.get(d["symbol"]))
                    d["adopted"] = "new position at the market price" if d["symbol"] not in ours else "quantity"
    return {"orders_updated": len(adopted), "differences": len(found), "accepted": accept and bool(found),
            "realized_pnl": round(sum(d.get("realized_pnl") or 0.0 for d in found), 2), "rows": found}


def exit_fill(rt: Runtime, pos: dict, qty: float) -> dict:
    """The sale behind a position the broker shows `qty` smaller: {qty, price, fee, ts, source,
    broker_order_id, reason}. The price is the volume-weighted price of the broker's newest filled
    sells of the symbol since the position opened that are not tokenomics' own orders; any quantity
    they do not cover is priced at the current market price. `source` says which."""
    st = rt.store
    sells = getattr(rt.broker, "sells", None)
    found = sells(pos["symbol"], pos["opened_at"]) if sells else []
    ours: set[str] = set()  # our own orders, by client and by broker order id
    for r in st.all("SELECT client_order_id, broker_order_id FROM orders WHERE symbol = ?", [pos["symbol"]]):
        ours |= {r["client_order_id"], *(r["broker_order_id"] or "").split(",")} - {""}
    left, value, fee, used = qty, 0.0, 0.0, []
    for s in found:
        if left <= TOLERANCE or s["client_order_id"] in ours or s["order_id"] in ours:
            continue
        take = min(left, s["qty"])
        value, fee, left = value + take * s["price"], fee + s["fee"] * take / s["qty"], left - take
        used.append(s)
    if left > TOLERANCE * max(1.0, qty):
        market = rt.price(pos["symbol"])
        value += left * market
        source = "market price (no broker sell found)" if not used else "broker sells + market price for the rest"
    else:
        source = f"broker sell order {used[0]['order_id']}" if len(used) == 1 else "broker sell orders"
    stop = any(s["type"] in STOP_TYPES for s in used)
    return {"qty": qty, "price": round(value / qty, 6), "fee": round(fee, 2), "source": source,
            "ts": iso(parse_ts(used[0]["ts"])) if used and used[0]["ts"] else iso(rt.now()),
            "reason": "stop_loss" if stop else "closed_at_broker",
            "broker_order_id": ",".join(s["order_id"] for s in used)}


def _book(rt: Runtime, signal: dict, *, side: str, intent: str, reason: str, qty: float, price: float,
          fee: float, ts: str, broker_order_id: str = "") -> dict | None:
    """Book what the broker already did (or holds) as a filled order of its own signal, through
    orders.apply_update. Keyed on the signal id: the same thing accepted twice is booked once (None)."""
    now = iso(rt.now())
    rt.store.insert_ignore("signals", [{
        **signal, "side": side, "strength": 1.0, "created_at": now, "status": "sized",
        "status_reason": "adopted by reconcile --accept", "notional": round(qty * price, 2), "updated_at": now}])
    order = orders.create_order(rt, signal_id=signal["id"], symbol=signal["symbol"], side=side, intent=intent,
                                reason=reason, qty=qty)
    if order is None:
        return None
    coid = order["client_order_id"]
    fill = Fill(f"reconcile:{coid}", qty, price, fee, ts)
    return orders.apply_update(rt, OrderUpdate(coid, "filled", broker_order_id, (fill,), ""))


def book_exit(rt: Runtime, pos: dict, sale: dict) -> tuple[str, dict | None]:
    """Book a sale made at the broker as a filled exit order of the position: a sell fill, its cash,
    and (when it closes the position) a trades row with the realized P&L. Keyed on the position and
    the quantities. Returns (client_order_id, the booking, or None when it was booked before)."""
    sid = f"reconcile:{pos['entry_order_id']}:{pos['qty']:.9g}-{sale['qty']:.9g}"
    booked = _book(rt, {"id": sid, "symbol": pos["symbol"], "source": "exit", "asset_class": pos["asset_class"],
                        "reason": f"{sale['reason']} at {sale['price']} ({sale['source']})",
                        "ref": pos["entry_order_id"], "size_method": "close"},
                   side="sell", intent="exit", reason=sale["reason"], qty=sale["qty"], price=sale["price"],
                   fee=sale["fee"], ts=sale["ts"], broker_order_id=sale["broker_order_id"])
    return orders.client_order_id(sid), booked


def adopt(rt: Runtime, symbol: str, broker_qty: float, pos: dict | None) -> None:
    """Take on what the broker holds beyond the store's book (a position bought by hand, or more of
    one) as a filled entry at the market price: the store's cash pays for it, so adopting never adds
    equity out of nothing (which would loosen every %-of-equity limit)."""
    held = pos["qty"] if pos else 0.0
    qty, price, now = round(broker_qty - held, 12), rt.price(symbol), iso(rt.now())
    _book(rt, {"id": f"reconcile:adopt:{symbol}:{held:.9g}+{qty:.9g}:{now}", "symbol": symbol,
               "source": "reconcile", "asset_class": rt.asset_class(symbol), "ref": symbol, "size_method": "adopt",
               "reason": f"held at the broker: adopted at the market price {price}"},
          side="buy", intent="entry", reason="adopted", qty=qty, price=price, fee=0.0, ts=now)
