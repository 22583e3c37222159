r"""Integer pair-based STDP for int8 CSR projections: no floating point in the update.

The rule is the one of ``stdp`` (``dw = A+ exp(-dt/tau+)`` for ``dt > 0``, ``-A- exp(-|dt|/tau-)`` for
``dt < 0``, traces, event-driven over the stored entries) in fixed point.

Traces are int32 fixed point with ``2^{12}`` for one spike, decayed by
``x <- (x m + 2^{15}) >> 16`` with ``m = round(2^{16} e^{-\Delta t/\tau})`` (round-to-nearest integer
multiply and shift). Each synapse keeps an int16 fine-weight shadow ``f`` with
``2^8`` shadow units per int8 weight unit; the update is

.. math::

    \Delta f = \mathrm{rnd}\Big(\frac{A^q_+ \sum_b x^{pre} s^{post}
                                      - A^q_- \sum_b s^{pre} x^{post}}{B \, 2^{12}}\Big),
    \quad f \leftarrow \mathrm{clip}(f + \Delta f, 2^8 w_{min}, 2^8 w_{max} + 255),
    \quad w = \mathrm{sat}_8(f \gg 8)

with ``A^q = round(2^8 A)``. The shadow starts at ``2^8 w + 128`` (the middle of its int8 bin). For one
pair ``k`` steps apart the shadow change differs from ``2^8 A e^{-k\Delta t/\tau}`` by at most
``int_stdp_error_bound(params, k)`` shadow units (``1 + A^q (0.5 + 2^{-5}) k / 2^{12}``: the rounding of
``A^q`` and of the result, plus at most half a trace unit per decay step and the rounding of ``m``).
Only the entries touched by a spike are read and written (``CSRIndex``), so a step costs the number of
synaptic events.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from ._common import CSRIndex, check_spikes, check_stdp_constants, csr_index, pair_terms

__all__ = [
    "IntSTDPParams",
    "IntSTDPState",
    "int_stdp_params",
    "int_stdp_init_state",
    "int_stdp_step",
    "int_stdp_error_bound",
    "TRACE_BITS",
    "FINE_SHIFT",
]

IntTensor = torch.Tensor  # a tensor of an integer dtype: int8 weights, integer spike counts

TRACE_BITS = 12  # integer trace value of one spike is 2**TRACE_BITS
FINE_SHIFT = 8  # shadow units per int8 weight unit = 2**FINE_SHIFT
_DECAY_BITS = 16  # decay multipliers are Q16


class IntSTDPParams(NamedTuple):
    """Integer STDP parameters (Python ints only; build them with ``int_stdp_params``)."""

    a_plus_q: int = 256  # A+ in shadow units (2**8 per int8 weight unit)
    a_minus_q: int = 256  # A- in shadow units
    m_plus: int = 62348  # Q16 per-step decay of the pre trace, round(2**16 exp(-dt/tau+))
    m_minus: int = 62348  # Q16 per-step decay of the post trace, round(2**16 exp(-dt/tau-))
    w_min: int = -128  # lower int8 weight bound
    w_max: int = 127  # upper int8 weight bound
    mode: str = "all_to_all"  # "all_to_all" or "nearest"


class IntSTDPState(NamedTuple):
    """Integer STDP traces and the per-synapse fine-weight shadow."""

    x_pre: torch.Tensor  # (B, n_pre) int32 traces, 2**12 per spike
    x_post: torch.Tensor  # (B, n_post) int32 traces
    shadow: torch.Tensor  # (nnz,) int16 fine weights, 2**8 per int8 unit


def int_stdp_params(
    a_plus: float = 1.0,
    a_minus: float = 1.0,
    tau_plus: float = 20e-3,
    tau_minus: float = 20e-3,
    dt: float = 1e-3,
    w_min: int = -128,
    w_max: int = 127,
    mode: str = "all_to_all",
) -> IntSTDPParams:
    """Quantise float STDP constants (``a_plus``/``a_minus`` in int8 weight units) to ``IntSTDPParams``.

    This is configuration time: the integer step itself sees only the ints returned here.
    """
    check_stdp_constants(a_plus, a_minus, tau_plus, tau_minus, dt, mode)
    for name, v in (("w_min", w_min), ("w_max", w_max)):
        if not isinstance(v, int) or isinstance(v, bool) or not -128 <= v <= 127:
            raise ValueError(f"{name} must be an integer in [-128, 127], got {v!r}")
    if w_min > w_max:
        raise ValueError(f"w_min must be <= w_max={w_max}, got {w_min}")
    if a_plus * 2**FINE_SHIFT > 2**15 or a_minus * 2**FINE_SHIFT > 2**15:
        raise ValueError(f"a_plus and a_minus must be at most 128 int8 units, got {a_plus!r}, {a_minus!r}")
    q = 2**_DECAY_BITS
    return IntSTDPParams(
        a_plus_q=round(a_plus * 2**FINE_SHIFT),
        a_minus_q=round(a_minus * 2**FINE_SHIFT),
        m_plus=round(q * math.exp(-dt / tau_plus)),
        m_minus=round(q * math.exp(-dt / tau_minus)),
        w_min=w_min,
        w_max=w_max,
        mode=mode,
    )


def int_stdp_init_state(batch: int, n_pre: int, n_post: int, values: torch.Tensor) -> IntSTDPState:
    """Zero traces and a shadow at the middle of each int8 weight's bin: ``2**8 w + 128``."""
    if values.dtype != torch.int8:
        raise ValueError(f"values must be int8 for the integer STDP path, got {values.dtype}")
    dev = values.device
    shadow = (values.to(torch.int16) << FINE_SHIFT) | (1 << (FINE_SHIFT - 1))  # (nnz,) int16
    z = torch.zeros
    return IntSTDPState(
        z(batch, n_pre, dtype=torch.int32, device=dev),
        z(batch, n_post, dtype=torch.int32, device=dev),
        shadow,
    )


def _int_decay(x: torch.Tensor, m: int) -> torch.Tensor:
    return ((x.to(torch.int64) * m + (1 << (_DECAY_BITS - 1))) >> _DECAY_BITS).to(torch.int32)


def _rdiv(num: torch.Tensor, den: int) -> torch.Tensor:
    """Integer division rounding to nearest (half up), for int64 tensors."""
    return torch.div(num + den // 2, den, rounding_mode="floor")


def int_stdp_step(
    values: IntTensor,
    crow: torch.Tensor,
    col: torch.Tensor,
    pre_spikes: IntTensor,
    post_spikes: IntTensor,
    state: IntSTDPState | None,
    params: IntSTDPParams,
    index: CSRIndex | None = None,
    inplace: bool = False,
) -> tuple[torch.Tensor, IntSTDPState]:
    """One integer STDP step: int8 ``values`` (nnz,), integer spikes (B, n) -> new int8 values, new state.

    Only integer tensor ops run here (checked by ``tests/plasticity/test_stdp.py``). ``index`` and
    ``inplace`` as in ``stdp_step`` (in place, ``values`` and ``state.shadow`` are both written).
    """
    if values.dtype != torch.int8:
        raise ValueError(f"values must be int8 for int_stdp_step, got {values.dtype}")
    if pre_spikes.is_floating_point() or post_spikes.is_floating_point():
        raise ValueError(
            f"spikes must be integer or bool tensors on the integer path, got {pre_spikes.dtype}"
        )
    n_pre, p = crow.numel() - 1, params
    pre = check_spikes("pre_spikes", pre_spikes, n_pre).to(torch.int32)
    if state is None:
        state = int_stdp_init_state(pre.shape[0], n_pre, post_spikes.shape[-1], values)
    post = check_spikes("post_spikes", post_spikes, state.x_post.shape[1]).to(torch.int32)
    if state.shadow.shape != values.shape:
        raise ValueError(
            f"state.shadow must have one entry per synapse {tuple(values.shape)}, "
            f"got {tuple(state.shadow.shape)}"
        )
    if post.shape[0] != pre.shape[0] or state.x_pre.shape != pre.shape:
        raise ValueError(
            f"post_spikes batch must match pre_spikes {tuple(pre.shape)}, got {tuple(post.shape)}"
        )
    index = csr_index(crow, col, post.shape[1]) if index is None else index
    x_pre = _int_decay(state.x_pre, p.m_plus)  # (B, n_pre) int32
    x_post = _int_decay(state.x_post, p.m_minus)  # (B, n_post) int32
    den = pre.shape[0] << TRACE_BITS
    pot_idx, pot, depr_idx, depr = pair_terms(
        crow, col, index, pre, post, x_pre.to(torch.int64), x_post.to(torch.int64)
    )
    shadow = state.shadow if inplace else state.shadow.clone()
    new = values if inplace else values.clone()
    idx, delta = [], []  # touched entries and their shadow changes
    if pot_idx is not None:
        idx.append(pot_idx)
        delta.append(_rdiv(pot * p.a_plus_q, den))
    if depr_idx is not None:
        idx.append(depr_idx)
        delta.append(-_rdiv(depr * p.a_minus_q, den))
    if idx:  # only the touched entries are rewritten
        t, inv = torch.unique(torch.cat(idx), return_inverse=True)
        d = torch.zeros(t.shape, dtype=torch.int64, device=t.device).index_add_(0, inv, torch.cat(delta))
        lo, hi = p.w_min << FINE_SHIFT, (p.w_max << FINE_SHIFT) + (1 << FINE_SHIFT) - 1
        f = (shadow[t].to(torch.int64) + d).clamp_(lo, hi)
        shadow[t] = f.to(torch.int16)
        new[t] = (f >> FINE_SHIFT).clamp_(p.w_min, p.w_max).to(torch.int8)
    one = 1 << TRACE_BITS
    if p.mode == "nearest":
        x_pre = torch.where(pre != 0, one, x_pre)
        x_post = torch.where(post != 0, one, x_post)
    else:  # saturate far below int32 overflow of the int64 products above
        x_pre = (x_pre + pre * one).clamp_(max=1 << 30)
        x_post = (x_post + post * one).clamp_(max=1 << 30)
    return new, IntSTDPState(x_pre, x_post, shadow)


def int_stdp_error_bound(params: IntSTDPParams, k: int) -> float:
    """Bound (shadow units) on ``|Delta f - 2^8 A e^{-k dt/tau}|`` for one isolated pair ``k`` steps apart."""
    a_q = max(params.a_plus_q, params.a_minus_q)
    per_step = 0.5 + 2.0 ** (TRACE_BITS - _DECAY_BITS - 1)  # trace rounding + rounding of m, trace units
    return 1.0 + a_q * per_step * abs(k) / 2**TRACE_BITS
