"""Vogels & Abbott (2005) CUBA network in NEST 3.10; prints one JSON line with wall time and mean rate.

Runs in its own venv (``.venv-nest``: ``pip install nest-simulator==3.10.0``) and is driven by
``benchmarks/core.py`` as a subprocess. Usage: ``python scripts/nest_cuba.py [--duration 1.0] [--seed 1]
[--threads 1]``.

The network is the one of ``scripts/brian2_cuba.py``: 4000 neurons (3200 excitatory, 800 inhibitory),
each pair connected with probability 0.02 (no autapses), ``dt = 0.1`` ms, one synaptic delay of one step,
``tau_m = 20`` ms, ``V_th = -50``, ``V_reset = -60``, ``E_L = -49`` mV, 5 ms refractory, initial ``V``
uniform in ``[V_reset, V_th]``. Brian2 writes the synaptic input as voltages ``g`` (``dv/dt = (g_e + g_i -
(v - E_L)) / tau_m``, ``g_e += 1.62`` mV, ``g_i += -9`` mV, decaying with 5 and 10 ms); NEST's
``iaf_psc_exp`` takes currents (``C dV/dt = -(V - E_L) C / tau_m + I``), so each weight is
``w_pA = w_mV * C_m / tau_m`` (``C_m = 250`` pF): 20.25 and -112.5 pA. Both integrate exactly.
``wall_s`` times ``nest.Simulate`` only (network construction is timed apart as ``build_s``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

C_M, TAU_M = 250.0, 20.0  # pF, ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=1.0, help="model time (s)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    import nest

    nest.verbosity = nest.VerbosityLevel.ERROR
    nest.ResetKernel()
    nest.set(resolution=0.1, local_num_threads=args.threads, rng_seed=args.seed)
    t0 = time.perf_counter()
    params = dict(C_m=C_M, tau_m=TAU_M, t_ref=5.0, E_L=-49.0, V_th=-50.0, V_reset=-60.0, tau_syn_ex=5.0,
                  tau_syn_in=10.0, I_e=0.0)  # fmt: skip
    pop = nest.Create("iaf_psc_exp", 4000, params=params)
    pop.V_m = nest.random.uniform(-60.0, -50.0)
    rule = {"rule": "pairwise_bernoulli", "p": 0.02, "allow_autapses": False}
    we, wi = 1.62 * C_M / TAU_M, -9.0 * C_M / TAU_M  # mV -> pA
    nest.Connect(pop[:3200], pop, rule, {"synapse_model": "static_synapse", "weight": we, "delay": 0.1})
    nest.Connect(pop[3200:], pop, rule, {"synapse_model": "static_synapse", "weight": wi, "delay": 0.1})
    rec = nest.Create("spike_recorder")
    nest.Connect(pop, rec)
    build_s = time.perf_counter() - t0
    t0, c0 = time.perf_counter(), time.process_time()
    nest.Simulate(args.duration * 1000.0)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = int(rec.n_events)
    out = {"nest": str(nest.__version__), "threads": args.threads, "build_s": build_s, "wall_s": wall, "cpu_s": cpu,
           "n_spikes": n, "rate_hz": n / 4000 / args.duration}  # fmt: skip
    print(json.dumps(out))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
