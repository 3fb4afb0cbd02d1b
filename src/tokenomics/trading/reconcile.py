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
        out = {s: held.get(s.split("/")[0], 0.0) for s in rt.settings.universe.crypto if held.get(s.split("/")[0])}
        # dust below the market's step (left by a fee in the coin) cannot be sold: not a position
        return {s: q for s, q in out.items() if q >= b.dust(s)}
    # a holding outside the universe that tokenomics never held is not its business (nor its to trade)
    mine = set(rt.settings.universe.symbols) | {p["symbol"] for p in rt.store.positions()}
    return {s: q for s, q in held.items() if s in mine}


def open_diffs(rt: Runtime) -> list[dict]:
    return rt.store.all("SELECT * FROM reconcile_diffs WHERE status = 'open' ORDER BY id")


def reconcile(rt: Runtime, accept: bool = False) -> dict:
    st = rt.store
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        failed: list[dict] = []
        adopted = orders.resume_unfinished(rt, failed)  # fills and closes that happened while we were down
        # a symbol whose own open order could not be looked up may differ only by that order's fill:
        # nothing of it is booked on accept until the order has been seen (no double booking)
        unsure = {o["symbol"] for o in failed}
        theirs = broker_positions(rt)
        book_coin_fees(rt, theirs, unsure)
        ours = {p["symbol"]: p for p in st.positions()}
        now = iso(rt.now())
        found = []
        for sym in sorted(set(theirs) | set(ours)):
            mine = ours[sym]["qty"] if sym in ours else 0.0
            if abs(mine - theirs.get(sym, 0.0)) > TOLERANCE * max(1.0, abs(mine)):
                found.append({"kind": "position_qty", "symbol": sym, "store_view": mine,
                              "broker_view": theirs.get(sym, 0.0)})
        # what each reduction sold for (shown, and booked on accept): asked before any write transaction
        exits = {d["symbol"]: exit_fill(rt, ours[d["symbol"]], ours[d["symbol"]]["qty"] - max(d["broker_view"], 0.0))
                 for d in found if d["symbol"] in ours and d["broker_view"] < d["store_view"]}
        # adoptions are priced before the write transaction too (no network I/O inside it)
        prices = {d["symbol"]: rt.price(d["symbol"]) for d in found
                  if accept and d["broker_view"] > d["store_view"] and d["symbol"] not in unsure}
        overfills = [{"kind": "overfill", "id": r["id"], "symbol": r["symbol"], "client_order_id": r["client_order_id"],
                      "store_view": json.loads(r["store_view"]), "broker_view": json.loads(r["broker_view"]),
                      "found_at": r["found_at"],
                      "note": "our order sold more than the store held (a late fill after the position was booked "
                              "closed); check the account, then `reconcile --accept`"}
                     for r in st.all("SELECT * FROM reconcile_diffs WHERE status = 'open' AND kind = 'overfill' "
                                     "ORDER BY id")]
        for d in found:
            if d["symbol"] in exits:
                d.update(exit_price=exits[d["symbol"]]["price"], price_source=exits[d["symbol"]]["source"])
        with st.tx(durable=True):
            st.execute("UPDATE reconcile_diffs SET status = 'resolved', resolved_at = ? WHERE status = 'open' "
                       "AND kind = 'position_qty'", [now])
            if accept:  # a person has looked: over-fills are accepted as booked
                st.execute("UPDATE reconcile_diffs SET status = 'accepted', resolved_at = ? WHERE status = 'open' "
                           "AND kind = 'overfill'", [now])
            for d in found:
                hold = None
                if accept and d["symbol"] in unsure:
                    hold = "an open order of ours could not be looked up: nothing booked until it is seen"
                elif accept and d["broker_view"] < -TOLERANCE:
                    hold = "short at the broker: tokenomics holds long positions only; buy it back at the broker"
                if hold:
                    d["note"] = hold
                st.insert("reconcile_diffs", {
                    "found_at": now, "kind": d["kind"], "symbol": d["symbol"], "client_order_id": None,
                    "store_view": json.dumps(d["store_view"]), "broker_view": json.dumps(d["broker_view"]),
                    "status": "accepted" if accept and not hold else "open",
                    "resolved_at": now if accept and not hold else None})
                if hold:
                    continue
                if accept and d["symbol"] in exits:
                    coid, booked = book_exit(rt, ours[d["symbol"]], exits[d["symbol"]])
                    closed = booked["closed"] if booked else None
                    d.update(client_order_id=coid, closed=closed is not None,
                             realized_pnl=closed["pnl"] if closed else None)
                    if booked and not closed:  # a part sold: its gain, before fees
                        after = st.scalar("SELECT realized_partial FROM positions WHERE symbol = ?", [d["symbol"]])
                        d["partial_gain"] = round(after - ours[d["symbol"]]["realized_partial"], 2)
                elif accept:
                    adopt(rt, d["symbol"], d["broker_view"], ours.get(d["symbol"]), prices[d["symbol"]])
                    d["adopted"] = "new position at the market price" if d["symbol"] not in ours else "quantity"
    rows = found + overfills
    return {"orders_updated": len(adopted), "differences": len(rows), "accepted": accept and bool(rows),
            "realized_pnl": round(sum(d.get("realized_pnl") or 0.0 for d in found), 2), "rows": rows}


COIN_FEE_MAX = 0.01  # a crypto holding at most 1 % short of the store's, with no sale to explain it, is the fee


def book_coin_fees(rt: Runtime, theirs: dict[str, float], unsure: set[str]) -> list[str]:
    """Alpaca takes its crypto fee out of the coin received and reports it only as an account activity:
    a crypto position the broker holds slightly less of than the store (at most COIN_FEE_MAX), with no
    sale at the broker to explain it, is booked as that fee (a fill of the entry with the fee in the coin,
    no cash), so the position's quantity is what the broker holds. Returns the symbols adjusted."""
    if rt.broker.name != "alpaca":
        return []
    done = []
    for p in rt.store.positions():
        sym, held = p["symbol"], theirs.get(p["symbol"])
        if p["asset_class"] != "crypto" or held is None or sym in unsure:
            continue
        short = round(p["qty"] - held, 12)
        if not (TOLERANCE < short <= COIN_FEE_MAX * p["qty"]):
            continue
        if foreign_sells(rt, p):
            continue  # a sale at the broker: reconcile's business, not a fee
        coin, now = sym.split("/")[0], iso(rt.now())
        with rt.store.tx():
            rt.store.insert_ignore("fills", [{
                "id": f"coinfee:{p['entry_order_id']}:{held:.12g}", "client_order_id": p["entry_order_id"],
                "symbol": sym, "side": "buy", "qty": 0.0, "price": 0.0, "fee": short, "fee_currency": coin,
                "cash_flow": 0.0, "ts": now}])
            rt.store.execute("UPDATE positions SET qty = ?, avg_price = cost / ?, updated_at = ? WHERE symbol = ?",
                             [held, held, now, sym])
        done.append(sym)
    return done


def foreign_sells(rt: Runtime, pos: dict) -> list[dict]:
    """The broker's filled sells of a position's symbol since it opened that are not our own orders."""
    sells = getattr(rt.broker, "sells", None)
    found = sells(pos["symbol"], pos["opened_at"]) if sells else []
    ours: set[str] = set()  # our own orders, by client and by broker order id
    for r in rt.store.all("SELECT client_order_id, broker_order_id FROM orders WHERE symbol = ?", [pos["symbol"]]):
        ours |= {r["client_order_id"], *(r["broker_order_id"] or "").split(",")} - {""}
    return [s for s in found if s["client_order_id"] not in ours and s["order_id"] not in ours]


def exit_fill(rt: Runtime, pos: dict, qty: float) -> dict:
    """The sale behind a position the broker shows `qty` smaller: {qty, price, fee, ts, source,
    broker_order_id, reason}. The price is the volume-weighted price of the broker's newest filled
    sells of the symbol since the position opened that are not tokenomics' own orders; any quantity
    they do not cover is priced at the current market price. `source` says which."""
    left, value, fee, used = qty, 0.0, 0.0, []
    for s in foreign_sells(rt, pos):
        if left <= TOLERANCE:
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


def adopt(rt: Runtime, symbol: str, broker_qty: float, pos: dict | None, price: float) -> None:
    """Take on what the broker holds beyond the store's book (a position bought by hand, or more of
    one) as a filled entry at the market price: the store's cash pays for it, so adopting never adds
    equity out of nothing (which would loosen every %-of-equity limit)."""
    held = pos["qty"] if pos else 0.0
    qty, now = round(broker_qty - held, 12), iso(rt.now())
    _book(rt, {"id": f"reconcile:adopt:{symbol}:{held:.9g}+{qty:.9g}:{now}", "symbol": symbol,
               "source": "reconcile", "asset_class": rt.asset_class(symbol), "ref": symbol, "size_method": "adopt",
               "reason": f"held at the broker: adopted at the market price {price}"},
          side="buy", intent="entry", reason="adopted", qty=qty, price=price, fee=0.0, ts=now)
