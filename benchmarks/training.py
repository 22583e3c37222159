"""Training throughput of the spiking LM's debug recipe: one process, and DDP over gloo with two.

    python benchmarks/training.py --quick

The last stdout line is one JSON object::

    {"lm_debug": {"steps_per_s_1proc": ..., "steps_per_s_ddp2": ...,
                  "spike_rate": ..., "energy_per_step_j": ...}}

(printed on one line).

``steps_per_s_*`` count optimiser steps per wall-clock second after ``warmup`` steps (start-up, imports and
the first steps excluded); with DDP each step processes two batches (one per process), so the samples per
second are twice the steps per second. ``spike_rate`` and ``energy_per_step_j`` (compute energy, Horowitz
45 nm: SOPs x 0.9 pJ + MACs x 4.6 pJ) are those ``SpikeEnergyCallback`` logged last in the one-process run.
Every run uses one thread per process (``OMP_NUM_THREADS=1``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning.pytorch as pl

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "lm" / "debug.yaml"


class StepTimer(pl.Callback):
    """Writes steps/s after ``warmup`` steps and the last spike/energy figures to ``out`` (rank 0)."""

    def __init__(self, out: str, warmup: int = 3):
        self.out, self.warmup, self.t0, self.s0 = out, warmup, None, 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.warmup:
            self.t0, self.s0 = time.perf_counter(), trainer.global_step

    def on_train_end(self, trainer, pl_module):
        if trainer.global_rank != 0 or self.t0 is None:
            return
        rate = (trainer.global_step - self.s0) / (time.perf_counter() - self.t0)
        energy = next((c.last for c in trainer.callbacks if type(c).__name__ == "SpikeEnergyCallback"), {})
        rates = [v for k, v in energy.items() if k.startswith("spike_rate/")]
        Path(self.out).write_text(
            json.dumps(
                {
                    "steps_per_s": rate,
                    "spike_rate": sum(rates) / len(rates) if rates else None,
                    "energy_per_step_j": energy.get("energy/step_j"),
                }
            )
        )


def _run(steps: int, devices: int, workdir: Path) -> dict:
    out = workdir / f"result_{devices}.json"
    callbacks = [
        {"class_path": "training.callbacks.SpikeEnergyCallback", "init_args": {"every_n_steps": 1}},
        {"class_path": "benchmarks.training.StepTimer", "init_args": {"out": str(out)}},
    ]
    cmd = [
        sys.executable,
        "-m",
        "training.cli",
        "fit",
        "--config",
        str(RECIPE),
        f"--trainer.max_steps={steps}",
        "--trainer.val_check_interval=null",
        "--trainer.limit_val_batches=0",
        "--trainer.enable_progress_bar=false",
        "--trainer.enable_checkpointing=false",
        "--trainer.logger=false",
        f"--trainer.devices={devices}",
        f"--trainer.callbacks={json.dumps(callbacks)}",
    ]
    if devices > 1:
        cmd.append("--trainer.strategy=ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        OMP_NUM_THREADS="1",
        MASTER_PORT=str(port),
    )
    p = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"training run failed:\n{p.stderr[-4000:]}")
    return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="23 steps (1 process) and 13 steps (DDP)")
    ap.add_argument("--steps", type=int, default=60, help="optimiser steps of the one-process run")
    args = ap.parse_args(argv)
    steps = 23 if args.quick else args.steps
    with tempfile.TemporaryDirectory() as d:
        one = _run(steps, 1, Path(d))
        ddp = _run(max(steps // 2, 13) if args.quick else steps, 2, Path(d))
    result = {
        "lm_debug": {
            "steps_per_s_1proc": round(one["steps_per_s"], 3),
            "steps_per_s_ddp2": round(ddp["steps_per_s"], 3),
            "spike_rate": one["spike_rate"],
            "energy_per_step_j": one["energy_per_step_j"],
        }
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
