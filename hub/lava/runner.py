"""Run an exported network on Lava's CPU simulator; executed INSIDE ``.venv-lava`` (Python 3.10, lava-nc).

Usage: ``.venv-lava/bin/python hub/lava/runner.py NET.npz OUT.npz``. It imports nothing of EvoSpikeNet (torch
is not installed there): ``NET.npz`` is written by :func:`hub.lava.bridge.export_lava` and holds ``spec`` (a
JSON string) plus the arrays it names. Every population becomes a ``lava.proc.lif.process.LIF`` and every
projection a ``lava.proc.dense.process.Dense`` (weights and ``weight_exp`` exactly as given: the bridge
already mapped our int8 weights onto Lava's Dense arithmetic); spikes are recorded by
``lava.proc.io.sink.RingBuffer`` sinks. The run uses ``Loihi2SimCfg(select_tag="fixed_pt")``, which selects
the bit-accurate models ``PyLifModelBitAcc`` and ``PyDenseModelBitAcc``. ``OUT.npz`` holds
``spikes_<pop>`` arrays (n_steps, n) int8 and ``elapsed_s``.
"""

import json
import sys
import time

import numpy as np


def run(net_path, out_path):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.lif.process import LIF

    data = np.load(net_path)
    spec = json.loads(str(data["spec"]))
    steps = int(spec["n_steps"])
    lifs, sinks = {}, {}
    for p in spec["populations"]:
        name, n = p["name"], int(p["n"])
        lifs[name] = LIF(
            shape=(n,),
            u=data["u0_" + name].astype(np.int32),
            v=data["v0_" + name].astype(np.int32),
            du=int(p["du"]),
            dv=int(p["dv"]),
            vth=int(p["vth"]),
            bias_mant=data["bias_" + name].astype(np.int32),
            bias_exp=int(p["bias_exp"]),
            name=name,
        )
        sinks[name] = Sink(shape=(n,), buffer=steps)
        lifs[name].s_out.connect(sinks[name].a_in)
    for c in spec["projections"]:
        dense = Dense(
            weights=data["w_" + c["name"]].astype(np.int32), weight_exp=int(c["weight_exp"]), name=c["name"]
        )
        lifs[c["pre"]].s_out.connect(dense.s_in)
        dense.a_out.connect(lifs[c["post"]].a_in)
    first = next(iter(lifs.values()))
    t0 = time.perf_counter()
    first.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    elapsed = time.perf_counter() - t0
    out = {"spikes_" + k: s.data.get().T.astype(np.int8) for k, s in sinks.items()}  # (steps, n)
    first.stop()
    np.savez(out_path, elapsed_s=np.float64(elapsed), **out)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: runner.py NET.npz OUT.npz")
    run(sys.argv[1], sys.argv[2])
