r"""Classic spike encoders for real-valued signals.

* ``rate_encode``: Bernoulli rate code, ``P(s_t = 1) = clip(x, 0, 1)`` independently per step.
* ``latency_encode``: one spike per input at ``t = round((1 - x) (T - 1))`` (strong inputs fire first);
  inputs at or below ``threshold`` stay silent.
* ``delta_encode``: ON/OFF spikes when the signal changes by more than ``threshold`` between samples:
  ``on_t = [x_t - x_{t-1} > th]``, ``off_t = [x_{t-1} - x_t > th]``.
* ``level_crossing_encode``: send-on-delta with a moving reference ``r``: an ON (OFF) spike whenever the
  signal rises (falls) ``delta`` above (below) ``r``, which then moves by ``delta`` — the ADC-free
  encoding used for ECG in the literature.

Shapes: inputs ``(B, ...)``, outputs ``(T, B, ...)`` (rate, latency) or ``(L, B, 2, ...)`` along the
signal's own time axis for delta and level crossing (channel 0 = ON, 1 = OFF).
"""

from __future__ import annotations

import torch

from .._validate import check_positive, check_tensor

__all__ = ["rate_encode", "latency_encode", "delta_encode", "level_crossing_encode"]


def rate_encode(x: torch.Tensor, num_steps: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Bernoulli spikes ``(T, *x.shape)`` with firing probability ``clip(x, 0, 1)`` per step."""
    check_tensor("x", x)
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    p = x.clamp(0.0, 1.0).expand(num_steps, *x.shape)
    return torch.bernoulli(p, generator=generator)


def latency_encode(x: torch.Tensor, num_steps: int, threshold: float = 0.0) -> torch.Tensor:
    """One spike per element at step ``round((1 - x)(T - 1))`` for ``x`` in [0, 1]; ``x <= threshold`` is silent."""
    check_tensor("x", x)
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive integer, got {num_steps!r}")
    xc = x.clamp(0.0, 1.0)
    t_fire = torch.round((1.0 - xc) * (num_steps - 1)).long()
    steps = torch.arange(num_steps, device=x.device).view(-1, *([1] * x.ndim))
    return ((steps == t_fire) & (xc > threshold)).to(x.dtype if x.is_floating_point() else torch.float32)


def delta_encode(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """ON/OFF spikes ``(L, B, 2, ...)`` from a signal ``(L, B, ...)`` where consecutive samples differ by > threshold."""
    check_tensor("x", x, ndim=(2, 3, 4))
    check_positive("threshold", threshold)
    d = torch.diff(x, dim=0, prepend=x[:1])
    return torch.stack([(d > threshold), (-d > threshold)], dim=2).to(torch.float32)


def level_crossing_encode(x: torch.Tensor, delta: float) -> torch.Tensor:
    """Send-on-delta ON/OFF spikes ``(L, B, 2, ...)`` of a signal ``(L, B, ...)`` with level spacing ``delta``.

    At most one spike per sample and channel; the reference moves one level per spike, so a fast edge spreads
    over several samples as it would in an asynchronous level-crossing ADC.
    """
    check_tensor("x", x, ndim=(2, 3, 4))
    check_positive("delta", delta)
    ref = x[0].clone()
    out = torch.zeros((x.shape[0], *x.shape[1:2], 2, *x.shape[2:]), dtype=torch.float32, device=x.device)
    for t in range(1, x.shape[0]):
        up = x[t] - ref >= delta
        down = ref - x[t] >= delta
        ref = ref + delta * up.to(ref.dtype) - delta * down.to(ref.dtype)
        out[t, :, 0] = up
        out[t, :, 1] = down
    return out
