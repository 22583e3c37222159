r"""Populations of neurons and the projections (CSR synapses) between them.

A ``Population`` wraps one of the step functions of ``evospikenet.functional`` (``lif_step``,
``int_lif_step``, ``loihi_lif_step``) with an explicit state of shape (B, n). Its threshold lives in the
per-neuron tensor ``pop.v_th`` (float32 for ``"lif"``, int16 for ``"int"``, int32 mantissa for ``"loihi"``)
and is passed into every step as ``params._replace(v_th=pop.v_th)`` (``vth`` for Loihi), so a plasticity
rule can change thresholds neuron by neuron.

A ``Projection`` carries spikes of ``pre`` to ``post`` through a CSR matrix after ``delay`` steps
(spikes emitted at step ``t`` arrive as current at step ``t + delay``; ``delay >= 1``). With a delta synapse
the arriving current is ``I_t = W^T s_{t-d}``; with an exponential synapse it is filtered,

.. math::

    I_t = \alpha I_{t-1} + W^T s_{t-d}, \qquad \alpha = e^{-dt/\tau_{syn}} \quad\text{(float)},
    \qquad I_t = I_{t-1} - (I_{t-1} \gg k) + W^T s_{t-d} \quad\text{(integer, k = syn\_shift, int32)}.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .._validate import check_int_range, check_positive
from ..functional import (
    IntLIFParams,
    LIFParams,
    LoihiLIFParams,
    int_lif_init_state,
    int_lif_params,
    int_lif_step,
    lif_init_state,
    lif_params,
    lif_step,
    loihi_lif_init_state,
    loihi_lif_params,
    loihi_lif_step,
)
from .csr import csr_parts, make_csr, validate_structure

__all__ = ["Population", "Projection", "NEURON_KINDS"]

NEURON_KINDS = ("lif", "int", "loihi")
_PARAM_TYPES = {"lif": (LIFParams, lif_params), "int": (IntLIFParams, int_lif_params),
                "loihi": (LoihiLIFParams, loihi_lif_params)}  # fmt: skip


def _check_name(name) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    return name


class Population:
    """``n`` neurons of one kind: ``"lif"`` (float), ``"int"`` (int16) or ``"loihi"`` (Loihi 2 fixed point).

    ``params`` is the kind's NamedTuple (``LIFParams``, ``IntLIFParams``, ``LoihiLIFParams``) or a dict of
    its fields; ``v_th`` (optional) a per-neuron threshold tensor (n,) overriding ``params.v_th``; ``v0``
    an optional initial membrane (scalar or (n,)). On the float path the network's ``dt`` replaces
    ``params.dt``. Currents into the population are float32 (``"lif"``) or int32 (``"int"``, ``"loihi"``).
    """

    def __init__(self, name: str, n: int, neuron: str = "lif", params: Any = None, *, v_th=None, v0=None):
        self.name = _check_name(name)
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise ValueError(f"n must be a positive integer (no empty population), got {n!r}")
        if neuron not in NEURON_KINDS:
            raise ValueError(f"neuron must be one of {NEURON_KINDS}, got {neuron!r}")
        self.n, self.neuron = n, neuron
        cls, build = _PARAM_TYPES[neuron]
        if params is None:
            params = build()
        elif isinstance(params, dict):
            params = build(**params)
        elif not isinstance(params, cls):
            raise ValueError(
                f"params must be a {cls.__name__} or dict for neuron={neuron!r}, got {type(params).__name__}"
            )
        self.params = params
        th_field = "vth" if neuron == "loihi" else "v_th"
        th_dtype = {"lif": torch.float32, "int": torch.int16, "loihi": torch.int32}[neuron]
        if v_th is None:
            v_th = torch.full((n,), getattr(params, th_field), dtype=th_dtype)
        self.v_th = v_th  # (n,) per-neuron threshold, checked (and copied) by the setter
        self.v0 = None if v0 is None else self._check_per_neuron("v0", v0, self.state_dtype)
        self.state = None  # NamedTuple of (B, n) tensors, set by reset()
        self.spikes = None  # (B, n) spikes of the last step

    # ------------------------------------------------------------------ properties
    @property
    def is_integer(self) -> bool:
        """True for the integer paths (``"int"``, ``"loihi"``)."""
        return self.neuron != "lif"

    @property
    def current_dtype(self) -> torch.dtype:
        """dtype of the input current: float32 or int32."""
        return torch.int32 if self.is_integer else torch.float32

    @property
    def weight_dtype(self) -> torch.dtype:
        """dtype of CSR values feeding this population: float32 or int8."""
        return torch.int8 if self.is_integer else torch.float32

    @property
    def state_dtype(self) -> torch.dtype:
        """dtype of the membrane ``v``."""
        return {"lif": torch.float32, "int": torch.int16, "loihi": torch.int32}[self.neuron]

    @property
    def v(self) -> torch.Tensor:
        """(B, n) membrane potential."""
        return self.state.v

    @property
    def v_th(self) -> torch.Tensor:
        """(n,) per-neuron threshold: float32, int16 ("int") or int32 mantissa ("loihi"); edit or assign."""
        return self._v_th

    @v_th.setter
    def v_th(self, x) -> None:
        if self.is_integer and isinstance(x, torch.Tensor) and x.is_floating_point():
            raise ValueError(
                f"v_th must be an integer tensor for neuron={self.neuron!r}, got dtype {x.dtype}"
            )
        dtype = {"lif": torch.float32, "int": torch.int16, "loihi": torch.int32}[self.neuron]
        old = getattr(self, "_v_th", None)
        x = self._check_per_neuron("v_th", x, dtype)
        self._v_th = x.to(old.device) if old is not None else x

    def _check_per_neuron(self, name: str, x, dtype: torch.dtype) -> torch.Tensor:
        x = torch.as_tensor(x)
        if x.is_floating_point() and not dtype.is_floating_point:
            if not bool((x == x.round()).all()):
                raise ValueError(f"{name} must hold integers for neuron={self.neuron!r}, got dtype {x.dtype}")
        if x.ndim == 0:
            x = x.expand(self.n)
        if x.shape != (self.n,):
            raise ValueError(f"{name} must be a scalar or have shape ({self.n},), got {tuple(x.shape)}")
        return x.to(dtype).clone()

    def step_params(self):
        """The step function's params with this population's per-neuron threshold."""
        if self.neuron == "loihi":
            return self.params._replace(vth=self.v_th)
        return self.params._replace(v_th=self.v_th)

    # ------------------------------------------------------------------ simulation
    def bind(self, dt: float, device) -> None:
        """Move tensors to ``device``; on the float path adopt the network's ``dt``."""
        self._v_th = self._v_th.to(device)
        if self.v0 is not None:
            self.v0 = self.v0.to(device)
        if self.neuron == "lif":
            self.params = self.params._replace(dt=dt)

    def reset(self, batch: int, device) -> None:
        """Resting state (or ``v0``) for ``batch`` independent copies."""
        shape = (batch, self.n)
        if self.neuron == "lif":
            self.state = lif_init_state(shape, self.params, device)
        elif self.neuron == "int":
            self.state = int_lif_init_state(shape, self.params, device)
        else:
            self.state = loihi_lif_init_state(shape, self.params, device)
        if self.v0 is not None:
            self.state = self.state._replace(v=self.v0.to(device).expand(shape).clone())
        self.spikes = torch.zeros(
            shape, dtype=torch.float32 if self.neuron == "lif" else torch.int8, device=device
        )

    def step(self, current: torch.Tensor) -> torch.Tensor:
        """Advance one step with input ``current`` (B, n); returns spikes (B, n) (float32 0/1 or int8)."""
        fn = {"lif": lif_step, "int": int_lif_step, "loihi": loihi_lif_step}[self.neuron]
        self.spikes, self.state = fn(current, self.state, self.step_params())
        return self.spikes

    def __repr__(self) -> str:
        return f"Population({self.name!r}, n={self.n}, neuron={self.neuron!r})"


class Projection:
    """Synapses ``pre -> post`` held as a CSR tensor ``weights`` of shape (pre.n, post.n).

    ``delay``: steps between a spike and its current (>= 1). ``tau_syn``: ``None`` for delta synapses, else
    the time constant (s) of an exponentially decaying synaptic current (float path). ``syn_shift``: the
    integer path's decay shift ``k`` (``I -= I >> k``); if only ``tau_syn`` is given on the integer path,
    ``k = round(log2(tau_syn / dt))`` (so that ``2^-k ~ dt / tau_syn``).
    """

    def __init__(self, name: str, pre: Population, post: Population, weights: torch.Tensor, *,
                 delay: int = 1, tau_syn: float | None = None, syn_shift: int | None = None):  # fmt: skip
        self.name = _check_name(name)
        for arg, pop in (("pre", pre), ("post", post)):
            if not isinstance(pop, Population):
                raise ValueError(f"{arg} must be a Population, got {type(pop).__name__}")
        self.pre, self.post = pre, post
        crow, col, val = csr_parts(weights)
        if tuple(weights.shape) != (pre.n, post.n):
            raise ValueError(
                f"weights must have shape ({pre.n}, {post.n}) (pre.n, post.n), got {tuple(weights.shape)}"
            )
        if val.dtype != post.weight_dtype:
            raise ValueError(
                f"weights must have dtype {post.weight_dtype} for neuron={post.neuron!r}, got {val.dtype}"
            )
        if crow.dtype != torch.int32 or col.dtype != torch.int32:
            raise ValueError(f"weights must have int32 indices, got {crow.dtype} and {col.dtype}")
        self.weights = weights
        self.delay = check_int_range("delay", delay, 1, 1 << 20)
        if tau_syn is not None:
            check_positive("tau_syn", tau_syn)
        if syn_shift is not None:
            check_int_range("syn_shift", syn_shift, 0, 30)
        self.tau_syn, self.syn_shift = tau_syn, syn_shift
        self.i_syn = None  # (B, post.n) synaptic current (exponential synapses only)
        self.dt = None

    # ------------------------------------------------------------------ CSR access
    @property
    def crow(self) -> torch.Tensor:
        """int32 (pre.n + 1,) row pointers of ``weights`` (its own tensor)."""
        return self.weights.crow_indices()

    @property
    def col(self) -> torch.Tensor:
        """int32 (nnz,) postsynaptic indices of ``weights`` (its own tensor)."""
        return self.weights.col_indices()

    @property
    def values(self) -> torch.Tensor:
        """(nnz,) weights, float32 or int8; in-place changes act on the network directly."""
        return self.weights.values()

    def replace_structure(self, crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor) -> None:
        """Swap in a rebuilt CSR (e.g. after structural plasticity); validated: int32, sorted, in range."""
        if values.dtype != self.values.dtype:
            raise ValueError(f"values must have dtype {self.values.dtype}, got {values.dtype}")
        dev = self.values.device
        crow, col, values = crow.to(dev), col.to(dev), values.to(dev)
        validate_structure(crow, col, values, self.pre.n, self.post.n)
        self.weights = make_csr(crow, col, values, self.pre.n, self.post.n)

    # ------------------------------------------------------------------ simulation
    @property
    def is_exponential(self) -> bool:
        """True when the synaptic current decays over time (not a delta synapse)."""
        return self.decay_shift is not None if self.post.is_integer else self.tau_syn is not None

    @property
    def decay(self) -> float:
        """Float decay ``exp(-dt / tau_syn)`` per step (0.0 for a delta synapse or the integer path)."""
        if self.post.is_integer or self.tau_syn is None:
            return 0.0
        return math.exp(-self.dt / self.tau_syn)

    @property
    def decay_shift(self) -> int | None:
        """Integer decay shift ``k`` (None for a delta synapse or the float path)."""
        if not self.post.is_integer:
            return None
        if self.syn_shift is not None:
            return self.syn_shift
        if self.tau_syn is not None:
            return max(0, round(math.log2(self.tau_syn / self.dt)))
        return None

    def bind(self, dt: float, device) -> None:
        """Move the CSR to ``device`` and remember the network's ``dt``."""
        self.dt = dt
        if self.values.device != torch.device(device):
            self.weights = self.weights.to(device)

    def reset(self, batch: int, device) -> None:
        """Zero synaptic current."""
        self.i_syn = torch.zeros(batch, self.post.n, dtype=self.post.current_dtype, device=device)

    def filter(self, arriving: torch.Tensor | None) -> torch.Tensor | None:
        """Synaptic current from the propagated spikes ``arriving`` (B, post.n) (None: nothing arrived)."""
        if not self.is_exponential:
            return arriving
        if self.post.is_integer:
            self.i_syn -= self.i_syn >> self.decay_shift
        else:
            self.i_syn.mul_(self.decay)
        if arriving is not None:
            self.i_syn += arriving
        return self.i_syn

    def __repr__(self) -> str:
        pre, post = self.pre.name, self.post.name
        return f"Projection({self.name!r}, {pre} -> {post}, nnz={self.col.numel()}, delay={self.delay})"
