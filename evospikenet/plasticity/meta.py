r"""Meta-plasticity (MetaSTDP): STDP's time constant follows task success.

After each reward ``R`` (a trial outcome, or a per-step signal from ``reward_fn``):

.. math::

    \tau_+ &\leftarrow \mathrm{clip}\big(\tau_+ + \eta (R - \bar R),\ \tau_{min},\ \tau_{max}\big) \\
    \bar R &\leftarrow (1 - a) \bar R + a R

so a reward above the running baseline ``\bar R`` lengthens the potentiation window (``eta > 0``) and a
reward below it shortens it; a constant reward drives ``R - \bar R`` to zero and ``tau_+`` stops moving.
The update uses the baseline from BEFORE the new reward. The baseline starts at ``baseline_init``, or at
the first reward when that is ``None`` (so the first reward moves nothing). ``param`` may name another
STDP constant (``tau_minus``, ``a_plus``, ``a_minus``) to adapt instead of ``tau_plus``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

from .._validate import check_non_negative, check_positive
from .stdp import STDP

__all__ = ["MetaParams", "MetaState", "meta_params", "meta_init_state", "meta_step", "MetaSTDP"]

_PARAMS = ("tau_plus", "tau_minus", "a_plus", "a_minus")


class MetaParams(NamedTuple):
    """Meta-plasticity parameters."""

    eta: float = 1e-3  # change of the adapted constant per unit of reward above baseline
    alpha: float = 0.1  # a: weight of the newest reward in the running baseline, in (0, 1]
    lo: float = 1e-3  # lower clamp of the adapted constant (e.g. tau_min, s)
    hi: float = 0.2  # upper clamp of the adapted constant (e.g. tau_max, s)


class MetaState(NamedTuple):
    """The adapted constant, the reward baseline (NaN before the first reward) and the reward count."""

    value: float  # current tau+ (or the adapted constant)
    baseline: float  # running reward baseline R_bar
    count: int  # rewards seen


def meta_params(**kwargs) -> MetaParams:
    """Validated ``MetaParams``; raises ``ValueError`` naming a bad argument."""
    p = MetaParams(**kwargs)
    check_non_negative("eta", p.eta)
    if not isinstance(p.alpha, (int, float)) or not 0.0 < p.alpha <= 1.0:
        raise ValueError(f"alpha must lie in (0, 1], got {p.alpha!r}")
    check_non_negative("lo", p.lo)
    check_positive("hi", p.hi)
    if p.lo >= p.hi:
        raise ValueError(f"lo must be below hi={p.hi!r}, got {p.lo!r}")
    return p


def meta_init_state(value: float, params: MetaParams, baseline_init: float | None = None) -> MetaState:
    """Start at ``value`` (clamped into range) with the given baseline (None: take the first reward)."""
    b = math.nan if baseline_init is None else float(baseline_init)
    return MetaState(min(max(float(value), params.lo), params.hi), b, 0)


def meta_step(reward: float, state: MetaState, params: MetaParams) -> tuple[float, MetaState]:
    """One reward: returns the new constant and the new state."""
    r = float(reward)
    if not math.isfinite(r):
        raise ValueError(f"reward must be a finite number, got {reward!r}")
    base = r if math.isnan(state.baseline) else state.baseline
    value = min(max(state.value + params.eta * (r - base), params.lo), params.hi)
    base = (1.0 - params.alpha) * base + params.alpha * r
    return value, MetaState(value, base, state.count + 1)


class MetaSTDP:
    """Wraps an ``STDP`` rule and adapts its ``tau_plus`` (or ``param``) from rewards.

    Use it in place of the STDP rule in ``Network(rules=[...])``: it forwards ``bind``/``before_step``/
    ``after_step``. Rewards come from ``reward(R)`` calls (e.g. once per trial) and, if ``reward_fn`` is
    given, from ``reward_fn(net, t, spikes)`` every ``every`` steps.
    """

    def __init__(
        self,
        stdp: STDP,
        param: str = "tau_plus",
        baseline_init: float | None = None,
        reward_fn: Callable | None = None,
        every: int = 1,
        **kwargs,
    ):
        if not isinstance(stdp, STDP):
            raise ValueError(f"stdp must be an STDP rule, got {type(stdp).__name__}")
        if param not in _PARAMS:
            raise ValueError(f"param must be one of {_PARAMS}, got {param!r}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.stdp, self.param, self.reward_fn, self.every = stdp, param, reward_fn, every
        self.params = meta_params(**kwargs)
        self.state = meta_init_state(stdp.get_param(param), self.params, baseline_init)
        self.history: list[tuple[float, float]] = []  # (reward, value after it)

    @property
    def value(self) -> float:
        """Current value of the adapted constant."""
        return self.state.value

    def reward(self, r: float) -> float:
        """Feed one reward; updates the wrapped rule's constant and returns it."""
        value, self.state = meta_step(r, self.state, self.params)
        self.stdp.set_param(self.param, value)
        self.history.append((float(r), value))
        return value

    def bind(self, net) -> None:
        """Bind the wrapped STDP rule, then impose the current adapted value."""
        self.stdp.bind(net)
        self.stdp.set_param(self.param, self.state.value)

    def before_step(self, net, t, currents) -> None:
        """Forward to the wrapped rule."""
        self.stdp.before_step(net, t, currents)

    def after_step(self, net, t, spikes) -> None:
        """Forward to the wrapped rule, then pull a reward from ``reward_fn`` when due."""
        self.stdp.after_step(net, t, spikes)
        if self.reward_fn is not None and t % self.every == 0:
            self.reward(self.reward_fn(net, t, spikes))
