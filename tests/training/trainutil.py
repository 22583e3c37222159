"""Helpers of the training tests: paths and the CLI run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HELPERS = Path(__file__).resolve().parent
RECIPES = REPO / "recipes"
LM_DEBUG = RECIPES / "lm" / "debug.yaml"


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
