"""signal (sentiment): every new score becomes an entry signal or a recorded skip.
"""

from __future__ import annotations

from datetime import timedelta

from tokenomics.core.signals import decide_entry
from tokenomics.runtime import Runtime
from tokenomics.store import iso, parse_ts


def signal(rt: Runtime) -> dict:
    """Turn every score not yet considered into an entry signal or a recorded skip."""
    s = rt.settings
    st = rt.store
    # a cursor on the scores' rowids: only scores stored since the last run are read (each gets a signal
    # row, new or skip; a run cut short leaves the cursor behind and the NOT EXISTS skips what it did)
    cursor = f"signal:sentiment:{rt.scorer.name}"
    top = st.scalar("SELECT MAX(rowid) FROM scores") or 0
    last = int(st.get_cursor(cursor) or 0)
    if last > top:  # the table was rebuilt (rowids renumbered): read it all once
        last = 0
    rows = st.all(
        "SELECT sc.* FROM scores sc WHERE sc.rowid > ? AND sc.rowid <= ? AND sc.scorer = ? AND NOT EXISTS "
        "(SELECT 1 FROM signals sg WHERE sg.id = 'sentiment:' || sc.article_id || ':' || sc.symbol) "
        "ORDER BY sc.article_created_at, sc.article_id, sc.symbol",
        [last, top, rt.scorer.name],
    )
    now = rt.now()
    held = {p["symbol"] for p in st.positions()}
    pending = {r["symbol"] for r in st.all(
        "SELECT symbol FROM signals WHERE side = 'buy' AND status IN ('new', 'sized') "
        "UNION SELECT symbol FROM orders WHERE intent = 'entry' AND status NOT IN "
        "('filled', 'rejected', 'canceled', 'expired')")}
    max_age = timedelta(minutes=s.signals.max_age_minutes)
    made, skipped = [], 0
    for r in rows:
        slots = s.risk.max_open_positions - len(held | pending)
        d = decide_entry(
            sentiment=r["sentiment"], conviction=r["conviction"], min_conviction=s.sentiment.min_conviction,
            held=r["symbol"] in held, pending=r["symbol"] in pending, open_slots=slots,
            tradable=rt.tradable(r["symbol"], now), stale=now - parse_ts(r["article_created_at"]) > max_age,
        )
        sid = f"sentiment:{r['article_id']}:{r['symbol']}"
        row = {
            "id": sid, "symbol": r["symbol"], "side": "buy", "source": "sentiment",
            "strength": r["conviction"] / 100.0, "reason": r["reason"], "ref": r["article_id"],
            "asset_class": rt.asset_class(r["symbol"]), "created_at": iso(now), "status": d.status,
            "status_reason": d.reason, "size_method": None, "notional": None, "updated_at": iso(now),
        }
        with st.tx():
            st.insert_ignore("signals", [row])
        if d.status == "new":
            pending.add(r["symbol"])
            made.append(row)
        else:
            skipped += 1
    if top != last:
        with st.tx():
            st.set_cursor(cursor, str(top))
    return {"considered": len(rows), "signals": len(made), "skipped": skipped, "rows": made}
