"""Thin ``nn.Module`` shells over the pure LIF step functions in :mod:`evospikenet.functional`.

The modules hold parameters only; state is explicit: ``forward(x, state=None) -> (spikes, new_state)``.
Passing ``state=None`` starts from rest, so a module is safe to share between sequences, processes (DDP) and
generation loops. ``step_mode="s"`` takes one step ``(B, N)``; ``"m"`` a sequence ``(T, B, N)``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..functional.integer_lif import (
    IntLIFState,
    LoihiLIFState,
    int_lif_params,
    int_lif_step,
    loihi_lif_params,
    loihi_lif_step,
)
from ..functional.lif import LIFState, lif_multistep, lif_params, lif_step

__all__ = ["LIF", "IntegerLIF", "LoihiLIF"]


def _check_mode(step_mode: str) -> str:
    if step_mode not in ("s", "m"):
        raise ValueError(f"step_mode must be 's' (single step) or 'm' (multi-step), got {step_mode!r}")
    return step_mode


class LIF(nn.Module):
    """Float, surrogate-trainable LIF (see :mod:`evospikenet.functional.lif` for the equations).

    Keyword arguments are those of :class:`~evospikenet.functional.lif.LIFParams`.
    """

    def __init__(self, step_mode: str = "m", **params) -> None:
        super().__init__()
        self.step_mode = _check_mode(step_mode)
        self.params = lif_params(**params)

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        if self.step_mode == "s":
            return lif_step(x, state, self.params)
        return lif_multistep(x, state, self.params)

    def extra_repr(self) -> str:
        p = self.params
        return (
            f"step_mode={self.step_mode!r}, tau_mem={p.tau_mem}, dt={p.dt}, v_th={p.v_th}, reset={p.reset!r}"
        )


class _IntegerBase(nn.Module):
    def __init__(self, step_mode: str) -> None:
        super().__init__()
        self.step_mode = _check_mode(step_mode)

    def _step(self, x, state):  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor, state=None):
        if self.step_mode == "s":
            return self._step(x, state)
        out = []
        for xt in x.unbind(0):
            s, state = self._step(xt, state)
            out.append(s)
        return torch.stack(out), state


class IntegerLIF(_IntegerBase):
    """INT16-membrane LIF; keyword arguments are those of :class:`~evospikenet.functional.IntLIFParams`."""

    def __init__(self, step_mode: str = "m", **params) -> None:
        super().__init__(step_mode)
        self.params = int_lif_params(**params)

    def _step(self, x: torch.Tensor, state: IntLIFState | None):
        return int_lif_step(x, state, self.params)


class LoihiLIF(_IntegerBase):
    """Loihi 2 fixed-point LIF; keyword arguments are those of :class:`~evospikenet.functional.LoihiLIFParams`."""

    def __init__(self, step_mode: str = "m", **params) -> None:
        super().__init__(step_mode)
        self.params = loihi_lif_params(**params)

    def _step(self, x: torch.Tensor, state: LoihiLIFState | None):
        return loihi_lif_step(x, state, self.params)
