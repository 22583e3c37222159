"""``make demo``: a recurrent E/I network with plasticity, simulated on the integer core.

400 excitatory and 100 inhibitory int16 LIF neurons (INT8 weights and spikes), sparse random CSR
connectivity, Poisson drive, and three plasticity rules on the excitatory recurrent synapses: integer STDP,
integer homeostasis holding the excitatory rate near 10 Hz, and buffered structural plasticity that prunes
weak synapses and grows new ones in one batched CSR rebuild every 250 steps. Writes ``raster.png`` (spike
raster and population rates) and ``summary.json`` (rates, synapse counts, weight statistics, energy priced
with ``evospikenet.energy.INTEGER_45NM``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from .core import Network, PoissonInput, Population, Projection, SpikeMonitor, fixed_probability
from .core.csr import bytes_per_synapse
from .energy import INTEGER_45NM
from .plasticity import STDP, Homeostasis, StructuralPlasticity

__all__ = ["build_demo_network", "run_demo", "main"]


def build_demo_network(n_exc: int = 400, n_inh: int = 100, seed: int = 0, batch: int = 1) -> Network:
    """The demo's integer E/I network with its plasticity rules and monitors."""
    g = torch.Generator().manual_seed(seed)
    lif = {"v_th": 400, "leak_shift": 4, "refractory": 2}
    exc = Population("exc", n_exc, "int", lif)
    inh = Population("inh", n_inh, "int", lif)

    def w(lo: int, hi: int):  # uniform integer weights in [lo, hi], drawn with the builder's generator
        return lambda n, gen: torch.randint(lo, hi + 1, (n,), generator=gen, dtype=torch.int8)

    projections = [
        Projection(
            "ee", exc, exc, fixed_probability(n_exc, n_exc, 0.1, w(5, 20), dtype=torch.int8, generator=g)
        ),
        Projection(
            "ei", exc, inh, fixed_probability(n_exc, n_inh, 0.2, w(10, 30), dtype=torch.int8, generator=g)
        ),
        Projection(
            "ie", inh, exc, fixed_probability(n_inh, n_exc, 0.2, w(-60, -20), dtype=torch.int8, generator=g)
        ),
        Projection(
            "ii", inh, inh, fixed_probability(n_inh, n_inh, 0.1, w(-40, -10), dtype=torch.int8, generator=g)
        ),
    ]
    inputs = [
        PoissonInput(exc, rate_hz=800.0, weight=60, n_sources=1, generator=g),
        PoissonInput(inh, rate_hz=600.0, weight=60, n_sources=1, generator=g),
    ]
    rules = [
        STDP("ee"),
        Homeostasis("exc"),
        StructuralPlasticity("ee", every=250, prune_below=2, grow=200, w_init=8, seed=seed),
    ]
    monitors = [SpikeMonitor(exc), SpikeMonitor(inh)]
    return Network([exc, inh], projections, inputs, monitors, rules, dt=1e-3, batch=batch)


def _plot(path: Path, net: Network, n_steps: int, dt: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exc_mon, inh_mon = net.monitors
    n_exc = exc_mon.pop.n
    fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(10, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for mon, offset, color, label in (
        (exc_mon, 0, "tab:blue", "excitatory"),
        (inh_mon, n_exc, "tab:red", "inhibitory"),
    ):
        t = mon.t.float() * dt
        ax0.scatter(t, mon.i + offset, s=0.5, c=color, label=label, rasterized=True)
        bins = torch.arange(0, n_steps + 1, 20)
        counts = torch.histc(mon.t.float(), bins=len(bins) - 1, min=0, max=n_steps)
        ax1.plot(bins[:-1].float() * dt, counts / (20 * dt * mon.pop.n), color=color, label=label)
    ax0.set_ylabel("neuron")
    ax0.set_title("Integer-core E/I network with STDP, homeostasis and structural plasticity")
    ax0.legend(loc="upper right", markerscale=10)
    ax1.axhline(10.0, color="gray", ls="--", lw=0.8, label="homeostatic target")
    ax1.set_xlabel("time (s)")
    ax1.set_ylabel("rate (Hz)")
    ax1.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def run_demo(
    out: str | Path = "artifacts/demo", n_steps: int = 3000, seed: int = 0, progress: bool = True
) -> dict:
    """Simulate the demo network and write ``raster.png`` and ``summary.json`` into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    net = build_demo_network(seed=seed)
    ee = net.projections["ee"]
    syn_before = int(ee.values.numel())
    w_before = ee.values.float()
    t0 = time.perf_counter()
    net.run(n_steps, progress=progress)
    wall = time.perf_counter() - t0
    exc_mon, inh_mon = net.monitors
    seconds = n_steps * net.dt
    last = exc_mon.t >= n_steps - 1000  # the last second, after homeostasis settled
    report = net.energy(INTEGER_45NM)  # every op priced at integer widths
    structural = net.rules[2]
    summary = {
        "steps": n_steps,
        "dt_s": net.dt,
        "wall_s": round(wall, 3),
        "integer_core": True,
        "neurons": {"exc": exc_mon.pop.n, "inh": inh_mon.pop.n},
        "rate_hz": {
            "exc": exc_mon.num_spikes / (exc_mon.pop.n * seconds),
            "inh": inh_mon.num_spikes / (inh_mon.pop.n * seconds),
            "exc_last_second": int(last.sum()) / (exc_mon.pop.n * 1.0),
        },
        "homeostasis_target_hz": 10.0,
        "ee_synapses": {"before": syn_before, "after": int(ee.values.numel()), **structural.stats},
        "ee_weight_mean": {"before": float(w_before.mean()), "after": float(ee.values.float().mean())},
        "bytes_per_synapse": bytes_per_synapse(ee.weights),
        "energy": report.as_dict(),
        "raster_png": str(out / "raster.png"),
    }
    _plot(out / "raster.png", net, n_steps, net.dt)
    tmp = out / "summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(out / "summary.json")
    return summary


def main(argv: list[str] | None = None) -> int:
    """Command line: ``python -m evospikenet.demo [--out DIR] [--steps N] [--seed S]``."""
    ap = argparse.ArgumentParser(
        prog="evospikenet-demo",
        description=__doc__.splitlines()[0] + " Prints summary.json's content as the last stdout line.",
        epilog="example: evospikenet-demo --out artifacts/demo --steps 1000",
    )
    ap.add_argument("--out", default="artifacts/demo", help="output directory (default: artifacts/demo)")
    ap.add_argument("--steps", type=int, default=3000, help="simulation steps of 1 ms (default: 3000)")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = ap.parse_args(argv)
    if args.steps < 1:
        ap.error(f"--steps must be a positive integer, got {args.steps}")
    # 500 neurons: intra-op threads only add synchronisation overhead to each small step.
    torch.set_num_threads(1)
    summary = run_demo(args.out, args.steps, args.seed, progress=sys.stderr.isatty())
    print(f"raster: {summary['raster_png']}", file=sys.stderr)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
