"""train / models / predict in process over a store of bars."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from tokenomics.research import ml
from tokenomics.core import features as F
from tokenomics.core.errors import UsageProblem
from tokenomics.store import Store, iso

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)
SMALL_RF = {"n_estimators": 20, "max_depth": 4, "random_state": 0, "n_jobs": 1}


def fill(store: Store, symbol: str, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    rows = []
    for i in range(n):
        o = close[i - 1] if i else close[0]
        rows.append({"source": "file", "symbol": symbol, "timeframe": "1h", "ts": iso(T0 + timedelta(hours=i)),
                     "open": o, "high": max(o, close[i]) * 1.002, "low": min(o, close[i]) * 0.998,
                     "close": close[i], "volume": float(rng.lognormal(5, 0.3))})
    store.insert_ignore("bars", rows)


@pytest.fixture
def store(tmp_path):
    s = Store.open(tmp_path / "ml.db")
    fill(s, "AAA", 1500, 1)
    fill(s, "BBB", 1500, 2)
    yield s
    s.close()


def train(store, tmp_path, **kw):
    args = dict(name="m1", source="file", symbols=["AAA", "BBB"], timeframe="1h", features=list(F.FEATURES),
                classifier="sklearn.ensemble.RandomForestClassifier", params=SMALL_RF, horizon=5,
                threshold_pct=0.0, cv="walk-forward", folds=4, embargo=10, min_probability=0.55,
                cost_rate=0.0015, models_dir=tmp_path / "models", now=T0)
    args.update(kw)
    return ml.train(store, **args)


def test_train_saves_pipeline_and_a_complete_model_card(store, tmp_path):
    card = train(store, tmp_path)
    folder = tmp_path / "models" / "m1"
    saved = json.loads((folder / "model_card.json").read_text())
    assert saved == card and (folder / "model.joblib").exists()
    assert card["symbols"] == ["AAA", "BBB"] and card["timeframe"] == "1h"
    # rows: per symbol, bars after the warm-up whose forward return is known
    assert card["rows"] == 2 * (1500 - F.WARMUP - 5)
    assert card["date_range"]["first"] == iso(T0 + timedelta(hours=F.WARMUP))
    assert card["features"] == list(F.FEATURES) and card["feature_set"] == F.feature_set_id(F.FEATURES)
    assert card["cv"]["shuffle"] is False and len(card["metrics"]["folds"]) == 4
    for fold in card["metrics"]["folds"]:
        assert {"accuracy", "precision", "roc_auc", "brier", "net_return", "trades"} <= fold.keys()
        assert 0 <= fold["brier"] <= 1 and 0 <= fold["roc_auc"] <= 1
        assert fold["train_from"] < fold["test_from"] <= fold["test_to"]
    assert {"scikit-learn", "numpy", "polars", "python"} <= card["versions"].keys()
    assert len(card["data_hash"]) == 64
    assert [m["name"] for m in ml.list_models(tmp_path / "models")][0] == "m1"


def test_same_data_same_hash_and_other_data_another(store, tmp_path):
    a = train(store, tmp_path, name="a")
    b = train(store, tmp_path, name="b", cv="purged")
    c = train(store, tmp_path, name="c", symbols=["AAA"])
    assert a["data_hash"] == b["data_hash"] != c["data_hash"]
    assert b["cv"] == {"scheme": "purged", "folds": 4, "embargo_bars": 10, "shuffle": False}


def test_existing_model_needs_force(store, tmp_path):
    train(store, tmp_path, folds=2)
    with pytest.raises(UsageProblem, match="already exists"):
        train(store, tmp_path, folds=2)
    assert train(store, tmp_path, force=True, folds=2, horizon=3)["label"]["horizon_bars"] == 3
    assert ml.Model(tmp_path / "models" / "m1").card["label"]["horizon_bars"] == 3  # replaced


def test_any_sklearn_classifier_by_name_and_clear_errors(store, tmp_path):
    card = train(store, tmp_path, name="lr", classifier="sklearn.linear_model.LogisticRegression", params={})
    assert card["classifier"].endswith("LogisticRegression")
    with pytest.raises(UsageProblem, match="not a scikit-learn classifier"):
        train(store, tmp_path, name="x", classifier="sklearn.linear_model.LinearRegression", params={})
    with pytest.raises(UsageProblem, match="cannot import"):
        train(store, tmp_path, name="x", classifier="sklearn.nope.Forest", params={})


def test_prediction_refuses_another_feature_set(store, tmp_path, monkeypatch):
    from tokenomics.research import bars

    train(store, tmp_path, name="sub", features=["ret_1", "rsi_14", "bb_pctb"])
    model = ml.Model(tmp_path / "models" / "sub")
    df = bars.load_frame(store, "file", "AAA", "1h")
    ts, p = model.predict_latest(df)
    assert ts == T0 + timedelta(hours=1499) and 0 <= p <= 1
    with pytest.raises(UsageProblem, match="trained on feature set"):
        model.check_features(list(F.FEATURES))
    monkeypatch.setattr(F, "FEATURE_VERSION", F.FEATURE_VERSION + 1)  # the definitions changed since training
    with pytest.raises(UsageProblem, match="definitions v2"):
        model.predict_latest(df)


def test_cards_trade_per_symbol_and_a_random_walk_model_does_not_beat_real_buy_and_hold(tmp_path):
    """On random walks there is nothing to find: averaged over folds and symbols, the model's net
    return does not beat buy-and-hold (entered once per fold, costs paid once each way). The card
    once compounded overlapping positions across symbols and made buy-and-hold re-enter every
    horizon (-0.99996), so every model seemed to win."""
    s = Store.open(tmp_path / "rw.db")
    for k, sym in enumerate(("AAA", "BBB", "CCC", "DDD")):
        fill(s, sym, 1500, 100 + k)
    card = train(s, tmp_path, symbols=["AAA", "BBB", "CCC", "DDD"], folds=5, min_probability=0.5)
    s.close()
    folds = card["metrics"]["folds"]
    assert len(folds) == 5
    edge = []
    for f in folds:
        per = f["per_symbol"]
        assert set(per) == {"AAA", "BBB", "CCC", "DDD"}
        assert f["net_return"] == pytest.approx(np.mean([p["net_return"] for p in per.values()]), abs=1e-6)
        assert f["trades"] == sum(p["trades"] for p in per.values())
        for p in per.values():
            assert -0.5 < p["buy_and_hold_net_return"] < 0.5  # a few weeks of a 1 %-an-hour walk, not -0.99996
            edge.append(p["net_return"] - p["buy_and_hold_net_return"])
    assert np.mean(edge) < 0.01
    assert card["metrics"]["mean"]["buy_and_hold_net_return"] == pytest.approx(
        np.mean([f["buy_and_hold_net_return"] for f in folds]), abs=1e-4)
