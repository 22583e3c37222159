r"""Knowledge-distillation loss (Hinton et al., 2015): soft teacher targets mixed with the hard labels.

.. math::

    L = \alpha\, \tau^2\, \mathrm{KL}\big(\mathrm{softmax}(z_t/\tau)\,\|\,\mathrm{softmax}(z_s/\tau)\big)
        + (1-\alpha)\, \mathrm{CE}(z_s, y)

The ``tau^2`` factor keeps the soft-target gradients on the scale of the hard-label ones as ``tau`` grows.
Rows whose label is ``ignore_index`` (e.g. unlabelled synthetic text) take the soft term only.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from .._validate import check_positive, check_probability

__all__ = ["DistillParams", "distillation_loss", "soft_kl"]


class DistillParams(NamedTuple):
    """Hyper-parameters of the distillation loss."""

    temperature: float = 2.0  # tau: softening temperature of both distributions (> 0)
    alpha: float = 0.5  # weight of the soft (teacher) term; 1 - alpha weighs the hard labels
    ignore_index: int = -100  # label value of rows without a hard label


_DEFAULT = DistillParams()


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row ``tau^2 KL(p_t || p_s)`` at temperature ``tau``; (B, C), (B, C) -> (B,)."""
    check_positive("temperature", temperature)
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(
            f"teacher_logits must have the student's shape {tuple(student_logits.shape)}, "
            f"got {tuple(teacher_logits.shape)}"
        )
    log_ps = F.log_softmax(student_logits.float() / temperature, dim=-1)  # (B, C)
    log_pt = F.log_softmax(teacher_logits.float() / temperature, dim=-1)  # (B, C)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1) * temperature**2  # (B,)


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor | None = None,
    params: DistillParams = _DEFAULT,
) -> torch.Tensor:
    """Scalar ``alpha tau^2 KL + (1 - alpha) CE`` averaged over the batch (see the module docstring).

    Args:
        student_logits: (B, C) student scores.
        teacher_logits: (B, C) cached teacher scores.
        labels: (B,) hard labels or None (soft term only).
        params: ``DistillParams``.
    """
    check_probability("alpha", params.alpha)
    kl = soft_kl(student_logits, teacher_logits, params.temperature).mean()
    if labels is None or params.alpha == 1.0:
        return kl
    labels = labels.view(-1)
    if (labels != params.ignore_index).sum() == 0:
        return params.alpha * kl
    ce = F.cross_entropy(student_logits.float(), labels, ignore_index=params.ignore_index)
    return params.alpha * kl + (1.0 - params.alpha) * ce
