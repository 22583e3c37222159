"""Fixtures of the training tests: one thread per process (the machine is shared), subprocess helpers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent
RECIPES = REPO / "recipes"
LM_DEBUG = RECIPES / "lm" / "debug.yaml"


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def sub_env(**extra: str) -> dict:
    """Environment of a CLI subprocess: the repo and the test helpers importable, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(HELPERS), env.get("PYTHONPATH", "")])
    env["OMP_NUM_THREADS"] = "1"
    env.update(extra)
    return env


def cli_cmd(*args: str) -> list[str]:
    """``python -m training.cli <args>``."""
    return [sys.executable, "-m", "training.cli", *args]


def run_cli(args: list[str], cwd: Path, timeout: float = 300, **env: str) -> subprocess.CompletedProcess:
    """Run the CLI in a subprocess in ``cwd``; raise with its output if it fails."""
    p = subprocess.run(
        cli_cmd(*args), cwd=cwd, env=sub_env(**env), capture_output=True, text=True, timeout=timeout
    )
    if p.returncode != 0:
        raise AssertionError(f"CLI failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-6000:]}")
    return p


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """LightningCLI(args=...) warns when pytest's own argv is present; give it a bare argv."""
    monkeypatch.setattr("sys.argv", ["evospikenet-train"])
