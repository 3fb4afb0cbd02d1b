"""Store vs broker: finish open orders from the broker's view, compare positions, record every
difference, and (with accept) adopt the broker's view. engine.trade sends no new entry while a
difference is open."""

from __future__ import annotations

import json

from tokenomics import engine
from tokenomics.runtime import Runtime
from tokenomics.store import iso

TOLERANCE = 1e-9


def broker_positions(rt: Runtime) -> dict[str, float]:
    b = rt.broker
    if b.name == "paper":
        return b.holdings()
    held = b.positions()
    if b.name == "ccxt":  # balances per currency: a pair's position is its base currency's balance
        return {s: held.get(s.split("/")[0], 0.0) for s in rt.settings.universe.crypto if held.get(s.split("/")[0])}
    return held


def open_diffs(rt: Runtime) -> list[dict]:
    return rt.store.all("SELECT * FROM reconcile_diffs WHERE status = 'open' ORDER BY id")


def reconcile(rt: Runtime, accept: bool = False) -> dict:
    st = rt.store
    with st.trade_lock(rt.settings.trading.lock_timeout_seconds):
        adopted = engine.resume_unfinished(rt)  # fills and closes that happened while we were down
        theirs = broker_positions(rt)
        ours = {p["symbol"]: p for p in st.positions()}
        now = iso(rt.now())
        found = []
        for sym in sorted(set(theirs) | set(ours)):
            mine = ours[sym]["qty"] if sym in ours else 0.0
            if abs(mine - theirs.get(sym, 0.0)) > TOLERANCE * max(1.0, abs(mine)):
                found.append({"kind": "position_qty", "symbol": sym, "store_view": mine,
                              "broker_view": theirs.get(sym, 0.0)})
        with st.tx():
            st.execute("UPDATE reconcile_diffs SET status = 'resolved', resolved_at = ? WHERE status = 'open'", [now])
            for d in found:
                st.db["reconcile_diffs"].insert({
                    "found_at": now, "kind": d["kind"], "symbol": d["symbol"], "client_order_id": None,
                    "store_view": json.dumps(d["store_view"]), "broker_view": json.dumps(d["broker_view"]),
                    "status": "accepted" if accept else "open", "resolved_at": now if accept else None})
                if accept:
                    adopt(rt, d["symbol"], d["broker_view"], ours.get(d["symbol"]))
    return {"orders_updated": len(adopted), "differences": len(found), "accepted": accept and bool(found),
            "rows": found}


def adopt(rt: Runtime, symbol: str, qty: float, pos: dict | None) -> None:
    """Make the store's position match the broker's quantity (a hand close, a stop filled while down)."""
    st = rt.store
    if qty <= TOLERANCE:
        st.execute("DELETE FROM positions WHERE symbol = ?", [symbol])
    elif pos is not None:
        st.execute("UPDATE positions SET qty = ?, cost = avg_price * ?, updated_at = ? WHERE symbol = ?",
                   [qty, qty, iso(rt.now()), symbol])
    else:
        price = rt.price(symbol)
        st.db["positions"].insert({
            "symbol": symbol, "qty": qty, "avg_price": price, "cost": qty * price, "fees": 0.0,
            "opened_at": iso(rt.now()), "entry_order_id": f"adopted:{symbol}", "source": "reconcile",
            "signal_id": None, "asset_class": rt.asset_class(symbol), "high_water": price, "last_price": price,
            "updated_at": iso(rt.now())})
