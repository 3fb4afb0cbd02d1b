"""Rebuild the offline sentiment model from TFNS and write it with its model card.

    python scripts/train_scorer.py [--data DIR]   (DIR holds sent_train.csv and sent_valid.csv;
                                                   default ../shared/data/tfns, else the vendored copies)
Prints progress on stderr and the validation metrics as JSON on stdout.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    import joblib
    import numpy
    import sklearn
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    from tokenomics.adapters.scorers.offline import DEFAULT_DIR, LABELS, PARAMS, build_pipeline, load_tfns

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "tfns")
    ap.add_argument("--out", type=Path, default=DEFAULT_DIR)
    args = ap.parse_args()
    vendored = resources.files("tokenomics.data")
    train = args.data / "sent_train.csv" if (args.data / "sent_train.csv").exists() else Path(str(vendored / "tfns_train.csv"))
    valid = args.data / "sent_valid.csv" if (args.data / "sent_valid.csv").exists() else Path(str(vendored / "tfns_valid.csv"))
    print(f"training on {train}", file=sys.stderr)
    x_train, y_train = load_tfns(train)
    x_valid, y_valid = load_tfns(valid)
    t0 = time.perf_counter()
    model = build_pipeline().fit(x_train, y_train)
    seconds = time.perf_counter() - t0
    pred = model.predict(x_valid)
    report = classification_report(y_valid, pred, target_names=list(LABELS), output_dict=True)
    metrics = {
        "tfns_valid": {
            "accuracy": round(accuracy_score(y_valid, pred), 4),
            "macro_f1": round(f1_score(y_valid, pred, average="macro"), 4),
            "per_class": {k: {m: round(v[m], 4) for m in ("precision", "recall", "f1-score")}
                          for k, v in report.items() if k in LABELS},
            "n": len(y_valid),
        },
        "train_seconds": round(seconds, 2),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, args.out / "model.joblib", compress=3)
    card = {
        "name": "sentiment-offline",
        "task": "financial news sentiment: bearish / bullish / neutral, with class probabilities",
        "data": {
            "source": "Twitter Financial News Sentiment (zeroshot/twitter-financial-news-sentiment), MIT",
            "train_rows": len(y_train), "valid_rows": len(y_valid),
            "labels": {"0": "bearish", "1": "bullish", "2": "neutral"},
            "train_sha256": hashlib.sha256(train.read_bytes()).hexdigest(),
            "evaluation_only": "Financial PhraseBank AllAgree: see benchmarks/scorer_phrasebank.py; never trained on",
        },
        "model": "TF-IDF word 1-2 grams + char_wb 2-5 grams (URLs, cashtags, handles removed; numbers folded) "
                 "-> multinomial logistic regression",
        "params": {k: list(v) if isinstance(v, tuple) else v for k, v in PARAMS.items()},
        "conviction": "round(100 * probability of the predicted class)",
        "metrics": metrics,
        "versions": {"scikit-learn": sklearn.__version__, "numpy": numpy.__version__, "joblib": joblib.__version__,
                     "python": sys.version.split()[0]},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    (args.out / "model_card.json").write_text(json.dumps(card, indent=2) + "\n")
    print(f"wrote {args.out}", file=sys.stderr)
    print(json.dumps(metrics))


if __name__ == "__main__":
    main()
