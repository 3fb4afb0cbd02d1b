"""The offline sentiment scorer: a scikit-learn text model, no network, no keys.

Trained on Twitter Financial News Sentiment (TFNS, MIT licence). Tweets are normalised before
featurisation (URLs, $TICKERs, @handles and hashtag signs stripped, numbers collapsed to 0, verbs
of movement mapped to "rise"/"fall") so that tweet artefacts don't dominate and the model carries
over to formal news sentences. Features: TF-IDF word 1-2-grams plus char_wb 2-5-grams; classifier:
class-balanced multinomial logistic regression. `build_pipeline`/`fit` are the single definition
of the model, shared with scripts/train_scorer.py and the in-memory rebuild fallback.

At run time the model is read from `model.npz` (vocabularies, idf weights, coefficients; written by
scripts/train_scorer.py beside the scikit-learn pipeline) and evaluated with numpy alone by
`NumpyModel`: scoring imports neither scikit-learn nor scipy. `model.joblib` (the fitted pipeline,
needs scikit-learn) is the fallback, then an in-memory rebuild.
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

from tokenomics.core.models import SENTIMENTS, Article, Score, Sentiment

log = logging.getLogger("tokenomics")

MODEL_DIR = Path(__file__).resolve().parents[4] / "trained_models" / "sentiment-offline"
MODEL_FILE = "model.joblib"
NUMPY_FILE = "model.npz"
NUMPY_FORMAT = 1
CARD_FILE = "model_card.json"
LABELS: tuple[Sentiment, ...] = SENTIMENTS  # TFNS label id -> sentiment: 0 bearish, 1 bullish, 2 neutral
PARAMS = {
    "word_ngram_range": (1, 2), "word_min_df": 2,
    "char_wb_ngram_range": (2, 5), "char_min_df": 3,
    "sublinear_tf": True, "C": 3.0, "class_weight": "balanced", "solver": "newton-cg", "max_iter": 1000,
    "random_state": 0,
}

_URL = re.compile(r"https?://\S+|www\.\S+")
_CASHTAG = re.compile(r"\$[A-Za-z][A-Za-z.]{0,6}\b")
_HANDLE = re.compile(r"@\w+")
_HASH = re.compile(r"#(\w+)")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_SPACE = re.compile(r"\s+")
_RISE = re.compile(
    r"\b(?:increas(?:e|es|ed|ing)|ris(?:e|es|ing|en)|rose|grow(?:s|ing|n)?|grew|gain(?:s|ed|ing)?"
    r"|climb(?:s|ed|ing)?|jump(?:s|ed|ing)?|soar(?:s|ed|ing)?|surg(?:e|es|ed|ing)|advanc(?:e|es|ed|ing)"
    r"|improv(?:e|es|ed|ing)|expand(?:s|ed|ing)?|doubl(?:e|es|ed|ing)|tripl(?:e|es|ed|ing)"
    r"|rall(?:y|ies|ied|ying)|rebound(?:s|ed|ing)?|boost(?:s|ed|ing)?|spik(?:e|es|ed|ing)"
    r"|skyrocket(?:s|ed|ing)?|strengthen(?:s|ed|ing)?)\b"
)
_FALL = re.compile(
    r"\b(?:decreas(?:e|es|ed|ing)|declin(?:e|es|ed|ing)|fall(?:s|ing|en)?|fell|drop(?:s|ped|ping)?"
    r"|slid(?:e|es|ing)?|slip(?:s|ped|ping)?|plung(?:e|es|ed|ing)|tumbl(?:e|es|ed|ing)|sink(?:s|ing)?"
    r"|sank|sunk|slump(?:s|ed|ing)?|shrink(?:s|ing)?|shrank|shrunk|deteriorat(?:e|es|ed|ing)"
    r"|weaken(?:s|ed|ing)?|plummet(?:s|ed|ing)?|crash(?:es|ed|ing)?|dip(?:s|ped|ping)?|erod(?:e|es|ed|ing))\b"
)


def normalise(text: str) -> str:
    """Lower-cased text without tweet artefacts, numbers as 0, movement verbs as rise/fall."""
    text = _HASH.sub(r"\1", _HANDLE.sub(" ", _CASHTAG.sub(" ", _URL.sub(" ", text))))
    text = _NUMBER.sub("0", text).lower()
    text = _FALL.sub("fall", _RISE.sub("rise", text))
    return _SPACE.sub(" ", text).strip()


def normalise_all(texts: Sequence[str]) -> list[str]:
    return [normalise(t) for t in texts]


def build_pipeline():
    """The unfitted model: normalise -> word + char_wb TF-IDF -> balanced logistic regression."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import FeatureUnion, Pipeline
    from sklearn.preprocessing import FunctionTransformer

    p = PARAMS
    return Pipeline([
        ("normalise", FunctionTransformer(normalise_all)),
        ("features", FeatureUnion([
            ("word", TfidfVectorizer(lowercase=False, ngram_range=p["word_ngram_range"],
                                     min_df=p["word_min_df"], sublinear_tf=p["sublinear_tf"])),
            ("char", TfidfVectorizer(lowercase=False, analyzer="char_wb", ngram_range=p["char_wb_ngram_range"],
                                     min_df=p["char_min_df"], sublinear_tf=p["sublinear_tf"])),
        ])),
        ("clf", LogisticRegression(C=p["C"], class_weight=p["class_weight"], solver=p["solver"],
                                   max_iter=p["max_iter"], random_state=p["random_state"])),
    ])


def fit(texts: Sequence[str], labels: Sequence[int]):
    """A fitted pipeline; labels are TFNS ids (0 bearish, 1 bullish, 2 neutral).

    BLAS is held to one thread: faster on this small sparse problem and bit-for-bit repeatable.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        return build_pipeline().fit(list(texts), np.asarray(labels))


def vendored_train_csv() -> Path:
    """The TFNS training split shipped inside the package (src/tokenomics/data/tfns_train.csv)."""
    return Path(str(resources.files("tokenomics.data").joinpath("tfns_train.csv")))


def tfns_splits(data_dir: Path) -> tuple[Path, Path]:
    """(train, valid) TFNS csv files: DIR/sent_train.csv and DIR/sent_valid.csv where present, else the
    copies shipped in the package (training scripts)."""
    vendored = vendored_train_csv().parent
    train, valid = data_dir / "sent_train.csv", data_dir / "sent_valid.csv"
    return (train if train.exists() else vendored / "tfns_train.csv",
            valid if valid.exists() else vendored / "tfns_valid.csv")


def load_tfns(path: Path | None = None) -> tuple[list[str], np.ndarray]:
    """(texts, labels) from a TFNS csv with columns text,label; default: the vendored train split."""
    with open(path or vendored_train_csv(), encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return [r["text"] for r in rows], np.array([int(r["label"]) for r in rows])


def _load_shipped(model_dir: Path):
    import joblib
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning

    card = model_dir / CARD_FILE
    if card.exists():
        trained_with = json.loads(card.read_text(encoding="utf-8")).get("libraries", {}).get("scikit-learn")
        if trained_with != sklearn.__version__:
            raise RuntimeError(f"trained with scikit-learn {trained_with}, installed {sklearn.__version__}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentVersionWarning)
        return joblib.load(model_dir / MODEL_FILE)


# --- the pipeline as arrays, evaluated with numpy ------------------------------------------------------
def export_arrays(pipeline) -> dict[str, np.ndarray]:
    """Everything a fitted `build_pipeline()` needs to predict, as plain arrays (no pickles): the word
    and char_wb vocabularies (terms joined by newlines, UTF-8), their idf weights and n-gram ranges, and
    the logistic regression's coefficients and intercepts."""
    features = dict(pipeline.named_steps["features"].transformer_list)
    clf = pipeline.named_steps["clf"]
    if list(clf.classes_) != list(range(len(LABELS))):
        raise ValueError(f"classes {list(clf.classes_)} are not the TFNS label ids 0..{len(LABELS) - 1}")
    out: dict[str, np.ndarray] = {"format": np.array(NUMPY_FORMAT), "coef": clf.coef_, "intercept": clf.intercept_}
    for name in ("word", "char"):
        vec = features[name]
        if vec.norm != "l2" or not vec.use_idf or vec.binary or vec.lowercase or vec.strip_accents is not None:
            raise ValueError(f"{name}: only the TfidfVectorizer settings of build_pipeline() can be exported")
        terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
        if any("\n" in t for t in terms):
            raise ValueError(f"{name}: a term contains a newline")
        out[f"{name}_terms"] = np.frombuffer("\n".join(terms).encode("utf-8"), dtype=np.uint8)
        out[f"{name}_idf"] = vec.idf_
        out[f"{name}_ngram_range"] = np.array(vec.ngram_range)
        out[f"{name}_sublinear_tf"] = np.array(bool(vec.sublinear_tf))
    if set(features) != {"word", "char"} or features["word"].analyzer != "word" or features["char"].analyzer != "char_wb":
        raise ValueError("features must be a word and a char_wb TfidfVectorizer")
    return out


def save_numpy(pipeline, path: Path) -> None:
    np.savez_compressed(path, **export_arrays(pipeline))


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern
_SPACES = re.compile(r"\s\s+")


def _word_ngrams(text: str, lo: int, hi: int) -> list[str]:
    tokens = _TOKEN.findall(text)
    out = list(tokens) if lo == 1 else []
    for n in range(max(lo, 2), min(hi, len(tokens)) + 1):
        out += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
    return out


def _char_wb_ngrams(text: str, lo: int, hi: int) -> list[str]:
    """scikit-learn's char_wb analyzer: n-grams inside words padded with a space (a short word once)."""
    out = []
    for w in _SPACES.sub(" ", text).split():
        w = f" {w} "
        for n in range(lo, hi + 1):
            out += [w[i:i + n] for i in range(max(1, len(w) - n + 1))]
            if len(w) <= n:
                break
    return out


class _Tfidf:
    def __init__(self, terms: np.ndarray, idf: np.ndarray, ngram_range: np.ndarray, sublinear: np.ndarray, analyzer):
        self.index = {t: i for i, t in enumerate(terms.tobytes().decode("utf-8").split("\n"))}
        if len(self.index) != len(idf):
            raise ValueError("vocabulary and idf lengths differ")
        self.idf, self.lo, self.hi, self.sublinear, self.analyzer = idf, int(ngram_range[0]), int(ngram_range[1]), \
            bool(sublinear), analyzer

    def __call__(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(column indices, l2-normalised tf-idf values) of one normalised text."""
        counts: dict[int, int] = {}
        index = self.index
        for gram in self.analyzer(text, self.lo, self.hi):
            i = index.get(gram)
            if i is not None:
                counts[i] = counts.get(i, 0) + 1
        cols = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        if self.sublinear:
            tf = np.log(tf) + 1.0
        values = tf * self.idf[cols]
        norm = np.sqrt(values @ values)
        return cols, (values / norm if norm > 0 else values)


class NumpyModel:
    """The exported TF-IDF + logistic regression, evaluated with numpy: same probabilities as the
    scikit-learn pipeline it came from (tests/unit/test_offline_scorer.py checks it)."""

    def __init__(self, arrays):
        if int(arrays["format"]) != NUMPY_FORMAT:
            raise ValueError(f"model.npz format {int(arrays['format'])}, this version reads {NUMPY_FORMAT}")
        self.word = _Tfidf(arrays["word_terms"], arrays["word_idf"], arrays["word_ngram_range"],
                           arrays["word_sublinear_tf"], _word_ngrams)
        self.char = _Tfidf(arrays["char_terms"], arrays["char_idf"], arrays["char_ngram_range"],
                           arrays["char_sublinear_tf"], _char_wb_ngrams)
        coef = np.asarray(arrays["coef"], dtype=np.float64)
        if coef.shape != (len(LABELS), len(self.word.index) + len(self.char.index)):
            raise ValueError(f"coefficients of shape {coef.shape} do not fit the vocabularies")
        self.coef_word = np.ascontiguousarray(coef[:, :len(self.word.index)].T)  # (terms, classes)
        self.coef_char = np.ascontiguousarray(coef[:, len(self.word.index):].T)
        self.intercept = np.asarray(arrays["intercept"], dtype=np.float64)

    @classmethod
    def load(cls, path: Path) -> NumpyModel:
        with np.load(path, allow_pickle=False) as z:
            return cls({k: z[k] for k in z.files})

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), len(LABELS)))
        for row, text in enumerate(texts):
            t = normalise(text)
            wc, wv = self.word(t)
            cc, cv = self.char(t)
            z = self.intercept + wv @ self.coef_word[wc] + cv @ self.coef_char[cc]
            z = np.exp(z - z.max())
            out[row] = z / z.sum()
        return out


class OfflineScorer:
    """Scores articles with the shipped model: model.npz with numpy, else model.joblib with scikit-learn,
    else a model rebuilt in memory from the vendored TFNS data."""

    name = "offline"

    def __init__(self, model_dir: Path | None = None):
        self.model_dir = Path(model_dir) if model_dir else MODEL_DIR
        self._model = None

    @property
    def model(self):
        if self._model is None:
            try:
                self._model = NumpyModel.load(self.model_dir / NUMPY_FILE)
                return self._model
            except Exception as exc:  # missing, corrupt or another format: try the pipeline
                if (self.model_dir / NUMPY_FILE).exists():
                    log.warning("%s unusable (%s); trying %s", self.model_dir / NUMPY_FILE, exc, MODEL_FILE)
            try:
                self._model = _load_shipped(self.model_dir)
            except Exception as exc:  # missing, corrupt or version-mismatched: all mean "rebuild"
                log.warning("offline model in %s unusable (%s); rebuilding from the vendored TFNS data",
                            self.model_dir, exc)
                self._model = fit(*load_tfns())
        return self._model

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities, columns bearish, bullish, neutral."""
        if not texts:
            return np.empty((0, len(LABELS)))
        return self.model.predict_proba(list(texts))

    def score(self, articles: Sequence[Article]) -> list[Score]:
        return probability_scores(articles, self.predict_proba, "offline model", self.name)


def probability_scores(articles: Sequence[Article], predict_proba, what: str, name: str) -> list[Score]:
    """One Score per symbol of each article, all texts predicted in one batch: the likeliest label,
    its probability as the conviction (0-100)."""
    todo = [a for a in articles if a.symbols]
    scores: list[Score] = []
    for article, proba in zip(todo, predict_proba([a.text for a in todo])):
        k = int(np.argmax(proba))
        sentiment = LABELS[k]
        conviction = min(100, max(0, int(round(100 * float(proba[k])))))
        reason = f"{what}: p({sentiment})={proba[k]:.2f}"
        scores.extend(Score(article.id, symbol, sentiment, conviction, reason, name)
                      for symbol in dict.fromkeys(article.symbols))
    return scores
