"""Callbacks used only by the tests' subprocess runs (importable via PYTHONPATH=tests/training)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import lightning.pytorch as pl
import torch


class HangAfter(pl.Callback):
    """After optimiser step ``step``, write ``marker`` and sleep (the test SIGKILLs the process then)."""

    def __init__(self, step: int, marker: str = "hang.marker", seconds: float = 600.0):
        self.step, self.marker, self.seconds = step, marker, seconds

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step >= self.step:
            Path(self.marker).write_text(str(trainer.global_step))
            time.sleep(self.seconds)


class DumpWeights(pl.Callback):
    """At the end of fit every rank writes ``<dirpath>/rank<R>.json``: world size, steps, weight digest."""

    def __init__(self, dirpath: str = "weights"):
        self.dirpath = dirpath

    def on_fit_end(self, trainer, pl_module):
        h = hashlib.sha256()
        for k, v in sorted(pl_module.state_dict().items()):
            h.update(k.encode())
            h.update(v.detach().cpu().contiguous().numpy().tobytes())
        os.makedirs(self.dirpath, exist_ok=True)
        info = {
            "world_size": trainer.world_size,
            "global_rank": trainer.global_rank,
            "node_rank": trainer.node_rank,
            "num_nodes": trainer.num_nodes,
            "global_step": trainer.global_step,
            "digest": h.hexdigest(),
            "backend": torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
        }
        Path(self.dirpath, f"rank{trainer.global_rank}.json").write_text(json.dumps(info))
