r"""The network: populations, projections, inputs, monitors and plasticity rules, stepped in a fixed order.

One step at time ``t`` (0-based):

1. ``currents[pop]`` (B, n) = external inputs at ``t`` + for every projection into ``pop`` its synaptic
   current from the presynaptic spikes of step ``t - delay`` (propagated event by event through the CSR,
   filtered by the exponential synapse when it has one);
2. ``rule.before_step(net, t, currents)`` for every rule (may change ``currents`` in place);
3. one neuron step per population, ``spikes[pop] = step(currents[pop])``;
4. ``rule.after_step(net, t, spikes)`` with ``spikes`` a dict name -> (B, n) tensor;
5. monitors record.

Energy: every propagated synaptic event is one SOP (the out-degree of each spiking presynaptic neuron,
summed), every neuron step one state update; ``net.energy()`` turns them into joules with
``evospikenet.energy``. ``net.run(..., backend="native")`` hands the whole run to
``evospikenet.core.native.run_flat`` on ``net.flatten()`` when the network allows it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

import torch

from .._validate import check_int_range, check_positive
from ..energy import EnergyModel, EnergyReport, OpCounter
from .flat import FlatNetwork, flatten
from .inputs import CurrentInput, PoissonInput
from .monitors import StateMonitor
from .populations import Population, Projection
from .propagate import propagate_events

__all__ = ["Network", "Rule", "BACKENDS"]

BACKENDS = ("torch", "native", "auto")


@runtime_checkable
class Rule(Protocol):
    """A plasticity rule driven by the network; every method may mutate the network in place."""

    def bind(self, net: Network) -> None:
        """Called once, before the first step (allocate traces, check projections)."""

    def before_step(self, net: Network, t: int, currents: dict[str, torch.Tensor]) -> None:
        """After the currents of step ``t`` are summed, before the neurons step (may edit ``currents``)."""

    def after_step(self, net: Network, t: int, spikes: dict[str, torch.Tensor]) -> None:
        """After the neurons of step ``t`` spiked; ``spikes`` maps population name -> (B, n)."""


def _unique(kind: str, items: Iterable) -> dict:
    out = {}
    for x in items:
        if x.name in out:
            raise ValueError(f"{kind} names must be unique, got {x.name!r} twice")
        out[x.name] = x
    return out


class Network:
    """A simulated network; see the module docstring for the order of one step.

    ``batch`` independent copies run side by side (states (B, n)); ``dt`` is the step (s); ``device`` where
    everything lives (CSR tensors and thresholds are moved there). ``net.populations`` and
    ``net.projections`` are dicts name -> object (in the given order); ``net.t`` is the next step;
    ``net.spike_counts`` the spikes per population since ``reset()``. Stepping runs under ``torch.no_grad``.
    """

    def __init__(self, populations, projections=(), inputs=(), monitors=(), rules=(), *, dt: float = 1e-3,
                 batch: int = 1, device=None):  # fmt: skip
        self.dt = check_positive("dt", dt)
        self.batch = check_int_range("batch", batch, 1, 1 << 24)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        populations = list(populations)
        if not populations:
            raise ValueError("populations must hold at least one Population, got none")
        for p in populations:
            if not isinstance(p, Population):
                raise ValueError(f"populations must hold Population objects, got {type(p).__name__}")
        self.populations = _unique("population", populations)
        projections = list(projections)
        for proj in projections:
            if not isinstance(proj, Projection):
                raise ValueError(f"projections must hold Projection objects, got {type(proj).__name__}")
        self.projections = _unique("projection", projections)  # name -> Projection, in order
        for proj in projections:
            for pop in (proj.pre, proj.post):
                if self.populations.get(pop.name) is not pop:
                    raise ValueError(
                        f"projection {proj.name!r} uses population {pop.name!r} not in populations"
                    )
        self.inputs, self.monitors, self.rules = list(inputs), list(monitors), list(rules)
        for obj in [*self.inputs, *self.monitors]:
            target = getattr(obj, "target", None) or getattr(obj, "pop", None)
            if target is None or self.populations.get(target.name) is not target:
                raise ValueError(f"{type(obj).__name__} targets a population not in populations")
        for r in self.rules:
            if not isinstance(r, Rule):
                raise ValueError(f"rules must implement bind/before_step/after_step, got {type(r).__name__}")
        for obj in [*self.populations.values(), *self.projections.values(), *self.inputs]:
            obj.bind(self.dt, self.device)
        self._depth = {name: 0 for name in self.populations}  # spike history length per population
        for proj in self.projections.values():
            self._depth[proj.pre.name] = max(self._depth[proj.pre.name], proj.delay)
        self._bound = False
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        """Resting state, empty delay lines and monitors, zero counters, ``t = 0``; the rules bind again at
        the next step (fresh traces and ledgers; learned weights and thresholds stay)."""
        B, dev = self.batch, self.device
        self.t = 0
        self._bound = False
        for obj in [*self.populations.values(), *self.projections.values(), *self.monitors]:
            obj.reset(B, dev)
        self._history = {name: [None] * d for name, d in self._depth.items()}  # ring of past spikes
        self.spike_counts = {name: 0 for name in self.populations}  # spikes since reset (all batches)
        self._sops = {name: 0 for name in self.projections}
        self._updates = {name: 0 for name in self.populations}

    @property
    def is_integer(self) -> bool:
        """True when every population runs on an integer path."""
        return all(p.is_integer for p in self.populations.values())

    def _bind_rules(self) -> None:
        if not self._bound:
            for r in self.rules:
                r.bind(self)
            self._bound = True

    # ------------------------------------------------------------------ one step
    def _arriving(self, proj: Projection, t: int) -> torch.Tensor | None:
        """Propagated spikes of step ``t - delay`` into ``proj.post`` (None when nothing can arrive)."""
        if t - proj.delay < 0:
            return None
        hist = self._history[proj.pre.name]
        s = hist[(t - proj.delay) % len(hist)]
        if s is None:
            return None
        cur, sops = propagate_events(proj.weights, s, return_sops=True)
        self._sops[proj.name] += sops
        return cur

    @torch.no_grad()
    def step(self) -> dict[str, torch.Tensor]:
        """Advance one step; returns the spikes, name -> (B, n)."""
        self._bind_rules()
        t, B = self.t, self.batch
        currents = {name: torch.zeros(B, p.n, dtype=p.current_dtype, device=self.device)
                    for name, p in self.populations.items()}  # fmt: skip
        for inp in self.inputs:
            inp.apply(t, currents)
        for proj in self.projections.values():
            cur = proj.filter(self._arriving(proj, t))
            if cur is not None:
                currents[proj.post.name] += cur
        for r in self.rules:
            r.before_step(self, t, currents)
        spikes = {}
        for name, pop in self.populations.items():
            spikes[name] = pop.step(currents[name])
            self._updates[name] += B * pop.n
            hist = self._history[name]
            if hist:
                hist[t % len(hist)] = spikes[name]
        for r in self.rules:
            r.after_step(self, t, spikes)
        for m in self.monitors:
            m(t, spikes[m.pop.name])
        for name, s in spikes.items():
            self.spike_counts[name] += s.count_nonzero()
        self.t = t + 1
        return spikes

    # ------------------------------------------------------------------ runs
    def native_unsupported_reason(self) -> str | None:
        """Why ``backend="native"`` cannot run this network now, or None when it can."""
        try:
            native = importlib.import_module("evospikenet.core.native")
        except ImportError:
            return "evospikenet.core.native is not available"
        if not hasattr(native, "run_flat"):
            return "evospikenet.core.native has no run_flat"
        if self.rules:
            return "the network has plasticity rules"
        for inp in self.inputs:
            if isinstance(inp, PoissonInput):
                return "the network has Poisson inputs"
            if isinstance(inp, CurrentInput) and not inp.is_constant:
                return "the network has a time-varying CurrentInput"
            if not isinstance(inp, (PoissonInput, CurrentInput)):
                return f"the network has an input of type {type(inp).__name__}"
        if any(isinstance(m, StateMonitor) for m in self.monitors):
            return "the network has a StateMonitor"
        if self._pending_state():
            return "synaptic currents, delayed spikes or refractory counters are in flight"
        try:
            flatten(self)
        except ValueError as e:
            return str(e)
        if hasattr(native, "native_available") and not native.native_available():
            return "the native extension cannot be built on this machine"
        return None

    def _pending_state(self) -> bool:
        for proj in self.projections.values():
            if proj.is_exponential and bool(proj.i_syn.any()):
                return True
        for hist in self._history.values():
            if any(s is not None and bool(s.any()) for s in hist):
                return True
        return any(
            bool((p.state.refrac > 0).any()) for p in self.populations.values() if hasattr(p.state, "refrac")
        )

    def flatten(self) -> FlatNetwork:
        """This network on one global index space (see ``evospikenet.core.flat``)."""
        return flatten(self)

    def run(self, n_steps: int, progress: bool = False, backend: str = "torch") -> dict:
        """Run ``n_steps`` steps; returns a summary with the mean rate (Hz) of every population.

        ``backend``: ``"torch"`` steps in Python; ``"native"`` runs ``native.run_flat`` (ValueError saying why
        when it cannot); ``"auto"`` takes native when possible, else torch. A native run starts from the
        membranes (``flatten``) and drops whatever is still in flight at its end.
        """
        check_int_range("n_steps", n_steps, 0, 1 << 40)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend != "torch":
            reason = self.native_unsupported_reason()
            if reason is not None and backend == "native":
                raise ValueError(f"backend='native' cannot run this network: {reason}")
            backend = "torch" if reason is not None else "native"
        before = {k: int(v) for k, v in self.spike_counts.items()}
        t0 = time.perf_counter()
        if backend == "native":
            self._run_native(n_steps)
        else:
            steps = range(n_steps)
            if progress:
                from tqdm.auto import tqdm

                steps = tqdm(steps, desc="simulating", unit="step")
            for _ in steps:
                self.step()
        wall = time.perf_counter() - t0
        sim_s = n_steps * self.dt
        counts = {k: int(v) - before[k] for k, v in self.spike_counts.items()}
        rates = {
            k: (c / (self.batch * self.populations[k].n * sim_s) if sim_s > 0 else 0.0)
            for k, c in counts.items()
        }
        return {"backend": backend, "steps": n_steps, "t": self.t, "sim_time_s": sim_s, "wall_s": wall,
                "rates_hz": rates, "spike_counts": counts}  # fmt: skip

    def _run_native(self, n_steps: int) -> None:
        native = importlib.import_module("evospikenet.core.native")
        flat = flatten(self)
        self._bind_rules()
        steps, ids, v_final = native.run_flat(flat, n_steps)
        steps, ids = steps.to(self.device, torch.int64), ids.to(self.device, torch.int64)
        t0 = self.t
        for name, off, n in flat.populations:
            pop = self.populations[name]
            mask = (ids >= off) & (ids < off + n)
            p_steps, p_ids = steps[mask], ids[mask] - off
            self.spike_counts[name] += int(p_ids.numel())
            self._updates[name] += n_steps * n
            pop.state = pop.state._replace(
                v=v_final[off : off + n].to(self.device, pop.state_dtype).reshape(1, n)
            )
            last = torch.zeros(1, n, dtype=pop.spikes.dtype, device=self.device)
            last[0, p_ids[p_steps == n_steps - 1]] = 1
            pop.spikes = last
            for m in self.monitors:
                if m.pop is pop:
                    m.add_events(p_steps + t0, torch.zeros_like(p_ids), p_ids)
        for proj in self.projections.values():  # SOPs: every spike of pre fans out to its out-degree
            crow = proj.crow.to(torch.int64)
            off = next(o for nm, o, _ in flat.populations if nm == proj.pre.name)
            mask = (ids >= off) & (ids < off + proj.pre.n)
            pre = ids[mask] - off
            self._sops[proj.name] += int((crow[pre + 1] - crow[pre]).sum())
            proj.reset(self.batch, self.device)
        self._history = {name: [None] * d for name, d in self._depth.items()}
        self.t = t0 + n_steps

    # ------------------------------------------------------------------ energy
    def op_counter(self) -> OpCounter:
        """SOPs per projection and neuron updates per population since the last reset."""
        c = OpCounter()
        for name, n in self._sops.items():
            c.add_sops(name, n)
        for name, n in self._updates.items():
            c.add_updates(name, n)
        return c

    def energy(self, model: EnergyModel | None = None) -> EnergyReport:
        """Energy since the last reset; integer networks default to 8-bit weights and 16-bit state."""
        if model is None:
            model = EnergyModel(weight_bits=8, state_bits=16) if self.is_integer else EnergyModel()
        return model.report(self.op_counter())

    def __repr__(self) -> str:
        return (f"Network({len(self.populations)} populations, {len(self.projections)} projections, "
                f"batch={self.batch}, dt={self.dt}, t={self.t})")  # fmt: skip
