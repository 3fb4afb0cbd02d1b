"""Shared fixtures: a temp working directory per test and a helper to run the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
# subprocesses run this checkout's code, not whichever tokenomics the venv has installed (a relative
# PYTHONPATH=src would not survive their change of directory)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))


class CLI:
    def __init__(self, cwd: Path):
        self.cwd = cwd
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENOMICS_")}
        self.env["TOKENOMICS_STORE__PATH"] = str(cwd / "store.db")
        self.env["TOKENOMICS_LOGS__DIR"] = str(cwd / "logs")

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "tokenomics.cli", *args], cwd=self.cwd, input=input,
            capture_output=True, text=True, env={**self.env, **(env or {})}, timeout=timeout,
        )

    def json(self, *args: str, **kw) -> dict:
        proc = self(*args, "--json", **kw)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    return CLI(tmp_path)


@pytest.fixture
def rt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An in-process Runtime on a fresh store in a temp working directory, free of TOKENOMICS_* variables."""
    from tokenomics.runtime import Options, Runtime

    monkeypatch.chdir(tmp_path)
    for k in list(os.environ):
        if k.startswith("TOKENOMICS_"):
            monkeypatch.delenv(k)
    r = Runtime(Options(db=tmp_path / "t.db"))
    yield r
    r.close()
