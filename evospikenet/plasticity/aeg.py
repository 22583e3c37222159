r"""AEG, energy-driven computing: every neuron spends a virtual energy budget and is gated when it runs out.

Each neuron ``i`` (per batch sample) holds an energy ``E_i \in [0, E_{max}]``. Per step:

.. math::

    g_i &= [E_i < c_{spike}] \quad\text{(gate: the neuron's input current is zeroed before its step)} \\
    c_i &= s_i \, (c_{spike} + c_{syn} \, d_i) \quad\text{(cost of a spike and of its } d_i
           \text{ synaptic events, } d_i = \text{out-degree)} \\
    E_i &\leftarrow \min\big(\max(E_i - c_i, 0) + r,\ E_{max}\big)

A gated neuron receives no input, so its membrane decays and it stays silent until ``r`` per step has
refilled ``c_spike``: a tight budget (``r`` small against the cost of the spikes the input asks for)
caps each neuron's rate near ``r / (c_spike + c_syn d_i)`` per step while neurons with strong input still
fire before weak ones, so the network keeps responding but spends less. The ledger keeps, per neuron
(summed over the batch): ``spent`` (all costs charged), ``recovered`` (energy actually added, after the
cap), ``gated`` (neuron-steps spent gated) and ``spikes``; ``E_0 - spent + recovered = E`` holds exactly
as long as no cost exceeded the energy left (``overdraft`` sums what was forgiven by the floor at 0).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._validate import check_non_negative, check_positive
from ._common import check_spikes, get_population

__all__ = ["AEGParams", "AEGState", "aeg_params", "aeg_init_state", "aeg_gate", "aeg_step", "AEG"]


class AEGParams(NamedTuple):
    """Energy budget constants (abstract energy units)."""

    e_max: float = 1.0  # E_max: capacity of each neuron's energy store
    c_spike: float = 0.1  # cost of one spike; also the gating threshold
    c_syn: float = 0.001  # cost of one synaptic event (per outgoing synapse of a spiking neuron)
    recovery: float = 0.005  # r: energy recovered per step
    e_init: float | None = None  # initial energy (None: full, e_max)


class AEGState(NamedTuple):
    """Energy and ledger."""

    energy: torch.Tensor  # (B, n) current energy
    spent: torch.Tensor  # (n,) total cost charged
    recovered: torch.Tensor  # (n,) total energy recovered (after the cap)
    gated: torch.Tensor  # (n,) int64 neuron-steps gated
    spikes: torch.Tensor  # (n,) int64 spikes emitted
    overdraft: torch.Tensor  # (n,) cost beyond the energy left, forgiven by the floor at 0


def aeg_params(**kwargs) -> AEGParams:
    """Validated ``AEGParams``; raises ``ValueError`` naming a bad argument."""
    p = AEGParams(**kwargs)
    check_positive("e_max", p.e_max)
    check_non_negative("c_spike", p.c_spike)
    check_non_negative("c_syn", p.c_syn)
    check_non_negative("recovery", p.recovery)
    if p.c_spike > p.e_max:
        raise ValueError(
            f"c_spike must not exceed e_max={p.e_max!r} (no neuron could ever fire), got {p.c_spike!r}"
        )
    if p.e_init is not None and not 0 <= check_non_negative("e_init", p.e_init) <= p.e_max:
        raise ValueError(f"e_init must lie in [0, e_max={p.e_max!r}], got {p.e_init!r}")
    return p


def aeg_init_state(batch: int, n: int, params: AEGParams, device=None, dtype=torch.float32) -> AEGState:
    """Full (or ``e_init``) energy and an empty ledger. ``dtype=torch.int32`` keeps integer energy units."""
    e0 = params.e_max if params.e_init is None else params.e_init
    zi = torch.zeros(n, dtype=torch.int64, device=device)
    zf = torch.zeros(n, dtype=dtype, device=device)
    return AEGState(
        torch.full((batch, n), e0, dtype=dtype, device=device), zf, zf.clone(), zi, zi.clone(), zf.clone()
    )


def aeg_gate(currents: torch.Tensor, state: AEGState, params: AEGParams) -> tuple[torch.Tensor, AEGState]:
    """Zero the input current (B, n) of neurons whose energy is below ``c_spike``; count them."""
    gate = state.energy < params.c_spike  # (B, n)
    out = currents.masked_fill(gate, 0)
    return out, state._replace(gated=state.gated + gate.sum(0))


def aeg_step(spikes: torch.Tensor, out_degree: torch.Tensor, state: AEGState, params: AEGParams) -> AEGState:
    """Charge the step's spikes (B, n) and their synaptic events (out-degree (n,)), then recover."""
    p, e = params, state.energy
    s = check_spikes("spikes", spikes, e.shape[1]).to(e.dtype)
    if out_degree.shape != (e.shape[1],):
        raise ValueError(f"out_degree must have shape ({e.shape[1]},), got {tuple(out_degree.shape)}")
    cost = s * (p.c_spike + p.c_syn * out_degree.to(e.dtype))  # (B, n)
    after = e - cost
    overdraft = (-after).clamp(min=0)  # (B, n)
    after = after + overdraft
    new = (after + p.recovery).clamp(max=p.e_max)
    return AEGState(
        new,
        state.spent + cost.sum(0),
        state.recovered + (new - after).sum(0),
        state.gated,
        state.spikes + (s != 0).sum(0),
        state.overdraft + overdraft.sum(0),
    )


class AEG:
    """Energy budgets for the given populations (default: all), as a network rule.

    ``before_step`` zeroes the currents of gated neurons; ``after_step`` charges spikes and synaptic events
    (the out-degree summed over every projection leaving the population) and recovers energy. ``dtype``
    is the energy's dtype (float32, or int32 with integer constants for the integer path).
    """

    def __init__(
        self, populations: str | list[str] | None = None, dtype: torch.dtype = torch.float32, **kwargs
    ):
        self.params = aeg_params(**kwargs)
        if dtype not in (torch.float32, torch.float64, torch.int32, torch.int64):
            raise ValueError(f"dtype must be float32, float64, int32 or int64, got {dtype!r}")
        if not dtype.is_floating_point and any(float(v) != int(v) for v in self.params if v is not None):
            raise ValueError(f"AEG constants must be integers for dtype={dtype}, got {self.params}")
        self.populations = [populations] if isinstance(populations, str) else populations
        self.dtype = dtype
        self.states: dict[str, AEGState] = {}
        self._deg: dict[str, tuple[tuple, torch.Tensor]] = {}

    def bind(self, net) -> None:
        """Resolve the populations; states are created at the first step (when the batch is known)."""
        names = list(net.populations) if self.populations is None else self.populations
        for name in names:
            get_population(net, name)
        self.names, self.states, self._deg = names, {}, {}

    def out_degree(self, net, name: str) -> torch.Tensor:
        """(n,) synapses leaving each neuron of population ``name``, over all its outgoing projections."""
        projs = [p for p in net.projections.values() if p.pre.name == name]
        key = tuple(id(p.weights) for p in projs)
        cached = self._deg.get(name)
        if cached is None or cached[0] != key:
            n = net.populations[name].n
            deg = torch.zeros(n, dtype=torch.int64)
            for p in projs:
                deg = deg.to(p.crow.device) + (p.crow[1:] - p.crow[:-1]).to(torch.int64)
            cached = self._deg[name] = (key, deg)
        return cached[1]

    def before_step(self, net, t, currents) -> None:
        """Zero the input currents of neurons without energy (in place)."""
        for name in self.names:
            if name not in currents:
                continue
            cur = currents[name]
            st = self.states.get(name)
            if st is None:
                st = self.states[name] = aeg_init_state(
                    cur.shape[0], cur.shape[1], self.params, cur.device, self.dtype
                )
            gated, self.states[name] = aeg_gate(cur, st, self.params)
            cur.copy_(gated)

    def after_step(self, net, t, spikes) -> None:
        """Charge this step's spikes and recover energy."""
        for name in self.names:
            s = spikes[name]
            st = self.states.get(name)
            if st is None:
                st = aeg_init_state(s.shape[0], s.shape[1], self.params, s.device, self.dtype)
            deg = self.out_degree(net, name).to(s.device)
            self.states[name] = aeg_step(s, deg, st, self.params)

    def ledger(self) -> dict:
        """Per-population ledger (per-neuron tensors) and network totals."""
        out: dict = {"populations": {}}
        totals = {"spent": 0.0, "recovered": 0.0, "gated": 0, "spikes": 0, "overdraft": 0.0}
        for name, st in self.states.items():
            out["populations"][name] = {
                "energy": st.energy,
                "spent": st.spent,
                "recovered": st.recovered,
                "gated": st.gated,
                "spikes": st.spikes,
                "overdraft": st.overdraft,
            }
            totals["spent"] += float(st.spent.sum())
            totals["recovered"] += float(st.recovered.sum())
            totals["gated"] += int(st.gated.sum())
            totals["spikes"] += int(st.spikes.sum())
            totals["overdraft"] += float(st.overdraft.sum())
        out["total"] = totals
        return out
