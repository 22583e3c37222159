r"""Pair-based STDP with traces, on the stored entries of a CSR projection (never densified).

For a synapse ``i -> j`` and a pair of spikes with lag ``dt = t_post - t_pre`` the weight changes by

.. math::

    \Delta w = \begin{cases} A_+ \, e^{-dt/\tau_+} & dt > 0 \\ -A_- \, e^{-|dt|/\tau_-} & dt < 0 \\
                             0 & dt = 0 \end{cases}

and ``w`` is then clipped to ``[w_min, w_max]``. Traces make this a local, per-step update: with
``a_+ = e^{-\Delta t/\tau_+}``, ``a_- = e^{-\Delta t/\tau_-}`` (``\Delta t`` the step) each step does

.. math::

    x^{pre}_i &\leftarrow a_+ x^{pre}_i, \qquad x^{post}_j \leftarrow a_- x^{post}_j \\
    \Delta w_{ij} &= A_+ x^{pre}_i s^{post}_j - A_- s^{pre}_i x^{post}_j \\
    x^{pre}_i &\leftarrow x^{pre}_i + s^{pre}_i, \qquad x^{post}_j \leftarrow x^{post}_j + s^{post}_j

(``mode="nearest"`` sets the trace to 1 on a spike instead of adding 1). Because a spike enters its trace
after the weight update, a pair ``k`` steps apart sees exactly ``e^{-k \Delta t / \tau}`` and a simultaneous
pair gives 0. With ``mode="all_to_all"`` every pre/post pair contributes once. The batch axis is averaged:
``\Delta w`` is the mean over the ``B`` samples of the per-sample change.

The integer path (int8 projections) is in ``int_stdp``; the rule ``STDP`` picks it from the dtype.
"""

from __future__ import annotations

import inspect
import math
from typing import NamedTuple

import torch

from ._common import (
    CSRIndex,
    check_spikes,
    check_stdp_constants,
    csr_index,
    get_projection,
    pair_terms,
)
from .int_stdp import IntSTDPParams, int_stdp_init_state, int_stdp_params, int_stdp_step
from .structural import remap_entries

__all__ = [
    "STDPParams",
    "STDPState",
    "stdp_params",
    "stdp_init_state",
    "stdp_step",
    "STDP",
]


class STDPParams(NamedTuple):
    """Float STDP parameters (scalars)."""

    a_plus: float = 0.01  # A+: potentiation amplitude (weight units)
    a_minus: float = 0.012  # A-: depression amplitude (weight units)
    tau_plus: float = 20e-3  # tau+: potentiation window (s)
    tau_minus: float = 20e-3  # tau-: depression window (s)
    dt: float = 1e-3  # simulation step (s)
    w_min: float = 0.0  # lower weight bound
    w_max: float = 1.0  # upper weight bound
    mode: str = "all_to_all"  # "all_to_all" (traces add) or "nearest" (traces reset to 1)

    @property
    def decay_plus(self) -> float:
        """Per-step decay of the presynaptic trace ``exp(-dt / tau+)``."""
        return math.exp(-self.dt / self.tau_plus)

    @property
    def decay_minus(self) -> float:
        """Per-step decay of the postsynaptic trace ``exp(-dt / tau-)``."""
        return math.exp(-self.dt / self.tau_minus)


class STDPState(NamedTuple):
    """Float STDP traces."""

    x_pre: torch.Tensor  # (B, n_pre) presynaptic traces
    x_post: torch.Tensor  # (B, n_post) postsynaptic traces


def stdp_params(**kwargs) -> STDPParams:
    """Validated ``STDPParams``; raises ``ValueError`` naming a bad argument."""
    p = STDPParams(**kwargs)
    check_stdp_constants(p.a_plus, p.a_minus, p.tau_plus, p.tau_minus, p.dt, p.mode)
    if not (math.isfinite(p.w_min) and math.isfinite(p.w_max)) or p.w_min > p.w_max:
        raise ValueError(f"w_min must be finite and <= w_max={p.w_max!r}, got {p.w_min!r}")
    return p


def stdp_init_state(batch: int, n_pre: int, n_post: int, device=None, dtype=torch.float32) -> STDPState:
    """Zero traces for ``batch`` samples."""
    z = torch.zeros
    return STDPState(
        z(batch, n_pre, device=device, dtype=dtype), z(batch, n_post, device=device, dtype=dtype)
    )


def _add_spikes(x: torch.Tensor, s: torch.Tensor, mode: str) -> torch.Tensor:
    if mode == "nearest":
        return torch.where(s != 0, torch.ones_like(x), x)
    return x + s


def stdp_step(
    values: torch.Tensor,
    crow: torch.Tensor,
    col: torch.Tensor,
    pre_spikes: torch.Tensor,
    post_spikes: torch.Tensor,
    state: STDPState | None,
    params: STDPParams,
    index: CSRIndex | None = None,
    inplace: bool = False,
) -> tuple[torch.Tensor, STDPState]:
    """One float STDP step on the CSR entries ``values`` (nnz,); spikes (B, n_pre) and (B, n_post).

    Returns the new values (entries that change are clipped to ``[w_min, w_max]``) and the new traces.
    ``index`` is the optional cached ``csr_index(crow, col, n_post)`` (built here when not given);
    ``inplace=True`` writes ``values`` itself instead of a copy, so a step costs O(synaptic events).
    """
    if not values.is_floating_point():
        raise ValueError(
            f"values must be floating point for stdp_step (use int_stdp_step), got {values.dtype}"
        )
    n_pre, p = crow.numel() - 1, params
    pre = check_spikes("pre_spikes", pre_spikes, n_pre)
    if state is None:
        state = stdp_init_state(pre.shape[0], n_pre, post_spikes.shape[-1], values.device, values.dtype)
    post = check_spikes("post_spikes", post_spikes, state.x_post.shape[1])
    if post.shape[0] != pre.shape[0] or state.x_pre.shape != pre.shape:
        raise ValueError(
            f"post_spikes batch must match pre_spikes {tuple(pre.shape)}, got {tuple(post.shape)}"
        )
    index = csr_index(crow, col, post.shape[1]) if index is None else index
    x_pre = state.x_pre * p.decay_plus  # (B, n_pre)
    x_post = state.x_post * p.decay_minus  # (B, n_post)
    batch = pre.shape[0]
    pot_idx, pot, depr_idx, depr = pair_terms(crow, col, index, pre, post, x_pre, x_post)
    new = values if inplace else values.clone()
    touched = []
    if pot_idx is not None:
        new.index_add_(0, pot_idx, pot * (p.a_plus / batch))
        touched.append(pot_idx)
    if depr_idx is not None:
        new.index_add_(0, depr_idx, depr * (-p.a_minus / batch))
        touched.append(depr_idx)
    if touched:  # clip only what changed: the cost stays the number of synaptic events
        t = torch.cat(touched)
        new[t] = new[t].clamp(p.w_min, p.w_max)
    pre_f, post_f = pre.to(x_pre.dtype), post.to(x_post.dtype)
    return new, STDPState(_add_spikes(x_pre, pre_f, p.mode), _add_spikes(x_post, post_f, p.mode))


# ---------------------------------------------------------------------------------------------- rule


class STDP:
    """STDP as a network rule on one projection; the integer path is chosen when its values are int8.

    ``kwargs`` are those of ``stdp_params`` (float) or ``int_stdp_params`` (int8), without ``dt``, which
    comes from the network. The update runs in ``after_step`` and writes ``proj.values`` in place. When
    the projection's structure is replaced (structural plasticity) the integer shadow is carried over
    for surviving synapses and re-initialised for new ones.
    """

    def __init__(self, projection: str, **kwargs):
        if "dt" in kwargs:
            raise ValueError(
                f"dt must not be given to the STDP rule (it is the network's), got {kwargs['dt']!r}"
            )
        self.projection = projection
        self.kwargs = kwargs
        self.params: STDPParams | IntSTDPParams | None = None
        self.state = None
        self._weights = self._index = self._crow = self._col = None
        stdp_params(**{k: v for k, v in kwargs.items() if k not in ("w_min", "w_max")})  # validate early

    @property
    def integer(self) -> bool:
        """Whether the bound projection is on the integer path."""
        return isinstance(self.params, IntSTDPParams)

    def bind(self, net) -> None:
        """Resolve the projection and build the parameters with the network's ``dt``."""
        proj = get_projection(net, self.projection)
        self._dt = net.dt
        if proj.values.dtype == torch.int8:
            self.params = int_stdp_params(dt=net.dt, **self.kwargs)
        else:
            self.params = stdp_params(dt=net.dt, **self.kwargs)
        self.state = None
        self._weights = self._index = self._crow = self._col = None

    def set_param(self, name: str, value: float) -> None:
        """Change one STDP constant (e.g. ``tau_plus``, for MetaSTDP) and rebuild the params; traces stay."""
        kwargs = {**self.kwargs, name: value}
        if self.params is None:
            stdp_params(**{k: v for k, v in kwargs.items() if k not in ("w_min", "w_max")})
        elif self.integer:
            self.params = int_stdp_params(dt=self._dt, **kwargs)
        else:
            self.params = stdp_params(dt=self._dt, **kwargs)
        self.kwargs = kwargs

    def get_param(self, name: str) -> float:
        """Current value of an STDP constant as given in float units (default if never set)."""
        if name in self.kwargs:
            return self.kwargs[name]
        if self.integer:
            return inspect.signature(int_stdp_params).parameters[name].default
        return getattr(STDPParams(), name)

    def before_step(self, net, t, currents) -> None:
        """Nothing to do before the neuron step."""

    def _sync_structure(self, proj) -> None:
        """Refresh the cached CSR index (and carry the integer shadow over) when the CSR was replaced."""
        if self._weights is not None and self._weights is proj.weights:
            return
        crow, col = proj.crow, proj.col
        if self.integer and self.state is not None and self._crow is not None:
            fresh = int_stdp_init_state(1, 1, 1, proj.values).shadow
            shadow = remap_entries(self._crow, self._col, self.state.shadow, crow, col, fresh)
            self.state = self.state._replace(shadow=shadow)
        self._weights, self._crow, self._col = proj.weights, crow, col
        self._index = csr_index(crow, col, proj.post.n)

    def after_step(self, net, t, spikes) -> None:
        """Update the projection's weights from this step's pre and post spikes."""
        proj = get_projection(net, self.projection)
        self._sync_structure(proj)
        pre, post = spikes[proj.pre.name], spikes[proj.post.name]
        step = int_stdp_step if self.integer else stdp_step
        if self.integer:
            pre, post = pre.to(torch.int8), post.to(torch.int8)
        values = proj.values  # a view of the CSR's own values: written in place, never densified
        _, self.state = step(
            values, self._crow, self._col, pre, post, self.state, self.params, self._index, True
        )
