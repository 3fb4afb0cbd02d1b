"""The terminal view of a command's result: flat mappings as their own tables, series summarised."""

from tokenomics.output import _table


def test_metrics_get_a_table_and_a_long_series_its_size_and_ends(capsys):
    doc = {"id": 7, "metrics": {"sharpe": 1.2345, "max_drawdown": -0.0321, "trades": 4},
           "equity": [["2026-01-01T00:00:00+00:00", 10000.0 + i] for i in range(61)],
           "trades": [{"symbol": "ETH/USD", "pnl": -14.53}]}
    _table(doc, "backtest", "trades", None)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert any("sharpe" in ln and "1.23" in ln for ln in lines)  # one metric per line, not a cut-off blob
    assert any("max_drawdown" in ln and "-0.0321" in ln for ln in lines)
    assert "61 points" in out and "10060.0" in out  # the curve's size and its last point
    assert any("ETH/USD" in ln and "-14.53" in ln for ln in lines)
