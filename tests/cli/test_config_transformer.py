"""sentiment.provider: offline-transformer through the real CLI: without the extra it exits 2 naming
the extra, without the model it exits 2 naming the training command, doctor checks it, and with
the extra it scores a piped headline."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tokenomics.adapters.scorers import transformer as tf

needs_extra = pytest.mark.skipif(
    bool(tf.missing_requirements()),
    reason=f"the '{tf.EXTRA}' extra is not installed ({', '.join(tf.missing_requirements())} missing): "
           f"pip install -e \".[{tf.EXTRA}]\"")
# the CLI in a process where onnxruntime and tokenizers cannot be imported, as in an install without the extra
WITHOUT_EXTRA = ("import sys; sys.modules.update(onnxruntime=None, tokenizers=None); "
                 "from tokenomics.cli import main; sys.argv[0] = 'tokenomics'; main()")
HEADLINE = json.dumps({"id": "t1", "headline": "Apple shares surge after an earnings beat", "symbols": ["AAPL"],
                       "created_at": "2026-01-20T15:00:00Z"}) + "\n"  # before the sim clock's now


def without_extra(cli, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", WITHOUT_EXTRA, *args], cwd=cli.cwd, input=input,
                          capture_output=True, text=True, env=cli.env, timeout=300)


def config(cli, extra: str = "") -> str:
    (cli.cwd / "tfm.yaml").write_text(f"sentiment:\n  provider: offline-transformer\n{extra}")
    return "tfm.yaml"


def test_without_the_extra_score_exits_2_naming_it(cli):
    proc = without_extra(cli, "--config", config(cli), "score", "-", input=HEADLINE)
    assert proc.returncode == 2, proc.stderr
    assert 'pip install -e ".[transformer]"' in proc.stderr and "onnxruntime" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_without_the_extra_doctor_fails_the_scorer_check_naming_it(cli):
    proc = without_extra(cli, "--config", config(cli), "doctor", "--json")
    assert proc.returncode == 1, proc.stderr
    checks = {c["check"]: c for c in json.loads(proc.stdout)["checks"]}
    assert not checks["scorer"]["ok"] and ".[transformer]" in checks["scorer"]["detail"]


def test_the_lean_default_needs_no_extra(cli):
    proc = without_extra(cli, "score", "-", input=HEADLINE)
    assert proc.returncode == 0, proc.stderr


def test_an_unknown_provider_exits_2_naming_the_key(cli):
    (cli.cwd / "bad.yaml").write_text("sentiment:\n  provider: offline-transformr\n")
    proc = cli("--config", "bad.yaml", "status")
    assert proc.returncode == 2 and "sentiment.provider" in proc.stderr


@needs_extra
def test_a_missing_model_exits_2_naming_the_training_command(cli):
    proc = cli("--config", config(cli, f"  transformer_dir: {cli.cwd / 'nowhere'}\n"), "score", "-", input=HEADLINE)
    assert proc.returncode == 2, proc.stderr
    assert "scripts/train_transformer.py" in proc.stderr and "model.onnx" in proc.stderr


@needs_extra
def test_doctor_checks_the_transformer_scorer(cli):
    doc = cli.json("--config", config(cli), "doctor")
    checks = {c["check"]: c for c in doc["checks"]}
    assert checks["scorer"]["ok"] and "offline-transformer" in checks["scorer"]["detail"]


@needs_extra
def test_score_pipes_through_the_transformer(cli):
    proc = cli("--config", config(cli), "score", "-", "--json", input=HEADLINE)
    assert proc.returncode == 0, proc.stderr
    db = cli.cwd / "store.db"
    import sqlite3

    rows = sqlite3.connect(db).execute("SELECT scorer, sentiment FROM scores").fetchall()
    assert rows == [("offline-transformer", "bullish")]
