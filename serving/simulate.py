"""The SNN simulation endpoint: the demo's integer E/I network with plasticity, summarised for plotting.

One request builds ``evospikenet.demo.build_demo_network(n_exc, n_inh, seed)`` (integer LIF, CSR projections,
STDP + homeostasis + structural plasticity on ``ee``) and steps it ``steps`` times. The answer holds the
spike events, population rates ``r = spikes / (n * 10 dt)`` per 10-step bin, the ``ee`` connectivity among the
first ``graph_neurons`` excitatory neurons with the synapses *active in the window* flagged (the presynaptic
neuron fired in ``[start, stop)``), histograms of the ``ee`` weights every ``snapshot_every`` steps, and the
network's energy estimate. The run checks its ``deadline`` (epoch seconds) every ``DEADLINE_EVERY`` steps and
stops with :class:`serving.errors.DeadlineExceeded` once it is past.
"""

from __future__ import annotations

import torch

from evospikenet.demo import build_demo_network
from evospikenet.energy import EnergyModel

from .errors import RequestError, check_deadline

__all__ = ["simulate", "MAX_EVENTS", "RATE_BIN"]

MAX_EVENTS = 20000  # spike events returned per population at most
RATE_BIN = 10  # steps per firing-rate bin
DEADLINE_EVERY = 10  # steps between deadline checks (a step takes milliseconds)


HIST_BINS = 32  # bins of the weight histograms


def _hist(values: torch.Tensor, lo: float, hi: float) -> list[int]:
    """Counts of ``values`` in HIST_BINS equal bins over [lo, hi]; values outside land in the end bins."""
    v = values.float().clamp(lo, hi)
    return torch.histc(v, bins=HIST_BINS, min=lo, max=hi).to(torch.int64).tolist()


@torch.no_grad()
def simulate(
    n_exc: int = 80,
    n_inh: int = 20,
    steps: int = 500,
    seed: int = 0,
    window: tuple[int, int] | None = None,
    snapshot_every: int = 100,
    graph_neurons: int = 30,
    deadline: float | None = None,
) -> dict:
    """Run the plastic E/I network; see the module docstring for the fields of the answer."""
    if window is None:
        window = (max(0, steps - 100), steps)
    a, b = int(window[0]), int(window[1])
    if not (0 <= a < b <= steps):
        raise RequestError("window", f"window must satisfy 0 <= start < stop <= steps={steps}, got {[a, b]}")
    torch.manual_seed(seed)
    net = build_demo_network(n_exc=n_exc, n_inh=n_inh, seed=seed)
    names = list(net.populations)
    counts = {n: torch.zeros(steps, dtype=torch.int64) for n in names}  # spikes per step
    fired_in_window = torch.zeros(n_exc, dtype=torch.bool)
    snaps, snap_steps = [], []
    ee = net.projections["ee"]
    w0 = ee.values.float()
    # Room for STDP to move the weights; a network too small for any ee synapse gets a nominal range.
    lo, hi = (float(w0.min()) - 8.0, float(w0.max()) + 24.0) if w0.numel() else (0.0, 32.0)
    for t in range(steps):
        if t % DEADLINE_EVERY == 0:
            check_deadline(deadline, "steps")
        if t % snapshot_every == 0:
            snaps.append(_hist(ee.values, lo, hi))
            snap_steps.append(t)
        spikes = net.step()
        for n in names:
            counts[n][t] = int(spikes[n].count_nonzero())
        if a <= t < b:
            fired_in_window |= spikes["exc"][0].bool().cpu()
    snaps.append(_hist(ee.values, lo, hi))
    snap_steps.append(steps)
    events, rates = {}, {}
    for mon in net.monitors:
        n = mon.pop.name
        ev = torch.stack([mon.t, mon.i], dim=1)[:MAX_EVENTS] if mon.num_spikes else torch.zeros(0, 2)
        events[n] = ev.to(torch.int64).tolist()
        c = (
            counts[n][: steps - steps % RATE_BIN].view(-1, RATE_BIN).sum(1)
            if steps >= RATE_BIN
            else counts[n]
        )
        width = RATE_BIN if steps >= RATE_BIN else 1
        rates[n] = (c.float() / (mon.pop.n * width * net.dt)).tolist()
    crow, col, val = ee.crow.cpu(), ee.col.cpu(), ee.values.cpu()
    k = min(graph_neurons, n_exc)
    edges = []
    for i in range(k):
        for j in range(int(crow[i]), int(crow[i + 1])):
            post = int(col[j])
            if post < k:
                edges.append([i, post, int(val[j]), bool(fired_in_window[i])])
    report = net.energy(EnergyModel(weight_bits=8, state_bits=16))
    return {
        "steps": steps,
        "dt_s": net.dt,
        "neurons": {n: net.populations[n].n for n in names},
        "spikes": events,
        "rate_hz": rates,
        "graph": {"nodes": list(range(k)), "edges": edges, "window": [a, b]},
        "weight_hist": {
            "bins": torch.linspace(lo, hi, HIST_BINS + 1).tolist(),
            "steps": snap_steps,
            "counts": snaps,
        },
        "energy_j": float(report.compute_j),
    }
