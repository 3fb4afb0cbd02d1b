"""Rebuild the offline sentiment model from TFNS and write it with its model card: the scikit-learn
pipeline (model.joblib) and its numpy export (model.npz, what the scorer loads at run time without
scikit-learn), checked to give the same probabilities on the validation split.

    python scripts/train_scorer.py [--data DIR] [--out DIR]

DIR holds sent_train.csv and sent_valid.csv (default ../shared/data/tfns beside the repo; the
vendored copies in src/tokenomics/data are used for whichever is missing). Trains on the train
split only and reports metrics on the validation split. Progress goes to stderr, the metrics as
JSON to stdout. Deterministic: the same data gives the same model.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CREDIT = "Twitter Financial News Sentiment (zeroshot/twitter-financial-news-sentiment), MIT"


def evaluate(model, texts: list[str], labels, names: tuple[str, ...]) -> dict:
    """Accuracy, macro-F1 and per-class precision/recall/F1/support of a fitted model."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    pred = model.predict(texts)
    p, r, f, n = precision_recall_fscore_support(labels, pred, labels=range(len(names)), zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(labels, pred)), 4),
        "macro_f1": round(float(f1_score(labels, pred, average="macro")), 4),
        "per_class": {name: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                             "f1": round(float(f[i]), 4), "support": int(n[i])}
                      for i, name in enumerate(names)},
        "n": len(texts),
    }


def main() -> None:
    import joblib
    import numpy
    import scipy
    import sklearn

    from tokenomics.adapters.scorers import offline

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tfns",
                    help="folder with sent_train.csv and sent_valid.csv")
    ap.add_argument("--out", type=Path, default=offline.MODEL_DIR, help="where model.joblib and the card go")
    args = ap.parse_args()

    train, valid = offline.tfns_splits(args.data)
    print(f"train: {train}\nvalid: {valid}", file=sys.stderr)
    x_train, y_train = offline.load_tfns(train)
    x_valid, y_valid = offline.load_tfns(valid)

    print(f"fitting on {len(x_train)} rows ...", file=sys.stderr)
    t0 = time.perf_counter()
    model = offline.fit(x_train, y_train)
    train_seconds = time.perf_counter() - t0
    print(f"fitted in {train_seconds:.1f}s; evaluating on {len(x_valid)} rows", file=sys.stderr)
    metrics = evaluate(model, x_valid, y_valid, offline.LABELS)

    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.out / offline.MODEL_FILE, compress=3)
    offline.save_numpy(model, args.out / offline.NUMPY_FILE)
    exported = offline.NumpyModel.load(args.out / offline.NUMPY_FILE)
    diff = float(numpy.abs(exported.predict_proba(x_valid) - model.predict_proba(x_valid)).max())
    if diff > 1e-9:
        raise SystemExit(f"the numpy export disagrees with the pipeline: max |diff| {diff:.3g}")
    card = {
        "name": "sentiment-offline",
        "task": "3-class financial news sentiment (bearish / bullish / neutral) with class probabilities",
        "model": "normalise (strip URLs, $TICKERs, @handles, '#'; numbers -> 0; movement verbs -> rise/fall) "
                 "-> TF-IDF word 1-2-grams + char_wb 2-5-grams -> class-balanced multinomial logistic regression",
        "data": {
            "source": "https://huggingface.co/datasets/zeroshot/twitter-financial-news-sentiment",
            "licence": "MIT",
            "credit": CREDIT,
            "train_file": train.name,
            "train_rows": len(x_train),
            "valid_rows": len(x_valid),
            "train_sha256": hashlib.sha256(train.read_bytes()).hexdigest(),
            "label_mapping": {str(i): name for i, name in enumerate(offline.LABELS)},
            "not_used": "Financial PhraseBank is evaluation only (benchmarks/scorer_phrasebank.py)",
        },
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in offline.PARAMS.items()},
        "conviction": "round(100 * probability of the predicted class)",
        "files": {
            offline.NUMPY_FILE: f"run time: vocabularies, idf and coefficients as arrays (format {offline.NUMPY_FORMAT}), "
                                "evaluated with numpy alone (no scikit-learn or scipy import)",
            offline.MODEL_FILE: "the fitted scikit-learn pipeline (joblib); a fallback, and the reference of the export",
        },
        "numpy_export_max_abs_diff": float(f"{diff:.3g}"),
        "metrics": {"tfns_valid": metrics},
        "train_seconds": round(train_seconds, 1),
        "libraries": {"python": platform.python_version(), "scikit-learn": sklearn.__version__,
                      "numpy": numpy.__version__, "scipy": scipy.__version__, "joblib": joblib.__version__},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (args.out / offline.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    for name in (offline.NUMPY_FILE, offline.MODEL_FILE):
        print(f"wrote {args.out / name} ({(args.out / name).stat().st_size / 1e6:.2f} MB)", file=sys.stderr)
    print(f"numpy export vs pipeline on {len(x_valid)} validation rows: max |diff| {diff:.3g}; wrote {offline.CARD_FILE}",
          file=sys.stderr)
    print(json.dumps({"tfns_valid": metrics, "train_seconds": card["train_seconds"]}, indent=2))


if __name__ == "__main__":
    main()
