"""The offline scorers on Financial PhraseBank AllAgree (evaluation only: never trained or tuned on,
never copied into the project), side by side, and what each costs to load and run.

    python benchmarks/scorer_phrasebank.py [--transformer DIR] [--rounds N]

Reads ../shared/eval/phrasebank/Sentences_AllAgree.txt beside the repo (latin-1, "sentence@label").
Scorers: the TF-IDF model evaluated with numpy from model.npz (the default since issue 16), the same
model through its scikit-learn pipeline (model.joblib, what ran before) and, when its model directory
and onnxruntime + tokenizers are present (the `transformer` extra), the fine-tuned MiniLM alone and the
`offline-transformer` scorer (its blend with the TF-IDF model, weight from the model card). Per scorer:
accuracy, macro-F1, per-class precision/recall, precision of the bullish/bearish calls at conviction
>= 70 and how many there are, headlines per second batched and one at a time (the MiniLM runs one
headline per onnxruntime call either way: int8 activations are scaled per run, so batching would make
a headline's score depend on its neighbours), the cold start of a
fresh process that loads the scorer and scores two headlines (CPU seconds and peak RSS, medians of
N rounds, beside `python -c pass`), and the install size (model files + the libraries it needs, with
everything those pull in: `install_detail_mb`). Also checks that the sentences written for the project
(scripts/data) do not copy AllAgree: how many AllAgree sentences share a run of 6 words with them.
Prints JSON. Exits 0 with a message on stderr when the PhraseBank file is absent.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PATH = REPO.parent / "shared" / "eval" / "phrasebank" / "Sentences_AllAgree.txt"
MAP = {"positive": "bullish", "negative": "bearish", "neutral": "neutral"}
LABELS = ("bearish", "bullish", "neutral")

COLD = """
import resource, sys
sys.path.insert(0, {src!r})
from datetime import datetime, timezone
from pathlib import Path
from {module} import {cls} as Scorer
from tokenomics.core.models import Article
now = datetime.now(timezone.utc)
Scorer(Path({model_dir!r}), **{kwargs!r}).score([Article("a", "Acme shares surge after an earnings beat", ("ACME",), now),
                                   Article("b", "Acme cuts its outlook as demand weakens", ("ACME",), now)])
r = resource.getrusage(resource.RUSAGE_SELF)
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(r.ru_utime + r.ru_stime, hwm / 1024, sorted({{m.split(".")[0] for m in sys.modules}} & {{"sklearn", "scipy", "torch"}}))
"""
# peak RSS from VmHWM (this process image only; ru_maxrss would carry the forking parent's peak over exec)
BASELINE = ("import resource; r = resource.getrusage(resource.RUSAGE_SELF); "
            "hwm = next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')); "
            "print(r.ru_utime + r.ru_stime, hwm / 1024, [])")


def cold(code: str, rounds: int) -> dict:
    runs = []
    for _ in range(rounds):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        cpu, rss, heavy = out.stdout.strip().split(" ", 2)
        runs.append((float(cpu), float(rss), heavy))
    return {"cpu_seconds": round(statistics.median(r[0] for r in runs), 3),
            "peak_rss_mb": round(statistics.median(r[1] for r in runs), 1), "heavy_imports": runs[0][2]}


def dir_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def dist_closure(names: tuple[str, ...]) -> dict[str, int]:
    """Installed bytes of each distribution in the requirement closure of `names` (markers with
    extras are skipped), from the installed RECORD files: what installing them brings."""
    import re
    from importlib import metadata

    seen: dict[str, int] = {}
    todo = list(names)
    while todo:
        name = re.split(r"[\s\[<>=!~;(]", todo.pop(), maxsplit=1)[0].lower().replace("_", "-")
        if name in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue
        seen[name] = sum((f.size or 0) for f in dist.files or [])
        todo += [r for r in dist.requires or [] if "extra ==" not in r]
    return seen


def overlap(texts: list[str]) -> dict:
    """How much of AllAgree the sentences written for the project share, word for word: the files of
    scripts/data (the formal-news training and development sets) were written without PhraseBank;
    this checks it. Counts AllAgree sentences sharing a run of 6 words with them, and the longest run."""
    import csv
    import re

    def words(text: str) -> list[str]:
        return re.findall(r"[a-z0-9]+", text.lower())

    files = sorted((REPO / "scripts" / "data").glob("*.csv"))
    ours = [words(row["text"]) for f in files for row in csv.DictReader(f.open(encoding="utf-8", newline=""))]
    theirs = [words(t) for t in texts]

    def grams(seqs: list[list[str]], n: int) -> set[tuple[str, ...]]:
        return {tuple(w[i:i + n]) for w in seqs for i in range(len(w) - n + 1)}

    six = grams(ours, 6)
    longest = next((n for n in range(40, 0, -1) if grams(ours, n) & grams(theirs, n)), 0)
    return {"files": [f.name for f in files], "sentences": len(ours),
            "allagree_sentences_sharing_6_words_in_a_row": sum(bool(grams([w], 6) & six) for w in theirs),
            "longest_shared_run_of_words": longest}


def evaluate(scorer, texts: list[str], truth: list[str]) -> dict:
    import numpy as np
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    t0 = time.perf_counter()
    proba = scorer.predict_proba(texts)
    batched = len(texts) / (time.perf_counter() - t0)
    sample = texts[:300]
    t0 = time.perf_counter()
    for text in sample:
        scorer.predict_proba([text])
    single = len(sample) / (time.perf_counter() - t0)
    k = proba.argmax(axis=1)
    pred = [LABELS[i] for i in k]
    conviction = np.rint(100 * proba.max(axis=1))
    loud = [(p, t) for p, t, c in zip(pred, truth, conviction) if p != "neutral" and c >= 70]
    p, r, _, n = precision_recall_fscore_support(truth, pred, labels=list(LABELS), zero_division=0)
    return {
        "accuracy": round(float(accuracy_score(truth, pred)), 4),
        "macro_f1": round(float(f1_score(truth, pred, average="macro")), 4),
        "precision_at_conviction_70": round(sum(p == t for p, t in loud) / len(loud), 4) if loud else None,
        "calls_at_conviction_70": len(loud),
        "per_class": {label: {"precision": round(float(p[i]), 4), "recall": round(float(r[i]), 4),
                              "support": int(n[i])} for i, label in enumerate(LABELS)},
        "headlines_per_second_batched": round(batched),
        "headlines_per_second_one_at_a_time": round(single),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--transformer", type=Path, default=REPO / "trained_models" / "sentiment-minilm",
                    help="model directory of the offline-transformer scorer (skipped when absent)")
    ap.add_argument("--rounds", type=int, default=5, help="cold starts per scorer (median)")
    args = ap.parse_args()
    if not PATH.exists():
        print("skipped: ../shared/eval/phrasebank not found", file=sys.stderr)
        return
    sys.path.insert(0, str(REPO / "src"))
    from tokenomics.adapters.scorers import offline

    pairs = [line.rsplit("@", 1) for line in PATH.read_text(encoding="latin-1").splitlines() if "@" in line]
    texts = [text for text, _ in pairs]
    truth = [MAP[label.strip()] for _, label in pairs]
    src = str(REPO / "src")
    out: dict = {
        "dataset": "Financial PhraseBank v1.0 AllAgree (Malo et al. 2014, CC BY-NC-SA 3.0), evaluation only",
        "n": len(truth), "all_neutral_baseline": round(truth.count("neutral") / len(truth), 4),
        "project_written_sets_vs_allagree": overlap(texts),
        "python_c_pass": cold(BASELINE, args.rounds), "scorers": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        joblib_only = Path(tmp)  # what the scorer loaded before the numpy export
        for name in (offline.MODEL_FILE, offline.CARD_FILE):
            shutil.copy(offline.MODEL_DIR / name, joblib_only / name)
        npz = offline.MODEL_DIR / offline.NUMPY_FILE
        entries = [
            ("offline (numpy, model.npz)", "tokenomics.adapters.scorers.offline", "OfflineScorer", offline.MODEL_DIR,
             {}, {"model.npz": dir_size(npz)}, ("numpy",)),
            ("offline before: scikit-learn pipeline (model.joblib)", "tokenomics.adapters.scorers.offline",
             "OfflineScorer", joblib_only, {}, {"model.joblib": dir_size(joblib_only / offline.MODEL_FILE)},
             ("numpy", "scikit-learn", "joblib")),
        ]
        if args.transformer.exists() and all(importlib.util.find_spec(m) for m in ("onnxruntime", "tokenizers")):
            files = {"minilm": dir_size(args.transformer)}
            entries += [
                ("MiniLM alone (onnxruntime, weight 1.0)", "tokenomics.adapters.scorers.transformer",
                 "TransformerScorer", args.transformer, {"weight": 1.0}, files, ("numpy", "onnxruntime", "tokenizers")),
                ("offline-transformer (blend: TF-IDF + MiniLM, weight and rule from the card)",
                 "tokenomics.adapters.scorers.transformer", "TransformerScorer", args.transformer, {},
                 files | {"model.npz": dir_size(npz)}, ("numpy", "onnxruntime", "tokenizers")),
            ]
        elif args.transformer.exists():
            print("offline-transformer skipped: install the 'transformer' extra (onnxruntime, tokenizers)", file=sys.stderr)
        for label, module, cls, model_dir, kwargs, files, libraries in entries:
            print(f"{label} ...", file=sys.stderr)
            t0 = time.perf_counter()
            scorer = getattr(importlib.import_module(module), cls)(model_dir, **kwargs)
            scorer.predict_proba(["warm-up"])
            row = {"model_dir": str(model_dir), "load_seconds_in_process": round(time.perf_counter() - t0, 3)}
            if hasattr(scorer, "weight"):
                row["transformer_weight"] = scorer.weight
                row["blend_combine"] = scorer.combine
            row |= evaluate(scorer, texts, truth)
            row["cold_start_two_headlines"] = cold(COLD.format(src=src, module=module, cls=cls, model_dir=str(model_dir),
                                                               kwargs=kwargs), args.rounds)
            libs = dist_closure(libraries)
            row["install_mb"] = round((sum(files.values()) + sum(libs.values())) / 1e6, 1)
            row["install_detail_mb"] = {k: round(v / 1e6, 1) for k, v in (files | libs).items() if v >= 5e5}
            out["scorers"][label] = row
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
