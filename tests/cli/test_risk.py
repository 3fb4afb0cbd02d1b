"""`tokenomics risk`: metrics of the sim account against empyrical; the latched drawdown halt."""

import numpy as np
import pytest

from tokenomics.store import Store

EQUITY = [10000, 10100, 9900, 10200, 9800, 9700, 10050, 10300, 10150, 10400, 10250, 10500]


def seed_equity(cli, values, start_hour=0):
    st = Store.open(cli.cwd / "store.db")
    with st.tx():
        for i, v in enumerate(values):
            st.execute("INSERT INTO equity(ts, cash, positions_value, equity) VALUES (?, ?, 0, ?)",
                       [f"2026-01-01T{start_hour + i:02d}:00:00+00:00", v, v])
    st.close()


def test_risk_json_prints_every_metric_matching_empyrical(cli):
    ep = pytest.importorskip("empyrical")
    seed_equity(cli, EQUITY)
    doc = cli.json("risk", "--window", "5")
    r = np.array(EQUITY[1:]) / np.array(EQUITY[:-1]) - 1
    ppy = 365 * 24  # hourly points in calendar time
    assert doc["observations"] == 11 and doc["periods_per_year"] == ppy
    assert doc["volatility"] == pytest.approx(ep.annual_volatility(r, annualization=ppy), abs=1e-6)
    assert doc["sharpe"] == pytest.approx(ep.sharpe_ratio(r, annualization=ppy), abs=1e-6)
    assert doc["sortino"] == pytest.approx(ep.sortino_ratio(r, annualization=ppy), abs=1e-6)
    assert doc["calmar"] == pytest.approx(ep.calmar_ratio(r, annualization=ppy), rel=1e-9)  # CAGR of 11 hours
    assert doc["max_drawdown"] == pytest.approx(9700 / 10200 - 1, abs=1e-9)
    assert doc["max_drawdown"] == pytest.approx(ep.max_drawdown(r), abs=1e-6)
    assert doc["max_drawdown_duration"] == 4  # peak at 03:00, back above it at 07:00
    assert doc["max_drawdown_peak"] == "2026-01-01T03:00:00+00:00"
    assert doc["var_historical"] == pytest.approx(ep.value_at_risk(r, 0.05), abs=1e-6)
    assert doc["cvar_historical"] == pytest.approx(ep.conditional_value_at_risk(r, 0.05), abs=1e-6)
    for key in ("var_parametric", "cvar_parametric", "longest_drawdown_duration", "cagr"):
        assert doc[key] is not None
    assert len(doc["rolling"]) == 11 - 5 + 1
    assert doc["rolling"][-1]["ts"] == "2026-01-01T11:00:00+00:00"
    last = r[-5:]
    assert doc["rolling"][-1]["sharpe"] == pytest.approx(ep.sharpe_ratio(last, annualization=ppy), abs=1e-6)


def test_risk_over_sim_bars_with_weights_and_plots(cli):
    doc = cli.json("risk", "--symbols", "AAPL,MSFT", "--weights", "0.25,0.75", "--plot", "plots")
    assert doc["basis"] == "bars" and doc["timeframe"] == "1h" and doc["observations"] > 50
    assert doc["periods_per_year"] == pytest.approx(252 * 6)  # the sim's equities: 6 hourly bars a session
    for name in ("equity.png", "drawdown.png"):
        data = (cli.cwd / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


@pytest.mark.parametrize("args,needle", [
    (["--symbols", "AAPL", "--weights", "0.5,0.5"], "--weights has 2 values"),
    (["--symbols", "AAPL,MSFT", "--weights", "0.5,0.6"], "sum to 1"),
    (["--symbols", "AAPL", "--timeframe", "1d"], "no 1d bars for AAPL"),
    (["--confidence", "95"], "--confidence"),
])
def test_risk_bad_arguments_exit_2(cli, args, needle):
    proc = cli("risk", *args)
    assert proc.returncode == 2 and needle in proc.stderr


def test_drawdown_halt_shows_in_status_until_risk_resume(cli):
    cli.env.update(TOKENOMICS_RISK__DAILY_LOSS_LIMIT_PCT="100", TOKENOMICS_RISK__MONTHLY_LOSS_LIMIT_PCT="100")
    seed_equity(cli, [10000, 13000])  # the account is now at 10000: 23% below its peak
    cli.json("trade")  # marks to market: the halt fires
    halts = cli.json("status")["halts"]
    assert [h["rule"] for h in halts] == ["max_drawdown"] and "risk resume" in halts[0]["lifts"]
    out = cli.json("risk", "resume", "--reason", "reviewed")
    assert out["lifted"] == 1 and out["rows"][0]["lifted_reason"] == "reviewed"
    status = cli.json("status")
    assert status["halts"] == [] and "risk resume" in {r["command"] for r in status["last_runs"]}


def test_size_method_is_validated_and_listed(cli):
    proc = cli("size", "--method", "martingale")
    assert proc.returncode == 2 and "--method must be one of" in proc.stderr
    assert cli.json("size", "--method", "kelly")["rows"] == []  # nothing new to size: exit 0
    help_text = cli("--help").stdout
    assert "risk" in help_text and "explain" in help_text


def test_risk_on_the_sim_account_after_a_run_matches_empyrical(cli):
    ep = pytest.importorskip("empyrical")
    proc = cli("run", "--loop", "--ticks", "60", "--json", env={"TOKENOMICS_SIM__TICK_SECONDS": "0"})
    assert proc.returncode == 0, proc.stderr
    doc = cli.json("risk", "--window", "20")
    st = Store.open(cli.cwd / "store.db")
    values = np.array([r["equity"] for r in st.all("SELECT equity FROM equity ORDER BY ts")])
    st.close()
    r = values[1:] / values[:-1] - 1
    ppy = doc["periods_per_year"]
    assert doc["observations"] == len(r) >= 50 and ppy == 365 * 24
    assert doc["volatility"] == pytest.approx(ep.annual_volatility(r, annualization=ppy), abs=1e-6)
    assert doc["sharpe"] == pytest.approx(ep.sharpe_ratio(r, annualization=ppy), abs=1e-6)
    assert doc["sortino"] == pytest.approx(ep.sortino_ratio(r, annualization=ppy), abs=1e-6)
    assert doc["max_drawdown"] == pytest.approx(ep.max_drawdown(r), abs=1e-6)
    assert doc["var_historical"] == pytest.approx(ep.value_at_risk(r, 0.05), abs=1e-6)
    assert doc["cvar_historical"] == pytest.approx(ep.conditional_value_at_risk(r, 0.05), abs=1e-6)
    assert len(doc["rolling"]) == len(r) - 19


def test_risk_reads_one_named_source_never_two_mixed(cli):
    """sim and file bars of BTC/USD at 60m in one store once made one series spanning 2017-2026
    (a total return of 48,508,955): every series now names its source."""
    cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD")
    rows = ["ts,open,high,low,close"] + [f"2017-01-{1 + i // 24:02d}T{i % 24:02d}:00:00Z,{1000 + i},{1001 + i},"
                                         f"{999 + i},{1000.5 + i}" for i in range(200)]
    (cli.cwd / "btc.csv").write_text("\n".join(rows) + "\n")
    cli.json("fetch-bars", "--source", "file", "--file", "btc.csv", "--symbol", "BTC/USD", "-t", "60m")
    proc = cli("risk", "--symbols", "BTC/USD", "--timeframe", "60m", "--lookback", "600")
    assert proc.returncode == 2 and "several sources (file, sim)" in proc.stderr and "--source" in proc.stderr
    file = cli.json("risk", "--symbols", "BTC/USD", "--timeframe", "60m", "--lookback", "600", "--source", "file")
    assert file["start"].startswith("2017-01-01") and file["end"].startswith("2017-01-09")
    assert file["observations"] == 199 and abs(file["total_return"]) < 1
    sim = cli.json("risk", "--symbols", "BTC/USD", "--timeframe", "60m", "--source", "sim")
    assert sim["start"] >= "2026-01-01" and sim["periods_per_year"] == 8760
    assert cli.json("risk", "--symbols", "BTC/USD", "--timeframe", "60m", "--source", "sim",
                    "--periods-per-year", "1000")["periods_per_year"] == 1000
