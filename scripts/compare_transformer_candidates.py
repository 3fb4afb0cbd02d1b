"""Compare candidate MiniLM runs of scripts/train_transformer.py on two development sets, and pick one.

    python scripts/compare_transformer_candidates.py RUN_DIR... [--json OUT] [--write-pick MODEL_DIR]

Each RUN_DIR was written by `train_transformer.py --keep-all --out RUN_DIR` (or by
average_transformer_runs.py) and holds valid_proba.npz (TFNS-valid probabilities of its fp32 and int8
ONNX exports and of the TF-IDF model) and the ONNX files. A run dir with only `model.onnx` (the shipped
model) is compared as int8.
Candidates per run: the int8 export (shippable: <= 25 MB; fp32 is 90 MB and printed for reference),
alone or blended with the TF-IDF model, on probabilities `(1 - w) p_tfidf + w p_minilm` or on log
probabilities `softmax((1 - w) log p_tfidf + w log p_minilm)`, w in 0.3..0.9.

Two development sets, one per kind of text the scorer reads:
- TFNS validation: 2,388 tweets of financial news, the same kind of text both models trained on
  (in domain: it flatters the tweet-bound TF-IDF model in a blend);
- scripts/data/formal_news_dev.csv: 423 news sentences and headlines in the style of wire and
  Benzinga-type news (what Alpaca's news feed carries), 141 per class, written for this project
  (fictional companies; labelled by whether an investor would read the news as good, bad or
  neither for the stock). Never trained on.
The pick is the best mean of the two accuracies (each domain counts the same), the mean macro-F1
breaking ties, then the simpler rule (probabilities, weight nearest 0.4). Financial PhraseBank is
never read here (evaluation only: benchmarks/scorer_phrasebank.py, once, on the pick). One standard
error of an accuracy near 0.86 is 0.007 on TFNS validation and ~0.019 on the formal set near 0.80:
candidates closer than that are not distinguishable, and the card says so.

--write-pick MODEL_DIR copies the pick's int8 model.onnx, tokenizer.json and model_card.json there
(trained_models/sentiment-minilm to ship it), with the card's blend set to the pick (weight, rule),
its development metrics recomputed, and every candidate and the seed spread under `selection`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
FORMAL = REPO / "scripts" / "data" / "formal_news_dev.csv"
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def acc_f1(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import f1_score

    k = p.argmax(1)
    return round(float(np.mean(k == y)), 4), round(float(f1_score(y, k, average="macro")), 4)


def logp_blend(a: np.ndarray, b: np.ndarray, w: float) -> np.ndarray:
    z = (1 - w) * np.log(np.clip(a, 1e-12, 1)) + w * np.log(np.clip(b, 1e-12, 1))
    z = np.exp(z - z.max(1, keepdims=True))
    return z / z.sum(1, keepdims=True)


def formal_proba(run: Path) -> dict[str, np.ndarray]:
    """The run's probabilities on the formal set (int8, fp32 when kept, and the TF-IDF model)."""
    from tokenomics.adapters.scorers import offline
    from tokenomics.adapters.scorers import transformer as tf

    texts, y = offline.load_tfns(FORMAL)  # the same text,label layout as TFNS
    out = {"labels": y, "tfidf": offline.OfflineScorer().predict_proba(texts)}
    files = {"int8": run / "model.int8.onnx", "fp32": run / "model.fp32.onnx"}
    if not files["int8"].exists():
        files = {"int8": run / tf.ONNX_FILE}
    for quant, path in files.items():
        if path.exists():
            out[quant] = tf.OnnxModel(run, threads=2, onnx_path=path).predict_proba(texts)
    return out


def candidates(run: Path) -> list[dict]:
    sets = {"tfns_valid": dict(np.load(run / "valid_proba.npz")), "formal_dev": formal_proba(run)}
    rows = []
    for quant in [q for q in ("int8", "fp32") if all(q in d for d in sets.values())]:
        rules = [("minilm alone", 1.0)] + [(c, w) for w in WEIGHTS for c in ("probabilities", "log-probabilities")]
        for combine, w in rules:
            row = {"run": run.name, "quant": quant, "combine": combine, "weight": w}
            for name, d in sets.items():
                pt, p = d["tfidf"], d[quant]
                mixed = p if combine == "minilm alone" else (1 - w) * pt + w * p if combine == "probabilities" \
                    else logp_blend(pt, p, w)
                row[name] = acc_f1(d["labels"], mixed)
            row["metrics"] = [round((row["tfns_valid"][i] + row["formal_dev"][i]) / 2, 4) for i in (0, 1)]
            rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, help="write every candidate and the pick here")
    ap.add_argument("--write-pick", type=Path, help="write the pick's model directory here (see above)")
    args = ap.parse_args()
    rows = [r for run in args.runs for r in candidates(run)]
    shippable = [r for r in rows if r["quant"] == "int8"]
    pick = max(shippable, key=lambda r: (r["metrics"][0], r["metrics"][1], r["combine"] == "probabilities",
                                        -abs(r["weight"] - 0.4)))
    for r in rows:
        mark = "  <- pick" if r is pick else ""
        print(f"{r['run']:>8} {r['quant']:>5} {r['combine']:>18} w={r['weight']:.1f}  "
              f"mean acc {r['metrics'][0]:.4f} F1 {r['metrics'][1]:.4f} | TFNS {r['tfns_valid'][0]:.4f} "
              f"{r['tfns_valid'][1]:.4f} | formal {r['formal_dev'][0]:.4f} {r['formal_dev'][1]:.4f}{mark}")
    if args.json:
        args.json.write_text(json.dumps({"candidates": rows, "pick": pick}, indent=1) + "\n")
    if args.write_pick:
        write_pick(args.runs, rows, pick, args.write_pick)


def write_pick(runs: list[Path], rows: list[dict], pick: dict, out: Path) -> None:
    from train_transformer import metrics  # same folder

    from tokenomics.adapters.scorers import offline
    from tokenomics.adapters.scorers import transformer as tf

    run = next(r for r in runs if r.name == pick["run"])
    if not (run / "model.int8.onnx").exists():
        raise SystemExit(f"{run} has no model.int8.onnx (train it with --keep-all)")
    d = np.load(run / "valid_proba.npz")
    p = tf.blend(d["tfidf"], d["int8"], pick["weight"], pick["combine"]) if pick["weight"] < 1 else d["int8"]
    card = json.loads((run / tf.CARD_FILE).read_text(encoding="utf-8"))
    card["blend"] = {"transformer_weight": pick["weight"], "combine": pick["combine"],
                     "tfidf_model": "trained_models/sentiment-offline",
                     "rule": ("p = softmax((1 - w) log p_tfidf + w log p_minilm)" if pick["combine"] == "log-probabilities"
                              else "p = (1 - w) * p_tfidf + w * p_minilm")
                     + "; w and the rule chosen on the two development sets (selection), never on an evaluation set"}
    card["metrics"]["tfns_valid"]["minilm_shipped_blend"] = metrics(d["labels"], p.argmax(1), offline.LABELS)
    f = formal_proba(run)
    pf = tf.blend(f["tfidf"], f["int8"], pick["weight"], pick["combine"]) if pick["weight"] < 1 else f["int8"]
    card["metrics"]["formal_dev"] = {
        "file": "scripts/data/formal_news_dev.csv",
        **{name: metrics(f["labels"], q.argmax(1), offline.LABELS)
           for name, q in (("minilm_int8", f["int8"]), ("tfidf_alone", f["tfidf"]), ("minilm_shipped_blend", pf))}}
    same_rule = {r["quant"]: r["metrics"] for r in rows
                 if r["run"] == run.name and r["combine"] == pick["combine"] and r["weight"] == pick["weight"]}
    alone = {r["quant"]: r["metrics"] for r in rows if r["run"] == run.name and r["combine"] == "minilm alone"}
    card["model"] = card["model"].replace("exported to ONNX, fp32", "exported to ONNX, int8 dynamic quantisation (weights)")
    card["onnx"]["quantisation"] = "int8"
    card["onnx"]["int8_rule"] = (
        f"int8 shipped: the pick's mean development accuracy / macro-F1 (TFNS-valid and formal-dev) with int8 {same_rule['int8']}"
        + (f" vs fp32 {same_rule['fp32']}; MiniLM alone int8 {alone['int8']} vs fp32 {alone['fp32']}"
           if "fp32" in same_rule else "") + "; fp32 (~90 MB) is over the ~25 MB a plain git file may take")
    def recipe(r: Path) -> str:  # the hyperparameters but the seeds; a soup is its own recipe
        c = json.loads((r / tf.CARD_FILE).read_text(encoding="utf-8"))
        hp = c.get("hyperparameters", {})
        return json.dumps([{k: v for k, v in hp.items() if k not in ("seed", "data_seed")}, "soup" in c], sort_keys=True)

    if "soup" in card:  # the spread of the runs it averages
        same = set(card["soup"]["members"])
    else:
        same = {r.name for r in runs if (r / tf.CARD_FILE).exists() and recipe(r) == recipe(run)}
    spread = {}
    for quant in ("int8", "fp32"):
        for combine, w in dict.fromkeys((("minilm alone", 1.0), ("probabilities", 0.4), (pick["combine"], pick["weight"]))):
            accs = [r["metrics"][0] for r in rows if r["quant"] == quant and r["combine"] == combine
                    and r["weight"] == w and r["run"] in same]
            if len(accs) > 1:
                spread[f"{quant}, {combine}, w={w}"] = {"n_seeds": len(accs), "min": min(accs), "max": max(accs),
                                                        "mean": round(float(np.mean(accs)), 4)}
    card["selection"] = {
        "rule": "best mean of the TFNS-valid and formal-dev accuracies among the shippable (int8) candidates, "
                "the mean macro-F1 breaking ties; Financial PhraseBank never read before the pick",
        "pick": pick, "candidates": rows, "seed_spread_of_the_picked_recipe_mean_accuracy": spread,
        "noise": "one standard error of an accuracy is about 0.007 on TFNS-valid (2,388 rows, near 0.86) and "
                 "0.019 on formal-dev (423 rows, near 0.80)",
    }
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(run / "model.int8.onnx", out / tf.ONNX_FILE)
    shutil.copy(run / tf.TOKENIZER_FILE, out / tf.TOKENIZER_FILE)
    (out / tf.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {out}: {pick}")


if __name__ == "__main__":
    main()
