"""The offline-transformer scorer: all-MiniLM-L6-v2 fine-tuned on TFNS and a set of news sentences
written for the project, run by onnxruntime, blended with the TF-IDF model. No torch, no network, no keys.

The model directory (trained_models/sentiment-minilm, written by scripts/train_transformer.py, then
scripts/average_transformer_runs.py and scripts/compare_transformer_candidates.py) holds `model.onnx`
(the encoder, mean pooling and a 3-class head; int8 weights), `tokenizer.json` (the base model's
WordPiece tokenizer, read by the `tokenizers` library) and `model_card.json` (data, training, metrics,
the blend, and the candidates it was chosen from on two development sets). The blend mixes the two
models' probabilities with w = the card's `blend.transformer_weight` (0.8) unless given, by the card's
`blend.combine`: on probabilities `(1 - w) p_tfidf + w p_minilm` (the shipped card's), or on log
probabilities `softmax((1 - w) log p_tfidf + w log p_minilm)` (a weighted geometric mean).

onnxruntime and tokenizers come with the optional extra `pip install -e ".[transformer]"`; they are
imported when the model is first used, never at module import, so `tokenomics --help` stays fast.
Texts are cleaned the same way here and in training (`clean`), and tokenised by the same code (`encode`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tokenomics.core.errors import ConfigError
from tokenomics.core.models import Article, Score

from .offline import LABELS, OfflineScorer, probability_scores

MODEL_DIR = Path(__file__).resolve().parents[4] / "trained_models" / "sentiment-minilm"
ONNX_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
CARD_FILE = "model_card.json"
EXTRA = "transformer"
REQUIRES = ("onnxruntime", "tokenizers")
MAX_TOKENS = 64  # a headline is ~15-30 WordPiece tokens; longer text is cut (training used the same)
DEFAULT_WEIGHT = 0.8
COMBINES = ("probabilities", "log-probabilities")  # how the blend mixes the two models (the card's blend.combine)
TRAIN_COMMAND = "python scripts/train_transformer.py"

_URL = re.compile(r"https?://\S+|www\.\S+")
_HANDLE = re.compile(r"@\w+")
_SIGN = re.compile(r"[$#](?=[A-Za-z])")
_SPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    """The text the model sees: URLs and @handles dropped, '$'/'#' signs dropped ("$AAPL" -> "AAPL")."""
    return _SPACE.sub(" ", _SIGN.sub("", _HANDLE.sub(" ", _URL.sub(" ", text)))).strip()


def missing_requirements() -> list[str]:
    """The extra's libraries that are not installed (found without importing them)."""
    import importlib.util

    return [m for m in REQUIRES if importlib.util.find_spec(m) is None]


def require_extra() -> None:
    """ConfigError (exit 2) naming the extra when onnxruntime or tokenizers is missing."""
    missing = missing_requirements()
    if missing:
        raise ConfigError(
            f"sentiment.provider 'offline-transformer' needs {' and '.join(missing)}: "
            f"install the extra with  pip install -e \".[{EXTRA}]\"  (or  pip install \"tokenomics[{EXTRA}]\")",
            hint="or set sentiment.provider: offline (the lean default)")


def require_model(model_dir: Path) -> None:
    """ConfigError (exit 2) naming the training command when the model files are missing."""
    missing = [f for f in (ONNX_FILE, TOKENIZER_FILE) if not (model_dir / f).exists()]
    if missing:
        raise ConfigError(
            f"offline-transformer model missing in {model_dir} ({', '.join(missing)}): "
            f"train it with  {TRAIN_COMMAND} --out {model_dir}  (dev-time dependencies, see the script)",
            hint="or point sentiment.transformer_dir at a directory that has model.onnx and tokenizer.json")


def load_tokenizer(path: Path, max_tokens: int = MAX_TOKENS):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(path))
    tok.enable_truncation(max_length=max_tokens)
    tok.no_padding()
    return tok


def encode(tokenizer, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(input_ids, attention_mask) as int64 arrays, right-padded with 0 to the longest text."""
    encs = tokenizer.encode_batch([clean(t) for t in texts])
    width = max((len(e.ids) for e in encs), default=0)
    ids = np.zeros((len(encs), width), dtype=np.int64)
    mask = np.zeros((len(encs), width), dtype=np.int64)
    for i, e in enumerate(encs):
        ids[i, :len(e.ids)] = e.ids
        mask[i, :len(e.ids)] = 1
    return ids, mask


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


class OnnxModel:
    """The exported MiniLM classifier: texts -> (n, 3) probabilities (bearish, bullish, neutral)."""

    def __init__(self, model_dir: Path, threads: int = 1, *, onnx_path: Path | None = None):
        """`model_dir` holds the tokenizer and, unless `onnx_path` names another export (training and
        model-selection scripts compare several), model.onnx."""
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(str(onnx_path or model_dir / ONNX_FILE), opts,
                                            providers=["CPUExecutionProvider"])
        self.tokenizer = load_tokenizer(model_dir / TOKENIZER_FILE)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """One text per run, on purpose: int8 dynamic quantisation scales the activations per tensor,
        so in a batch a headline's probabilities would depend on its neighbours and on the padding
        (measured: 2 % of argmaxes changed). One at a time a headline always gets the same score, in
        the live loop and in a backtest alike; batching gained under 15 % here."""
        out = np.empty((len(texts), len(LABELS)))
        for row, text in enumerate(texts):
            ids, mask = encode(self.tokenizer, [text])
            (logits,) = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})
            out[row] = softmax(logits.astype(np.float64))[0]
        return out


def blend(p_tfidf: np.ndarray, p_minilm: np.ndarray, weight: float, combine: str = "probabilities") -> np.ndarray:
    """The MiniLM's share `weight` of the blend: on probabilities `(1 - w) p_tfidf + w p_minilm`, or on
    log probabilities `softmax((1 - w) log p_tfidf + w log p_minilm)` (a weighted geometric mean)."""
    if combine == "log-probabilities":
        z = (1.0 - weight) * np.log(np.clip(p_tfidf, 1e-12, 1.0)) + weight * np.log(np.clip(p_minilm, 1e-12, 1.0))
        return softmax(z)
    if combine != "probabilities":
        raise ConfigError(f"unknown blend.combine {combine!r} in the model card (one of {', '.join(COMBINES)})")
    return (1.0 - weight) * p_tfidf + weight * p_minilm


def read_card(model_dir: Path) -> dict:
    path = model_dir / CARD_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


class TransformerScorer:
    """Scores articles with the blend of the fine-tuned MiniLM (onnxruntime) and the TF-IDF model.

    `weight` is the MiniLM's share (1.0: MiniLM alone, 0.0: the TF-IDF model alone); None takes the
    model card's `blend.transformer_weight`, else 0.8. Same interface as OfflineScorer."""

    name = "offline-transformer"

    def __init__(self, model_dir: Path | None = None, tfidf_dir: Path | None = None, weight: float | None = None,
                 threads: int = 1):
        self.model_dir = Path(model_dir) if model_dir else MODEL_DIR
        self.tfidf = OfflineScorer(tfidf_dir)
        self._weight = weight
        self.threads = threads
        self._model: OnnxModel | None = None
        self._combine: str | None = None

    @property
    def weight(self) -> float:
        if self._weight is None:
            self._weight = float(read_card(self.model_dir).get("blend", {}).get("transformer_weight", DEFAULT_WEIGHT))
        return self._weight

    @property
    def combine(self) -> str:
        """How the two models are mixed: the card's `blend.combine`, else on probabilities."""
        if self._combine is None:
            self._combine = str(read_card(self.model_dir).get("blend", {}).get("combine", "probabilities"))
        return self._combine

    @property
    def model(self) -> OnnxModel:
        if self._model is None:
            require_extra()
            require_model(self.model_dir)
            self._model = OnnxModel(self.model_dir, self.threads)
        return self._model

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) probabilities, columns bearish, bullish, neutral."""
        if not texts:
            return np.empty((0, len(LABELS)))
        texts = list(texts)
        w = self.weight
        p = self.model.predict_proba(texts)
        return p if w >= 1.0 else blend(self.tfidf.predict_proba(texts), p, w, self.combine)

    def score(self, articles: Sequence[Article]) -> list[Score]:
        return probability_scores(articles, self.predict_proba, "offline transformer blend", self.name)
