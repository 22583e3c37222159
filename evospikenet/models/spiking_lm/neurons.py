r"""LIF populations for the spiking LM, one interface over two backends.

Both backends run the same discrete LIF with reset by subtraction and an immediate reset:

.. math::

    H_t = \beta V_{t-1} + I_t, \qquad S_t = \Theta(H_t - V_{th}), \qquad V_t = H_t - S_t V_{th}

with an ATan surrogate derivative for ``Theta`` in the backward pass.

* ``"snntorch"``: ``snntorch.Leaky(init_hidden=False, reset_mechanism="none")`` computes ``H_t`` and ``S_t``
  with its surrogate, stepped over T with the membrane passed in and returned on every call; the detached
  subtraction ``V_t = H_t - S_t V_th`` is applied here (snnTorch's own immediate reset tests ``S_t`` after
  subtracting the previous reset, which differs when ``H_t - V_th >= V_th``). The Leaky module is kept
  outside this module's registry (so the state_dict is the same for both backends) and removed from
  snnTorch's global ``instances`` list; the explicit membrane is the only state.
* ``"evospikenet"``: the project's fused multi-step LIF (``lif_multistep``), one autograd node for the whole
  sequence, with ``dt = 1``, ``tau = -1/ln(beta)`` and ``R = 1/(1-beta)`` so that ``(1-beta) R I = I``.
"""

from __future__ import annotations

import math

import snntorch as snn
import torch
from snntorch import surrogate as snn_surrogate
from torch import nn

from ...functional.event_ops import ln_lif_forward_native
from ...functional.lif import LIFState, lif_multistep, lif_params
from ...functional.surrogate import ATan

__all__ = ["LIFPopulation"]


class LIFPopulation(nn.Module):
    """A population of LIF neurons driven by a current ``x`` of shape ``(T, ...)``.

    ``forward(x, mem=None, norm=None) -> (spikes (T, ...), mem (...))``; ``mem=None`` starts at rest (zero);
    ``norm`` (a ``LayerNorm`` over the last dimension) is applied to ``x`` first. Evaluation on the CPU with
    the ``"evospikenet"`` backend runs both in one C++ pass (``ln_lif_forward_native``); forward hooks on
    this module see the spikes either way.
    """

    def __init__(self, beta: float, threshold: float, backend: str, surrogate_alpha: float = 2.0) -> None:
        super().__init__()
        if backend not in ("snntorch", "evospikenet"):
            raise ValueError(f"backend must be 'snntorch' or 'evospikenet', got {backend!r}")
        if not (0.0 < beta < 1.0):
            raise ValueError(f"beta must lie in (0, 1), got {beta!r}")
        self.backend = backend
        self.beta = float(beta)
        self.threshold = float(threshold)
        if backend == "snntorch":
            with torch.device("cpu"):  # snnTorch checks its constants eagerly (not possible on "meta")
                leaky = snn.Leaky(
                    beta=self.beta,
                    threshold=self.threshold,
                    spike_grad=snn_surrogate.atan(alpha=surrogate_alpha),
                    init_hidden=False,
                    reset_mechanism="none",
                )
            if leaky in snn.SpikingNeuron.instances:  # no global bookkeeping of our neurons
                snn.SpikingNeuron.instances.remove(leaky)
            object.__setattr__(self, "_leaky", leaky)  # unregistered: no buffers in the state_dict
        else:
            self._params = lif_params(
                tau_mem=-1.0 / math.log(self.beta),
                dt=1.0,
                v_th=self.threshold,
                r=1.0 / (1.0 - self.beta),
                reset="subtract",
                surrogate=ATan(surrogate_alpha),
            )

    def forward(
        self, x: torch.Tensor, mem: torch.Tensor | None = None, norm: nn.LayerNorm | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # x: (T, ...) input current; returns spikes (T, ...) and the final membrane (...)
        if norm is not None:
            if mem is None and self.backend == "evospikenet" and len(norm.normalized_shape) == 1:
                p = self._params
                fused = ln_lif_forward_native(
                    x, norm.weight, norm.bias, norm.eps, p.beta, (1.0 - p.beta) * p.r, (1.0 - p.beta) * p.v_rest,
                    p.v_th, p.v_reset, p.reset,
                )  # fmt: skip
                if fused is not None:
                    return fused
            x = norm(x)
        if mem is None:
            mem = torch.zeros_like(x[0])
        if self.backend == "snntorch":
            out = []
            for xt in x.unbind(0):
                spk, h = self._leaky(xt, mem)  # H_t = beta V_{t-1} + I_t, S_t = Theta(H_t - V_th)
                mem = h - spk.detach() * self.threshold
                out.append(spk)
            return torch.stack(out), mem
        shape = x.shape
        flat = x.reshape(shape[0], -1)  # (T, N)
        spikes, state = lif_multistep(
            flat, LIFState(mem.reshape(-1), torch.zeros(0, dtype=torch.int32)), self._params
        )
        return spikes.reshape(shape), state.v.reshape(shape[1:])

    def extra_repr(self) -> str:
        return f"backend={self.backend!r}, beta={self.beta}, threshold={self.threshold}"
