"""Logging: human lines on stderr, JSON lines under logs/ (app.log, trades.log, decisions.log).

`tail -f logs/trades.log | jq .` works: one JSON object per line, extra fields included.
Nothing is logged to stdout, which belongs to the command's JSON output, unless `logs.output` is
`stdout` (containers: the collector reads stdout): then every log line, of every logger, goes to
stdout as JSON and nowhere else (no files, no human lines on stderr).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_configured: tuple[Path, str] | None = None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        doc.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


class Redact(logging.Filter):
    """Replaces every configured key's value in a record (message, arguments, string extras)."""

    def __init__(self):
        super().__init__()
        from tokenomics.keys import _configured_values

        self.values = _configured_values()

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.values:
            return True
        from tokenomics.keys import redact

        msg = record.getMessage()
        if any(v in msg for _n, v in self.values):
            record.msg, record.args = redact(msg), ()
        for k, v in list(record.__dict__.items()):
            if k not in _STANDARD and isinstance(v, str) and any(x in v for _n, x in self.values):
                setattr(record, k, redact(v))
        return True


def setup_logging(log_dir: Path, level: str = "INFO", verbose: int = 0, output: str = "files") -> None:
    """Idempotent: configures the tokenomics loggers once per process, log directory and output."""
    global _configured
    if _configured == (Path(log_dir), output):
        return
    log_dir = Path(log_dir)
    root = logging.getLogger("tokenomics")
    for lg in (root, *(logging.getLogger(f"tokenomics.{n}") for n in ("trades", "decisions"))):
        for h in list(lg.handlers):
            lg.removeHandler(h)
            h.close()
    root.setLevel(logging.DEBUG)
    root.propagate = False
    redact = Redact()
    if output == "stdout":
        out = logging.StreamHandler(sys.stdout)
        out.setFormatter(JsonFormatter())
        out.setLevel(logging.DEBUG if verbose > 1 else getattr(logging, level))
        out.addFilter(redact)
        root.addHandler(out)  # trades and decisions reach it through the tokenomics logger
        _configured = (log_dir, output)
        return
    log_dir.mkdir(parents=True, exist_ok=True)
    app = logging.FileHandler(log_dir / "app.log", encoding="utf-8")
    app.setFormatter(JsonFormatter())
    app.setLevel(getattr(logging, level))
    app.addFilter(redact)
    root.addHandler(app)
    err = logging.StreamHandler(sys.stderr)
    err.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    err.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    err.addFilter(redact)
    root.addHandler(err)
    for name in ("trades", "decisions"):
        lg = logging.getLogger(f"tokenomics.{name}")
        fh = logging.FileHandler(log_dir / f"{name}.log", encoding="utf-8")
        fh.setFormatter(JsonFormatter())
        fh.addFilter(redact)
        lg.addHandler(fh)
        lg.setLevel(logging.INFO)
    _configured = (log_dir, output)


app_log = logging.getLogger("tokenomics")
trades_log = logging.getLogger("tokenomics.trades")
decisions_log = logging.getLogger("tokenomics.decisions")


_progress_shown = False


@contextmanager
def progress(label: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on stderr; yields advance(n). Only when stderr is a terminal, only in the main
    process (not in a sweep's workers), and one at a time (an inner one is silent): a pipe, a log file
    or cron gets nothing."""
    global _progress_shown
    import multiprocessing

    if _progress_shown or multiprocessing.parent_process() is not None or not sys.stderr.isatty():
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    console = Console(stderr=True)
    _progress_shown = True
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      console=console, transient=True) as p:
            task = p.add_task(label, total=total)
            yield lambda n: p.advance(task, n)
    finally:
        _progress_shown = False
