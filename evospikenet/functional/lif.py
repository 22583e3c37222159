r"""Leaky integrate-and-fire neuron, float form: pure step functions.

Continuous dynamics ``tau dV/dt = -(V - V_rest) + R I(t)``. For an input held constant over one step of
length ``dt`` the exact update is

.. math::

    H_t = V_{rest} + \beta (V_{t-1} - V_{rest}) + (1 - \beta) R I_t, \qquad \beta = e^{-dt/\tau}

    S_t = \Theta(H_t - V_{th})

    V_t = \begin{cases} H_t - S_t V_{th} & \text{reset="subtract"} \\
                        H_t (1 - S_t) + S_t V_{reset} & \text{reset="zero"} \\
                        H_t & \text{reset="none"} \end{cases}

so a neuron at rest under constant current reaches ``V(n dt) = R I (1 - beta^n)`` and fires first at
``n* = ceil(-tau/dt * ln(1 - V_th / (R I)))`` steps (when ``R I > V_th``). After a spike a neuron is held at
``V_reset`` for ``refractory`` seconds (``round(refractory/dt)`` steps) and cannot integrate or fire.
The reset is detached from the graph (the usual choice, Zenke & Vogels 2021), so gradients flow
through ``H`` only; the Heaviside ``Theta`` uses a surrogate derivative in the backward pass.

``lif_step`` is one step for ``(B, N)`` input; ``lif_multistep`` runs a ``(T, B, N)`` sequence and, when the
neuron has no refractory period, uses a fused kernel: one autograd node for the whole sequence whose
backward is the hand-written BPTT recursion

.. math::

    \frac{\partial L}{\partial H_t} = g_{S_t} \sigma'(H_t - V_{th}) + g_{V_t} \frac{\partial V_t}{\partial H_t},
    \qquad g_{V_{t-1}} = \beta \frac{\partial L}{\partial H_t}, \qquad
    \frac{\partial L}{\partial I_t} = (1 - \beta) R \frac{\partial L}{\partial H_t}

with ``dV_t/dH_t = 1`` (subtract, none) or ``1 - S_t`` (zero). That removes the per-step autograd overhead
that dominates at long T. Without autograd (evaluation, serving) the same forward runs without storing
``H_t``, in place.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._validate import check_non_negative, check_positive, check_tensor
from .event_ops import lif_forward_native
from .surrogate import Surrogate, get_surrogate

__all__ = [
    "LIFParams",
    "LIFState",
    "lif_params",
    "lif_init_state",
    "lif_step",
    "lif_multistep",
    "RESET_MODES",
]

RESET_MODES = ("subtract", "zero", "none")


class LIFParams(NamedTuple):
    """Parameters of the float LIF neuron (all scalars, seconds and volts in arbitrary units)."""

    tau_mem: float = 10e-3  # membrane time constant tau (s)
    dt: float = 1e-3  # integration step (s)
    v_th: float = 1.0  # firing threshold
    v_reset: float = 0.0  # potential after a spike (reset="zero") and during the refractory period
    v_rest: float = 0.0  # resting potential
    r: float = 1.0  # membrane resistance R (current to voltage)
    reset: str = "subtract"  # "subtract", "zero" or "none"
    refractory: float = 0.0  # absolute refractory period (s)
    surrogate: Surrogate | str = "atan"  # surrogate gradient of the spike function

    @property
    def beta(self) -> float:
        """Per-step membrane decay ``exp(-dt / tau)``."""
        return math.exp(-self.dt / self.tau_mem)

    @property
    def refractory_steps(self) -> int:
        """Refractory period in whole steps."""
        return int(round(self.refractory / self.dt))


class LIFState(NamedTuple):
    """Explicit state of a LIF population: membrane ``v`` and refractory countdown (steps left)."""

    v: torch.Tensor  # (B, N) membrane potential
    refrac: torch.Tensor  # (B, N) int32 steps left in the refractory period


def lif_params(**kwargs) -> LIFParams:
    """Build validated ``LIFParams``; raises ``ValueError`` naming any bad argument."""
    p = LIFParams(**kwargs)
    check_positive("tau_mem", p.tau_mem)
    check_positive("dt", p.dt)
    check_non_negative("refractory", p.refractory)
    check_positive("r", p.r)
    if p.reset not in RESET_MODES:
        raise ValueError(f"reset must be one of {RESET_MODES}, got {p.reset!r}")
    if not math.isfinite(p.v_th) or p.v_th <= p.v_reset:
        raise ValueError(f"v_th must be finite and above v_reset={p.v_reset}, got {p.v_th!r}")
    return p._replace(surrogate=get_surrogate(p.surrogate))


def lif_init_state(shape: tuple[int, ...], params: LIFParams, device=None, dtype=torch.float32) -> LIFState:
    """Resting state for a population of the given shape, e.g. ``(B, N)``."""
    v = torch.full(shape, float(params.v_rest), device=device, dtype=dtype)
    return LIFState(v, torch.zeros(shape, device=device, dtype=torch.int32))


def _reset(h: torch.Tensor, s: torch.Tensor, p: LIFParams) -> torch.Tensor:
    if p.reset == "subtract":
        return h - s.detach() * p.v_th
    if p.reset == "zero":
        sd = s.detach()
        return h * (1.0 - sd) + sd * p.v_reset
    return h


def lif_step(x: torch.Tensor, state: LIFState | None, params: LIFParams) -> tuple[torch.Tensor, LIFState]:
    """One LIF step: input current ``x`` (B, N) -> spikes (B, N) in {0, 1} and the new state."""
    check_tensor("x", x, dtypes=(torch.float16, torch.bfloat16, torch.float32, torch.float64))
    if state is None:
        state = lif_init_state(tuple(x.shape), params, x.device, x.dtype)
    p = params
    surrogate = get_surrogate(p.surrogate)
    beta = p.beta
    h = p.v_rest + beta * (state.v - p.v_rest) + (1.0 - beta) * p.r * x
    if p.refractory_steps > 0:
        active = state.refrac <= 0
        h = torch.where(active, h, torch.full_like(h, p.v_reset))
        s = surrogate(h - p.v_th) * active
        v = _reset(h, s, p)
        refrac = torch.where(s.detach() > 0, p.refractory_steps, (state.refrac - 1).clamp_min(0)).to(
            torch.int32
        )
        return s, LIFState(v, refrac)
    s = surrogate(h - p.v_th)
    return s, LIFState(_reset(h, s, p), state.refrac)


class _FusedLIF(torch.autograd.Function):
    """Whole-sequence LIF with hand-written BPTT (see the module docstring)."""

    @staticmethod
    def forward(ctx, x, v0, p):  # x: (T, B, N), v0: (B, N)
        beta = p.beta
        gain = (1.0 - beta) * p.r
        v = v0
        # All pre-reset potentials H_t, kept for the backward pass.  # (T, B, N)
        hs = torch.empty_like(x)
        spikes = torch.empty_like(x)
        drive = x * gain
        if p.v_rest != 0.0:
            drive = drive + (1.0 - beta) * p.v_rest
        for t, d in enumerate(drive.unbind(0)):
            h = torch.add(d, v, alpha=beta)
            hs[t] = h
            s = spikes[t]
            torch.ge(h, p.v_th, out=s)
            if p.reset == "subtract":
                v = h - s * p.v_th
            elif p.reset == "zero":
                v = torch.where(s > 0, torch.full_like(h, p.v_reset), h)
            else:
                v = h
        ctx.save_for_backward(hs, spikes)
        ctx.p = p
        return spikes, v

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_last):
        hs, spikes = ctx.saved_tensors
        p = ctx.p
        beta = p.beta
        surrogate = get_surrogate(p.surrogate)
        grad_h_all = grad_spikes * surrogate.grad(hs - p.v_th)  # (T, B, N) direct spike term
        g_v = grad_v_last if grad_v_last is not None else torch.zeros_like(hs[0])
        grad_x = torch.empty_like(hs)
        for t in range(hs.shape[0] - 1, -1, -1):
            if p.reset == "zero":
                g_h = grad_h_all[t] + g_v * (1.0 - spikes[t])
            else:
                g_h = grad_h_all[t] + g_v
            grad_x[t] = g_h
            g_v = g_h * beta
        grad_x.mul_((1.0 - beta) * p.r)
        return grad_x, g_v, None


def _tracing() -> bool:
    """True while a graph is captured (ONNX export, ``torch.jit.trace``, ``torch.compile``/``torch.export``):
    in-place writes into slices are not for tracers, so they get the fused kernel (or its export twin)."""
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


def _lif_multistep_inference(x: torch.Tensor, v0: torch.Tensor, p: LIFParams):
    """The fused forward without autograd: no stored potentials, in-place updates (same spikes)."""
    gain = (1.0 - p.beta) * p.r
    offset = (1.0 - p.beta) * p.v_rest
    native = lif_forward_native(x, v0, p.beta, gain, offset, p.v_th, p.v_reset, p.reset)  # one C++ pass
    if native is not None:
        return native
    spikes = torch.empty_like(x)
    v = v0
    for t in range(x.shape[0]):
        d = x[t] if gain == 1.0 else x[t] * gain
        if offset != 0.0:
            d = d + offset
        h = torch.add(d, v, alpha=p.beta)  # a fresh tensor: updated in place below
        s = spikes[t]
        torch.ge(h, p.v_th, out=s)
        if p.reset == "subtract":
            v = h.sub_(s, alpha=p.v_th)
        elif p.reset == "zero":
            v = h.masked_fill_(s > 0, p.v_reset)
        else:
            v = h
    return spikes, v


def lif_multistep(
    x: torch.Tensor, state: LIFState | None, params: LIFParams
) -> tuple[torch.Tensor, LIFState]:
    """Run ``T`` steps: input current ``x`` (T, B, N) -> spikes (T, B, N) and the final state.

    Uses the fused kernel when the neuron has no refractory period, else loops ``lif_step``.
    """
    check_tensor("x", x, ndim=(2, 3, 4), dtypes=(torch.float16, torch.bfloat16, torch.float32, torch.float64))
    if state is None:
        state = lif_init_state(tuple(x.shape[1:]), params, x.device, x.dtype)
    if params.refractory_steps == 0:
        if not (torch.is_grad_enabled() and (x.requires_grad or state.v.requires_grad)) and not _tracing():
            spikes, v = _lif_multistep_inference(x, state.v, params)  # serving, evaluation
            return spikes, LIFState(v, state.refrac)
        spikes, v = _FusedLIF.apply(x, state.v, params)
        return spikes, LIFState(v, state.refrac)
    out = []
    for xt in x.unbind(0):
        s, state = lif_step(xt, state, params)
        out.append(s)
    return torch.stack(out), state
