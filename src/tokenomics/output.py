"""Command output: JSON on stdout when piped or asked, a readable Rich table in a terminal.

Nothing but the command's result is ever written to stdout.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from tokenomics.runtime import Runtime


def to_json(value: Any) -> str:
    return json.dumps(value, default=str, separators=(",", ":"))


def emit(rt: Runtime, doc: dict[str, Any], *, title: str = "", rows_key: str = "rows",
         columns: list[str] | None = None) -> None:
    """Print a command's result: a summary document with an optional list of rows."""
    o = rt.opts
    if o.jsonl:
        rows = doc.get(rows_key)
        for row in rows if isinstance(rows, list) else [doc]:
            sys.stdout.write(to_json(row) + "\n")
        sys.stdout.flush()
        return
    if o.json or not sys.stdout.isatty():
        sys.stdout.write(to_json(doc) + "\n")
        sys.stdout.flush()
        return
    _table(doc, title, rows_key, columns)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.2f}" if abs(v) >= 1 else f"{v:.6g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v, default=str)[:80]
    return "" if v is None else str(v)


def _table(doc: dict[str, Any], title: str, rows_key: str, columns: list[str] | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    summary = Table(title=title or None, show_header=False, box=None)
    for k, v in doc.items():
        if isinstance(v, list) and v and isinstance(v[0], dict):
            continue
        summary.add_row(f"[bold]{k}[/bold]", _fmt(v))
    console.print(summary)
    for key, rows in doc.items():
        if not (isinstance(rows, list) and rows and isinstance(rows[0], dict)):
            continue
        cols = columns if (key == rows_key and columns) else list(rows[0].keys())
        t = Table(title=key)
        for c in cols:
            t.add_column(c)
        for r in rows[:200]:
            t.add_row(*(_fmt(r.get(c)) for c in cols))
        console.print(t)
