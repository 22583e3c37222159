"""Helpers of the simulator tests: tiny specs and the command line run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from evospikenet.sim.spec import NetworkSpec, Population

REPO = Path(__file__).resolve().parents[2]


def single(size: int = 1, **kw) -> NetworkSpec:
    """One population of ``size`` identical neurons and no synapses (closed-form tests)."""
    kw.setdefault("v0_sd", 0.0)
    return NetworkSpec(
        populations=[Population("A", size, True, **kw)],
        n_synapses=[[0]],
        weight_mean=[[0.0]],
        delay_mean=[[1.0]],
    )


def sim_env() -> dict:
    env = dict(os.environ)
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def sim_cmd(*args: str, ranks: int = 1) -> list[str]:
    """``evospikenet-sim`` as installed beside this interpreter, or under torchrun with ``ranks`` ranks."""
    bindir = Path(sys.executable).parent
    if ranks == 1:
        return [str(bindir / "evospikenet-sim"), *args]
    return [
        str(bindir / "torchrun"),
        "--standalone",
        f"--nproc-per-node={ranks}",
        "-m",
        "evospikenet.sim",
        *args,
    ]


def run_sim(
    *args: str, ranks: int = 1, timeout: float = 600, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    p = subprocess.run(
        sim_cmd(*args, ranks=ranks), env={**sim_env(), **(env or {})}, capture_output=True, text=True,
        timeout=timeout, cwd=REPO,
    )  # fmt: skip
    if check and p.returncode != 0:
        raise AssertionError(
            f"evospikenet-sim failed ({p.returncode}):\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
        )
    return p
