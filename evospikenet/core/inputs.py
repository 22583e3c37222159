r"""External inputs: Poisson spike trains and injected currents.

Each input adds into ``currents[target.name]`` (B, n) at every step, before the projections' currents.

``PoissonInput(target, rate_hz, weight, n_sources=1)``: every target neuron receives ``n_sources``
independent Poisson trains of rate ``rate_hz``; per step it gets ``weight * K`` with
``K ~ Binomial(n_sources, rate_hz * dt)`` (Bernoulli for one source). On the integer path with one source
the draw is ``randint(0, 2^31) < round(rate * dt * 2^31)``: integers only, no float op.

``CurrentInput(target, value)``: ``value`` is a tensor (T, B, n) or (T, n) read at step ``t`` (zero after
``T``), a constant (scalar, (n,) or (B, n)), or a callable ``t -> tensor`` broadcastable to (B, n).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from .._validate import check_int_range, check_non_negative
from .populations import Population

__all__ = ["PoissonInput", "CurrentInput"]

_P_BITS = 30  # thresholds up to 2**30 fit int32 (2**31 would wrap to negative and never fire)


def _check_target(target) -> Population:
    if not isinstance(target, Population):
        raise ValueError(f"target must be a Population, got {type(target).__name__}")
    return target


def _check_weight(weight, target: Population):
    if not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight):
        raise ValueError(f"weight must be a finite number, got {weight!r}")
    if target.is_integer and weight != int(weight):
        raise ValueError(f"weight must be an integer for neuron={target.neuron!r}, got {weight!r}")
    return int(weight) if target.is_integer else float(weight)


class PoissonInput:
    """Independent Poisson drive of rate ``rate_hz`` (per source) into every neuron of ``target``."""

    def __init__(self, target: Population, rate_hz: float, weight: float, *, n_sources: int = 1,
                 generator: torch.Generator | None = None):  # fmt: skip
        self.target = _check_target(target)
        self.rate_hz = check_non_negative("rate_hz", rate_hz)
        self.weight = _check_weight(weight, target)
        self.n_sources = check_int_range("n_sources", n_sources, 1, 1 << 30)
        self.generator = generator
        self.dt = None

    def bind(self, dt: float, device) -> None:
        """Remember ``dt``; the spike probability per step must stay <= 1."""
        p = self.rate_hz * dt
        if p > 1.0:
            raise ValueError(f"rate_hz * dt must be <= 1, got rate_hz={self.rate_hz!r} with dt={dt!r}")
        self.dt, self.p = dt, p

    def draw(self, batch: int, device) -> torch.Tensor:
        """Event counts (B, n) of this step: int32 on the integer path, float32 on the float path."""
        shape = (batch, self.target.n)
        g = self.generator
        if self.target.is_integer and self.n_sources == 1:
            threshold = round(self.p * 2**_P_BITS)
            r = torch.randint(0, 2**_P_BITS, shape, device=device, generator=g, dtype=torch.int32)
            return (r < threshold).to(torch.int32)
        if self.n_sources == 1:
            k = (torch.rand(shape, device=device, generator=g) < self.p).to(torch.float32)
        else:
            count = torch.full(shape, float(self.n_sources), device=device)
            k = torch.binomial(count, torch.full_like(count, self.p), generator=g)
        return k.to(self.target.current_dtype)

    def apply(self, t: int, currents: dict[str, torch.Tensor]) -> None:
        """Add this step's Poisson current into ``currents[target.name]``."""
        c = currents[self.target.name]
        k = self.draw(c.shape[0], c.device)
        if self.weight == 1:
            c += k
        else:
            c += k * self.weight


class CurrentInput:
    """Injected current into ``target``: a (T, B, n) tensor, a constant, or a callable ``t -> tensor``."""

    def __init__(self, target: Population, value: torch.Tensor | float | Callable[[int], torch.Tensor]):
        self.target = _check_target(target)
        self.fn = value if callable(value) and not isinstance(value, torch.Tensor) else None
        self.series = None  # (T, B or 1, n)
        self.constant = None  # broadcastable to (B, n)
        if self.fn is None:
            x = torch.as_tensor(value)
            self._check_dtype(x)
            if x.ndim == 3:
                if x.shape[-1] != target.n:
                    raise ValueError(f"value must have shape (T, B, {target.n}), got {tuple(x.shape)}")
                self.series = x
            elif x.ndim in (0, 1, 2):
                if x.ndim >= 1 and x.shape[-1] != target.n:
                    raise ValueError(f"value must have last dimension {target.n}, got shape {tuple(x.shape)}")
                self.constant = x
            else:
                raise ValueError(f"value must be a scalar or have 1 to 3 dims, got shape {tuple(x.shape)}")

    def _check_dtype(self, x: torch.Tensor) -> None:
        if self.target.is_integer and (x.is_floating_point() or x.is_complex()):
            raise ValueError(
                f"value must be an integer tensor for neuron={self.target.neuron!r}, got dtype {x.dtype}"
            )

    @property
    def is_constant(self) -> bool:
        """True when the current does not change over time (a constant value)."""
        return self.constant is not None

    def bind(self, dt: float, device) -> None:
        """Move stored tensors to ``device`` in the target's current dtype."""
        if self.series is not None:
            self.series = self.series.to(device, self.target.current_dtype)
        if self.constant is not None:
            self.constant = self.constant.to(device, self.target.current_dtype)

    def current(self, t: int) -> torch.Tensor | None:
        """The current at step ``t`` (broadcastable to (B, n)); None when nothing is injected."""
        if self.constant is not None:
            return self.constant
        if self.series is not None:
            return self.series[t] if t < self.series.shape[0] else None
        x = torch.as_tensor(self.fn(t))
        self._check_dtype(x)
        return x

    def apply(self, t: int, currents: dict[str, torch.Tensor]) -> None:
        """Add this step's current into ``currents[target.name]``."""
        x = self.current(t)
        if x is not None:
            c = currents[self.target.name]
            c += x.to(c.device, c.dtype)
