"""INT8 quantisation shared by the integer core and the Loihi 2 export (float64 integer-valued tensors).

* ``to_int8(v, scale) = clamp(round(v / scale), -127, 127)``: a value on a fixed grid (inputs, weights);
* ``int8_symmetric(w) = (to_int8(w, s), s)`` with ``s = max|w| / 127``: one scale per tensor;
* ``int8_pow2(w) = (to_int8(w, 2^e), e)`` with the smallest ``e`` such that ``max|w| / 2^e <= 127``: a mantissa
  and a power-of-two exponent, so rescaling is a shift.
"""

from __future__ import annotations

import math

import torch

__all__ = ["RR_INT8_SCALE", "to_int8", "int8_symmetric", "int8_pow2"]

RR_INT8_SCALE = 8 / 127  # standardised RR features enter as INT8 over +-8 standard deviations


def to_int8(v: torch.Tensor, scale: float) -> torch.Tensor:
    """``clamp(round(v / scale), -127, 127)`` in float64 (integer-valued)."""
    return torch.round(v.detach().double() / scale).clamp(-127, 127)


def int8_symmetric(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric per-tensor INT8 quantisation: the integer-valued tensor and its scale ``max|w| / 127``."""
    scale = max(float(w.detach().abs().max()), 1e-30) / 127.0
    return to_int8(w, scale), scale


def int8_pow2(w: torch.Tensor) -> tuple[torch.Tensor, int]:
    """INT8 mantissas and the exponent ``e``: ``w ~ mantissa * 2^e`` with ``max|mantissa|`` in (63.5, 127]."""
    e = math.ceil(math.log2(max(float(w.detach().abs().max()), 1e-30) / 127.0))
    return to_int8(w, 2.0**e), e
