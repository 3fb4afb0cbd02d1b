"""An offline HTML report of a backtest: metrics, trades, and equity and drawdown charts as
inline SVG (no script, no network, no CDN: it opens from disk in any browser)."""

from __future__ import annotations

import html
import json

W, H, PAD = 900, 260, 40


def _polyline(values: list[float], color: str, fill_zero: bool = False) -> str:
    if not values:
        return ""
    lo, hi = min(values), max(values)
    if fill_zero:
        hi = max(hi, 0.0)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)
    pts = [(PAD + i * (W - 2 * PAD) / n, PAD + (hi - v) * (H - 2 * PAD) / span) for i, v in enumerate(values)]
    path = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
    axis = (f'<text x="{PAD + 4}" y="{PAD - 6}" font-size="11">{_label(hi, fill_zero)}</text>'
            f'<text x="{PAD + 4}" y="{H - PAD + 16}" font-size="11">{_label(lo, fill_zero)}</text>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}">'
            f'<rect x="{PAD}" y="{PAD}" width="{W - 2 * PAD}" height="{H - 2 * PAD}" fill="none" stroke="#ccc"/>'
            f'{axis}<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{path}"/></svg>')


def _label(v: float, pct: bool) -> str:
    return f"{v * 100:.2f} %" if pct else f"{v:,.2f}"


def drawdowns(equity: list[float]) -> list[float]:
    out, peak = [], float("-inf")
    for e in equity:
        peak = max(peak, e)
        out.append(e / peak - 1 if peak > 0 else 0.0)
    return out


def render(result: dict) -> str:
    eq = [float(e) for _, e in result["equity"]]
    times = [t for t, _ in result["equity"]]
    m = result["metrics"]
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in m.items())
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
<h2>Equity</h2>
{_polyline(eq, "#1f6feb")}
<h2>Drawdown</h2>
{_polyline(drawdowns(eq), "#d1242f", fill_zero=True)}
<h2>Metrics</h2>
<table>{rows}</table>
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
