"""Core benchmarks of EvoSpikeNet beside its peers: ``python benchmarks/core.py [--quick]``.

1. ``train_step``: ``Linear(N, N)`` + LIF (and ``Linear + LIF + Linear + LIF`` in ``two_layer_*``), the
   forward over all T then the backward of ``spikes.sum()``, in EvoSpikeNet, snnTorch (tutorial idiom and
   ``Linear`` hoisted over T), SpikingJelly 2.0, Norse and Spyx (JAX), each configured as the same layer
   with the same weights and input (``benchmarks/_peers.py``); median seconds per step (``*_s``, wall) and
   the process CPU seconds of the same steps (``*_cpu_s``).
2. ``cuba``: Vogels-Abbott CUBA (4000 LIF, 80/20 E/I, p = 0.02, dt = 0.1 ms, 1 s of model time) on
   EvoSpikeNet's native float and int16 cores, Brian2 (Cython runtime and C++ standalone,
   scripts/brian2_cuba.py in .venv-brian2) and NEST 3.10 (scripts/nest_cuba.py in .venv-nest).
3. ``memory``: bytes per synapse per path; one propagation step of a 1M-neuron, 1e8-synapse network with 1 %
   spiking, event-driven vs torch CSR SpMV (int64 and int32 indices) and a torch gather of only the spiking
   rows; the largest network that simulates 100 steps in < 60 s, < 16 GiB.

Everything runs on one CPU thread (torch, XLA, NEST, Brian2). The peers of one configuration are timed in
turns (one step of each, then the next round), so that all of them run under the same conditions.
Progress goes to stderr; the last stdout line is one JSON object. A missing peer gives null (reason on
stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from types import SimpleNamespace

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]
warnings.filterwarnings("ignore")

import _peers  # noqa: E402
from _cuba import cuba_flats  # noqa: E402

from evospikenet.core import native  # noqa: E402

# (key, layer widths, B, T, p)
TRAIN_CONFIGS = [
    ("n4096_b16_t100_p0.1", [4096, 4096], 16, 100, 0.1),
    ("n4096_b16_t100_p0.5", [4096, 4096], 16, 100, 0.5),
    ("n1024_b16_t500_p0.1", [1024, 1024], 16, 500, 0.1),
    ("two_layer_n1024_b16_t100_p0.1", [1024, 1024, 1024], 16, 100, 0.1),
]
BRIAN2_PY = os.path.join(ROOT, ".venv-brian2", "bin", "python")
NEST_PY = os.path.join(ROOT, ".venv-nest", "bin", "python")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def timeit(fn, reps: int, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` over ``reps`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def time_in_turns(steps: dict, reps: int) -> dict:
    """``{name: (median wall s, median process CPU s)}``: one warm-up call each, then ``reps`` rounds of one
    call of every step; a step that raises gets None (reason on stderr)."""
    live, walls, cpus = {}, {}, {}
    for name, fn in steps.items():
        try:
            fn()
            live[name], walls[name], cpus[name] = fn, [], []
        except Exception as exc:
            log(f"  {name}: null ({type(exc).__name__}: {exc})")
    for _ in range(reps):
        for name, fn in live.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            walls[name].append(time.perf_counter() - t0)
            cpus[name].append(time.process_time() - c0)
    out = {name: None for name in steps}
    out.update({n: (statistics.median(walls[n]), statistics.median(cpus[n])) for n in live})
    return out


# ------------------------------------------------------------------------------------------- train_step
def bench_train(quick: bool) -> dict:
    out = {}
    for key, sizes, b, t, p in TRAIN_CONFIGS:
        x = (torch.rand(t, b, sizes[0], generator=torch.Generator().manual_seed(0)) < p).float()  # (T, B, N)
        layers = _peers.make_layers(sizes, seed=1)
        steps = {}
        for name, build in _peers.BUILDERS.items():
            try:
                steps[name] = build(x, layers).step
            except Exception as exc:  # a missing or broken peer must not stop the run
                steps[name] = None
                log(f"train_step {key} {name}: null ({type(exc).__name__}: {exc})")
        timed = time_in_turns({n: f for n, f in steps.items() if f is not None}, reps=3 if quick else 7)
        row = {}
        for name in _peers.BUILDERS:
            r = timed.get(name)
            row[f"{name}_s"], row[f"{name}_cpu_s"] = r if r else (None, None)
            if r:
                log(f"train_step {key} {name}: {r[0]:.3f} s (cpu {r[1]:.3f} s)")
        peers = {n: row[f"{n}_s"] for n in _peers.BUILDERS if n != "evospikenet" and row[f"{n}_s"]}
        if peers and row["evospikenet_s"]:
            best = min(peers, key=peers.get)
            row["fastest_peer"] = best
            row["ratio_to_fastest_peer"] = row["evospikenet_s"] / peers[best]
            cpu = {n: row[f"{n}_cpu_s"] for n in peers}
            row["cpu_ratio_to_fastest_peer"] = row["evospikenet_cpu_s"] / min(cpu.values())
        out[key] = row
    return out


# ------------------------------------------------------------------------------------------------ cuba
def _run_script(python: str, script: str, args: list[str], what: str, setup: str) -> dict | None:
    """Run ``scripts/<script>`` with another venv's Python and return its last JSON line, or None."""
    if not os.path.exists(python):
        log(f"{what}: null (no {python}; {setup})")
        return None
    cmd = [python, os.path.join(ROOT, "scripts", script), *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        return json.loads(r.stdout.strip().splitlines()[-1])
    except Exception as exc:
        log(f"{what}: null ({type(exc).__name__}: {exc})")
        return None


def bench_cuba(quick: bool) -> dict:
    out = {}
    fl, it = cuba_flats()
    steps = 10_000  # 1 s at 0.1 ms
    for name, flat in (("float", fl), ("int", it)):
        native.run_flat(flat, 100)  # builds the extension if needed
        res = {}

        def run(flat=flat, res=res):
            c0 = time.process_time()
            res["s"], _, _ = native.run_flat(flat, steps)
            res.setdefault("cpu", []).append(time.process_time() - c0)

        out[f"evospikenet_{name}_s"] = timeit(run, reps=3 if quick else 7, warmup=0)
        out[f"evospikenet_{name}_cpu_s"] = statistics.median(res["cpu"])
        out[f"evospikenet_{name}_rate_hz"] = res["s"].numel() / flat.n / (steps * 1e-4)
        log(
            f"cuba evospikenet {name}: {out[f'evospikenet_{name}_s']:.3f} s "
            f"(cpu {out[f'evospikenet_{name}_cpu_s']:.3f} s), {out[f'evospikenet_{name}_rate_hz']:.2f} Hz"
        )
    for mode in ("runtime", "standalone"):
        r = _run_script(BRIAN2_PY, "brian2_cuba.py", ["--mode", mode], f"brian2 {mode}",
                        "run scripts/setup_bench.sh")  # fmt: skip
        out[f"brian2_{mode}_s"] = r["wall_s"] if r else None
        out[f"brian2_{mode}_cpu_s"] = r.get("cpu_s") if r else None
        out[f"brian2_{mode}_rate_hz"] = r["rate_hz"] if r else None
        if mode == "standalone":
            out["brian2_standalone_build_s"] = r["build_s"] if r else None
        log(f"cuba brian2 {mode}: {r}")
    r = _run_script(NEST_PY, "nest_cuba.py", ["--threads", "1"], "nest",
                    "create .venv-nest with nest-simulator==3.10.0")  # fmt: skip
    for k in ("s", "cpu_s", "rate_hz", "build_s"):
        out[f"nest_{k}"] = r[{"s": "wall_s"}.get(k, k)] if r else None
    log(f"cuba nest: {r}")
    return out


# ---------------------------------------------------------------------------------------------- memory
def _random_csr(n: int, k: int, dtype: torch.dtype, seed: int = 0):
    """Fixed out-degree k: crow int32 (n + 1), col int32 (n k) uniform, values (n k) of ``dtype``."""
    g = torch.Generator().manual_seed(seed)
    crow = torch.arange(0, n * k + 1, k, dtype=torch.int64).to(torch.int32)
    col = torch.randint(0, n, (n * k,), generator=g, dtype=torch.int32)
    if dtype == torch.int8:
        val = torch.randint(-5, 6, (n * k,), generator=g, dtype=torch.int8)
    else:
        val = torch.randn(n * k, generator=g, dtype=dtype)
    return crow, col, val


def _bytes(*ts) -> int:
    return sum(t.numel() * t.element_size() for t in ts)


def _propagation(quick: bool) -> dict:
    """Bytes per synapse and one propagation step at 1M neurons, 1e8 synapses, 1 % spiking."""
    out = {}
    n, k = 1_000_000, 100  # 1e8 synapses
    crow, col, vi = _random_csr(n, k, torch.int8)
    nnz = col.numel()
    out["int_bytes_per_synapse"] = _bytes(crow, col, vi) / nnz
    out["float_bytes_per_synapse"] = (_bytes(crow, col) + 4 * nnz) / nnz
    out["torch_default_bytes_per_synapse"] = (8 * (n + 1) + 8 * nnz + 4 * nnz) / nnz  # int64 indices, float32
    out["torch_int32_bytes_per_synapse"] = (4 * (n + 1) + 4 * nnz + 4 * nnz) / nnz  # int32 indices, float32
    ids = (
        torch.randperm(n, generator=torch.Generator().manual_seed(1))[: n // 100].sort().values
    )  # 1 % spiking
    acc_i = torch.zeros(n, dtype=torch.int32)

    def ev_int():
        acc_i.zero_()
        native.propagate_events(crow, col, vi, ids, acc_i)

    out["event_step_int_s"] = timeit(ev_int, reps=5 if quick else 20)
    vf = torch.randn(nnz, generator=torch.Generator().manual_seed(2))
    acc_f = torch.zeros(n)

    def ev_float():
        acc_f.zero_()
        native.propagate_events(crow, col, vf, ids, acc_f)

    out["event_step_s"] = timeit(ev_float, reps=5 if quick else 20)
    # SpMV: the CSR of W^T (post-synaptic rows) times the dense 0/1 spike vector; a random W^T has the same
    # structure as the random W above, so the same arrays serve as W^T.
    s = torch.zeros(n, 1)
    s[ids] = 1.0
    # torch's default CSR (int64 indices, float32 values), then the same with int32 indices
    for key, idx in (("csr_spmv_step_s", torch.int64), ("csr_int32_spmv_step_s", torch.int32)):
        wt = torch.sparse_csr_tensor(crow.to(idx), col.to(idx), vf, (n, n))
        out[key] = timeit(lambda wt=wt: torch.mm(wt, s), reps=3 if quick else 10)
        del wt
    # event-driven in plain torch: gather the synapses of the spiking rows only, then index_add_
    crow64 = crow.long()
    acc_g = torch.zeros(n)

    def torch_gather():
        start = crow64[ids]  # (m,) first synapse of each spiking row
        cnt = crow64[ids + 1] - start
        pos = torch.repeat_interleave(start - (cnt.cumsum(0) - cnt), cnt) + torch.arange(int(cnt.sum()))
        acc_g.zero_()
        acc_g.index_add_(0, col[pos].long(), vf[pos])

    out["torch_gather_step_s"] = timeit(torch_gather, reps=5 if quick else 20)
    ev_float()
    if not torch.allclose(acc_g, acc_f, atol=1e-4):
        raise RuntimeError("the torch gather baseline disagrees with the event-driven propagation")
    out["event_speedup_vs_spmv"] = out["csr_spmv_step_s"] / out["event_step_s"]
    out["event_speedup_vs_torch_gather"] = out["torch_gather_step_s"] / out["event_step_s"]
    log(f"memory: event {out['event_step_s'] * 1e3:.1f} ms (int {out['event_step_int_s'] * 1e3:.1f} ms), "
        f"spmv {out['csr_spmv_step_s'] * 1e3:.1f} ms (int32 {out['csr_int32_spmv_step_s'] * 1e3:.1f} ms), "
        f"torch gather {out['torch_gather_step_s'] * 1e3:.1f} ms")  # fmt: skip
    return out


def bench_memory(quick: bool) -> dict:
    out = _propagation(quick)  # its 1e8-synapse arrays are freed on return
    out.update(_largest(quick))
    return out


def _largest(quick: bool, k: int = 100, limit_s: float = 60.0, limit_bytes: int = 16 << 30) -> dict:
    """Double n (out-degree k, int16 core, ~1 % of neurons spiking per step) while 100 steps stay < 60 s and
    the arrays < 16 GiB (and < 60 % of this machine's free memory); --quick stops at 2M neurons."""
    avail = _available_bytes()
    cap_bytes = min(limit_bytes, int(0.6 * avail)) if avail else limit_bytes
    n_max = 2_000_000 if quick else 1 << 40
    best, n = None, 1_000_000
    while n <= n_max:
        need = n * k * 5 + n * 40  # CSR (5 B/synapse + row pointer) + per-neuron state and buffers
        if need > cap_bytes:
            log(
                f"largest: stop before n={n}: needs ~{need / 2**30:.1f} GiB > cap {cap_bytes / 2**30:.1f} GiB"
            )
            break
        crow, col, val = _random_csr(n, k, torch.int8, seed=3)
        flat = SimpleNamespace(
            kind="int16", n=n, leak_shift=torch.full((n,), 15, dtype=torch.int32),
            v_th=torch.full((n,), 1000, dtype=torch.int16),
            v_reset=torch.zeros(n, dtype=torch.int16), v_rest=torch.zeros(n, dtype=torch.int16),
            refractory_steps=torch.zeros(n, dtype=torch.int32), reset="zero",
            bias=torch.full((n,), 10, dtype=torch.int32),
            v0=torch.randint(0, 1000, (n,), dtype=torch.int16),
            synapses=[SimpleNamespace(crow=crow, col=col, values=val, decay=0.0, syn_shift=-1, delay=1)],
        )  # fmt: skip
        t0 = time.perf_counter()
        s, _, _ = native.run_flat(flat, 100)
        dt = time.perf_counter() - t0
        log(
            f"largest: n={n} synapses={n * k}: 100 steps in {dt:.1f} s, "
            f"{s.numel() / n / 100:.4f} spikes/neuron/step"
        )
        del crow, col, val, flat, s
        if dt >= limit_s:
            break
        best = n
        n *= 2
    return {
        "largest_neurons": best,
        "largest_synapses": best * k if best else None,
        "largest_search": f"n doubled from 1e6 (out-degree {k}, int16 core, ~1% spiking/step) up to "
        f"{'2e6 (--quick bound)' if quick else 'the limits'}; memory cap {cap_bytes / 2**30:.1f} GiB "
        f"(16 GiB or 60% of free RAM, whichever is less)",
    }


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo") as f:
            return next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), None)
    except OSError:
        return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, bounded largest-network search")
    ap.add_argument(
        "--only", choices=("train_step", "cuba", "memory"), action="append", help="run only these"
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.environ.setdefault("XLA_FLAGS", _peers.XLA_ONE_THREAD)
    parts = {"train_step": bench_train, "cuba": bench_cuba, "memory": bench_memory}
    t0 = time.perf_counter()
    result = {}
    for name, fn in parts.items():
        if args.only and name not in args.only:
            continue
        log(f"== {name}")
        result[name] = fn(args.quick)
    load = os.getloadavg()
    result["conditions"] = {
        "cpu_model": _cpu_model(),
        "quick": args.quick, "torch_threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "loadavg_1_5_15": [round(x, 2) for x in load], "wall_s": round(time.perf_counter() - t0, 1),
    }  # fmt: skip
    print(json.dumps(result))


if __name__ == "__main__":
    main()
