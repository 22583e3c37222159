"""Vogels & Abbott (2005) CUBA network in Brian2; prints one JSON line with wall time and mean rate.

Runs in its own venv (.venv-brian2, see scripts/setup_bench.sh) because Brian2 2.9 does not import with
numpy 2.4. Usage: ``python scripts/brian2_cuba.py --mode runtime|standalone [--duration 1.0] [--seed 1]``.
``runtime`` is Cython code generation (the first, compiling run is done as a warm-up and not timed);
``standalone`` is the C++ standalone device, with build (code generation + compile) timed apart from the run.
``wall_s`` is the simulation's wall time and ``cpu_s`` the CPU time spent on it (for ``standalone``, of the
whole binary).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time


def build(b2, duration: float):
    """The network of Brian2's ``examples/CUBA.py`` (4000 LIF, 80/20 E/I, p = 0.02, dt = 0.1 ms)."""
    ms, mV, second = b2.ms, b2.mV, b2.second
    b2.defaultclock.dt = 0.1 * ms
    taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
    Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    ns = dict(taum=taum, taue=taue, taui=taui, Vt=Vt, Vr=Vr, El=El)
    P = b2.NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms, method="exact",
                       name="cuba_p", namespace=ns)  # fmt: skip
    P.v = "Vr + rand() * (Vt - Vr)"
    P.ge = 0 * mV
    P.gi = 0 * mV
    we, wi = (60 * 0.27 / 10) * mV, (-20 * 4.5 / 10) * mV
    Ce = b2.Synapses(P, P, on_pre="ge += we", name="cuba_ce", namespace=dict(we=we))
    Ci = b2.Synapses(P, P, on_pre="gi += wi", name="cuba_ci", namespace=dict(wi=wi))
    Ce.connect("i<3200", p=0.02)
    Ci.connect("i>=3200", p=0.02)
    mon = b2.SpikeMonitor(P, name="cuba_mon")
    net = b2.Network(P, Ce, Ci, mon)
    return net, mon, duration * second


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--mode", choices=("runtime", "standalone"), default="runtime")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    import brian2 as b2

    b2.prefs.logging.console_log_level = "ERROR"
    out = {"mode": args.mode, "brian2": b2.__version__}
    if args.mode == "runtime":
        b2.prefs.codegen.target = "cython"
        b2.seed(args.seed)
        net, mon, dur = build(b2, args.duration)
        net.run(10 * b2.ms)  # warm-up: compiles (or loads cached) Cython code; same names, same code
        del net, mon
        b2.start_scope()
        b2.seed(args.seed)
        net, mon, dur = build(b2, args.duration)
        t0, c0 = time.perf_counter(), time.process_time()
        net.run(dur)
        out["wall_s"], out["cpu_s"] = time.perf_counter() - t0, time.process_time() - c0
    else:
        d = tempfile.mkdtemp(prefix="brian2_cuba_")
        b2.set_device("cpp_standalone", directory=d, build_on_run=False)
        b2.prefs.devices.cpp_standalone.openmp_threads = 0
        b2.seed(args.seed)
        net, mon, dur = build(b2, args.duration)
        net.run(dur)
        t0 = time.perf_counter()
        b2.device.build(directory=d, compile=True, run=False, debug=False)
        out["build_s"] = time.perf_counter() - t0
        t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        b2.device.run(directory=d, with_output=False)
        out["run_process_s"] = time.perf_counter() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        # CPU time of the whole binary (start, run, writing results), an upper bound of the run's
        out["cpu_s"] = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        # the simulation's own run time, as the standalone binary measures it (no process start or I/O)
        out["wall_s"] = float(b2.device._last_run_time)
    out["n_spikes"] = int(mon.num_spikes)
    out["rate_hz"] = mon.num_spikes / 4000 / args.duration
    print(json.dumps(out))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
