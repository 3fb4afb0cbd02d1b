"""Issue 14: the command-line contract under bad input. Nothing destroyed, no traceback, no silent
default. Every test runs the real CLI in a subprocess in a temp directory."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

SMALL = ["--param", "n_estimators=5", "--param", "max_depth=2", "--param", "n_jobs=1", "--folds", "2"]


def store_dump(path: Path) -> list[str]:
    """The store's logical content (schema and rows), independent of WAL files and page layout."""
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def one_error_line(proc, code: int, *needles: str) -> str:
    assert proc.returncode == code, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return errors[0]


# --- critical: train --name never escapes ml.models_dir, never deletes what it did not write ------------
@pytest.mark.parametrize("name", ["..", "", ".", "../../x", "a/b", "/tmp/x", "x/../..", ".hidden", "a" * 65])
def test_train_refuses_a_name_that_is_not_a_plain_folder_name(cli, name):
    (cli.cwd / "precious.txt").write_text("mine")
    (cli.cwd / "config").mkdir()
    (cli.cwd / "config" / "settings.yaml").write_text("capital: 5000\n")
    models = cli.cwd / "trained_models" / "keep"
    models.mkdir(parents=True)
    (models / "model_card.json").write_text('{"kind": "classifier", "name": "keep"}')
    before = sorted(str(p.relative_to(cli.cwd)) for p in cli.cwd.rglob("*"))
    proc = cli("train", "--name", name, "--force")
    one_error_line(proc, 2, "not a model name", "letters, digits")
    assert sorted(str(p.relative_to(cli.cwd)) for p in cli.cwd.rglob("*")) == before
    assert (cli.cwd / "precious.txt").read_text() == "mine"


def test_train_never_replaces_a_folder_it_did_not_write(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    foreign = cli.cwd / "trained_models" / "notes"
    foreign.mkdir(parents=True)
    (foreign / "todo.txt").write_text("mine")
    proc = cli("train", "--name", "notes", *SMALL)
    one_error_line(proc, 2, "already exists", "--force")
    proc = cli("train", "--name", "notes", "--force", *SMALL)
    one_error_line(proc, 2, "is not a tokenomics model")
    assert (foreign / "todo.txt").read_text() == "mine"


def test_train_force_swaps_in_a_new_model_and_leaves_no_temp_folder(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    first = cli.json("train", "--name", "m", *SMALL)
    card = cli.cwd / "trained_models" / "m" / "model_card.json"
    assert json.loads(card.read_text())["params"]["max_depth"] == 2
    proc = cli("train", "--name", "m", *SMALL)
    one_error_line(proc, 2, "already exists")
    second = cli.json("train", "--name", "m", "--force", *SMALL[:2], "--param", "max_depth=3", "--param",
                      "n_jobs=1", "--folds", "2")
    assert second["name"] == first["name"] == "m"
    assert json.loads(card.read_text())["params"]["max_depth"] == 3
    assert sorted(p.name for p in (cli.cwd / "trained_models").iterdir()) == ["m"]


def test_train_bad_param_exits_2_before_any_work(cli):
    assert cli("fetch-bars", "--source", "sim", "--json").returncode == 0
    proc = cli("train", "--name", "m", "--param", "n_estimators=abc")
    one_error_line(proc, 2, "n_estimators", "abc")
    assert not (cli.cwd / "trained_models").exists()
