r"""Integer LIF neurons: no floating point anywhere in a step.

Two arithmetic profiles.

**int16** (default): INT8 weights and spikes, INT16 membrane, INT32 accumulation.

.. math::

    I_t &= \mathrm{sat}_{16}\big(\textstyle\sum_j w_{ij} s_j\big)            \quad (w, s \in \text{int8})\\
    H_t &= \mathrm{sat}_{16}\big(V_{t-1} - \mathrm{leak}(V_{t-1}) + I_t\big)   \\
    S_t &= [H_t \ge \theta]\\
    V_t &= H_t - S_t \theta \;(\text{subtract}) \quad\text{or}\quad V_{reset} \;(\text{zero})

with the leak either a shift, ``leak(V) = (V + 2^(k-1)) >> k`` (``beta = 1 - 2^-k``), or an integer
multiply, ``V - leak(V) = (V m + 2^(b-1)) >> b`` (``beta = m / 2^b``). ``>>`` is an arithmetic shift (floor
division by a power of two); the added half rounds the leak to nearest, so the integer decay carries no bias
against the float one. ``sat_16`` clamps to ``[-32768, 32767]``. The float form ``H = beta V + (1 - beta) R I`` with
``(1 - beta) R = 1`` and weights ``w_float = scale * w_int``, threshold ``scale * theta`` is the same neuron
up to rounding, which ``tests/functional/test_integer_lif.py`` checks. After a spike the neuron is held at
``V_reset`` for ``refractory`` steps.

**loihi**: Loihi 2's fixed-point CUBA LIF as Lava's bit-accurate model computes it (24-bit current ``u`` and
voltage ``v`` held in int32, 12-bit decays, 6-bit MSB alignment of input and threshold):

.. math::

    u_t &= \mathrm{wrap}_{24}\big(\mathrm{trunc}(u_{t-1} (4096 - (d_u + 1)) / 4096) + (a_t \ll 6)\big)\\
    v_t &= \mathrm{clip}_{24}\big(\mathrm{trunc}(v_{t-1} (4096 - d_v) / 4096) + u_t + (b_m \ll b_e)\big)\\
    S_t &= [v_t > (\theta_m \ll 6)], \qquad v_t \leftarrow 0 \text{ where } S_t

``trunc`` rounds toward zero (sign-magnitude shift), ``wrap_24`` wraps values above ``2^23`` or at or below
``-2^23`` by ``2^24`` and ``clip_24`` clamps to ``[-(2^23 - 1), 2^23 - 1]``, exactly as Lava's
``PyLifModelBitAcc`` does (including its ``+1`` offset on ``d_u``).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._validate import check_int_range, check_tensor

__all__ = [
    "IntLIFParams",
    "IntLIFState",
    "int_lif_params",
    "int_lif_init_state",
    "int_lif_step",
    "LoihiLIFParams",
    "LoihiLIFState",
    "loihi_lif_params",
    "loihi_lif_init_state",
    "loihi_lif_step",
    "INT16_MIN",
    "INT16_MAX",
]

INT16_MIN, INT16_MAX = -32768, 32767
_INT_INPUTS = (torch.int8, torch.int16, torch.int32, torch.int64)


class IntLIFParams(NamedTuple):
    """Parameters of the int16 LIF profile (all Python ints)."""

    v_th: int = 64  # threshold theta (membrane units)
    v_reset: int = 0  # potential after a spike (reset="zero") and during the refractory period
    leak: str = "shift"  # "shift" (V >> leak_shift) or "mul" ((V * leak_mul) >> leak_bits)
    leak_shift: int = 4  # k in beta = 1 - 2^-k (leak="shift")
    leak_mul: int = 240  # m in beta = m / 2^b (leak="mul")
    leak_bits: int = 8  # b in beta = m / 2^b (leak="mul")
    reset: str = "subtract"  # "subtract" or "zero"
    refractory: int = 0  # refractory period in steps

    @property
    def beta(self) -> float:
        """The float decay this integer leak approximates (for documentation and float twins)."""
        if self.leak == "shift":
            return 1.0 - 2.0 ** (-self.leak_shift)
        return self.leak_mul / 2.0**self.leak_bits


class IntLIFState(NamedTuple):
    """State of an int16 LIF population."""

    v: torch.Tensor  # (B, N) int16 membrane
    refrac: torch.Tensor  # (B, N) int16 steps left in the refractory period


def int_lif_params(**kwargs) -> IntLIFParams:
    """Build validated ``IntLIFParams``; raises ``ValueError`` naming any bad argument."""
    p = IntLIFParams(**kwargs)
    check_int_range("v_th", p.v_th, 1, INT16_MAX)
    check_int_range("v_reset", p.v_reset, INT16_MIN, p.v_th - 1)
    check_int_range("leak_shift", p.leak_shift, 0, 15)
    check_int_range("leak_bits", p.leak_bits, 1, 15)
    check_int_range("leak_mul", p.leak_mul, 0, 2**p.leak_bits)
    check_int_range("refractory", p.refractory, 0, INT16_MAX)
    if p.leak not in ("shift", "mul"):
        raise ValueError(f"leak must be 'shift' or 'mul', got {p.leak!r}")
    if p.reset not in ("subtract", "zero"):
        raise ValueError(f"reset must be 'subtract' or 'zero', got {p.reset!r}")
    return p


def int_lif_init_state(
    shape: tuple[int, ...], params: IntLIFParams | None = None, device=None
) -> IntLIFState:
    """Resting state (V = 0) of an int16 population of the given shape."""
    z = torch.zeros(shape, dtype=torch.int16, device=device)
    return IntLIFState(z, z.clone())


def _half(bits: int) -> int:
    """Rounding offset ``2^(bits-1)`` so that ``(x + half) >> bits`` rounds to nearest (0 for bits = 0)."""
    return (1 << bits) >> 1


def int_lif_step(
    x: torch.Tensor, state: IntLIFState | None, params: IntLIFParams
) -> tuple[torch.Tensor, IntLIFState]:
    """One integer step: input current ``x`` (int8/16/32, (B, N)) -> int8 spikes and the new int16 state."""
    check_tensor("x", x, dtypes=_INT_INPUTS)
    p = params
    if state is None:
        state = int_lif_init_state(tuple(x.shape), p, x.device)
    v = state.v.to(torch.int32)
    i = x.to(torch.int32).clamp_(INT16_MIN, INT16_MAX)
    if p.leak == "shift":
        decayed = v - ((v + _half(p.leak_shift)) >> p.leak_shift)
    else:
        decayed = (v * p.leak_mul + _half(p.leak_bits)) >> p.leak_bits
    h = (decayed + i).clamp_(INT16_MIN, INT16_MAX)
    if p.refractory > 0:
        active = state.refrac <= 0
        h = torch.where(active, h, p.v_reset)
        fired = (h >= p.v_th) & active
        refrac = torch.where(fired, p.refractory, (state.refrac - 1).clamp_(min=0)).to(torch.int16)
    else:
        fired = h >= p.v_th
        refrac = state.refrac
    if p.reset == "subtract":
        v_new = torch.where(fired, h - p.v_th, h)
    else:
        v_new = torch.where(fired, p.v_reset, h)
    return fired.to(torch.int8), IntLIFState(v_new.to(torch.int16), refrac)


# ---------------------------------------------------------------------------------------------- loihi

_UV_MAX = 2**23  # 24-bit state variables
_DECAY_SHIFT = 12
_DECAY_UNITY = 2**_DECAY_SHIFT
_ACT_SHIFT = 6
_VTH_SHIFT = 6


class LoihiLIFParams(NamedTuple):
    """Parameters of Loihi 2's fixed-point LIF (names as in Lava's ``LIF`` process)."""

    du: int = 4095  # current decay, 12 bit (4095: the current lasts one step)
    dv: int = 256  # voltage decay, 12 bit (dv / 4096 of v leaks each step)
    vth: int = 10  # threshold mantissa, 17 bit; effective threshold vth << 6
    bias_mant: int = 0  # bias mantissa, 13 bit signed
    bias_exp: int = 0  # bias exponent, 3 bit


class LoihiLIFState(NamedTuple):
    """State of a Loihi LIF population: 24-bit current and voltage held in int32."""

    u: torch.Tensor  # (B, N) int32
    v: torch.Tensor  # (B, N) int32


def loihi_lif_params(**kwargs) -> LoihiLIFParams:
    """Build validated ``LoihiLIFParams``; raises ``ValueError`` naming any bad argument."""
    p = LoihiLIFParams(**kwargs)
    check_int_range("du", p.du, 0, 4095)
    check_int_range("dv", p.dv, 0, 4095)
    check_int_range("vth", p.vth, 0, 2**17 - 1)
    check_int_range("bias_mant", p.bias_mant, -4096, 4095)
    check_int_range("bias_exp", p.bias_exp, 0, 7)
    return p


def loihi_lif_init_state(
    shape: tuple[int, ...], params: LoihiLIFParams | None = None, device=None
) -> LoihiLIFState:
    """Zero current and voltage."""
    z = torch.zeros(shape, dtype=torch.int32, device=device)
    return LoihiLIFState(z, z.clone())


def _decay_trunc(x: torch.Tensor, factor: int) -> torch.Tensor:
    """``trunc(x * factor / 4096)`` in int64, rounding toward zero as Loihi does (sign-magnitude shift)."""
    prod = x.to(torch.int64) * factor
    return (torch.sign(prod) * (prod.abs() >> _DECAY_SHIFT)).to(torch.int32)


def loihi_lif_step(
    a_in: torch.Tensor, state: LoihiLIFState | None, params: LoihiLIFParams
) -> tuple[torch.Tensor, LoihiLIFState]:
    """One Loihi fixed-point step: synaptic input ``a_in`` (int, (B, N)) -> int8 spikes and the new state."""
    check_tensor("a_in", a_in, dtypes=_INT_INPUTS)
    p = params
    if state is None:
        state = loihi_lif_init_state(tuple(a_in.shape), p, a_in.device)
    u = _decay_trunc(state.u, _DECAY_UNITY - (p.du + 1)) + (a_in.to(torch.int32) << _ACT_SHIFT)
    wrapped = torch.where(u > _UV_MAX, u - 2 * _UV_MAX, u)
    u = torch.where(wrapped <= -_UV_MAX, u + 2 * _UV_MAX, wrapped)
    bias = p.bias_mant << p.bias_exp
    v = (_decay_trunc(state.v, _DECAY_UNITY - p.dv) + u + bias).clamp_(-_UV_MAX + 1, _UV_MAX - 1)
    fired = v > (p.vth << _VTH_SHIFT)
    v = torch.where(fired, 0, v)
    return fired.to(torch.int8), LoihiLIFState(u, v)
