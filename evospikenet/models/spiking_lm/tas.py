r"""TAS-Encoding: time-adaptive spike encoding of token embeddings.

For token ``i`` with embedding ``e_i`` (D channels) the design's rate law, made per channel with a learned
offset (taken literally, ``sigmoid(alpha |e_i| / tau)`` never falls below one half):

.. math::

    p_{i,d} = \sigma\!\left(\alpha \frac{|e_{i,d}|}{\tau_{window,i}} - \beta\right), \qquad
    \tau_{window,i} = \tau_0\, b^{\tanh(w_\tau^\top e_i / \sqrt{D} + b_\tau)}, \qquad
    \alpha = \mathrm{softplus}(a)

so ``alpha > 0`` and the density rises with ``|e_{i,d}|``; a token with a short window ``tau_window,i`` (a
salient token, as the model learns it) fires more densely. The window stays within ``[tau_0 / b, tau_0 b]``
(``b`` = ``tas_tau_bound``, 4 by default; ``tau_0`` = ``tas_tau_init``). The first design,
``tau = softplus(w^T e + b_tau) + 1e-3`` (``tas_tau_bound = 0``, what configs saved before the bound load
with), let Adam drive a token's window towards 1e-3 within a few dozen steps: ``dp/dtau`` grows as
``1/tau^2``, and the gradient norm reached 1e10-1e12, which the clipping turned into steps that undid
training (docs/spiking_lm.md). Over ``T`` steps:

* stochastic (training): ``b_{t,i,d} ~ Bernoulli(p_{i,d})`` with the straight-through gradient
  ``b + p - sg(p)``;
* deterministic (evaluation, generation): a fixed sigma-delta pattern
  ``b_{t} = \lfloor (t+1) p + 1/2 \rfloor - \lfloor t p + 1/2 \rfloor`` that emits
  ``round(T p)`` spikes, the same every call (straight-through gradient as well).

Float work (``tas_macs``, counted as MACs in the energy figures, with no LIF state update: the encoder is
float arithmetic, not a neuron): per token the embedding's gain and position add (``D``), the window
predictor ``w_tau^T e`` (``D``), per channel the scaling by ``alpha / tau`` and the offset (2), the sigmoid
(an exponential and a reciprocal, 2), and per channel and step the sigma-delta pattern or the Bernoulli draw
(1): ``D (2 + 4 + T)`` per token.

Sign: TAS spikes are *signed* events ``s_{t,i,d} = sign(e_{i,d}) b_{t,i,d} \in \{-1, 0, 1\}``, one neuron
per channel whose spike is excitatory or inhibitory; a synapse receiving it adds or subtracts its weight
(still accumulate-only). Spike rates count ``|s|``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["TASParams", "tas_probability", "tas_encode", "tas_macs", "TASEncoder"]

_EPS = 1e-3


class TASParams(NamedTuple):
    """Learned TAS quantities, as tensors."""

    alpha: torch.Tensor  # () positive gain
    beta: torch.Tensor  # () or (D,) offset
    tau_window: torch.Tensor  # (B, L, 1) positive window per token


def tas_macs(n_tokens: int, d_model: int, time_steps: int) -> int:
    """Float MACs of encoding ``n_tokens`` tokens of width ``d_model`` over ``time_steps`` (module docstring)."""
    return n_tokens * d_model * (6 + time_steps)


def tas_probability(e: torch.Tensor, params: TASParams) -> torch.Tensor:
    """Firing probability ``p = sigmoid(alpha |e| / tau_window - beta)``; ``e`` (B, L, D) -> (B, L, D)."""
    return torch.sigmoid(params.alpha * e.abs() / params.tau_window - params.beta)


def _deterministic_pattern(p: torch.Tensor, time_steps: int) -> torch.Tensor:
    t = torch.arange(time_steps + 1, device=p.device, dtype=p.dtype).view(-1, *([1] * p.ndim))
    cum = torch.floor(t * p.detach() + 0.5)  # (T+1, ...)
    return cum[1:] - cum[:-1]  # (T, ...) in {0, 1}


def tas_encode(
    e: torch.Tensor,
    params: TASParams,
    time_steps: int,
    stochastic: bool,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode ``e`` (B, L, D) into signed spikes (T, B, L, D) in {-1, 0, 1}; also returns ``p`` (B, L, D)."""
    p = tas_probability(e, params)
    if stochastic:
        u = torch.rand((time_steps, *p.shape), device=p.device, dtype=p.dtype, generator=generator)
        b = (u < p.detach()).to(p.dtype)  # (T, B, L, D)
    else:
        b = _deterministic_pattern(p, time_steps)
    b = b + (p - p.detach())  # straight-through: d b / d p = 1, forward exactly b
    return torch.sign(e).detach() * b, p


class TASEncoder(nn.Module):
    """Thin shell holding ``alpha``, ``beta`` and the ``tau_window`` predictor."""

    def __init__(
        self, d_model: int, alpha_init: float, beta_init: float, tau_init: float, tau_bound: float = 0.0
    ) -> None:
        super().__init__()
        if tau_bound != 0.0 and not tau_bound > 1.0:
            raise ValueError(f"tau_bound must be 0 (unbounded, the first design) or > 1, got {tau_bound!r}")
        # softplus^{-1}(x) = log(expm1(x))
        self.raw_alpha = nn.Parameter(torch.tensor(math.log(math.expm1(float(alpha_init)))))
        self.beta = nn.Parameter(torch.full((d_model,), float(beta_init)))
        self.tau_proj = nn.Linear(d_model, 1)
        self.tau_init, self.tau_bound = float(tau_init), float(tau_bound)
        self._in_scale = d_model**-0.5
        nn.init.zeros_(self.tau_proj.weight)
        if self.tau_bound:  # tanh(0) = 0: tau starts at tau_init
            nn.init.zeros_(self.tau_proj.bias)
        else:
            nn.init.constant_(self.tau_proj.bias, math.log(math.expm1(float(tau_init) - _EPS)))

    def params(self, e: torch.Tensor) -> TASParams:
        """Learned quantities for embeddings ``e`` (B, L, D)."""
        if self.tau_bound:  # tau_0 b^tanh(z) in [tau_0 / b, tau_0 b]: (B, L, 1)
            z = torch.tanh(self.tau_proj(e * self._in_scale))
            tau = self.tau_init * torch.exp(math.log(self.tau_bound) * z)
        else:  # the first design: unbounded below but for 1e-3
            tau = F.softplus(self.tau_proj(e)) + _EPS  # (B, L, 1)
        return TASParams(F.softplus(self.raw_alpha), self.beta, tau)

    def forward(
        self, e: torch.Tensor, time_steps: int, stochastic: bool, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return tas_encode(e, self.params(e), time_steps, stochastic, generator)
