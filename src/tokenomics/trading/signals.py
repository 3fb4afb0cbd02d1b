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
    rows = st.all(
        "SELECT sc.* FROM scores sc LEFT JOIN signals sg ON sg.id = 'sentiment:' || sc.article_id || ':' || sc.symbol "
        "WHERE sg.id IS NULL AND sc.scorer = ? ORDER BY sc.article_created_at, sc.article_id, sc.symbol",
        [rt.scorer.name],
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
    return {"considered": len(rows), "signals": len(made), "skipped": skipped, "rows": made}
