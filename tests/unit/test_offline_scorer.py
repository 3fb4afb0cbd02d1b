"""The offline scorer: labels on clear headlines, per-symbol scores, conviction range, the shipped
model's TFNS-validation accuracy, and the in-memory rebuild when the shipped model is unusable."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

from tests.conftest import SHARED
from tokenomics.adapters.scorers import offline
from tokenomics.adapters.scorers.offline import OfflineScorer, load_tfns, normalise
from tokenomics.core.models import Article

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def scorer() -> OfflineScorer:
    return OfflineScorer()


def art(headline: str, symbols: tuple[str, ...] = ("ACME",), aid: str = "a1") -> Article:
    return Article(id=aid, headline=headline, symbols=symbols, created_at=NOW)


@pytest.mark.parametrize("headline,label", [
    ("Acme shares surge to a record high after an earnings beat and raised guidance", "bullish"),
    ("Acme upgraded to buy at a major broker, stock jumps", "bullish"),
    ("Acme reports record profit and doubles its dividend", "bullish"),
    ("Acme stock plunges after deliveries miss estimates and the company cuts its outlook", "bearish"),
    ("Analysts downgrade Acme to sell, shares tumble", "bearish"),
    ("Acme cut its full-year outlook, citing weak demand", "bearish"),
    ("Acme will hold its annual general meeting on 5 May", "neutral"),
])
def test_clear_headlines_get_the_right_label(scorer: OfflineScorer, headline: str, label: str) -> None:
    [score] = scorer.score([art(headline)])
    assert score.sentiment == label
    assert score.conviction > 50
    assert score.reason.startswith(f"offline model: p({label})=")


def test_one_score_per_symbol_and_none_without_symbols(scorer: OfflineScorer) -> None:
    scores = scorer.score([art("Stocks rally as inflation cools", ("AAPL", "MSFT"), "x"),
                           art("Stocks rally as inflation cools", (), "y")])
    assert [(s.article_id, s.symbol) for s in scores] == [("x", "AAPL"), ("x", "MSFT")]
    assert scores[0].sentiment == scores[1].sentiment and scores[0].conviction == scores[1].conviction
    assert {s.scorer for s in scores} == {"offline"}
    assert scorer.score([]) == []


def test_probabilities_and_conviction_range(scorer: OfflineScorer) -> None:
    texts, _ = load_tfns()
    proba = scorer.predict_proba(texts[:300])
    assert proba.shape == (300, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    scores = scorer.score([art(t, ("X",), str(i)) for i, t in enumerate(texts[:300])])
    assert len(scores) == 300
    assert all(0 <= s.conviction <= 100 and s.sentiment in offline.LABELS for s in scores)
    assert scorer.predict_proba([]).shape == (0, 3)


def test_normalise_strips_tweet_artefacts() -> None:
    assert normalise("$AAPL Revenue Jumps 5.2% https://t.co/x via @trader #stocks") == "revenue rise 0% via stocks"
    assert normalise("Sales decreased 9%") == "sales fall 0%"


def test_shipped_model_on_tfns_validation(scorer: OfflineScorer) -> None:
    path = SHARED / "data" / "tfns" / "sent_valid.csv"
    if not path.exists():
        pytest.skip("../shared/data/tfns not present")
    texts, labels = load_tfns(path)
    accuracy = (scorer.predict_proba(texts).argmax(axis=1) == labels).mean()
    assert accuracy >= 0.82  # the model card records 0.84


def test_version_mismatch_is_refused(tmp_path) -> None:
    shutil.copy(offline.MODEL_DIR / offline.MODEL_FILE, tmp_path)
    card = json.loads((offline.MODEL_DIR / offline.CARD_FILE).read_text())
    card["libraries"]["scikit-learn"] = "0.0.1"
    (tmp_path / offline.CARD_FILE).write_text(json.dumps(card))
    with pytest.raises(RuntimeError, match="scikit-learn 0.0.1"):
        offline._load_shipped(tmp_path)


def test_rebuilds_from_vendored_csv_when_the_model_is_missing(tmp_path, monkeypatch, caplog) -> None:
    vendored = load_tfns()  # the real vendored CSV; every 3rd row keeps the fit quick
    monkeypatch.setattr(offline, "load_tfns", lambda path=None: (vendored[0][::3], vendored[1][::3]))
    rebuilt = OfflineScorer(tmp_path)
    with caplog.at_level(logging.WARNING, logger="tokenomics"):
        [score] = rebuilt.score([art("Acme shares surge to a record high after an earnings beat")])
    assert "rebuilding from the vendored TFNS data" in caplog.text
    assert score.sentiment == "bullish"
    assert rebuilt.predict_proba(["Acme cuts its outlook"]).shape == (1, 3)


# --- the numpy export (issue 16): the scorer loads and scores without scikit-learn or scipy ---------

def test_the_numpy_export_agrees_with_the_pipeline() -> None:
    """The shipped model.npz, evaluated with numpy, gives the probabilities of the shipped pipeline."""
    import joblib

    pipeline = joblib.load(offline.MODEL_DIR / offline.MODEL_FILE)
    exported = offline.NumpyModel.load(offline.MODEL_DIR / offline.NUMPY_FILE)
    path = SHARED / "data" / "tfns" / "sent_valid.csv"
    texts = load_tfns(path)[0] if path.exists() else load_tfns()[0][:2000]
    texts += ["", "   ", "a", "ÄÖÜ ñ 😀 $AAPL", "x" * 500, "Apple\n\tbeats  estimates"]
    diff = np.abs(exported.predict_proba(texts) - pipeline.predict_proba(texts)).max()
    assert diff < 1e-12


def test_an_export_of_a_fresh_fit_round_trips(tmp_path) -> None:
    texts, labels = load_tfns()
    pipeline = offline.fit(texts[::5], labels[::5])
    offline.save_numpy(pipeline, tmp_path / offline.NUMPY_FILE)
    exported = offline.NumpyModel.load(tmp_path / offline.NUMPY_FILE)
    probe = texts[1::50]
    assert np.abs(exported.predict_proba(probe) - pipeline.predict_proba(probe)).max() < 1e-12
    with np.load(tmp_path / offline.NUMPY_FILE, allow_pickle=False) as z:  # plain arrays, no pickles
        assert {"coef", "intercept", "word_terms", "word_idf", "char_terms", "char_idf"} <= set(z.files)


def test_scoring_imports_neither_sklearn_nor_scipy() -> None:
    code = ("import sys\n"
            "from tokenomics.adapters.scorers.offline import OfflineScorer\n"
            "from tokenomics.core.models import Article\n"
            "from datetime import datetime, timezone\n"
            "s = OfflineScorer().score([Article('a', 'Acme shares surge after an earnings beat', ('ACME',), "
            "datetime.now(timezone.utc))])\n"
            "assert s[0].sentiment == 'bullish', s\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'scipy', 'joblib'}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_an_unusable_export_falls_back_to_the_pipeline(tmp_path, caplog) -> None:
    shutil.copy(offline.MODEL_DIR / offline.MODEL_FILE, tmp_path)
    shutil.copy(offline.MODEL_DIR / offline.CARD_FILE, tmp_path)
    (tmp_path / offline.NUMPY_FILE).write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING, logger="tokenomics"):
        [score] = OfflineScorer(tmp_path).score([art("Acme shares surge to a record high after an earnings beat")])
    assert "model.npz unusable" in caplog.text and "rebuilding" not in caplog.text
    assert score.sentiment == "bullish"
