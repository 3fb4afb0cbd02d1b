"""Offline scorer on Financial PhraseBank AllAgree (evaluation only: never trained or tuned on).

Reads ../shared/eval/phrasebank/Sentences_AllAgree.txt when present; prints JSON figures.
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
        print(f"skipped: {PATH} not found", file=sys.stderr)
        return
    from sklearn.metrics import accuracy_score, classification_report, f1_score

    from tokenomics.adapters.scorers.offline import LABELS, OfflineScorer

    lines = [ln.rsplit("@", 1) for ln in PATH.read_text(encoding="latin-1").splitlines() if "@" in ln]
    texts = [t for t, _ in lines]
    truth = [MAP[label.strip()] for _, label in lines]
    scorer = OfflineScorer()
    scorer.predict_proba(["warm up"])
    t0 = time.perf_counter()
    proba = scorer.predict_proba(texts)
    seconds = time.perf_counter() - t0
    pred = [LABELS[i] for i in proba.argmax(axis=1)]
    report = classification_report(truth, pred, output_dict=True, zero_division=0)
    print(json.dumps({
        "dataset": "Financial PhraseBank v1.0 AllAgree (CC BY-NC-SA 3.0), evaluation only",
        "n": len(truth),
        "accuracy": round(accuracy_score(truth, pred), 4),
        "macro_f1": round(f1_score(truth, pred, average="macro"), 4),
        "all_neutral_baseline": round(truth.count("neutral") / len(truth), 4),
        "per_class": {k: {m: round(report[k][m], 4) for m in ("precision", "recall", "f1-score")} for k in MAP.values()},
        "sentences_per_second": round(len(texts) / seconds),
    }, indent=2))


if __name__ == "__main__":
    main()
