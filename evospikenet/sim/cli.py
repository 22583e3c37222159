"""``evospikenet-sim``: brain-scale population networks (PD14) on one or several processes.

    evospikenet-sim pd14 --scale 0.1 --t-sim 1000 --drive poisson --record --out runs/pd14_s01
    torchrun --standalone --nproc-per-node 2 -m evospikenet.sim pd14 --scale 1.0 --t-sim 10000 --out runs/full
    evospikenet-sim pd14 --config recipes/pd14/quick.yaml           # a recipe; flags override its keys
    evospikenet-sim pd14 --resume runs/full                         # continue from the newest checkpoint
    evospikenet-sim analyze runs/pd14_s01 [--against runs/nest_s01] # rates, CVs, correlations, KS, plots
    evospikenet-sim spec --scale 0.1 --out spec.json                # the network as JSON (for NEST)

The last stdout line of ``pd14`` and ``analyze`` is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

__all__ = ["main", "build_parser", "analyze_main"]

ANALYZE_DOC = (
    "Spike statistics of a run directory (rates, ISI CVs, correlations), KS distances to a second run, plots."
)

# Recipe keys and their types; a recipe sets any of them, flags override.
KEYS = {
    "scale": float, "k_scale": float, "t_sim": float, "t_presim": float, "seed": int, "drive": str,
    "thalamic": bool, "record": bool, "deterministic": bool, "procedural": bool, "checkpoint_every": float,
    "out": str, "threads": int, "backend": str, "device": str,
}  # fmt: skip
DEFAULTS = {
    "scale": 1.0, "k_scale": None, "t_sim": 1000.0, "t_presim": 500.0, "seed": 1, "drive": "dc",
    "thalamic": False, "record": False, "deterministic": False, "procedural": False, "checkpoint_every": 0.0,
    "out": "artifacts/sim/pd14", "threads": 0, "backend": "native", "device": "cpu",
}  # fmt: skip


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", type=float, help="size (N_scaling; 1.0 = 77,169 neurons; > 1 keeps in-degrees)")
    p.add_argument("--k-scale", dest="k_scale", type=float, help="fraction of in-degrees (default: --scale)")
    p.add_argument("--drive", choices=["dc", "poisson"], help="background input: its mean as DC, or Poisson")
    p.add_argument("--thalamic", action="store_const", const=True, help="the thalamic pulse at 700 ms")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evospikenet-sim", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("pd14", help="simulate the PD14 cortical microcircuit (torchrun for several ranks)")
    run.add_argument("--config", help="a recipe YAML (recipes/pd14/*.yaml); flags override its keys")
    _model_args(run)
    run.add_argument("--t-sim", dest="t_sim", type=float, help="model time after the presimulation (ms)")
    run.add_argument(
        "--t-presim", dest="t_presim", type=float, help="presimulation (ms), excluded from timing"
    )
    run.add_argument("--seed", type=int, help="seed of every random stream")
    run.add_argument("--record", action="store_const", const=True, help="stream spikes to OUT/spikes/")
    run.add_argument(
        "--deterministic",
        action="store_const",
        const=True,
        help="exact currents: same spikes on any number of ranks",
    )
    run.add_argument(
        "--procedural",
        action="store_const",
        const=True,
        help="regenerate synapses per spike (memory ~ neurons)",
    )
    run.add_argument(
        "--checkpoint-every", dest="checkpoint_every", type=float, help="model ms between checkpoints"
    )
    run.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its newest checkpoint")
    run.add_argument("--out", help="run directory (default artifacts/sim/pd14)")
    run.add_argument("--threads", type=int, help="threads per rank for the build (default: cores / ranks)")
    run.add_argument(
        "--backend", choices=["native", "torch"], help="native C++ engine (CPU) or torch operations"
    )
    run.add_argument(
        "--device", choices=["cpu", "cuda"], help="the torch backend's device (cuda: one GPU per rank)"
    )
    run.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    spec = sub.add_parser("spec", help="write the PD14 network description as JSON")
    _model_args(spec)
    spec.add_argument("--out", required=True, help="JSON file to write")
    sub.add_parser(
        "analyze", help="statistics and plots of a run directory (see `analyze --help`)", add_help=False
    )
    return parser


def _settings(args: argparse.Namespace) -> dict:
    """Defaults, then the recipe's keys, then the flags given."""
    merged = dict(DEFAULTS)
    if getattr(args, "config", None):
        import yaml

        path = Path(args.config)
        if not path.exists():
            raise SystemExit(f"evospikenet-sim: recipe {path} not found")
        recipe = yaml.safe_load(path.read_text()) or {}
        unknown = sorted(set(recipe) - set(KEYS))
        if unknown:
            raise SystemExit(f"evospikenet-sim: {path}: unknown key(s) {unknown}; known: {sorted(KEYS)}")
        for key, value in recipe.items():
            if (
                value is not None
                and not isinstance(value, KEYS[key])
                and not (KEYS[key] is float and isinstance(value, int))
            ):
                raise SystemExit(
                    f"evospikenet-sim: {path}: {key} must be {KEYS[key].__name__}, got {value!r}"
                )
            merged[key] = value
    merged.update({k: v for k, v in vars(args).items() if k in KEYS and v is not None})
    return merged


def _spec(s: dict):
    from .pd14 import PD14Config, pd14_spec

    return pd14_spec(
        PD14Config(scale=s["scale"], k_scale=s["k_scale"], drive=s["drive"], thalamic=s["thalamic"])
    )


def _run_pd14(args: argparse.Namespace) -> int:
    import torch

    from .distributed import PeerLost, init_comm
    from .run import RunConfig, simulate
    from .spec import NetworkSpec

    resume = args.resume is not None
    if resume:
        run_dir = Path(args.resume)
        if not (run_dir / "run.json").exists():
            raise SystemExit(f"evospikenet-sim: {run_dir} is not a run directory (no run.json)")
        saved = json.loads((run_dir / "run.json").read_text())
        spec, cfg = NetworkSpec.from_json(run_dir / "spec.json"), RunConfig(**saved["config"])
        cfg.progress = args.progress
        out, threads = run_dir, args.threads or 0
    else:
        s = _settings(args)
        spec = _spec(s)
        cfg = RunConfig(
            t_presim_ms=s["t_presim"], t_sim_ms=s["t_sim"], seed=s["seed"], record=s["record"],
            deterministic=s["deterministic"], procedural=s["procedural"], checkpoint_every_ms=s["checkpoint_every"],
            backend=s["backend"], device=s["device"], progress=args.progress,
        )  # fmt: skip
        out, threads = Path(s["out"]), s["threads"]
    comm = init_comm(cuda=cfg.device == "cuda")
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // comm.local_world))
    try:
        result = simulate(spec, cfg, comm, out, resume=resume)
    except PeerLost as err:
        print(f"evospikenet-sim: {err}", file=sys.stderr, flush=True)
        os._exit(3)  # the process group cannot be torn down cleanly without the lost peer
    comm.close()
    if comm.rank == 0:
        print(json.dumps(result), flush=True)
    return 0


def _json_safe(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    return obj


def analyze_main(argv: list[str]) -> int:
    """``evospikenet-sim analyze DIR [--against DIR2] ...``: statistics, KS distances and plots; the last
    stdout line is one JSON object. Returns the exit status (2 for bad input, with the reason on stderr)."""
    p = argparse.ArgumentParser(prog="evospikenet-sim analyze", description=ANALYZE_DOC)
    p.add_argument("run_dir", help="run directory (run.json and spikes/rank*.bin, made with --record)")
    p.add_argument("--against", help="a second run directory of the same network: KS distances and overlays")
    p.add_argument("--warmup-ms", type=float, default=500.0, help="discard spikes up to this time (ms)")
    p.add_argument("--bin-ms", type=float, default=2.0, help="bin width of the spike-count correlations (ms)")
    p.add_argument("--n-corr", type=int, default=200, help="neurons per population in the correlation sample")
    p.add_argument("--seed", type=int, default=0, help="seed of the correlation subsample")
    p.add_argument("--out", help="where the plots and stats go (default RUN_DIR/analysis)")
    p.add_argument("--no-plots", action="store_true", help="statistics only")
    a = p.parse_args(argv)
    import numpy as np

    from . import analysis, plots  # numpy and matplotlib only when analysing

    kw = {"warmup_ms": a.warmup_ms, "bin_ms": a.bin_ms, "n_corr": a.n_corr, "seed": a.seed}
    try:
        st = analysis.spike_statistics(a.run_dir, **kw)
        other = analysis.spike_statistics(a.against, **kw) if a.against else None
        result = {
            "run": str(a.run_dir),
            "warmup_ms": a.warmup_ms,
            "bin_ms": a.bin_ms,
            "n_spikes": st.n_spikes,
        }
        result["populations"] = analysis.summary(st)
        if other is not None:
            result["against"] = str(a.against)
            result["populations_against"] = analysis.summary(other)
            result.update(analysis.compare(st, other))
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"evospikenet-sim analyze: error: {err}", file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else Path(a.run_dir) / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        out / "stats.npz",
        **{f"{p.name}_{k}": getattr(p, k) for p in st.populations for k in analysis.STATS},
    )
    if not a.no_plots:
        result["plots"] = [
            str(plots.plot_raster(st, out / "raster.png")),
            str(plots.plot_distributions(st, other, out / "distributions.png")),
        ]
    result = _json_safe(result)
    (out / "summary.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["analyze"]:
        return analyze_main(argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "spec":
        _spec({**DEFAULTS, **{k: v for k, v in vars(args).items() if v is not None}}).to_json(args.out)
        print(json.dumps({"spec": args.out}))
        return 0
    try:
        return _run_pd14(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"evospikenet-sim: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
