"""The offline-transformer scorer (MiniLM fine-tuned on TFNS, run by onnxruntime, blended with the
TF-IDF model): it loads the shipped model and scores, the blend is the documented mix of the two
models, the shipped export reproduces its model card on both development sets, and a missing extra or a
missing model says what to install or run (exit 2)."""

from __future__ import annotations

import json
import sys
from datetime import datetime, timezone

import numpy as np
import pytest

from tokenomics.adapters.scorers import transformer as tf
from tokenomics.adapters.scorers.offline import OfflineScorer, load_tfns
from tokenomics.core.errors import ConfigError
from tokenomics.core.models import Article

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)
needs_extra = pytest.mark.skipif(
    bool(tf.missing_requirements()),
    reason=f"the '{tf.EXTRA}' extra is not installed ({', '.join(tf.missing_requirements())} missing): "
           f"pip install -e \".[{tf.EXTRA}]\"")


def art(headline: str, symbols: tuple[str, ...] = ("ACME",), aid: str = "a1") -> Article:
    return Article(id=aid, headline=headline, symbols=symbols, created_at=NOW)


@pytest.fixture(scope="module")
def scorer() -> tf.TransformerScorer:
    return tf.TransformerScorer()


def test_clean_drops_tweet_artefacts_the_same_way_for_training_and_scoring() -> None:
    assert tf.clean("$AAPL up 3% https://t.co/xYz @trader #stocks  rally") == "AAPL up 3% stocks rally"
    assert tf.clean("Acme (ACME) cuts outlook") == "Acme (ACME) cuts outlook"


def test_the_model_is_shipped_with_its_card() -> None:
    card = json.loads((tf.MODEL_DIR / tf.CARD_FILE).read_text(encoding="utf-8"))
    assert (tf.MODEL_DIR / tf.ONNX_FILE).stat().st_size < 30e6  # small enough to ship in git
    assert (tf.MODEL_DIR / tf.TOKENIZER_FILE).exists()
    assert card["data"]["licence"] == "MIT" and "Twitter Financial News" in card["data"]["credit"]
    assert "PhraseBank" in card["data"]["not_used"]
    assert card["base_model"]["licence"] == "Apache-2.0"
    assert card["blend"]["transformer_weight"] == tf.DEFAULT_WEIGHT
    assert card["blend"].get("combine", "probabilities") in tf.COMBINES
    assert "PhraseBank" in card.get("selection", {}).get("rule", "PhraseBank")  # chosen without it


def test_blend_rules_mix_probabilities_or_log_probabilities() -> None:
    a = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    b = np.array([[0.2, 0.5, 0.3], [0.05, 0.05, 0.9]])
    np.testing.assert_allclose(tf.blend(a, b, 0.4), 0.6 * a + 0.4 * b)
    geo = a ** 0.6 * b ** 0.4
    np.testing.assert_allclose(tf.blend(a, b, 0.4, "log-probabilities"), geo / geo.sum(1, keepdims=True))
    np.testing.assert_allclose(tf.blend(a, b, 0.0, "log-probabilities"), a, atol=1e-12)
    np.testing.assert_allclose(tf.blend(a, b, 1.0, "log-probabilities"), b, atol=1e-12)
    with pytest.raises(ConfigError, match="blend.combine"):
        tf.blend(a, b, 0.4, "median")


@needs_extra
@pytest.mark.parametrize("headline,label", [
    ("Acme shares surge to a record high after an earnings beat and raised guidance", "bullish"),
    ("Acme upgraded to buy at a major broker, stock jumps", "bullish"),
    ("Acme stock plunges after deliveries miss estimates and the company cuts its outlook", "bearish"),
    ("Analysts downgrade Acme to sell, shares tumble", "bearish"),
    ("Acme will hold its annual general meeting on 5 May", "neutral"),
])
def test_provider_loads_and_scores_clear_headlines(scorer, headline: str, label: str) -> None:
    [score] = scorer.score([art(headline)])
    assert score.sentiment == label and score.scorer == "offline-transformer"
    assert 50 < score.conviction <= 100
    assert score.reason.startswith(f"offline transformer blend: p({label})=")


@needs_extra
def test_one_score_per_symbol_and_none_without_symbols(scorer) -> None:
    scores = scorer.score([art("Stocks rally as inflation cools", ("AAPL", "MSFT"), "x"),
                           art("Stocks rally as inflation cools", (), "y")])
    assert [(s.article_id, s.symbol) for s in scores] == [("x", "AAPL"), ("x", "MSFT")]
    assert scorer.score([]) == [] and scorer.predict_proba([]).shape == (0, 3)


@needs_extra
def test_the_blend_is_the_documented_mix_of_the_two_models(scorer) -> None:
    texts, _ = load_tfns()
    texts = texts[:64]
    minilm = tf.TransformerScorer(weight=1.0).predict_proba(texts)
    tfidf = OfflineScorer().predict_proba(texts)
    blend = scorer.predict_proba(texts)
    card = json.loads((tf.MODEL_DIR / tf.CARD_FILE).read_text(encoding="utf-8"))["blend"]
    assert scorer.weight == card["transformer_weight"] == tf.DEFAULT_WEIGHT
    assert scorer.combine == card.get("combine", "probabilities")
    np.testing.assert_allclose(blend, tf.blend(tfidf, minilm, scorer.weight, scorer.combine), atol=1e-12)
    np.testing.assert_allclose(blend.sum(axis=1), 1.0, atol=1e-9)
    # a headline gets the same probabilities alone and among others (int8 activations are scaled per run)
    one = np.vstack([scorer.predict_proba([t]) for t in texts[:16]])
    np.testing.assert_allclose(one, blend[:16], atol=1e-12)
    np.testing.assert_allclose(tf.TransformerScorer(weight=0.0).predict_proba(texts), tfidf, atol=1e-12)


@needs_extra
@pytest.mark.slow
def test_the_shipped_export_reproduces_its_card_on_tfns_validation(scorer) -> None:
    card = json.loads((tf.MODEL_DIR / tf.CARD_FILE).read_text(encoding="utf-8"))["metrics"]["tfns_valid"]
    texts, labels = load_tfns(tf.MODEL_DIR.parents[1] / "src" / "tokenomics" / "data" / "tfns_valid.csv")
    blend = scorer.predict_proba(texts)
    assert abs(float(np.mean(blend.argmax(1) == labels)) - card["minilm_shipped_blend"]["accuracy"]) < 2e-3
    alone = tf.TransformerScorer(weight=1.0)
    alone._model = scorer.model
    chosen = card["minilm_int8"] if json.loads((tf.MODEL_DIR / tf.CARD_FILE).read_text())["onnx"]["quantisation"] \
        == "int8" else card["minilm_fp32"]
    assert abs(float(np.mean(alone.predict_proba(texts).argmax(1) == labels)) - chosen["accuracy"]) < 2e-3


@needs_extra
def test_the_shipped_model_reproduces_its_card_on_the_formal_news_development_set(scorer) -> None:
    """The second development set the model was chosen on (news sentences and headlines, not tweets):
    the card's figures are what the shipped files give, and the blend beats the TF-IDF model alone there."""
    card = json.loads((tf.MODEL_DIR / tf.CARD_FILE).read_text(encoding="utf-8"))["metrics"]["formal_dev"]
    texts, labels = load_tfns(tf.MODEL_DIR.parents[1] / card["file"])
    assert len(texts) == card["minilm_shipped_blend"]["n"]
    shipped = float(np.mean(scorer.predict_proba(texts).argmax(1) == labels))
    assert abs(shipped - card["minilm_shipped_blend"]["accuracy"]) < 2e-3
    tfidf = float(np.mean(OfflineScorer().predict_proba(texts).argmax(1) == labels))
    assert abs(tfidf - card["tfidf_alone"]["accuracy"]) < 2e-3
    assert shipped > tfidf


def test_a_missing_extra_is_a_config_error_naming_it(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what find_spec sees when it is not installed
    assert "onnxruntime" in tf.missing_requirements()
    with pytest.raises(ConfigError, match=r'pip install -e "\.\[transformer\]"') as err:
        tf.TransformerScorer().predict_proba(["Acme beats estimates"])
    assert err.value.exit_code == 2 and "onnxruntime" in str(err.value)


@needs_extra
def test_a_missing_model_is_a_config_error_naming_the_training_command(tmp_path) -> None:
    with pytest.raises(ConfigError, match="scripts/train_transformer.py") as err:
        tf.TransformerScorer(tmp_path / "nowhere").predict_proba(["Acme beats estimates"])
    assert err.value.exit_code == 2 and "model.onnx" in str(err.value)


def test_a_sweep_snapshot_carries_both_models_to_remote_workers(rt) -> None:
    from tokenomics.research import sweeps

    config = rt.db_path.parent / "config"
    config.mkdir()
    (config / "settings.yaml").write_text("sentiment: {provider: offline-transformer}\n")
    snap = sweeps.make_snapshot(rt, "sentiment", [{}])
    assert snap["settings"]["sentiment"]["transformer_dir"] == "transformer"
    assert snap["settings"]["sentiment"]["model_dir"] == "scorer"
    assert snap["files"]["transformer/model.onnx"] == (tf.MODEL_DIR / tf.ONNX_FILE).read_bytes()
    assert "scorer/model.npz" in snap["files"]
    home = sweeps.unpack(snap)
    import yaml

    settings = yaml.safe_load((home / "settings.yaml").read_text())
    assert settings["sentiment"]["transformer_dir"] == str(home / "transformer")
