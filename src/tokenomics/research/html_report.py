"""An offline HTML report of a backtest: metrics, trades, and equity and drawdown charts as
inline SVG (no script, no network, no CDN: it opens from disk in any browser)."""

from __future__ import annotations

import html
import json

W, H, PAD = 900, 260, 40


def _polyline(values: list[float], color: str, fill_zero: bool = False, others: list[tuple[list[float], str]] = (),
              markers: list[tuple[int, str]] = ()) -> str:
    """One SVG chart: `values` (and `others`, on the same scale), with round markers at indexes."""
    if not values:
        return ""
    every = [v for v in values] + [v for vals, _ in others for v in vals]
    lo, hi = min(every), max(every)
    if fill_zero:
        hi = max(hi, 0.0)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)

    def xy(i: int, v: float) -> tuple[float, float]:
        return PAD + i * (W - 2 * PAD) / n, PAD + (hi - v) * (H - 2 * PAD) / span

    def line(vals: list[float], col: str, dash: str = "") -> str:
        path = " ".join("{:.1f},{:.1f}".format(*xy(i, v)) for i, v in enumerate(vals))
        return f'<polyline fill="none" stroke="{col}" stroke-width="1.5"{dash} points="{path}"/>'

    axis = (f'<text x="{PAD + 4}" y="{PAD - 6}" font-size="11">{_label(hi, fill_zero)}</text>'
            f'<text x="{PAD + 4}" y="{H - PAD + 16}" font-size="11">{_label(lo, fill_zero)}</text>')
    dots = "".join('<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>'.format(*xy(i, values[i]), col)
                   for i, col in markers if 0 <= i < len(values))
    extra = "".join(line(vals, col, ' stroke-dasharray="4 3"') for vals, col in others if vals)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">'
            f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" fill="none" stroke="#ccc"/>'
            f'{axis}{extra}{line(values, color)}{dots}</svg>')


def _label(v: float, pct: bool) -> str:
    return f"{v * 100:.2f} %" if pct else f"{v:,.2f}"


def drawdowns(equity: list[float]) -> list[float]:
    out, peak = [], float("-inf")
    for e in equity:
        peak = max(peak, e)
        out.append(e / peak - 1 if peak > 0 else 0.0)
    return out


def trade_markers(times: list[str], trades: list[dict]) -> list[tuple[int, str]]:
    """Equity-curve indexes of each trade's entry (green) and exit (red)."""
    import bisect

    out = []
    for t in trades:
        for key, col in (("entry_at", "#1a7f37"), ("opened_at", "#1a7f37"), ("exit_at", "#d1242f"),
                         ("closed_at", "#d1242f")):
            if t.get(key):
                out.append((min(bisect.bisect_left(times, t[key]), len(times) - 1), col))
    return out


def render(result: dict) -> str:
    eq = [float(e) for _, e in result["equity"]]
    times = [t for t, _ in result["equity"]]
    bench_curve = [float(e) for _, e in result.get("benchmark_equity", [])]
    m = result["metrics"]
    bench = result.get("benchmark") or {}
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td>"
                   f"<td>{html.escape(_fmt(bench.get(k)))}</td></tr>" for k, v in m.items())
    warnings = "".join(f"<p><strong>Warning:</strong> {html.escape(w)}</p>" for w in result.get("warnings", []))
    trades = result.get("trades", [])
    cols = list(trades[0].keys()) if trades else []
    trade_rows = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(t.get(c)))}</td>" for c in cols) + "</tr>"
                         for t in trades[:500])
    title = f"Backtest: {result['strategy']} {json.dumps(result.get('params', {}), sort_keys=True)}"
    span = f"{times[0]} to {times[-1]}" if times else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}}table{{border-collapse:collapse;margin:1em 0}}
th,td{{border:1px solid #ddd;padding:3px 8px;font-size:13px;text-align:right}}th{{text-align:left}}</style>
</head><body>
<h1>{html.escape(title)}</h1>
<p>{html.escape(span)} &middot; {result.get('steps', '')} steps</p>
{warnings}
<h2>Equity</h2>
<p>strategy (blue, trades: green entries, red exits){' and buy and hold (grey, dashed)' if bench_curve else ''}</p>
{_polyline(eq, "#1f6feb", others=[(bench_curve, "#888")], markers=trade_markers(times, trades[:500]))}
<h2>Drawdown</h2>
{_polyline(drawdowns(eq), "#d1242f", fill_zero=True, others=[(drawdowns(bench_curve), "#888")])}
<h2>Metrics</h2>
<table><tr><th></th><th>strategy</th><th>buy and hold</th></tr>{rows}</table>
<p>{html.escape(bench.get('strategy', ''))}</p>
<h2>Trades ({len(trades)})</h2>
<table><tr>{''.join(f'<th>{html.escape(c)}</th>' for c in cols)}</tr>{trade_rows}</table>
</body></html>
"""


def _fmt(v: object) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:,.6g}" if abs(v) < 1000 else f"{v:,.2f}"
    return str(v)
