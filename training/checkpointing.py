"""Checkpoints that survive a crash: atomic writes, and the RNG and data position inside them.

``AtomicCheckpointIO`` writes ``path.tmp-<pid>``, flushes and ``fsync``s it, renames it over ``path``
with ``os.replace`` (atomic on POSIX) and ``fsync``s the directory: after a kill, ``path`` is either the
old complete file or the new complete file, never a torn one. A stale ``*.tmp-*`` may remain; it never
carries the ``.ckpt`` name.

``ResumeStateCallback`` completes mid-epoch resume: it stores every RNG state (torch, CUDA, numpy,
Python) and the exact number of batches trained in the current epoch in the checkpoint, and restores
the RNG states right before the first training batch after a resume (so nothing consumed in between,
e.g. a sanity check, shifts them). The batch count goes to the ``ResumableDataLoader`` state Lightning
saves with the fit loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.plugins.io import TorchCheckpointIO

__all__ = ["AtomicCheckpointIO", "ResumeStateCallback", "atomic_torch_save"]


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, fsync, ``os.replace`` onto ``path``, fsync the directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning ``CheckpointIO`` whose ``save_checkpoint`` is atomic (see the module docstring)."""

    def save_checkpoint(self, checkpoint: dict, path, storage_options: Any | None = None) -> None:
        if storage_options is not None:
            raise TypeError(
                f"storage_options is not supported by {type(self).__name__}, got {storage_options!r}"
            )
        atomic_torch_save(checkpoint, path)


def _plain(states: dict) -> dict:
    """RNG states with the numpy array as a tensor, so ``torch.load(weights_only=True)`` accepts them."""
    out = dict(states)
    if "numpy" in out:
        name, keys, pos, has_gauss, cached = out["numpy"]
        out["numpy"] = (
            name,
            torch.from_numpy(np.asarray(keys, dtype=np.int64)),
            int(pos),
            int(has_gauss),
            float(cached),
        )
    return out


def _unplain(states: dict) -> dict:
    out = dict(states)
    if "numpy" in out:
        name, keys, pos, has_gauss, cached = out["numpy"]
        out["numpy"] = (name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached)
    return out


class ResumeStateCallback(pl.Callback):
    """Saves RNG states and the in-epoch batch position; restores the RNG at the first batch after resume."""

    def __init__(self) -> None:
        self._pending: dict | None = None

    def on_save_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        checkpoint["rng_states"] = _plain(_collect_rng_states(include_cuda=torch.cuda.is_available()))
        # Lightning prefetches: the loader has run ahead; the epoch loop knows how many batches trained
        done = trainer.fit_loop.epoch_loop.batch_progress.current.processed
        fit_state = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        for state in fit_state.get("combined_loader", []):
            if "batches_done" in state:
                state["batches_done"] = int(done)

    def on_load_checkpoint(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, checkpoint: dict
    ) -> None:
        self._pending = checkpoint.get("rng_states")

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        if self._pending is not None:
            states = dict(self._pending)
            if not torch.cuda.is_available():
                states.pop("torch.cuda", None)
            _set_rng_states(_unplain(states))
            self._pending = None
