"""Run an exported network on Lava's CPU simulator; executed INSIDE ``.venv-lava`` (Python 3.10, lava-nc).

Usage: ``.venv-lava/bin/python hub/lava/runner.py NET.npz OUT.npz [INPUTS.npz]``. It imports nothing of
EvoSpikeNet (torch is not installed there). ``NET.npz`` holds ``spec`` (a JSON string) plus the integer
arrays it names; two formats:

* ``evospikenet-loihi/1`` (a trained classifier, :mod:`evospikenet.quant.loihi`): every population becomes
  a ``LIFReset`` (state cleared at the start of each sample's window), every connection a ``Dense`` with
  weights ``2 W`` and ``weight_exp = exp - 1`` (graded inputs with ``num_message_bits = 8``), every graded
  input a ``RingBuffer`` source. Samples stream back to back, ``T`` steps each; a connection delays by one
  step, so a population at pipeline depth ``d`` sees sample ``b`` at steps ``b T + d + 1 ... b T + d + T``
  (Lava counts steps from 1) and resets at the first of them; an input feeding depth ``d`` is emitted one
  step earlier. ``INPUTS.npz`` holds ``in_<name>`` arrays (B, n). ``OUT.npz`` gets ``spikes_<pop>``
  (T, B, n) int8 for every spiking population, ``v_<readout>`` (B, n) int32 (the readout voltage after the
  last step, read by a ``Monitor``) and ``elapsed_s``.
* the core-network format of :func:`hub.lava.bridge.export_lava` (``LIF`` + ``Dense``, driven by biases):
  ``OUT.npz`` gets ``spikes_<pop>`` (n_steps, n) int8 and ``elapsed_s``.

Both run ``Loihi2SimCfg(select_tag="fixed_pt")``, which picks the bit-accurate ``PyLifResetModelBitAcc``,
``PyLifModelBitAcc`` and ``PyDenseModelBitAcc`` models.
"""

import json
import sys
import time

import numpy as np


def _run(first, steps):
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    t0 = time.perf_counter()
    first.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
    return time.perf_counter() - t0


def run_loihi_net(spec, data, inputs):
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor

    T, readout = int(spec["time_steps"]), spec["readout"]
    n_in = {k: int(v) for k, v in spec["inputs"].items()}
    batch = {int(inputs["in_" + k].shape[0]) for k in n_in}
    if len(batch) != 1:
        raise SystemExit(f"inputs disagree on the number of samples: {sorted(batch)}")
    B = batch.pop()
    depth = {}
    for p in spec["populations"]:
        pre = [c["pre"] for c in spec["connections"] if c["post"] == p["name"] and c["pre"] not in n_in]
        depth[p["name"]] = 1 + max((depth[q] for q in pre), default=0)
    steps = B * T + max(depth.values()) + 1
    lifs, sinks = {}, {}
    for p in spec["populations"]:
        name, d = p["name"], depth[p["name"]]
        lifs[name] = LIFReset(
            shape=(int(p["n"]),),
            du=int(p["du"]),
            dv=int(p["dv"]),
            vth=int(p["vth"]),
            bias_mant=data["bias_" + name].astype(np.int32),
            bias_exp=int(p["bias_exp"]),
            reset_interval=T,
            reset_offset=(d + 1) % T,
            name=name,
        )
        if name != readout:
            sinks[name] = Sink(shape=(int(p["n"]),), buffer=steps)
            lifs[name].s_out.connect(sinks[name].a_in)
    sources = {}
    for k, n in n_in.items():
        fed = {depth[c["post"]] for c in spec["connections"] if c["pre"] == k}
        d = fed.pop()
        arr = np.zeros((n, steps), dtype=np.int32)
        x = inputs["in_" + k].astype(np.int32)  # (B, n)
        for j in range(T):  # sample b is emitted at steps b T + d + j (column b T + d - 1 + j)
            arr[:, d - 1 + j : d - 1 + j + B * T : T] = x.T
        sources[k] = Source(data=arr)
    for c in spec["connections"]:
        graded = c["pre"] in n_in
        dense = Dense(
            weights=2 * data["w_" + c["name"]].astype(np.int32),
            weight_exp=int(c["exp"]) - 1,
            num_message_bits=8 if graded else 0,
            name=c["name"],
        )
        (sources[c["pre"]] if graded else lifs[c["pre"]]).s_out.connect(dense.s_in)
        dense.a_out.connect(lifs[c["post"]].a_in)
    mon = Monitor()
    mon.probe(lifs[readout].v, steps)
    first = lifs[readout]
    elapsed = _run(first, steps)
    out = {}
    idx = np.arange(B)[:, None] * T + np.arange(T)[None, :]  # (B, T): step j of sample b, before the offset
    for name, s in sinks.items():
        rec = s.data.get().astype(np.int8)  # (n, steps): column tau - 1
        out["spikes_" + name] = rec[:, idx + depth[name]].transpose(2, 1, 0)  # (T, B, n)
    v = mon.get_data()[lifs[readout].name]["v"]  # (steps, n)
    out["v_" + readout] = np.asarray(v)[np.arange(B) * T + depth[readout] + T - 1].astype(np.int32)
    first.stop()
    return out, elapsed


def run_core_net(spec, data):
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.lif.process import LIF

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
    elapsed = _run(first, steps)
    out = {"spikes_" + k: s.data.get().T.astype(np.int8) for k, s in sinks.items()}  # (steps, n)
    first.stop()
    return out, elapsed


def main(argv):
    if len(argv) not in (2, 3):
        raise SystemExit("usage: runner.py NET.npz OUT.npz [INPUTS.npz]")
    data = np.load(argv[0], allow_pickle=False)
    spec = json.loads(str(data["spec"]))
    if spec.get("format") == "evospikenet-loihi/1":
        if len(argv) != 3:
            raise SystemExit("an evospikenet-loihi/1 network needs INPUTS.npz")
        out, elapsed = run_loihi_net(spec, data, np.load(argv[2], allow_pickle=False))
    else:
        out, elapsed = run_core_net(spec, data)
    np.savez(argv[1], elapsed_s=np.float64(elapsed), **out)


if __name__ == "__main__":
    main(sys.argv[1:])
