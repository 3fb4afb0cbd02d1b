"""The offline scorer: labels, per-symbol scores, conviction range, and the rebuild path."""

from datetime import datetime, timezone

import pytest

from tests.conftest import SHARED
from tokenomics.adapters.scorers.offline import OfflineScorer, load_tfns, normalise
from tokenomics.core.models import Article

NOW = datetime(2026, 1, 5, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def scorer():
    return OfflineScorer()


def art(headline, symbols=("AAPL",), aid="a1"):
    return Article(id=aid, headline=headline, symbols=tuple(symbols), created_at=NOW)


@pytest.mark.parametrize("headline,label", [
    ("Apple shares surge to record high after blowout earnings beat and raised guidance", "bullish"),
    ("Tesla stock plunges after deliveries miss estimates and company cuts outlook", "bearish"),
    ("Analysts downgrade Nvidia, shares tumble", "bearish"),
    ("Amazon upgraded to buy at Goldman, stock jumps", "bullish"),
])
def test_clear_headlines_get_the_right_label(scorer, headline, label):
    [s] = scorer.score([art(headline)])
    assert s.sentiment == label and s.conviction > 50


def test_one_score_per_symbol_and_none_without_symbols(scorer):
    scores = scorer.score([art("Stocks rally as inflation cools", ("AAPL", "MSFT"), "x"), art("Markets", (), "y")])
    assert [(s.article_id, s.symbol) for s in scores] == [("x", "AAPL"), ("x", "MSFT")]
    assert scores[0].sentiment == scores[1].sentiment and scores[0].scorer == "offline"
    assert all(0 <= s.conviction <= 100 for s in scores)


def test_normalise_strips_tweet_artefacts():
    assert normalise("$AAPL up 5.2% https://t.co/x @trader") == "up 0%"


def test_shipped_model_on_tfns_validation(scorer):
    path = SHARED / "data" / "tfns" / "sent_valid.csv"
    if not path.exists():
        pytest.skip("../shared/data/tfns not present")
    texts, labels = load_tfns(path)
    pred = scorer.predict_proba(texts).argmax(axis=1)
    assert (pred == labels).mean() > 0.8


def test_rebuilds_from_vendored_data_when_the_model_is_missing(tmp_path, scorer):
    rebuilt = OfflineScorer(tmp_path)  # no model.joblib there
    texts = ["Company cuts dividend and warns on profit", "Shares soar on record revenue"]
    assert (rebuilt.predict_proba(texts).argmax(axis=1) == scorer.predict_proba(texts).argmax(axis=1)).all()
