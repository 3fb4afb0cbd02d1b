"""health: is the loop on this store alive? For liveness probes, systemd and cron."""

import typer

from tokenomics.output import emit

app = typer.Typer()


@app.command()
def health(
    ctx: typer.Context,
    interval: float = typer.Option(None, "--interval", min=0.001, help="Seconds between ticks to judge by "
                                   "(default: health.interval_seconds, else the loop's own; run --once: 300)."),
) -> None:
    """Exit 0 when `run` ticked within health.max_missed_ticks intervals (+ health.grace_seconds) and no
    step (provider) has been failing for longer than health.provider_down_minutes; else exit 1 with the
    reasons on stderr. Reads the heartbeat `run` writes to the store after every tick."""
    from tokenomics.trading.monitor import health as check

    rt = ctx.obj
    doc = check(rt, interval)
    emit(rt, doc, title="health", rows_key="failing", why_empty="no provider is failing")
    if not doc["ok"]:
        typer.echo("unhealthy: " + "; ".join(doc["reasons"]), err=True)
        raise typer.Exit(1)
