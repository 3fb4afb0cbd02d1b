"""Command output: JSON on stdout when piped or asked, a readable Rich table in a terminal.

Nothing but the command's result is ever written to stdout.
"""

from __future__ import annotations

import json
import math
import sys
from typing import TYPE_CHECKING, Any

from tokenomics.runtime import Runtime

if TYPE_CHECKING:
    from pathlib import Path


SERIES_AS_IS = 10_000  # a longer list (an equity curve of many bars) is printed as computed: ~1 s per
# million values saved, and its values (cents) carry no noise anyway


def tidy(value: Any) -> Any:
    """Floats at 12 significant digits: no binary noise in the output (99259.67503500001 -> 99259.675035,
    0.1 + 0.2 -> 0.3); money is in cents already, and the store keeps full precision."""
    if isinstance(value, float):
        return float(f"{value:.12g}") if math.isfinite(value) and len(repr(value)) > 13 else value
    if isinstance(value, dict):
        return {k: tidy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(v) for v in value] if len(value) <= SERIES_AS_IS else value
    return value


def to_json(value: Any) -> str:
    return json.dumps(tidy(value), default=str, separators=(",", ":"))


def jsonl_items(doc: dict[str, Any], items: dict[str, str], summary_kind: str) -> list[dict[str, Any]]:
    """A document of several kinds of items as one row per item, each tagged with its kind: first the
    summary (the document's other fields), then the rows of each list (or the one object) under `items`."""
    out = [{"kind": summary_kind, **{k: v for k, v in doc.items() if k not in items}}]
    for key, kind in items.items():
        value = doc.get(key)
        for row in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
            out.append({"kind": kind, **row})
    return out


def emit(rt: Runtime, doc: dict[str, Any], *, title: str = "", rows_key: str = "rows",
         columns: list[str] | None = None, items: dict[str, str] | None = None, summary_kind: str = "summary",
         why_empty: str = "") -> None:
    """Print a command's result: a summary document with an optional list of rows.

    --jsonl prints one row per item: the rows under `rows_key` (the same objects as in --json), or, for a
    document of several kinds of items, `jsonl_items(doc, items, summary_kind)`. When it prints no row,
    `why_empty` goes to stderr (a warning), so an empty output is never silent."""
    o = rt.opts
    if o.jsonl:
        rows = jsonl_items(doc, items, summary_kind) if items else doc.get(rows_key)
        rows = rows if isinstance(rows, list) else [doc]
        for row in rows:
            sys.stdout.write(to_json(row) + "\n")
        sys.stdout.flush()
        if not rows and why_empty:
            from tokenomics.logs import app_log

            app_log.warning("--jsonl: no rows: %s", why_empty)
        return
    if o.json or not sys.stdout.isatty():
        sys.stdout.write(to_json(doc) + "\n")
        sys.stdout.flush()
        return
    _table(doc, title, rows_key, columns)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"
    if isinstance(v, list) and len(v) > 6 and isinstance(v[0], (list, int, float)):  # a series: size and ends
        return f"{len(v)} points: {json.dumps(v[0], default=str)} … {json.dumps(v[-1], default=str)}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)[:80]
    return "" if v is None else str(v)


def _is_rows(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and isinstance(v[0], dict)


def _is_record(v: Any) -> bool:
    """A flat mapping (metrics, weights): shown as its own two-column table."""
    return isinstance(v, dict) and bool(v) and not any(isinstance(x, (dict, list)) for x in v.values())


def _table(doc: dict[str, Any], title: str, rows_key: str, columns: list[str] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=title or None, show_header=False, box=None)
    for k, v in doc.items():
        if not (_is_rows(v) or _is_record(v)):
            summary.add_row(f"[bold]{k}[/bold]", _fmt(v))
    console.print(summary)
    for key, record in doc.items():
        if _is_record(record):
            t = Table(title=key, show_header=False)
            for k, v in record.items():
                t.add_row(k, _fmt(v))
            console.print(t)
    for key, rows in doc.items():
        if not _is_rows(rows):
            continue
        cols = columns if (key == rows_key and columns) else list(rows[0].keys())
        t = Table(title=key)
        for c in cols:
            t.add_column(c)
        for r in rows[:200]:
            t.add_row(*(_fmt(r.get(c)) for c in cols))
        console.print(t)


def check_writable(path: "Path", option: str, *, directory: bool = False) -> "Path":
    """Exit 2 now, before any long work, when `option`'s output path cannot be written: a folder
    where a file belongs (or the reverse), a parent that is a file, a read-only or missing mount."""
    import os
    import tempfile
    from pathlib import Path

    from tokenomics.core.errors import UsageProblem

    path = Path(path)
    folder = path if directory else path.parent
    if not directory and path.is_dir():
        raise UsageProblem(f"{option} {path}: is a folder; give a file name")
    if directory and path.exists() and not path.is_dir():
        raise UsageProblem(f"{option} {path}: is a file; give a folder")
    blocker = next((p for p in folder.parents[::-1] + (folder,) if p.exists() and not p.is_dir()), None) \
        if folder != Path(".") else None
    if blocker is not None:
        raise UsageProblem(f"{option} {path}: cannot write there ({blocker} is a file, not a folder)",
                           hint="choose a writable path")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".tokenomics-write-test-", dir=folder)
        os.close(fd)
        os.unlink(probe)  # our own probe file, just created
    except OSError as exc:
        raise UsageProblem(f"{option} {path}: cannot write there ({exc.strerror or exc})",
                           hint="choose a writable path") from None
    return path
