"""Constants and helpers shared by the NIR writers (:mod:`hub.export_nir`, :mod:`hub.nir_ecg`,
:mod:`hub.nir_digits`) and the reader (:mod:`hub.nir_read`)."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["NIR_DT", "RESET_KEY", "WTA_KEY"]

NIR_DT = 1e-4  # the step (s) NIR time constants are written for (snnTorch's importer assumes it)
RESET_KEY = "evospikenet.reset"  # LIF node metadata key: "subtract" marks a subtract reset NIR cannot express
WTA_KEY = "evospikenet.wta"  # LIF node metadata key: "hard" marks the digits net's winner-take-all layer


def _np(t: torch.Tensor) -> np.ndarray:
    """A tensor as a float32 numpy array (NIR stores numpy)."""
    return t.detach().cpu().numpy().astype(np.float32)
