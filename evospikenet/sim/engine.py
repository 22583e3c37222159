r"""The native population-network engine (``evospikenet/csrc/popnet/``) and its parameter tables.

Each neuron is NEST's ``iaf_psc_exp``, integrated exactly over a step of length :math:`h` (Rotter & Diesmann
1999). Per step, in NEST's order:

.. math::

    V &\leftarrow E_L + (V - E_L) P_{22} + I_{syn} P_{21} + I_e P_{20} \quad \text{(unless refractory)}\\
    I_{syn} &\leftarrow I_{syn} P_{11} + \textstyle\sum \text{weights arriving this step}
            + n_{Poisson} J_{ext}\\
    V \ge V_{th} &\Rightarrow \text{spike}, \; V \leftarrow V_{reset} \text{ for } t_{ref}

with :math:`P_{11} = e^{-h/\tau_s}`, :math:`P_{22} = e^{-h/\tau_m}`,
:math:`P_{21} = (P_{11} - P_{22}) / (C_m (1/\tau_m - 1/\tau_s))` and :math:`P_{20} = \tau_m (1 - P_{22}) / C_m`.
A spike of a source in step ``s`` through a synapse of delay ``d`` steps enters :math:`I_{syn}` in step
``s + d`` (so it first moves ``V`` in step ``s + d + 1``, as in NEST). :math:`n_{Poisson}` is the number of
background inputs in the step, Poisson with mean :math:`\nu K_{ext} h`.

Delivery is event-driven: only the rows of sources that spiked are read, each synapse adding its weight to a
per-target ring buffer slot ``(s + d) mod D``. Synapses are 32-bit words (target offset, delay, and the
weight as a normal deviate quantised to 1/85 SD; see ``popnet.h``), so the full PD14 network's 299 million
synapses take 1.2 GB.
"""

from __future__ import annotations

import functools
import math

import torch

from .spec import NetworkSpec

__all__ = ["load_popnet", "group_table", "propagators", "NativeEngine"]

FIELDS = (
    "first", "size", "p11", "p21", "p22", "drive", "e_l", "v_th", "v_reset", "ref_steps",
    "v0_mean", "v0_sd", "lambda", "w_ext", "on_begin", "on_end",
)  # fmt: skip


@functools.lru_cache(maxsize=1)
def load_popnet():
    """Build (first call, about a minute) and load the engine's C++ extension."""
    from .._native_build import build_sources, csrc

    return build_sources(
        "evospikenet_popnet",
        [csrc(f"popnet/{name}.cpp") for name in ("build", "engine", "io")],
        message="evospikenet: compiling the population-network engine (once, about a minute)",
        # Lets the compiler turn the neuron update's selects into vector blends (no FP traps are observed).
        cflags=("-fno-trapping-math",),
    )


def propagators(c_m: float, tau_m: float, tau_syn: float, dt: float) -> tuple[float, float, float, float]:
    """``(P11, P21, P22, P20)`` of ``iaf_psc_exp`` for step ``dt`` (ms, pF, mV, pA units)."""
    p11, p22 = math.exp(-dt / tau_syn), math.exp(-dt / tau_m)
    if math.isclose(tau_m, tau_syn):  # the limit of P21 as tau_syn -> tau_m
        p21 = dt / c_m * p22
    else:
        p21 = (p11 - p22) / (c_m * (1.0 / tau_m - 1.0 / tau_syn))
    return p11, p21, p22, tau_m / c_m * (1.0 - p22)


def group_table(spec: NetworkSpec) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The engine's inputs: ``groups`` (n_groups, 16) float64 (populations, then generators; columns
    :data:`FIELDS`), and ``K``, ``wmean``, ``dmean`` of shape (n_pop, n_groups)."""
    dt, firsts, rows = spec.dt, spec.first_ids(), []
    for p, first in zip(spec.populations, firsts):
        p11, p21, p22, p20 = propagators(p.c_m, p.tau_m, p.tau_syn, dt)
        lam = p.poisson_rate_hz * dt * 1e-3
        row = [first, p.size, p11, p21, p22, p.i_e * p20, p.e_l, p.v_th, p.v_reset, round(p.t_ref / dt)]
        rows.append([*row, p.v0_mean, p.v0_sd, lam, p.poisson_weight, 0, 0])
    for g, first in zip(spec.generators, firsts[len(spec.populations) :]):
        on = (round(g.start_ms / dt), round(g.stop_ms / dt))
        rows.append([first, g.size, *[0.0] * 10, g.rate_hz * dt * 1e-3, 0.0, *on])
    n_pop = len(spec.populations)
    k = [list(r) + [g.n_synapses[a] for g in spec.generators] for a, r in enumerate(spec.n_synapses)]
    w = [list(r) + [g.weight_mean for g in spec.generators] for r in spec.weight_mean]
    d = [list(r) + [g.delay_mean for g in spec.generators] for r in spec.delay_mean]
    shape = (n_pop, n_pop + len(spec.generators))
    return (
        torch.tensor(rows, dtype=torch.float64),
        torch.tensor(k, dtype=torch.int64).view(shape),
        torch.tensor(w, dtype=torch.float64).view(shape),
        torch.tensor(d, dtype=torch.float64).view(shape),
    )


class NativeEngine:
    """One rank's share of a network on the C++ engine (CPU).

    ``rank``/``ranks``: this rank owns the neurons with ``gid % ranks == rank``. ``procedural``: keep no
    synapses; regenerate a source's synapses from its random streams each time it spikes (memory grows with
    neurons, not synapses; the same spikes as the stored mode). ``exact``: accumulate synaptic currents in
    64-bit fixed point, so that spikes are bit-identical for any number of ranks (see ``engine.h``).
    A step with several ranks is ``update_pack`` (dynamics; this rank's spikes into the exchange buffer),
    ``deliver_local`` (its own and the generators' spikes, while the exchange runs), ``deliver_gathered`` (the
    other ranks' spikes), ``end_step``.
    """

    def __init__(
        self,
        spec: NetworkSpec,
        seed: int,
        rank: int = 0,
        ranks: int = 1,
        procedural: bool = False,
        exact: bool = False,
    ):
        groups, k, w, d = group_table(spec)
        self.spec, self.seed, self.rank, self.ranks = spec, seed, rank, ranks
        self.procedural, self.exact = procedural, exact
        self._e = load_popnet().Engine(
            groups, len(spec.populations), k, w, d, spec.weight_rel_sd, spec.delay_rel_sd, spec.dt,
            seed, rank, ranks, procedural, exact,
        )  # fmt: skip
        for name in (
            "update_pack", "run_exchanged", "run_shared", "deliver_local", "deliver_gathered", "deliver_gids",
            "end_step", "run", "set_state", "drain", "set_recording", "last_spikes", "counts", "out_degree",
        ):  # fmt: skip
            setattr(self, name, getattr(self._e, name))

    def build(self, threads: int | None = None) -> None:
        """Draw the connectivity and the initial state (``threads``: default torch's intra-op threads)."""
        self._e.build(threads or torch.get_num_threads())

    def state(self) -> dict[str, torch.Tensor]:
        """Everything a checkpoint needs (the connectivity is redrawn from the seed)."""
        return dict(self._e.state())

    def info(self) -> dict[str, int]:
        """Sizes: local neurons, stored synapses and their bytes, ring slots, the step, delivered events."""
        return dict(self._e.info())

    def synapses(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """This rank's stored synapses as (source gid, target gid, delay steps, weight pA), row by row."""
        return tuple(self._e.synapses())
