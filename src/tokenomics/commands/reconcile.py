import typer

from tokenomics.output import emit

app = typer.Typer()


@app.command()
def reconcile(
    ctx: typer.Context,
    accept: bool = typer.Option(False, "--accept", help="Adopt the broker's view for every difference found."),
) -> None:
    """Compare the store's open orders and positions with the broker's: finish open orders from the
    broker's view, list every position difference, and with --accept adopt the broker's quantities.
    A position the broker shows closed or smaller is booked as an exit (a sell fill, and a closed trade
    with its realized P&L) at the price the broker sold it for, else at the market price; each row says
    which. While a difference is open, trade sends no new entries."""
    from tokenomics.trading.reconcile import reconcile as run

    rt = ctx.obj
    with rt.store.run("reconcile", rt.mode) as counts:
        out = run(rt, accept)
        counts.update(differences=out["differences"], orders_updated=out["orders_updated"])
    emit(rt, out, title="reconcile", columns=["kind", "symbol", "store_view", "broker_view", "exit_price", "price_source",
                                              "realized_pnl"],
         why_empty="no differences between the store and the broker")
