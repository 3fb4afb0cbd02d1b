import json

import typer

from tokenomics.core.errors import ProviderError
from tokenomics.core.money import cents
from tokenomics.logs import app_log
from tokenomics.output import emit
from tokenomics.trading import account
from tokenomics.trading.faults import health_rows

app = typer.Typer()


@app.command()
def status(ctx: typer.Context) -> None:
    """Cash, positions at current prices, equity (= cash + positions), open orders, active halts,
    realized P&L and the last run of each command. Reads the store; changes nothing."""
    rt = ctx.obj
    st = rt.store
    not_writable = st.writable()
    if not_writable:
        app_log.warning("the store is not writable: %s", not_writable)
    cash = st.cash(rt.settings.capital)
    positions = []
    for p in st.positions():
        try:
            price, priced = rt.price(p["symbol"]), "market"
        except ProviderError as exc:  # the market data provider is failing: the last mark, and say so
            price, priced = p["last_price"], f"last mark at {p['updated_at']} ({exc})"
        value = cents(p["qty"] * price)
        positions.append({
            "symbol": p["symbol"], "qty": p["qty"], "avg_price": round(p["avg_price"], 6), "price": price,
            "market_value": value, "unrealized_pnl": cents(value - p["cost"]), "opened_at": p["opened_at"],
            "source": p["source"], **({"price_source": priced} if priced != "market" else {}),
        })
    positions_value = cents(sum(p["market_value"] for p in positions))
    runs = [{**r, "counts": json.loads(r["counts"]) if r["counts"] else None} for r in st.last_runs()]
    articles = {r["status"]: r["n"] for r in st.all("SELECT status, COUNT(*) AS n FROM articles GROUP BY status")}
    failed = st.all("SELECT id, headline, attempts, error FROM articles WHERE status = 'failed' "
                    "ORDER BY created_at DESC, id DESC LIMIT 10")
    emit(rt, {
        "mode": rt.mode, "now": rt.now().isoformat(), "capital": rt.settings.capital, "cash": cash,
        "positions_value": positions_value, "equity": cents(cash + positions_value),
        "realized_pnl": st.realized_pnl(), "closed_trades": st.scalar("SELECT COUNT(*) FROM trades"),
        "positions": positions, "open_orders": st.open_orders(),
        "halts": [{"rule": h["rule"], "period": h["period"], "since": h["fired_at"], "detail": h["detail"],
                   "lifts": "by `tokenomics risk resume`" if h["rule"] == "max_drawdown" else "when the period rolls"}
                  for h in account.active_halts(rt)],
        "providers": health_rows(st),
        "last_runs": runs,
        "articles": articles,  # by status: pending, scored, duplicate, failed (gave up after max_attempts)
        "failed_articles": failed,  # the latest 10, with the reason (`explain ARTICLE_ID` for the rest)
        "store": {"path": str(rt.db_path), "writable": not not_writable,
                  **({"problem": not_writable} if not_writable else {})},
    }, title="status", rows_key="positions", summary_kind="account",
        items={"positions": "position", "open_orders": "open_order", "halts": "halt", "providers": "provider",
               "last_runs": "last_run", "failed_articles": "failed_article"})
