"""The Typer app: a lazy command registry, global options, output and exit codes.

`tokenomics --help` imports no command module (and so none of the heavy libraries): the help
text of each command comes from the registry below, and a module is imported only when its
command runs. Global options may stand before or after the command name.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from tokenomics import __version__

# name -> (module under tokenomics.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "Write a commented config/settings.yaml and .env.example, and create the store."),
    "doctor": ("doctor", "Check the config, the store and the offline model; say exactly what is wrong."),
    "status": ("status", "Cash, positions, equity, open orders, halts and the last run of each command."),
    "fetch-news": ("fetch_news", "Fetch new articles from the configured news provider into the store."),
    "score": ("score", "Score pending articles per symbol: sentiment and a 0-100 conviction."),
    "signal": ("signal", "Turn new scores into entry signals (threshold, capacity, market hours)."),
    "size": ("size", "Size new signals (fixed, kelly, vol-target or adaptive); pass them through the risk gate."),
    "trade": ("trade", "Send orders for sized signals; idempotent, under the trading lock."),
    "check-exits": ("check_exits", "Close positions on stop-loss, take-profit, max hold or bearish news."),
    "run": ("run", "Run the whole chain once (--once, for cron) or on every tick (--loop)."),
    "fetch-bars": ("fetch_bars", "Fetch OHLCV bars (sim, a CSV/Parquet file, a ccxt exchange, alpaca) into the store."),
    "train": ("train", "Train a price model on stored bars (time-series CV, no shuffle); save it with a model card."),
    "models": ("models", "List trained models with their data, features and out-of-sample metrics."),
    "risk": ("risk", "Risk metrics of the account (or --symbol bars) with --plot; `risk resume` lifts a drawdown halt."),
    "explain": ("explain", "The chain behind a trade (order id, signal id or symbol): news, score, size, gate, fills."),
    "backtest": ("backtest", "Replay history through the same chain (or the SMA reference); metrics, report, grids."),
    "optimize": ("optimize", "Search strategy parameters with Optuna (seeded TPE); resumable study, holdout, Ray."),
    "rebalance": ("rebalance", "Target weights (HRP, mean-variance, ...) and the trades to get there; --execute sends."),
    "reconcile": ("reconcile", "Compare store and broker (orders, positions); --accept adopts the broker's view."),
    "health": ("health", "Exit 0 while `run` ticks on time and no provider is down for long; else 1 with the reason."),
    "notify": ("notify", "The notification targets (notify.urls) and events; --test sends a test message."),
}

CONTEXT = {"help_option_names": ["-h", "--help"]}
GLOBAL_HELP = ("Global options (before or after the command): --config PATH, --db PATH, --json, --jsonl, "
               "--mode sim|paper|live, --live, -v/--verbose; see `tokenomics -h`.")
GLOBAL_FLAGS = {"--json", "--jsonl", "--live", "-v", "--verbose", "-vv"}
GLOBAL_VALUED = {"--config", "--db", "--mode"}


class LazyGroup(TyperGroup):
    """Imports a command's module only when that command is invoked (or its own --help shown)."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in COMMANDS:
            return None
        import importlib

        module = importlib.import_module(f"tokenomics.commands.{COMMANDS[cmd_name][0]}")
        cmd = typer.main.get_command(module.app)
        cmd.name = cmd_name
        # shell completion belongs to `tokenomics` itself, not to each subcommand's own Typer app
        cmd.params = [p for p in cmd.params if p.name not in ("install_completion", "show_completion")]
        # one help style (the top level's plain one: a flag shows no `<bool>`), -h too, and the global options
        for c in [cmd, *getattr(cmd, "commands", {}).values()]:  # `risk resume` too
            c.rich_markup_mode = None
            c.context_settings = {**(c.context_settings or {}), **CONTEXT}
            c.epilog = GLOBAL_HELP
        return cmd

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, help_) for name, (_, help_) in COMMANDS.items()])

    def invoke(self, ctx: Any) -> Any:
        from tokenomics.core.errors import TokenomicsError

        try:
            return super().invoke(ctx)
        except TokenomicsError as exc:
            fail(exc.exit_code, str(exc), exc.hint)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except Exception as exc:  # no traceback on the terminal: one line, the traceback in logs/app.log
            _unexpected(ctx, exc)
        finally:
            rt = ctx.obj
            if rt is not None and hasattr(rt, "close"):
                try:
                    rt.close()
                except Exception:  # a store that failed mid-command must not turn into a traceback here
                    pass


app = typer.Typer(
    cls=LazyGroup,
    rich_markup_mode=None,
    no_args_is_help=True,
    add_completion=True,
    context_settings=CONTEXT,
    help="tokenomics: read the news, score it, size under hard risk limits, trade, and backtest.\n\n"
    "Every command prints JSON on stdout when piped (or with --json) and a table in a terminal. "
    "Exit codes: 0 done, 1 runtime failure, 2 bad usage or config, 3 refused by a risk rule.",
)


def fail(code: int, message: str, hint: str = "") -> None:
    """The one error style: one line on stderr, what went wrong and (after 'hint:') what to do."""
    if code == 1:  # a runtime failure may carry a provider's text: never print a key
        from tokenomics.keys import redact

        message, hint = redact(message), redact(hint)
    line = " ".join(message.split())
    print(f"error: {line}" + (f"; hint: {' '.join(hint.split())}" if hint else ""), file=sys.stderr)
    raise typer.Exit(code)


def _unexpected(ctx: Any, exc: Exception) -> None:
    """A failure no layer turned into a TokenomicsError: a storage fault (disk full, I/O error,
    read-only store) names the store; anything else is one line, exit 1. TOKENOMICS_DEBUG=1 re-raises."""
    import logging
    import os

    from tokenomics.store import storage_fault

    if os.environ.get("TOKENOMICS_DEBUG"):
        raise exc
    rt = ctx.obj
    path = rt.__dict__.get("db_path") if rt is not None else None
    log = logging.getLogger("tokenomics")
    record = log.makeRecord(log.name, logging.ERROR, __file__, 0, "unexpected failure", (), (type(exc), exc,
                            exc.__traceback__))
    for handler in log.handlers:  # the log files only: stderr gets the one line below
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
    fault = storage_fault(exc, path)
    if fault is not None:
        fail(fault.exit_code, str(fault), fault.hint)
    name = ctx.invoked_subcommand or "tokenomics"
    fail(1, f"{name} failed: {type(exc).__name__}: {exc}",
         "this is a bug or an unexpected environment; logs/app.log has the traceback (TOKENOMICS_DEBUG=1 shows it)")


def _version(value: bool) -> None:
    if value:
        print(__version__)
        raise typer.Exit(0)


@app.callback()
def main_callback(
    ctx: typer.Context,
    config: Path = typer.Option(None, "--config", help="YAML config file (default: $TOKENOMICS_CONFIG, "
                                "else ./config/settings.yaml if present, else built-in defaults)."),
    db: Path = typer.Option(None, "--db", help="SQLite store path (overrides store.path)."),
    json_: bool = typer.Option(False, "--json", help="Print one JSON document on stdout (the default when piped)."),
    jsonl: bool = typer.Option(False, "--jsonl", help="Print one JSON object per row, one per line."),
    mode: str = typer.Option(None, "--mode", help="sim (default: no keys, no network), paper or live."),
    live: bool = typer.Option(False, "--live", help="Confirm live trading (also needs trading.paper: false)."),
    verbose: int = typer.Option(0, "--verbose", "-v", count=True, help="More logging on stderr (-vv: debug)."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
) -> None:
    """Global options; they may also follow the command name."""
    from tokenomics.runtime import Options, Runtime

    if mode is not None and mode not in ("sim", "paper", "live"):
        fail(2, f"--mode must be one of sim, paper, live (got {mode!r})")
    if json_ and jsonl:
        fail(2, "--json and --jsonl are exclusive")
    ctx.obj = Runtime(Options(config=config, db=db, json=json_, jsonl=jsonl, mode=mode, live=live, verbose=verbose))


def hoist_global_options(argv: list[str]) -> list[str]:
    """Move global options found after the command name to the front, so both orders work."""
    front: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            rest.extend(argv[i:])
            break
        name = arg.split("=", 1)[0]
        if arg in GLOBAL_FLAGS:
            front.append(arg)
        elif name in GLOBAL_VALUED:
            if "=" in arg or i + 1 >= len(argv):
                front.append(arg)
            else:
                front.extend(argv[i : i + 2])
                i += 1
        else:
            rest.append(arg)
        i += 1
    return front + rest


def main() -> None:
    from typer._click.exceptions import NoArgsIsHelpError, UsageError

    try:
        rv = app(args=hoist_global_options(sys.argv[1:]), prog_name="tokenomics", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        sys.exit(2)
    except UsageError as exc:  # the one error style for parse errors too
        where = exc.ctx.command_path if exc.ctx is not None else "tokenomics"
        print(f"error: {' '.join(exc.format_message().split())}; hint: see `{where} --help`", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:
        print(f"error: {' '.join(exc.format_message().split())}", file=sys.stderr)
        sys.exit(exc.exit_code)
    except typer.Abort:
        print("error: aborted", file=sys.stderr)
        sys.exit(130)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
