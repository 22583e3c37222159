"""Logger helpers. CSV is the default (``lightning.pytorch.loggers.CSVLogger``) and TensorBoard is
Lightning's own; ``OfflineSafeWandbLogger`` is ``WandbLogger`` that goes offline when no API key is set,
so a run never blocks on the network."""

from __future__ import annotations

import os

from lightning.pytorch.loggers import WandbLogger

__all__ = ["OfflineSafeWandbLogger", "wandb_should_be_offline"]


def wandb_should_be_offline() -> bool:
    """True unless ``WANDB_API_KEY`` is set and ``WANDB_MODE`` is not "offline"/"disabled"."""
    return not os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE") in ("offline", "disabled")


class OfflineSafeWandbLogger(WandbLogger):
    """``WandbLogger`` with ``offline=True`` forced when there is no API key (needs the ``wandb`` package).

    Args: those of ``WandbLogger`` (``project``, ``name``, ``save_dir``, ``offline``, ...).
    """

    def __init__(self, *args, offline: bool = False, **kwargs):
        if wandb_should_be_offline():
            offline = True
            os.environ.setdefault("WANDB_MODE", "offline")
        super().__init__(*args, offline=offline, **kwargs)
