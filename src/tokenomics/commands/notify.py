"""notify: the configured notification targets; --test sends a message to each."""

import typer

from tokenomics.core.errors import ConfigError
from tokenomics.output import emit

app = typer.Typer()


@app.command()
def notify(
    ctx: typer.Context,
    test: bool = typer.Option(False, "--test", help="Send a test message to every URL in notify.urls now."),
    message: str = typer.Option("tokenomics can reach you.", "--message", help="The test message's text."),
) -> None:
    """List the targets of notify.urls (service and index only; URLs hold secrets) and the events sent;
    --test sends a message to each and exits 1 if any refused it. No URL configured: exit 2."""
    from tokenomics.adapters.notify import Notifier

    rt = ctx.obj
    s = rt.settings.notify
    if not s.urls:
        raise ConfigError("notify.urls is empty: nothing to notify",
                          hint="add apprise URLs under notify.urls in config/settings.yaml, secrets as ${VAR}")
    rt.store  # noqa: B018 -- sets up logging, so apprise's reasons land in logs/app.log
    n = Notifier(s.urls, s.timeout_seconds)
    rows = [{"target": t, "ok": None} for t in n.labels]
    if test:
        rows = n.test(f"tokenomics test ({rt.mode})", message)
    ok = all(r["ok"] is not False for r in rows)
    emit(rt, {"ok": ok, "tested": test, "events": s.events, "targets": rows}, title="notify", rows_key="targets")
    if not ok:
        failed = ", ".join(r["target"] for r in rows if not r["ok"])
        typer.echo(f"error: notification refused by {failed} (reasons in the log)", err=True)
        raise typer.Exit(1)
