"""The shipped offline scorer on Financial PhraseBank AllAgree (evaluation only: never trained or
tuned on, never copied into the project).

Reads ../shared/eval/phrasebank/Sentences_AllAgree.txt beside the repo (latin-1, "sentence@label")
and prints JSON: accuracy, macro-F1, per-class precision/recall, the all-neutral baseline and the
scoring throughput. Exits 0 with a message on stderr when the file is absent.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PATH = Path(__file__).resolve().parents[2] / "shared" / "eval" / "phrasebank" / "Sentences_AllAgree.txt"
MAP = {"positive": "bullish", "negative": "bearish", "neutral": "neutral"}


def main() -> None:
    if not PATH.exists():
        print("skipped: ../shared/eval/phrasebank not found", file=sys.stderr)
        return
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    from tokenomics.adapters.scorers.offline import LABELS, OfflineScorer

    pairs = [line.rsplit("@", 1) for line in PATH.read_text(encoding="latin-1").splitlines() if "@" in line]
    texts = [text for text, _ in pairs]
    truth = [MAP[label.strip()] for _, label in pairs]

    scorer = OfflineScorer()
    t0 = time.perf_counter()
    scorer.predict_proba(["warm-up"])
    load_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    proba = scorer.predict_proba(texts)
    seconds = time.perf_counter() - t0
    pred = [LABELS[i] for i in proba.argmax(axis=1)]

    p, r, _, n = precision_recall_fscore_support(truth, pred, labels=list(LABELS), zero_division=0)
    print(json.dumps({
        "dataset": "Financial PhraseBank v1.0 AllAgree (Malo et al. 2014, CC BY-NC-SA 3.0), evaluation only",
        "n": len(truth),
        "accuracy": round(float(accuracy_score(truth, pred)), 4),
        "macro_f1": round(float(f1_score(truth, pred, average="macro")), 4),
        "all_neutral_baseline": round(truth.count("neutral") / len(truth), 4),
        "per_class": {label: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                              "support": int(n[i])} for i, label in enumerate(LABELS)},
        "model_load_seconds": round(load_seconds, 3),
        "sentences_per_second": round(len(texts) / seconds),
    }, indent=2))


if __name__ == "__main__":
    main()
