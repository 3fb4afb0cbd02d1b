"""The price-model path through the real CLI on a fresh store: fetch-bars -> train -> signal --source model
-> size -> trade -> run --once, with no network."""

from __future__ import annotations

import json

SMALL = ["--param", "n_estimators=30", "--param", "max_depth=4", "--param", "random_state=0", "--param", "n_jobs=1"]


def test_fetch_train_signal_size_trade_run(cli):
    cli.env["TOKENOMICS_ML__MIN_PROBABILITY"] = "0.01"  # every prediction becomes a signal here
    assert cli.json("fetch-bars", "--source", "sim")["new"] > 1000
    (cli.cwd / "extra.csv").write_text("timestamp,open,high,low,close,volume\n" + "".join(
        f"{1735689600 + 3600 * i},{100 + i % 7},{101 + i % 7},{99 + i % 7},{100.5 + i % 7},10\n" for i in range(50)))
    assert cli.json("fetch-bars", "--source", "file", "--file", "extra.csv", "--symbol", "XYZ", "-t", "1h")["new"] == 50

    trained = cli.json("train", "--name", "mine", *SMALL, "--folds", "3", "--horizon", "3")
    assert trained["symbols"] == ["BTC/USD", "ETH/USD"]  # equities lack enough bars after the warm-up
    assert len(trained["folds"]) == 3
    card = json.loads((cli.cwd / "trained_models" / "mine" / "model_card.json").read_text())
    assert card["label"] == {"horizon_bars": 3, "threshold_pct": 0.0} and card["timeframe"] == "1h"
    listed = cli.json("models")["rows"]
    assert [m["name"] for m in listed][:1] == ["mine"] and "sim-example" in [m["name"] for m in listed]

    sig = cli.json("signal", "--source", "model", "--model", "mine")
    assert sig["signals"] == 2
    status = cli.json("status")
    for r in sig["rows"]:
        assert r["source"] == "model" and r["status"] == "new" and 0 <= r["strength"] <= 1
        assert r["id"] == f"model:mine:{r['symbol']}:{r['bar_ts']}" and r["bar_ts"] < status["now"]
    again = cli.json("signal", "--source", "model", "--model", "mine")
    assert again["signals"] == 0 and all(r["already_recorded"] for r in again["rows"])

    sized = cli.json("size")
    assert sized["sized"] == 2
    traded = cli.json("trade")
    assert sorted(r["symbol"] for r in traded["rows"] if r["status"] == "filled") == ["BTC/USD", "ETH/USD"]
    positions = cli.json("status")["positions"]
    assert {p["symbol"] for p in positions} == {"BTC/USD", "ETH/USD"}

    run = cli("run", "--once", "--json")
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["ticks"] == 1


def test_shipped_example_model_predicts_on_a_fresh_store(cli):
    cli.json("fetch-bars", "--source", "sim")
    out = cli.json("signal", "--source", "model")  # ml.model: the shipped sim-example
    assert out["model"] == "sim-example" and out["considered"] == 2
    assert all(0 <= r["strength"] <= 1 for r in out["rows"])


def test_model_errors_exit_2(cli):
    import shutil

    from tests.conftest import REPO

    cli.json("fetch-bars", "--source", "sim", "--symbol", "BTC/USD")
    assert cli("signal", "--source", "model", "--model", "nope").returncode == 2
    assert cli("signal", "--source", "bogus").returncode == 2
    assert cli("train", "--name", "x", "--source", "ccxt:nowhere").returncode == 2
    assert cli("train", "--name", "x", "--features", "ret_1,made_up").returncode == 2
    shutil.copytree(REPO / "trained_models" / "sim-example", cli.cwd / "trained_models" / "m")
    proc = cli("train", "--name", "m")
    assert proc.returncode == 2 and "already exists" in proc.stderr  # replacing needs --force
    card_path = cli.cwd / "trained_models" / "m" / "model_card.json"
    card = json.loads(card_path.read_text())
    card["name"], card["features"] = "m", card["features"][:-1]  # a model from another feature set
    card_path.write_text(json.dumps(card))
    proc = cli("signal", "--source", "model", "--model", "m")
    assert proc.returncode == 2 and "trained on feature set" in proc.stderr


def test_run_with_the_model_strategy_predicts_every_tick_on_a_fresh_store(cli):
    cli.env["TOKENOMICS_ML__MIN_PROBABILITY"] = "0.01"  # every prediction becomes a signal here
    out = cli.json("run", "--loop", "--ticks", "2", "--interval", "0", "--strategy", "model")
    assert out["strategy"] == "model" and out["ticks"] == 2 and out["articles"] == 0  # no news read
    import sqlite3

    with sqlite3.connect(cli.cwd / "store.db") as db:
        rows = db.execute("SELECT id, source, status FROM signals ORDER BY created_at, id").fetchall()
        runs = {r[0] for r in db.execute("SELECT command FROM runs")}
    assert rows and all(source == "model" for _, source, _ in rows)
    assert {i.split(":")[2] for i, _, _ in rows} == {"BTC/USD", "ETH/USD"}  # sim bars synced to now
    assert out["opened"] >= 1  # the first tick's signals were sized and traded
    assert "fetch-news" not in runs and {"signal", "size", "trade", "check-exits"} <= runs
    for bad in (["--strategy", "nope"], ["--strategy", "model", "--model", "nope"]):
        proc = cli("run", "--once", *bad)
        assert proc.returncode == 2 and bad[-1] in proc.stderr
