r"""EntangledSynchronyLayer: Kuramoto phase coupling that controls the synchrony of a group of LIF neurons.

"Quantum-inspired" in the design's sense: the group shares one collective phase variable, so the neurons
behave as one coherent ("entangled") oscillator when coupled and as independent ones when not. Each
neuron ``i`` of the group carries a phase ``\theta_i`` with natural frequency ``\omega_i`` (drawn once,
``\omega_i \sim \mathcal N(\omega_0, \sigma_\omega^2)``) and the phases obey the Kuramoto model

.. math::

    \frac{d\theta_i}{dt} = \omega_i + \frac{K}{N} \sum_{j=1}^{N} \sin(\theta_j - \theta_i)
                         = \omega_i + K R \sin(\psi - \theta_i),
    \qquad R e^{i\psi} = \frac1N \sum_j e^{i\theta_j}

integrated by forward Euler, ``\theta_i \leftarrow (\theta_i + \Delta t \, \dot\theta_i) \bmod 2\pi``
(the mean-field form makes a step O(N)). The phase drives the neuron through an added input current

.. math::

    I_i \mathrel{+}= A \, \frac{1 + \cos\theta_i}{2}

so each neuron tends to fire near its phase's peak. With ``K = 0`` the neurons drift apart at their own
frequencies and their spikes decorrelate; above the locking threshold (``K_c = 2 / (\pi g(0)) =
\sqrt{8/\pi}\,\sigma_\omega`` for Gaussian ``\omega``) the phases lock (``R \to 1``) and the neurons fire
together. Synchrony is measured on the emitted spikes by ``spike_synchrony`` (mean pairwise Pearson
correlation of binned spike counts).

``EntangledSynchronyLayer`` is a standalone ``nn.Module`` (phases + float LIF, ``forward`` over (B, N) or
(T, B, N) external currents); ``SynchronyRule`` couples a population of a ``Network`` in ``before_step``
(the drive is computed in float and rounded to int32 for integer populations).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from .._validate import check_non_negative, check_positive
from ..functional import LIFParams, lif_params, lif_step
from ._common import get_population

__all__ = [
    "SynchronyParams",
    "synchrony_params",
    "draw_frequencies",
    "kuramoto_step",
    "phase_drive",
    "order_parameter",
    "spike_synchrony",
    "EntangledSynchronyLayer",
    "SynchronyRule",
]

TWO_PI = 2.0 * math.pi


class SynchronyParams(NamedTuple):
    """Kuramoto coupling and drive."""

    k: float = 0.0  # K: coupling strength (rad/s)
    omega_mean: float = TWO_PI * 10.0  # omega_0: mean natural frequency (rad/s)
    omega_std: float = TWO_PI * 2.0  # sigma_omega: spread of natural frequencies (rad/s)
    amp: float = 1.0  # A: amplitude of the phase drive (current units)
    dt: float = 1e-3  # integration step (s)


def synchrony_params(**kwargs) -> SynchronyParams:
    """Validated ``SynchronyParams``; raises ``ValueError`` naming a bad argument."""
    p = SynchronyParams(**kwargs)
    check_non_negative("k", p.k)
    check_non_negative("omega_std", p.omega_std)
    check_non_negative("amp", p.amp)
    check_positive("dt", p.dt)
    if not math.isfinite(p.omega_mean):
        raise ValueError(f"omega_mean must be finite, got {p.omega_mean!r}")
    return p


def draw_frequencies(n: int, params: SynchronyParams, generator: torch.Generator | None = None, device=None):
    """Natural frequencies ``omega_i`` (n,) in rad/s."""
    z = torch.randn(n, generator=generator, device=device)
    return params.omega_mean + params.omega_std * z


def order_parameter(theta: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Kuramoto order parameter ``R`` (B,) and mean phase ``psi`` (B,) of phases (B, N)."""
    c, s = torch.cos(theta).mean(-1), torch.sin(theta).mean(-1)
    return torch.sqrt(c * c + s * s), torch.atan2(s, c)


def kuramoto_step(theta: torch.Tensor, omega: torch.Tensor, params: SynchronyParams) -> torch.Tensor:
    """One Euler step of the Kuramoto model, phases (B, N), frequencies (N,); returns phases mod 2 pi."""
    cos, sin = torch.cos(theta), torch.sin(theta)
    c, s = cos.mean(-1, keepdim=True), sin.mean(-1, keepdim=True)  # (B, 1): R cos psi, R sin psi
    coupling = params.k * (s * cos - c * sin)  # K R sin(psi - theta_i) = (K/N) sum_j sin(theta_j - theta_i)
    return torch.remainder(theta + params.dt * (omega + coupling), TWO_PI)


def phase_drive(theta: torch.Tensor, params: SynchronyParams) -> torch.Tensor:
    """Input current ``A (1 + cos theta) / 2`` (B, N)."""
    return params.amp * 0.5 * (1.0 + torch.cos(theta))


def spike_synchrony(spikes: torch.Tensor, bin_steps: int = 5) -> float:
    """Mean pairwise Pearson correlation of binned spike counts; spikes (T, N), or (T, B, N) averaged over B.

    Neurons that never fire are left out; 0.0 when fewer than two neurons fire.
    """
    if not isinstance(bin_steps, int) or bin_steps < 1:
        raise ValueError(f"bin_steps must be a positive integer, got {bin_steps!r}")
    x = spikes.to(torch.float64)
    if x.ndim == 3:  # one synchrony per sample, averaged
        return sum(spike_synchrony(x[:, b], bin_steps) for b in range(x.shape[1])) / x.shape[1]
    if x.ndim != 2:
        raise ValueError(f"spikes must have shape (T, N) or (T, B, N), got {tuple(spikes.shape)}")
    t = (x.shape[0] // bin_steps) * bin_steps
    counts = x[:t].reshape(-1, bin_steps, x.shape[1]).sum(1)  # (bins, N)
    counts = counts[:, counts.std(0) > 0]
    n = counts.shape[1]
    if n < 2 or counts.shape[0] < 2:
        return 0.0
    corr = torch.corrcoef(counts.T)  # (n, n)
    return float((corr.sum() - corr.diagonal().sum()) / (n * (n - 1)))


class EntangledSynchronyLayer(nn.Module):
    """``n`` float LIF neurons whose input is shaped by Kuramoto-coupled phases (see the module docstring).

    ``forward(x)`` takes an external current (B, n) for one step or (T, B, n) for a sequence and returns
    the spikes of the same shape; the phases and membranes persist across calls until ``reset_state``.
    """

    def __init__(
        self,
        n: int,
        k: float = 0.0,
        omega_mean: float = TWO_PI * 10.0,
        omega_std: float = TWO_PI * 2.0,
        amp: float = 1.0,
        lif: LIFParams | dict | None = None,
        seed: int | None = None,
    ):
        super().__init__()
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        lif = lif_params(**(lif or {})) if not isinstance(lif, LIFParams) else lif
        self.params = synchrony_params(k=k, omega_mean=omega_mean, omega_std=omega_std, amp=amp, dt=lif.dt)
        self.lif, self.n = lif, n
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        self.register_buffer("omega", draw_frequencies(n, self.params, g))  # (n,) rad/s
        self.register_buffer("theta0", torch.rand(n, generator=g) * TWO_PI)  # (n,) initial phases
        self.theta: torch.Tensor | None = None  # (B, n)
        self.lif_state = None

    def reset_state(self) -> None:
        """Back to the initial phases and resting membranes."""
        self.theta, self.lif_state = None, None

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One step: external current (B, n) -> spikes (B, n)."""
        if x.ndim != 2 or x.shape[1] != self.n:
            raise ValueError(f"x must have shape (B, {self.n}), got {tuple(x.shape)}")
        if self.theta is None or self.theta.shape[0] != x.shape[0]:
            self.theta = self.theta0.to(x.device).expand(x.shape[0], -1).clone()
            self.lif_state = None
        self.theta = kuramoto_step(self.theta, self.omega, self.params)
        s, self.lif_state = lif_step(
            x + phase_drive(self.theta, self.params).to(x.dtype), self.lif_state, self.lif
        )
        return s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Spikes for a current (B, n) or a sequence (T, B, n)."""
        if x.ndim == 3:
            return torch.stack([self.step(xt) for xt in x.unbind(0)])
        return self.step(x)


class SynchronyRule:
    """Kuramoto phase drive for one population of a ``Network``: adds ``A (1 + cos theta) / 2`` to its
    current in ``before_step``. ``kwargs`` are ``synchrony_params``'s without ``dt`` (the network's);
    ``record_order`` keeps the order parameter ``R`` of sample 0 per step in ``order``."""

    def __init__(self, population: str, seed: int | None = None, record_order: bool = False, **kwargs):
        if "dt" in kwargs:
            raise ValueError(
                f"dt must not be given to the SynchronyRule (it is the network's), got {kwargs['dt']!r}"
            )
        synchrony_params(**kwargs)
        self.population, self.seed, self.kwargs = population, seed, kwargs
        self.theta: torch.Tensor | None = None  # (B, n)
        self.record_order = record_order  # keep R of sample 0 at every step (one host sync per step)
        self.order: list[float] = []  # R of sample 0 per step when record_order

    def bind(self, net) -> None:
        """Draw frequencies and initial phases for the population."""
        pop = get_population(net, self.population)
        self.params = synchrony_params(dt=net.dt, **self.kwargs)
        g = torch.Generator().manual_seed(self.seed) if self.seed is not None else None
        self.omega = draw_frequencies(pop.n, self.params, g)
        self.theta0 = torch.rand(pop.n, generator=g) * TWO_PI
        self.theta, self.order = None, []

    def before_step(self, net, t, currents) -> None:
        """Advance the phases and add the drive to the population's current (in place)."""
        cur = currents[self.population]
        if self.theta is None or self.theta.shape[0] != cur.shape[0]:
            self.omega = self.omega.to(cur.device)
            self.theta = self.theta0.to(cur.device).expand(cur.shape[0], -1).clone()
        self.theta = kuramoto_step(self.theta, self.omega, self.params)
        drive = phase_drive(self.theta, self.params)
        cur += drive if cur.is_floating_point() else drive.round().to(cur.dtype)
        if self.record_order:
            self.order.append(float(order_parameter(self.theta[:1])[0][0]))

    def after_step(self, net, t, spikes) -> None:
        """Nothing to do after the neuron step."""
