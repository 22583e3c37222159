"""Surrogate gradients for the Heaviside spike function, as named objects.

The forward pass is always the exact step ``H(x) = 1[x >= 0]`` (``x = v - v_th``); only the backward pass
uses a smooth stand-in ``sigma'(x)``:

* ``FastSigmoid(slope)``: ``sigma'(x) = 1 / (1 + slope |x|)^2`` (Zenke & Ganguli 2018, snnTorch's default).
* ``Sigmoid(slope)``: ``sigma'(x) = slope * s(slope x) (1 - s(slope x))`` with ``s`` the logistic function.
* ``ATan(alpha)``: ``sigma'(x) = alpha / 2 / (1 + (pi/2 alpha x)^2)`` (Fang et al. 2021, SpikingJelly's default).
* ``Triangle(width)``: ``sigma'(x) = max(0, 1 - |x| / width) / width``.
* ``StraightThrough()``: ``sigma'(x) = 1``.

Each surrogate is a frozen dataclass with ``__call__(x)`` (spike with surrogate backward) and ``grad(x)``
(the surrogate derivative, used by the fused multi-step kernels). ``get_surrogate(name)`` looks one up in
the registry.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = [
    "Surrogate",
    "FastSigmoid",
    "Sigmoid",
    "ATan",
    "Triangle",
    "StraightThrough",
    "SURROGATES",
    "get_surrogate",
    "heaviside",
]


def heaviside(x: torch.Tensor) -> torch.Tensor:
    """Exact spike function ``1[x >= 0]`` in the dtype of ``x``."""
    return (x >= 0).to(x.dtype)


class _SpikeFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, surrogate):  # noqa: D102
        ctx.save_for_backward(x)
        ctx.surrogate = surrogate
        return heaviside(x)

    @staticmethod
    def backward(ctx, grad_out):  # noqa: D102
        (x,) = ctx.saved_tensors
        return grad_out * ctx.surrogate.grad(x), None


class Surrogate:
    """Base class: ``self(x)`` spikes with this surrogate's backward; subclasses define ``grad``."""

    def grad(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return _SpikeFn.apply(x, self)


@dataclass(frozen=True)
class FastSigmoid(Surrogate):
    """``sigma'(x) = 1 / (1 + slope |x|)^2``."""

    slope: float = 25.0  # steepness; larger is closer to the true step

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return 1.0 / (1.0 + self.slope * x.abs()) ** 2


@dataclass(frozen=True)
class Sigmoid(Surrogate):
    """``sigma'(x) = slope * s(slope x) * (1 - s(slope x))``."""

    slope: float = 5.0  # steepness of the logistic function

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.sigmoid(self.slope * x)
        return self.slope * s * (1.0 - s)


@dataclass(frozen=True)
class ATan(Surrogate):
    """``sigma'(x) = alpha / 2 / (1 + (pi/2 * alpha * x)^2)``."""

    alpha: float = 2.0  # steepness; the surrogate's peak is alpha / 2

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return (self.alpha / 2.0) / (1.0 + (math.pi / 2.0 * self.alpha * x) ** 2)


@dataclass(frozen=True)
class Triangle(Surrogate):
    """``sigma'(x) = max(0, 1 - |x| / width) / width``."""

    width: float = 1.0  # half-width of the triangle

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp(1.0 - x.abs() / self.width, min=0.0) / self.width


@dataclass(frozen=True)
class StraightThrough(Surrogate):
    """``sigma'(x) = 1`` (the straight-through estimator)."""

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ones_like(x)


SURROGATES: dict[str, type[Surrogate]] = {
    "fast_sigmoid": FastSigmoid,
    "sigmoid": Sigmoid,
    "atan": ATan,
    "triangle": Triangle,
    "straight_through": StraightThrough,
}


def get_surrogate(name: str | Surrogate, **kwargs) -> Surrogate:
    """Return a surrogate instance from its registry name (``"atan"``) or pass an instance through."""
    if isinstance(name, Surrogate):
        return name
    if name not in SURROGATES:
        raise ValueError(f"surrogate must be one of {sorted(SURROGATES)}, got {name!r}")
    return SURROGATES[name](**kwargs)
