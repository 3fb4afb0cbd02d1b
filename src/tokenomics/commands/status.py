import json

import typer

from tokenomics.core.money import cents
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
    cash = st.cash(rt.settings.capital)
    positions = []
    for p in st.positions():
        price = rt.price(p["symbol"])
        value = cents(p["qty"] * price)
        positions.append({
            "symbol": p["symbol"], "qty": p["qty"], "avg_price": round(p["avg_price"], 6), "price": price,
            "market_value": value, "unrealized_pnl": cents(value - p["cost"]), "opened_at": p["opened_at"],
            "source": p["source"],
        })
    positions_value = cents(sum(p["market_value"] for p in positions))
    runs = [{**r, "counts": json.loads(r["counts"]) if r["counts"] else None} for r in st.last_runs()]
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
    }, title="status", rows_key="positions")
