"""Checkpoints of a simulation run: every rank's engine state at one step, written atomically.

Layout under the run directory: ``checkpoint/step<N>/rank<r>.safetensors`` (membrane potentials, currents,
refractory counters, the spike ring, counters, and how many spike records the rank's file held) and
``checkpoint/step<N>/meta.json``, written by rank 0 last, after every rank's file is in place: a step
directory without ``meta.json`` is incomplete and ignored. The connectivity is not saved; it is redrawn from
the seed on resume (the same network by construction). Older step directories are removed once a newer one
is complete.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

__all__ = ["save_checkpoint", "latest_checkpoint", "load_rank_state"]


def _step_dir(run_dir: Path, step: int) -> Path:
    return run_dir / "checkpoint" / f"step{step:010d}"


def save_checkpoint(
    run_dir: str | Path, comm, state: dict[str, torch.Tensor], records: int, meta: dict
) -> Path:
    """Collective: every rank writes its state; rank 0 then writes ``meta.json`` and prunes older ones."""
    run_dir = Path(run_dir)
    step = int(state["step"].item())
    d = _step_dir(run_dir, step)
    d.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.contiguous() for k, v in state.items()}
    tensors["records"] = torch.tensor([records], dtype=torch.int64)
    tmp = d / f".rank{comm.rank:04d}.tmp"
    save_file(tensors, str(tmp))
    os.replace(tmp, d / f"rank{comm.rank:04d}.safetensors")
    comm.barrier()
    if comm.rank == 0:
        body = json.dumps({**meta, "step": step, "ranks": comm.world}, indent=1)
        (d / ".meta.tmp").write_text(body)
        os.replace(d / ".meta.tmp", d / "meta.json")
        for old in (run_dir / "checkpoint").glob("step*"):
            if old != d:
                shutil.rmtree(old, ignore_errors=True)
    comm.barrier()
    return d


def latest_checkpoint(run_dir: str | Path) -> tuple[Path, dict] | None:
    """The newest complete checkpoint of a run: (its directory, its meta), or None."""
    root = Path(run_dir) / "checkpoint"
    for d in sorted(root.glob("step*"), reverse=True):
        if (d / "meta.json").exists():
            return d, json.loads((d / "meta.json").read_text())
    return None


def load_rank_state(ckpt_dir: Path, meta: dict, rank: int, world: int) -> tuple[dict[str, torch.Tensor], int]:
    """This rank's saved state and spike-record count."""
    if meta["ranks"] != world:
        raise ValueError(
            f"{ckpt_dir} was written by {meta['ranks']} ranks; resume it with the same number "
            f"(torchrun --nproc-per-node {meta['ranks']} ...), not {world}"
        )
    state = load_file(str(ckpt_dir / f"rank{rank:04d}.safetensors"))
    records = int(state.pop("records").item())
    return state, records
