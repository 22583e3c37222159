"""What is served: :class:`ModelPaths` (no torch import, so the CLI starts and answers ``--help`` at once)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelPaths"]


@dataclass
class ModelPaths:
    """Where each served model comes from (a local directory or a Hub repo id)."""

    lm: str | None = None  # causal spiking LM for generate and insight (None: debug model)
    sentiment: str | None = (
        None  # spiking sequence classifier (None: the trained SST-2 student if present, else debug)
    )
    ecg: str | None = None  # ECG beat classifier (None: artifacts/ecg/model if present, else debug)
    multimodal: str | None = None  # multimodal LM (None: artifacts/multimodal/model if present, else debug)
    device_map: str | None = None  # accelerate device map for the LMs ("auto", "cpu"; None: auto if CUDA)
