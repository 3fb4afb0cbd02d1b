"""The offline scorer: a scikit-learn text model trained on Twitter Financial News Sentiment
(TFNS, MIT licence; zeroshot/twitter-financial-news-sentiment). No keys, no network.

The shipped model lives in trained_models/sentiment-offline/ (model.joblib + model_card.json)
and is rebuilt by scripts/train_scorer.py. If it cannot be loaded (missing, or pickled by another
scikit-learn version), the same pipeline is fitted in memory from the vendored training CSV.
"""

from __future__ import annotations

import csv
import json
import logging
import re
import warnings
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from tokenomics.core.models import SENTIMENTS, Article, Score

log = logging.getLogger("tokenomics")
DEFAULT_DIR = Path(__file__).resolve().parents[4] / "trained_models" / "sentiment-offline"
PARAMS = {"word_ngrams": (1, 2), "char_ngrams": (2, 5), "char_min_df": 2, "C": 10.0, "max_iter": 2000}
LABELS = ("bearish", "bullish", "neutral")  # TFNS label ids 0, 1, 2
assert LABELS == SENTIMENTS

_URL = re.compile(r"https?://\S+|www\.\S+")
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z.]{0,6}\b")
_HANDLE = re.compile(r"@\w+")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def normalise(text: str) -> str:
    """Strip tweet artefacts (URLs, cashtags, handles) and fold numbers, so the model learns words."""
    text = _HANDLE.sub(" ", _CASHTAG.sub(" ", _URL.sub(" ", text)))
    return re.sub(r"\s+", " ", _NUMBER.sub("0", text)).strip().lower()


def build_pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline

    return Pipeline([
        ("features", FeatureUnion([
            ("words", TfidfVectorizer(preprocessor=normalise, ngram_range=PARAMS["word_ngrams"], sublinear_tf=True)),
            ("chars", TfidfVectorizer(preprocessor=normalise, analyzer="char_wb", ngram_range=PARAMS["char_ngrams"],
                                      min_df=PARAMS["char_min_df"], sublinear_tf=True)),
        ])),
        ("model", LogisticRegression(C=PARAMS["C"], max_iter=PARAMS["max_iter"])),
    ])


def load_tfns(path: Path | None = None) -> tuple[list[str], np.ndarray]:
    """TFNS rows (text, label id); the vendored training split by default."""
    fh = open(path, encoding="utf-8") if path else \
        resources.files("tokenomics.data").joinpath("tfns_train.csv").open(encoding="utf-8")
    with fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], np.array([int(r["label"]) for r in rows])


def fit(path: Path | None = None):
    texts, labels = load_tfns(path)
    return build_pipeline().fit(texts, labels)


class OfflineScorer:
    name = "offline"

    def __init__(self, model_dir: Path | None = None):
        self.model_dir = Path(model_dir) if model_dir else DEFAULT_DIR
        self._pipeline = None

    @property
    def pipeline(self):
        if self._pipeline is None:
            self._pipeline = self._load()
        return self._pipeline

    def _load(self):
        import joblib
        import sklearn

        path, card = self.model_dir / "model.joblib", self.model_dir / "model_card.json"
        reason = f"{path} not found"
        if path.exists():
            trained_with = json.loads(card.read_text()).get("versions", {}).get("scikit-learn") if card.exists() else None
            if trained_with in (None, sklearn.__version__):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("error", getattr(sklearn.exceptions, "InconsistentVersionWarning", Warning))
                        return joblib.load(path)
                except Exception as exc:  # unreadable or incompatible pickle: rebuild below
                    reason = f"{path} could not be loaded ({exc})"
            else:
                reason = f"{path} was trained with scikit-learn {trained_with}, this is {sklearn.__version__}"
        log.warning("offline scorer: %s; fitting the model from the vendored TFNS data", reason)
        return fit()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Class probabilities, columns in LABELS order (bearish, bullish, neutral)."""
        return self.pipeline.predict_proba(list(texts))

    def score(self, articles: Sequence[Article]) -> list[Score]:
        articles = [a for a in articles if a.symbols]
        if not articles:
            return []
        proba = self.predict_proba([a.text for a in articles])
        out = []
        for a, p in zip(articles, proba, strict=True):
            k = int(np.argmax(p))
            conviction = min(max(int(round(100 * float(p[k]))), 0), 100)
            reason = f"offline model: p({LABELS[k]})={p[k]:.2f}"
            out.extend(Score(a.id, s, LABELS[k], conviction, reason, self.name) for s in a.symbols)
        return out
