r"""A :class:`~evospikenet.sim.spec.NetworkSpec` (PD14 or any other) simulated in NEST 3.10: the reference.

Runs in ``.venv-nest`` (``make nest-venv``), which has no torch: ``spec.py`` and ``recording.py`` are loaded
from their files (they need only the standard library and numpy), so NEST builds from the same JSON spec as
our engine and writes the same run directory.

    python scripts/pd14_nest.py --spec spec.json --t-presim 500 --t-sim 1000 --seed 1 --threads 2 \
        [--record] --out DIR

The network, as the spec's docstring states it:

* each population: ``iaf_psc_exp`` neurons with the spec's parameters, ``I_e`` = the spec's ``i_e`` (DC drive
  and down-scaling compensation), :math:`V_0 \sim N(\mu_{V_0}, \sigma_{V_0}^2)` per population;
* each block ``(a, b)`` with ``n_synapses[a][b] > 0``: rule ``fixed_total_number`` with ``N`` that total,
  weights ``redraw(normal(mu, |r_w mu|))`` inside the half-line of ``mu``'s sign, delays
  ``redraw(normal(d, r_d d))`` above ``dt / 2`` (NEST rounds them to the nearest step);
* Poisson drive (``poisson_rate_hz > 0``): one ``poisson_generator`` per population at that total rate,
  connected to every neuron (independent trains per target) with weight ``poisson_weight``, delay one step;
* each spec generator: ``size`` parrot neurons (created after the populations, so their ids follow them, as
  ``NetworkSpec.first_ids`` says) fed by one ``poisson_generator`` active from ``start_ms`` to ``stop_ms``
  (shifted one step earlier to undo the generator -> parrot step), wired like a recurrent block with
  positive weights.

Spikes are counted by one ``spike_recorder`` (memory backend) per population; the simulation runs in chunks
(``--chunk-ms``) with the recorders emptied between chunks, so memory stays bounded. Without ``--record``
only the counts of the simulation phase are read (the rates); with it every spike from t = 0 is written to
``spikes/rank0000.bin`` as ``(step, gid)`` with ``gid = node id - 1`` and ``step = round(t / dt) - 1``.

Timings: ``build_s`` = create + connect + ``nest.Prepare()``; ``sim_s`` = the simulation phase's
Prepare/Run/Cleanup calls (presimulation and spike-file writing excluded); ``rtf = sim_s / t_model_s``;
``build_cpu_s`` and ``sim_cpu_s`` the same phases' CPU time over all threads.
The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MAX_CONN_PER_VP = 2**27  # NEST stores at most this many connections per virtual process (thread)


def _load(name: str, rel: str):
    """Import one of the repository's torch-free modules by file path (``.venv-nest`` has no torch)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses resolve the module by name
    spec.loader.exec_module(mod)
    return mod


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Simulate a NetworkSpec (PD14) in NEST; last stdout line is JSON."
    )
    p.add_argument(
        "--spec", required=True, help="NetworkSpec JSON file (evospikenet.sim.pd14_spec(...).to_json)"
    )
    p.add_argument(
        "--t-presim", type=float, default=500.0, help="presimulation (ms), excluded from sim_s/rates"
    )
    p.add_argument("--t-sim", type=float, default=1000.0, help="simulated model time after it (ms)")
    p.add_argument("--seed", type=int, default=1, help="NEST's rng_seed (connectivity, V0, Poisson drive)")
    p.add_argument("--threads", type=int, default=1, help="NEST threads (virtual processes)")
    p.add_argument("--record", action="store_true", help="write every spike to OUT/spikes/rank0000.bin")
    p.add_argument("--chunk-ms", type=float, default=1000.0, help="recorders are emptied every CHUNK ms")
    p.add_argument("--out", required=True, help="run directory (run.json, spikes/)")
    a = p.parse_args(argv)
    if a.t_sim <= 0 or a.t_presim < 0 or a.chunk_ms <= 0:
        p.error("--t-sim and --chunk-ms must be positive and --t-presim non-negative")
    if a.threads < 1:
        p.error("--threads must be at least 1")
    return a


def _redraw_normal(nest, mean: float, rel_sd: float, lo: float, hi: float):
    return nest.math.redraw(nest.random.normal(mean=mean, std=abs(mean * rel_sd)), min=lo, max=hi)


def build(nest, spec, args) -> dict:
    """Create and connect the network; returns the NEST handles and the synapse count."""
    dt = spec.dt
    pops = []
    for p in spec.populations:
        nodes = nest.Create("iaf_psc_exp", p.size)
        nodes.set(
            C_m=p.c_m, tau_m=p.tau_m, tau_syn_ex=p.tau_syn, tau_syn_in=p.tau_syn, E_L=p.e_l, V_th=p.v_th,
            V_reset=p.v_reset, t_ref=p.t_ref, I_e=p.i_e,
        )  # fmt: skip
        nodes.set(V_m=nest.random.normal(mean=p.v0_mean, std=p.v0_sd))
        pops.append(nodes)
    parrots = [nest.Create("parrot_neuron", g.size) for g in spec.generators]

    def connect_block(src, tgt, n: int, w_mean: float, d_mean: float) -> None:
        if n <= 0:
            return
        lo, hi = (0.0, math.inf) if w_mean >= 0 else (-math.inf, 0.0)
        syn = {
            "synapse_model": "static_synapse",
            "weight": _redraw_normal(nest, w_mean, spec.weight_rel_sd, lo, hi),
            "delay": _redraw_normal(nest, d_mean, spec.delay_rel_sd, 0.5 * dt, math.inf),
        }
        nest.Connect(src, tgt, {"rule": "fixed_total_number", "N": int(n)}, syn)

    for a, tgt in enumerate(pops):
        for b, src in enumerate(pops):
            connect_block(src, tgt, spec.n_synapses[a][b], spec.weight_mean[a][b], spec.delay_mean[a][b])
    for g, par in zip(spec.generators, parrots):
        for a, tgt in enumerate(pops):
            connect_block(par, tgt, g.n_synapses[a], g.weight_mean, g.delay_mean)
    n_synapses = int(nest.GetKernelStatus("num_connections"))  # before any device connection

    for g, par in zip(spec.generators, parrots):
        gen = nest.Create(
            "poisson_generator",
            params={"rate": g.rate_hz, "start": max(g.start_ms - dt, 0.0), "stop": max(g.stop_ms - dt, 0.0)},
        )
        nest.Connect(gen, par, "all_to_all", {"delay": dt})
    for p, nodes in zip(spec.populations, pops):
        if p.poisson_rate_hz > 0:
            gen = nest.Create("poisson_generator", params={"rate": p.poisson_rate_hz})
            nest.Connect(gen, nodes, "all_to_all", {"weight": p.poisson_weight, "delay": dt})
    # Recorders: from t = 0 when the spikes are written, else from the end of the presimulation (rates only).
    start = 0.0 if args.record else args.t_presim
    recorders = []
    for nodes in pops:
        rec = nest.Create("spike_recorder", params={"record_to": "memory", "start": start})
        nest.Connect(nodes, rec)
        recorders.append(rec)
    return {"pops": pops, "recorders": recorders, "n_synapses": n_synapses}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    spec_mod = _load("evospikenet_sim_spec", "evospikenet/sim/spec.py")
    rec_mod = _load("evospikenet_sim_recording", "evospikenet/sim/recording.py")
    try:
        spec = spec_mod.NetworkSpec.from_json(args.spec)
    except (OSError, ValueError, TypeError) as err:
        log(f"pd14_nest.py: cannot read the spec {args.spec}: {err}")
        return 2
    if spec.n_synapses_total / args.threads > 0.95 * MAX_CONN_PER_VP:
        need = math.ceil(spec.n_synapses_total / (0.95 * MAX_CONN_PER_VP))
        log(
            f"pd14_nest.py: {spec.n_synapses_total:,} synapses on {args.threads} thread(s) exceed NEST's "
            f"{MAX_CONN_PER_VP:,} connections per virtual process: use --threads {need} or more"
        )
        return 2

    # NEST synchronises its threads every minimum delay (one step here): spinning OpenMP waits cost it up to
    # 8x when the threads outnumber the free cores, so they sleep at barriers unless the caller says otherwise
    # (the variable is read when NEST's OpenMP runtime loads, on the import below).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import nest  # after the argument checks: importing NEST prints a banner and takes a second

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.local_num_threads = args.threads
    nest.resolution = spec.dt
    nest.rng_seed = args.seed

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    net = build(nest, spec, args)
    nest.Prepare()
    build_s, build_cpu_s = time.perf_counter() - t0, time.process_time() - c0
    log(f"built {spec.n_neurons:,} neurons, {net['n_synapses']:,} synapses in {build_s:.1f} s")

    dt = spec.dt
    writer = rec_mod.SpikeWriter(out / "spikes" / "rank0000.bin") if args.record else None
    counts = np.zeros(len(spec.populations), np.int64)  # simulation-phase spikes per population
    sim_start_step = round(args.t_presim / dt)

    def harvest() -> None:
        """Empty the recorders (between Cleanup and Prepare): count, and write the spikes when recording."""
        steps, gids = [], []
        for i, rec in enumerate(net["recorders"]):
            if args.record:
                ev = rec.events
                s = np.rint(np.asarray(ev["times"]) / dt).astype(np.int64) - 1
                steps.append(s)
                gids.append(np.asarray(ev["senders"], np.int64) - 1)
                counts[i] += int(np.count_nonzero(s >= sim_start_step))
            else:
                counts[i] += int(rec.n_events)
            rec.n_events = 0
        if writer is not None:
            s, g = np.concatenate(steps), np.concatenate(gids)
            order = np.lexsort((g, s))  # threads and recorders interleave: ascending (step, gid)
            writer.append(s[order].astype(np.int32), g[order].astype(np.int32))

    prepared = True
    if args.t_presim > 0:
        t1 = time.perf_counter()
        nest.Run(args.t_presim)
        nest.Cleanup()
        prepared = False
        harvest()
        log(f"presimulated {args.t_presim:g} ms in {time.perf_counter() - t1:.1f} s")
    sim_s, sim_cpu_s, done = 0.0, 0.0, 0.0
    while done < args.t_sim - 1e-9:
        chunk = min(args.chunk_ms, args.t_sim - done)
        t1, c1 = time.perf_counter(), time.process_time()
        if not prepared:
            nest.Prepare()
        nest.Run(chunk)
        nest.Cleanup()
        sim_s += time.perf_counter() - t1
        sim_cpu_s += time.process_time() - c1
        prepared = False
        harvest()
        done += chunk
        log(f"simulated {args.t_presim + done:g} ms (simulation phase {sim_s:.1f} s)")
    if writer is not None:
        writer.close()

    t_model_s = args.t_sim / 1000.0
    rates = {p.name: float(c) / (p.size * t_model_s) for p, c in zip(spec.populations, counts)}
    # Recurrent synaptic events: each source population's spikes times its mean out-degree.
    outdeg = [sum(spec.n_synapses[a][b] for a in range(len(spec.populations))) / p.size
              for b, p in enumerate(spec.populations)]  # fmt: skip
    events = float(sum(c * d for c, d in zip(counts, outdeg)))
    peak_rss_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # ru_maxrss is in KiB on Linux
    result = {
        "simulator": "nest",
        "nest_version": nest.__version__,
        "model": spec.name,
        "scale": spec.meta.get("scale"),
        "drive": spec.meta.get("drive"),
        "threads": args.threads,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
        "seed": args.seed,
        "n_neurons": spec.n_neurons,
        "n_synapses": net["n_synapses"],
        "build_s": round(build_s, 3),
        "sim_s": round(sim_s, 3),
        "t_model_s": t_model_s,
        "t_presim_s": args.t_presim / 1000.0,
        "rtf": round(sim_s / t_model_s, 4),
        # CPU time of all threads (process_time): on a shared machine, wall time / CPU time shows how much of
        # the cores the run had; with several threads it includes time spent waiting at barriers
        "build_cpu_s": round(build_cpu_s, 3),
        "sim_cpu_s": round(sim_cpu_s, 3),
        "synaptic_events": events,
        "rates_hz": {k: round(v, 4) for k, v in rates.items()},
        "rates_from": "one spike_recorder per population (memory backend, emptied every chunk)",
        "recorded": args.record,
        "peak_rss_gib": round(peak_rss_gib, 3),
    }
    first = spec.first_ids()
    run = {
        "simulator": "nest",
        "model": spec.name,
        "populations": [
            {"name": p.name, "first_id": first[i], "size": p.size} for i, p in enumerate(spec.populations)
        ],
        "dt_ms": dt,
        "n_steps": round((args.t_presim + args.t_sim) / dt),
        "t_presim_ms": args.t_presim,
        "t_sim_ms": args.t_sim,
        "ranks": 1,
        "spec": json.loads(spec.to_json()),
        "result": result,
    }
    (out / "run.json").write_text(json.dumps(run, indent=1))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
