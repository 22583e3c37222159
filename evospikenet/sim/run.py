"""Running a network: build, presimulate, simulate, record, checkpoint and report (on every rank).

``simulate(spec, cfg, comm)`` is what ``evospikenet-sim`` calls on each rank. Timing follows the community's
convention for PD14: ``build_s`` is connectivity and state set-up (until every rank is ready), ``sim_s`` the
wall time of the simulation phase only (presimulation, build and checkpoint writes excluded), and the
real-time factor ``rtf = sim_s / t_model_s``. Rates are spikes per neuron per second over the simulation
phase; ``synaptic_events`` counts synapse activations delivered in that phase over all ranks.
"""

from __future__ import annotations

import json
import resource
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .checkpoint import latest_checkpoint, load_rank_state, save_checkpoint
from .distributed import Comm, make_exchange
from .engine import NativeEngine, load_popnet
from .recording import SpikeWriter
from .spec import NetworkSpec

__all__ = ["RunConfig", "simulate"]

DRAIN_STEPS = 1000  # recorded spikes go to disk at least every this many steps


@dataclass
class RunConfig:
    """How to run a network (what to build is the :class:`NetworkSpec`)."""

    t_presim_ms: float = 500.0  # presimulation: the initial transient, excluded from timing and rates
    t_sim_ms: float = 1000.0  # simulated model time after the presimulation
    seed: int = 1  # keys every random stream (connectivity, initial state, drive)
    record: bool = False  # stream every spike to spikes/rank<r>.bin
    deterministic: bool = False  # exact fixed-point currents: identical spikes on any number of ranks
    procedural: bool = False  # regenerate synapses on each spike instead of storing them
    checkpoint_every_ms: float = 0.0  # model time between checkpoints (0: none)
    backend: str = "native"  # "native" (C++, CPU) or "torch" (tensor operations on any device)
    device: str = "cpu"  # the torch backend's device: "cpu" or "cuda" (each rank takes cuda:<local rank>)
    progress: bool = True  # a progress bar on rank 0 (stderr)

    def __post_init__(self) -> None:
        if self.t_presim_ms < 0 or self.t_sim_ms <= 0:
            raise ValueError(
                f"t_presim must be >= 0 and t_sim > 0 ms, got {self.t_presim_ms} and {self.t_sim_ms}"
            )
        if self.checkpoint_every_ms < 0:
            raise ValueError(f"checkpoint_every must be >= 0 ms, got {self.checkpoint_every_ms}")
        if self.backend not in ("native", "torch"):
            raise ValueError(f"backend must be 'native' or 'torch', got {self.backend!r}")
        if self.backend == "native" and self.device != "cpu":
            raise ValueError("the native engine runs on the CPU; use --backend torch for --device cuda")


def _peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def _run_record(spec: NetworkSpec, cfg: RunConfig, comm: Comm, n_presim: int, n_total: int) -> dict:
    firsts = spec.first_ids()
    return {
        "model": spec.name,
        "spec": "spec.json",
        "config": asdict(cfg),
        "ranks": comm.world,
        "dt_ms": spec.dt,
        "n_presim_steps": n_presim,
        "n_steps": n_total,
        "populations": [
            {"name": p.name, "first_id": f, "size": p.size} for p, f in zip(spec.populations, firsts)
        ],
        "status": "running",
    }


def simulate(spec: NetworkSpec, cfg: RunConfig, comm: Comm, out: str | Path, resume: bool = False) -> dict:
    """Run ``spec`` on this rank's share; every rank returns the same result dict."""
    out = Path(out)
    n_presim, n_sim = round(cfg.t_presim_ms / spec.dt), round(cfg.t_sim_ms / spec.dt)
    n_total = n_presim + n_sim
    every = round(cfg.checkpoint_every_ms / spec.dt) if cfg.checkpoint_every_ms else 0
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        if not resume:
            spec.to_json(out / "spec.json")
            (out / "run.json").write_text(
                json.dumps(_run_record(spec, cfg, comm, n_presim, n_total), indent=1)
            )
    comm.barrier()

    load_popnet()  # compiling the extension (first use only) is not part of the build time
    t0 = time.perf_counter()
    engine = NativeEngine(spec, cfg.seed, comm.rank, comm.world, cfg.procedural, cfg.deterministic)
    if cfg.backend == "torch":
        from .torch_engine import TorchEngine

        engine = TorchEngine(engine, f"cuda:{comm.local_rank}" if cfg.device == "cuda" else cfg.device)
    engine.build()
    meta: dict = {}
    records = 0
    if resume:
        found = latest_checkpoint(out)
        if found is None:
            raise FileNotFoundError(f"{out} has no complete checkpoint to resume from")
        ckpt_dir, meta = found
        state, records = load_rank_state(ckpt_dir, meta, comm.rank, comm.world)
        engine.set_state(state)
    comm.barrier()
    build_s = time.perf_counter() - t0

    info = engine.info()
    step = info["step"]
    writer = None
    if cfg.record:
        writer = SpikeWriter(
            out / "spikes" / f"rank{comm.rank:04d}.bin", keep_records=records if resume else None
        )
        engine.set_recording(True)
    exchange = make_exchange(comm, engine) if comm.distributed else None
    presim_counts = torch.tensor(meta["presim_counts"]) if meta.get("presim_counts") else None
    presim_events = meta.get("presim_events")
    if step >= n_presim and presim_counts is None:  # a run without presimulation
        presim_counts, presim_events = engine.counts(), info["events"]
    bar = None
    if cfg.progress and comm.rank == 0:
        from tqdm import tqdm

        bar = tqdm(
            total=n_total * spec.dt,
            initial=step * spec.dt,
            unit="ms",
            desc=f"{spec.name} ({comm.world} ranks)",
        )
    sim_s = 0.0
    while step < n_total:
        stop = min(n_total, step + DRAIN_STEPS)
        if step < n_presim:
            stop = min(stop, n_presim)  # a chunk lies wholly in the presimulation or wholly after it
        if every:
            stop = min(stop, (step // every + 1) * every)
        t = time.perf_counter()
        if exchange is None:
            engine.run(stop - step)
        else:
            exchange.run(engine, step, stop)
        if writer is not None:
            writer.append(*engine.drain())
        if step >= n_presim:
            sim_s += time.perf_counter() - t
        if bar is not None:
            bar.update((stop - step) * spec.dt)
        step = stop
        if step == n_presim:
            presim_counts, presim_events = engine.counts(), engine.info()["events"]
        if every and step % every == 0 and step < n_total:
            extra = {"presim_counts": presim_counts.tolist() if presim_counts is not None else None}
            extra["presim_events"] = presim_events
            save_checkpoint(out, comm, engine.state(), writer.flush() if writer is not None else 0, extra)
    if bar is not None:
        bar.close()
    if writer is not None:
        writer.close()

    sizes = torch.tensor([p.size for p in spec.populations], dtype=torch.float64)
    counts = comm.sum(engine.counts() - presim_counts)
    info = engine.info()
    totals = comm.sum(
        torch.tensor([info["events"] - presim_events, info["n_synapses_local"]], dtype=torch.int64)
    )
    rss = comm.sum(torch.tensor([_peak_rss_gib()], dtype=torch.float64))
    t_model = n_sim * spec.dt * 1e-3
    n_syn = int(totals[1]) if not cfg.procedural else spec.n_synapses_total
    result = {
        "model": spec.name,
        **{k: spec.meta[k] for k in ("scale", "k_scale", "drive") if k in spec.meta},
        "ranks": comm.world,
        "n_neurons": spec.n_neurons,
        "n_synapses": n_syn,
        "build_s": round(build_s, 3),
        "sim_s": round(sim_s, 3),
        "t_model_s": t_model,
        "rtf": round(sim_s / t_model, 4),
        "synaptic_events": int(totals[0]),
        "rates_hz": {
            p.name: round(float(c) / float(n) / t_model, 4)
            for p, c, n in zip(spec.populations, counts, sizes)
        },
        "peak_rss_gib": round(float(rss[0]), 3),
        "bytes_per_synapse": round(float(rss[0]) * 2**30 / max(n_syn, 1), 2),
        "seed": cfg.seed,
        "deterministic": cfg.deterministic,
        "procedural": cfg.procedural,
        "backend": cfg.backend,
        "device": cfg.device,
        "resumed_from_step": int(meta["step"]) if meta else None,
        "out": str(out),
    }
    if comm.rank == 0:
        run = json.loads((out / "run.json").read_text())
        run.update(status="complete", result=result)
        (out / "run.json").write_text(json.dumps(run, indent=1))
    return result
