r"""The plasticity SNN of the core: Poisson input -> one excitatory LIF layer with winner-take-all.

Architecture (Diehl & Cook 2015, reduced). ``n_in`` input neurons fire Bernoulli spikes with probability
``p = x * max_rate`` per step (``x`` in [0, 1]); they project all-to-all through a CSR projection ``W``
(``n_in -> n_exc``, stored as ``crow/col/values`` so the core's ``stdp_step`` and structural plasticity
work on it unchanged) onto ``n_exc`` LIF neurons:

.. math::

    v_t = \beta v_{t-1} + s^{in}_t W, \qquad
    \text{fire}_j \iff v_{t,j} > \vartheta + \theta_j
        \;\wedge\; j = \arg\max_k (v_{t,k} - \vartheta - \theta_k)

Lateral inhibition is the hard winner-take-all: at most one neuron per sample fires per step, and a spike
resets every membrane of that sample to 0 (the inhibitory population of the original, in its limit).
Homeostasis is the adaptive threshold ``theta``: each spike adds ``theta_plus`` and ``theta`` decays by
``theta_decay`` per presented batch, so a neuron that wins too often is handicapped and every neuron gets
used. Learning is the core's pair-based STDP on ``W``, followed by a per-neuron normalisation of the
incoming weights to ``w_sum`` (the competitive step that turns STDP into prototype learning).

The features of a sample are the spike counts ``c_j / T``; a linear readout is trained on them elsewhere
(``training/``). Pure step function ``plastic_snn_step``; ``PlasticDigitsSNN`` is the thin module shell.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .._validate import check_positive, check_probability
from ..energy import OpCounter
from ..plasticity import STDPParams, stdp_params, stdp_step

__all__ = ["PlasticSNNParams", "PlasticSNNState", "plastic_snn_step", "PlasticDigitsSNN", "CSRProjection"]


class PlasticSNNParams(NamedTuple):
    """Scalars of the excitatory layer."""

    beta: float = 0.9  # membrane decay per step
    threshold: float = 0.5  # base firing threshold (weight units)
    theta_plus: float = 0.05  # threshold increase per spike (homeostasis)


class PlasticSNNState(NamedTuple):
    """Per-sample membrane and per-neuron adaptive threshold."""

    v: torch.Tensor  # (B, n_exc) membrane potentials
    theta: torch.Tensor  # (n_exc,) adaptive threshold offsets (shared across the batch)


def plastic_snn_step(
    s_in: torch.Tensor, w: torch.Tensor, state: PlasticSNNState, params: PlasticSNNParams
) -> tuple[torch.Tensor, PlasticSNNState]:
    """One step: integrate ``s_in @ w``, let at most one neuron per sample fire (WTA), reset, adapt.

    ``s_in`` (B, n_in) spikes, ``w`` (n_in, n_exc) dense weights. Returns the spikes (B, n_exc) and the new
    state; a spike resets the whole sample's membrane (lateral inhibition) and raises its neuron's threshold.
    """
    v = params.beta * state.v + s_in @ w  # (B, n_exc)
    margin = v - (params.threshold + state.theta)  # (B, n_exc)
    best, idx = margin.max(dim=1)  # (B,)
    fired = best > 0  # (B,)
    spikes = torch.zeros_like(v)
    spikes[fired, idx[fired]] = 1.0
    v = torch.where(fired[:, None], torch.zeros_like(v), v)
    theta = state.theta + params.theta_plus * spikes.sum(0)
    return spikes, PlasticSNNState(v, theta)


class _Pop(NamedTuple):
    n: int


class CSRProjection(nn.Module):
    """A dense-initialised projection kept as CSR arrays (buffers), editable by structural plasticity.

    Exposes ``pre.n``, ``post.n``, ``crow``, ``col``, ``values`` and ``replace_structure`` as the core's
    plasticity rules expect; ``dense()`` gives the (n_pre, n_post) matrix for propagation.
    """

    def __init__(self, values: torch.Tensor):
        super().__init__()
        n_pre, n_post = values.shape
        self.pre, self.post = _Pop(n_pre), _Pop(n_post)
        crow = torch.arange(0, n_pre * n_post + 1, n_post, dtype=torch.int32)  # (n_pre + 1,)
        col = torch.arange(n_post, dtype=torch.int32).repeat(n_pre)  # (nnz,)
        self.register_buffer("crow", crow)
        self.register_buffer("col", col)
        self.register_buffer("values", values.reshape(-1).clone())  # (nnz,)

    def replace_structure(self, crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor) -> None:
        """Swap in new CSR arrays (after a structural batch update)."""
        self.crow, self.col, self.values = crow.to(torch.int32), col.to(torch.int32), values

    def dense(self) -> torch.Tensor:
        """(n_pre, n_post) dense weights (missing synapses are 0)."""
        rows = torch.repeat_interleave(
            torch.arange(self.pre.n, device=self.crow.device),
            (self.crow[1:] - self.crow[:-1]).to(torch.int64),
        )
        out = torch.zeros(self.pre.n, self.post.n, dtype=self.values.dtype, device=self.values.device)
        out[rows, self.col.to(torch.int64)] = self.values
        return out

    def normalise(self, w_sum: float) -> None:
        """Scale each post neuron's incoming weights to sum to ``w_sum``."""
        col = self.col.to(torch.int64)
        sums = torch.zeros(self.post.n, dtype=self.values.dtype, device=self.values.device)
        sums.index_add_(0, col, self.values)
        self.values = self.values * (w_sum / sums.clamp_min(1e-12))[col]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # structural plasticity changes nnz: adopt the stored sizes before copying
        for name in ("crow", "col", "values"):
            if prefix + name in state_dict:
                setattr(
                    self, name, torch.empty_like(state_dict[prefix + name], device=getattr(self, name).device)
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class PlasticDigitsSNN(nn.Module):
    """Input -> WTA excitatory layer with STDP, homeostasis and weight normalisation (no readout here).

    ``forward(x, learn)`` takes intensities (B, n_in) in [0, 1] and returns spike counts / T (B, n_exc);
    with ``learn=True`` (and ``plastic=True``) it applies STDP every step and normalises after the batch.
    ``plastic=False`` freezes the weights at their random start (the control of the STDP test).
    """

    def __init__(
        self,
        n_in: int = 64,
        n_exc: int = 100,
        time_steps: int = 20,
        max_rate: float = 0.5,
        w_sum: float = 8.0,
        theta_decay: float = 0.99,
        layer: PlasticSNNParams | None = None,
        stdp: STDPParams | None = None,
        plastic: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        for name, v in (("n_in", n_in), ("n_exc", n_exc), ("time_steps", time_steps)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        check_probability("max_rate", max_rate)
        check_positive("w_sum", w_sum)
        check_probability("theta_decay", theta_decay)
        self.n_in, self.n_exc, self.time_steps = n_in, n_exc, time_steps
        self.max_rate, self.w_sum, self.theta_decay, self.plastic = max_rate, w_sum, theta_decay, plastic
        self.layer = layer or PlasticSNNParams()
        self.stdp = stdp or stdp_params(a_plus=0.1, a_minus=0.02, tau_plus=5e-3, tau_minus=5e-3, w_max=2.0)
        g = torch.Generator().manual_seed(seed)
        w0 = torch.rand(n_in, n_exc, generator=g)  # (n_in, n_exc)
        self.proj = CSRProjection(w0)
        self.proj.normalise(w_sum)
        self.register_buffer("theta", torch.zeros(n_exc))
        self.projections = {"in_exc": self.proj}  # what the core's plasticity rules look up

    def forward(
        self,
        x: torch.Tensor,
        learn: bool = False,
        generator: torch.Generator | None = None,
        counter: OpCounter | None = None,
    ):
        """Spike counts / T (B, n_exc) of intensities ``x`` (B, n_in) in [0, 1].

        ``counter`` receives the SOPs of the input spikes actually drawn (each reaches the synapses of its CSR
        row) and one state update per excitatory neuron and step."""
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"x must have shape (B, {self.n_in}), got {tuple(x.shape)}")
        learn = learn and self.plastic
        b = x.shape[0]
        state = PlasticSNNState(x.new_zeros(b, self.n_exc), self.theta.clone())
        trace = None
        counts = x.new_zeros(b, self.n_exc)
        values = self.proj.values
        w = self.proj.dense()
        p_in = (x * self.max_rate).clamp(0, 1)  # (B, n_in)
        for _ in range(self.time_steps):
            s_in = torch.bernoulli(p_in, generator=generator)  # (B, n_in)
            spikes, state = plastic_snn_step(s_in, w, state, self.layer)
            counts = counts + spikes
            if counter is not None:
                fanout = (self.proj.crow[1:] - self.proj.crow[:-1]).to(s_in.dtype)  # (n_in,) synapses per row
                counter.add_sops("input->exc", (s_in @ fanout).sum())
                counter.add_updates("exc", spikes.numel())
            if learn:
                values, trace = stdp_step(
                    values, self.proj.crow, self.proj.col, s_in, spikes, trace, self.stdp
                )
                self.proj.values = values
                w = self.proj.dense()
        if learn:
            self.proj.normalise(self.w_sum)
        if self.training or learn:
            self.theta.copy_(state.theta * self.theta_decay)
        return counts / self.time_steps
