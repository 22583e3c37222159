r"""Homeostatic plasticity: an adaptive threshold that holds each neuron's mean rate near a target.

Negative feedback on the threshold from an exponential estimate of the firing rate (Hz):

.. math::

    \hat r_i &\leftarrow \hat r_i + \frac{\Delta t}{\tau_r}\Big(\frac{\bar s_i}{\Delta t} - \hat r_i\Big) \\
    \theta_i &\leftarrow \mathrm{clip}\big(\theta_i + \eta (\hat r_i - r_{target}),
                                           \ \theta_{min},\ \theta_{max}\big)

where ``\bar s_i`` is neuron ``i``'s spike averaged over the batch. A neuron firing above the target
raises its threshold and fires less; one below lowers it. ``eta`` is in threshold units per Hz per step.
The estimate starts at the target (no start-up transient) unless ``rate_init`` says otherwise.

**Integer path** (``int16``/``int32`` thresholds, no floating point in the step). The rate estimate is
Q16 spikes per step, ``\rho \leftarrow \rho + ((2^{16} \sum_b s / B - \rho + 2^{k-1}) \gg k)`` with
``\tau_r = 2^k \Delta t``; the threshold has a Q16 shadow ``\Theta`` (``\theta = \Theta \gg 16``) moved by
``\Theta \leftarrow \Theta + \mathrm{rnd}(g (\rho - \rho_{target}) / 2^{16})`` with
``g = round(2^{16} \eta / \Delta t)``, which is the float rule in fixed point.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from .._validate import check_non_negative, check_positive
from ._common import check_spikes, get_population

__all__ = [
    "HomeostasisParams",
    "HomeostasisState",
    "homeostasis_params",
    "homeostasis_init_state",
    "homeostasis_step",
    "IntHomeostasisParams",
    "IntHomeostasisState",
    "int_homeostasis_params",
    "int_homeostasis_init_state",
    "int_homeostasis_step",
    "Homeostasis",
]

_Q = 16  # fixed-point fraction bits of the integer rate estimate, threshold shadow and gain


class HomeostasisParams(NamedTuple):
    """Float homeostasis parameters."""

    target_hz: float = 10.0  # target mean rate r_target (Hz)
    tau_rate: float = 1.0  # time constant of the rate estimate (s)
    eta: float = 1e-4  # threshold change per Hz of rate error per step
    dt: float = 1e-3  # simulation step (s)
    v_th_min: float = 1e-3  # lowest threshold allowed
    v_th_max: float = math.inf  # highest threshold allowed


class HomeostasisState(NamedTuple):
    """Float rate estimate."""

    rate: torch.Tensor  # (n,) rate estimate r_hat (Hz)


def homeostasis_params(**kwargs) -> HomeostasisParams:
    """Validated ``HomeostasisParams``; raises ``ValueError`` naming a bad argument."""
    p = HomeostasisParams(**kwargs)
    check_non_negative("target_hz", p.target_hz)
    check_positive("tau_rate", p.tau_rate)
    check_non_negative("eta", p.eta)
    check_positive("dt", p.dt)
    if p.tau_rate < p.dt:
        raise ValueError(f"tau_rate must be at least dt={p.dt!r}, got {p.tau_rate!r}")
    if math.isnan(p.v_th_min) or math.isnan(p.v_th_max) or p.v_th_min > p.v_th_max:
        raise ValueError(f"v_th_min must be <= v_th_max={p.v_th_max!r}, got {p.v_th_min!r}")
    return p


def homeostasis_init_state(n: int, params: HomeostasisParams, rate_init: float | None = None, device=None):
    """Rate estimate at ``rate_init`` (default: the target) for ``n`` neurons."""
    r = params.target_hz if rate_init is None else check_non_negative("rate_init", rate_init)
    return HomeostasisState(torch.full((n,), float(r), device=device))


def homeostasis_step(
    v_th: torch.Tensor, spikes: torch.Tensor, state: HomeostasisState | None, params: HomeostasisParams
) -> tuple[torch.Tensor, HomeostasisState]:
    """One step: thresholds (n,), spikes (B, n) -> new thresholds (n,), new rate estimate."""
    p, n = params, v_th.shape[-1]
    s = check_spikes("spikes", spikes, n)
    if state is None:
        state = homeostasis_init_state(n, p, device=v_th.device)
    a = p.dt / p.tau_rate
    rate = state.rate + a * (s.to(state.rate.dtype).mean(0) / p.dt - state.rate)  # (n,) Hz
    new = (v_th + p.eta * (rate - p.target_hz)).clamp(p.v_th_min, p.v_th_max).to(v_th.dtype)
    return new, HomeostasisState(rate)


class IntHomeostasisParams(NamedTuple):
    """Integer homeostasis parameters (Python ints only)."""

    rate_shift: int = 10  # k: tau_rate = 2**k steps
    target_q: int = 655  # target rate in Q16 spikes per step, round(2**16 target_hz dt)
    gain_q: int = 6554  # g = round(2**16 eta / dt): threshold Q16 units per Q16 rate error
    v_th_min: int = 1  # lowest threshold allowed
    v_th_max: int = 32767  # highest threshold allowed


class IntHomeostasisState(NamedTuple):
    """Integer rate estimate and threshold shadow."""

    rate_q: torch.Tensor  # (n,) int64 rate estimate, Q16 spikes per step
    v_th_q: torch.Tensor  # (n,) int64 threshold shadow, Q16


def int_homeostasis_params(
    target_hz: float = 10.0,
    tau_rate: float = 1.0,
    eta: float = 1e-3,
    dt: float = 1e-3,
    v_th_min: int = 1,
    v_th_max: int = 32767,
) -> IntHomeostasisParams:
    """Quantise the float constants (configuration time); ``tau_rate`` rounds to ``2**k`` steps."""
    fp = homeostasis_params(target_hz=target_hz, tau_rate=tau_rate, eta=eta, dt=dt)
    for name, v in (("v_th_min", v_th_min), ("v_th_max", v_th_max)):
        if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= 2**31 - 1:
            raise ValueError(f"{name} must be an integer in [1, 2**31 - 1], got {v!r}")
    if v_th_min > v_th_max:
        raise ValueError(f"v_th_min must be <= v_th_max={v_th_max}, got {v_th_min}")
    if fp.target_hz * dt > 1:
        raise ValueError(
            f"target_hz must be at most one spike per step (1/dt = {1 / dt:g}), got {target_hz!r}"
        )
    return IntHomeostasisParams(
        rate_shift=max(0, round(math.log2(tau_rate / dt))),
        target_q=round(2**_Q * target_hz * dt),
        gain_q=round(2**_Q * eta / dt),
        v_th_min=v_th_min,
        v_th_max=v_th_max,
    )


def int_homeostasis_init_state(v_th: torch.Tensor, params: IntHomeostasisParams) -> IntHomeostasisState:
    """Rate estimate at the target and a threshold shadow equal to ``v_th`` (integer tensor (n,))."""
    rate = torch.full(v_th.shape, params.target_q, dtype=torch.int64, device=v_th.device)
    return IntHomeostasisState(rate, v_th.to(torch.int64) << _Q)


def int_homeostasis_step(
    v_th: torch.Tensor, spikes: torch.Tensor, state: IntHomeostasisState | None, params: IntHomeostasisParams
) -> tuple[torch.Tensor, IntHomeostasisState]:
    """One integer step: integer thresholds (n,), integer spikes (B, n) -> new thresholds, new state."""
    if v_th.is_floating_point() or spikes.is_floating_point():
        raise ValueError(
            f"v_th and spikes must be integer tensors on the integer path, got {v_th.dtype}, {spikes.dtype}"
        )
    p, n = params, v_th.shape[-1]
    s = check_spikes("spikes", spikes, n)
    if state is None:
        state = int_homeostasis_init_state(v_th, p)
    # an external write to v_th (another rule, the user) resets the shadow of that neuron
    shadow = torch.where(
        (state.v_th_q >> _Q) == v_th.to(torch.int64), state.v_th_q, v_th.to(torch.int64) << _Q
    )
    batch = s.shape[0]
    x = torch.div(s.to(torch.int64).sum(0) << _Q, batch, rounding_mode="floor")  # (n,) Q16 spikes per step
    half = (1 << p.rate_shift) >> 1  # round to nearest: a floor shift would bias the estimate low
    rate = state.rate_q + ((x - state.rate_q + half) >> p.rate_shift)
    step = torch.div(p.gain_q * (rate - p.target_q) + (1 << (_Q - 1)), 1 << _Q, rounding_mode="floor")
    shadow = (shadow + step).clamp_(p.v_th_min << _Q, (p.v_th_max << _Q) + (1 << _Q) - 1)
    new = (shadow >> _Q).to(v_th.dtype)
    return new, IntHomeostasisState(rate, shadow)


class Homeostasis:
    """Adaptive-threshold homeostasis on one population, writing ``pop.v_th`` in place after each step.

    The integer path is used when the population's threshold is an integer tensor; ``kwargs`` are those of
    ``homeostasis_params`` / ``int_homeostasis_params`` without ``dt`` (the network's). ``rate_init``
    (float path) starts the rate estimate elsewhere than at the target.
    """

    def __init__(self, population: str, rate_init: float | None = None, **kwargs):
        if "dt" in kwargs:
            raise ValueError(
                f"dt must not be given to the Homeostasis rule (it is the network's), got {kwargs['dt']!r}"
            )
        fkw = {k: v for k, v in kwargs.items() if k not in ("v_th_min", "v_th_max")}
        homeostasis_params(**fkw)  # validate early
        self.population, self.rate_init, self.kwargs = population, rate_init, kwargs
        self.params: HomeostasisParams | IntHomeostasisParams | None = None
        self.state = None

    @property
    def integer(self) -> bool:
        """Whether the bound population has integer thresholds."""
        return isinstance(self.params, IntHomeostasisParams)

    @property
    def rate_hz(self) -> torch.Tensor:
        """(n,) current rate estimate in Hz (a float view, for monitoring)."""
        if self.integer:
            return self.state.rate_q.double() / 2**_Q / self._dt
        return self.state.rate

    def bind(self, net) -> None:
        """Build parameters with the network's ``dt``; initialise the state from ``pop.v_th``."""
        pop = get_population(net, self.population)
        self._dt = net.dt
        if pop.v_th.is_floating_point():
            self.params = homeostasis_params(dt=net.dt, **self.kwargs)
            self.state = homeostasis_init_state(pop.n, self.params, self.rate_init, pop.v_th.device)
        else:
            self.params = int_homeostasis_params(dt=net.dt, **self.kwargs)
            self.state = int_homeostasis_init_state(pop.v_th, self.params)

    def before_step(self, net, t, currents) -> None:
        """Nothing to do before the neuron step."""

    def after_step(self, net, t, spikes) -> None:
        """Update the rate estimate and the thresholds from this step's spikes."""
        pop = get_population(net, self.population)
        s = spikes[pop.name]
        if self.integer:
            if self.state.v_th_q.device != pop.v_th.device:
                self.state = IntHomeostasisState(*(x.to(pop.v_th.device) for x in self.state))
            new, self.state = int_homeostasis_step(pop.v_th, s.to(torch.int8), self.state, self.params)
        else:
            if self.state.rate.device != pop.v_th.device:
                self.state = HomeostasisState(self.state.rate.to(pop.v_th.device))
            new, self.state = homeostasis_step(pop.v_th, s, self.state, self.params)
        pop.v_th.copy_(new)
