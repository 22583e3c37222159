"""``SpikeLinear``: an ``nn.Linear`` fed with spikes, event-driven when no gradient is needed."""

from __future__ import annotations

import torch
from torch import nn

from ..functional.event_ops import spike_linear

__all__ = ["SpikeLinear"]


class SpikeLinear(nn.Linear):
    """``nn.Linear`` (same parameters, state-dict keys and initialisation) whose no-grad CPU forward reads
    only the weight columns of the inputs that spiked (:func:`evospikenet.functional.event_ops.spike_linear`).

    Training, other devices and graph capture (ONNX, tracing, compile) run the ordinary dense product.
    The kernel reads the weight transposed: the module keeps that copy (as much memory again as the weight)
    after its first no-grad CPU call, and rebuilds it when the weight changes.
    """

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wt_cache: dict = {}  # the transposed weight, rebuilt when the weight changes

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (..., in) -> (..., out)
        return spike_linear(x, self.weight, self.bias, self._wt_cache)
