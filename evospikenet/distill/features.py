r"""Per-token hidden-state distillation: the student's blocks learn to carry the teacher's layers.

Logit distillation (``loss.py``) gives the student two numbers per training phrase. TinyBERT (Jiao et al.,
2020) and SpikeBERT (Lv et al., 2023) also match the teacher's hidden states, token by token and layer by
layer, which gives a few hundred targets per token. For student block ``k`` read against teacher layer
``m_k``:

.. math::

    L_\mathrm{feat} = \frac{1}{K} \sum_{k=1}^{K} \frac{1}{|M|\,E} \sum_{(b,l) \in M}
        \big\| W_k \bar u^{(k)}_{bl} + c_k - \mathrm{LN}(h^{(m_k)}_{bl}) \big\|^2 ,
    \qquad \bar u^{(k)} = \frac{1}{T} \sum_{t=1}^{T} u^{(k)}_t

``u^{(k)}`` is block ``k``'s residual membrane stream (T, B, L, D), ``h^{(m)}`` the teacher's hidden state
after layer ``m`` (B, L, E; ``m = 0`` is its embedding output), ``LN`` a standardisation over the ``E``
channels without gain or bias (so every layer's target has unit scale), ``(W_k, c_k)`` a trained
``D -> E`` map, and ``M`` the real (unpadded) tokens. Student and teacher must read the same token ids
(the SST-2 student takes the teacher's tokenizer).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BlockTaps", "default_layer_map", "hidden_state_loss"]


def default_layer_map(n_student: int, n_teacher: int) -> list[int]:
    """Teacher layer read by each student block, evenly spaced and ending at the last layer (TinyBERT's
    uniform map): 2 blocks of a 6-layer teacher -> ``[3, 6]``."""
    if n_student < 1 or n_teacher < 1:
        raise ValueError(f"layer counts must be >= 1, got student {n_student} and teacher {n_teacher}")
    return [round((k + 1) * n_teacher / n_student) for k in range(n_student)]


def hidden_state_loss(
    student: torch.Tensor, teacher: torch.Tensor, proj: nn.Module, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """One block's term of ``L_feat`` (module docstring): mean squared error between ``proj(student)``
    (B, L, D) -> (B, L, E) and the standardised ``teacher`` (B, L, E), over the real tokens of ``mask``
    (B, L) and the ``E`` channels."""
    if student.shape[:2] != teacher.shape[:2]:
        raise ValueError(
            f"student and teacher must cover the same tokens, got (B, L) {tuple(student.shape[:2])} and "
            f"{tuple(teacher.shape[:2])}; give both the same token ids"
        )
    target = F.layer_norm(teacher.float(), teacher.shape[-1:])  # (B, L, E)
    err = (proj(student.float()) - target).pow(2).mean(-1)  # (B, L)
    if mask is None:
        return err.mean()
    m = mask.to(err.dtype)
    return (err * m).sum() / m.sum().clamp_min(1.0)


class BlockTaps:
    """Forward hooks that keep each block's time-averaged output ``mean_t u_t`` (B, L, D).

    ``blocks`` is a sequence of modules returning ``(u, ...)`` with ``u`` (T, B, L, D), the spiking LM's
    ``SpikingBlock``. ``outputs`` holds the latest forward pass's tensors (graph attached), one per block;
    ``remove()`` detaches the hooks.
    """

    def __init__(self, blocks):
        self.outputs: list[torch.Tensor | None] = [None] * len(blocks)
        self._handles = [b.register_forward_hook(self._hook(i)) for i, b in enumerate(blocks)]

    def _hook(self, i: int):
        def keep(module, args, out):
            self.outputs[i] = out[0].mean(0)  # (T, B, L, D) -> (B, L, D)

        return keep

    def take(self) -> list[torch.Tensor]:
        """The kept outputs, cleared so a stale pass is never read twice."""
        if any(o is None for o in self.outputs):
            raise RuntimeError("BlockTaps.take() before a forward pass through every block")
        out, self.outputs = self.outputs, [None] * len(self.outputs)
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
