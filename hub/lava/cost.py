r"""What a :class:`evospikenet.quant.loihi.LoihiNet` costs on a Loihi 2 chip, per sample.

Counted exactly from a run (:func:`evospikenet.quant.loihi.run_loihi` or Lava's, the same numbers):

* **SOPs** (synaptic operations): every spike of a population times the synapses it reaches, plus, for a
  graded input, every nonzero input value times its synapses, at every step it is sent.
* **Neuron updates**: every neuron of every population at every step (Loihi updates all of them).
* **Cores**: each population and the synapses that feed it are placed on
  ``max(ceil(n / neurons_per_core), ceil(synapses_in / synapses_per_core))`` cores, as Lava places one
  process per core unless it overflows one; fan-in is checked against the per-core input-axon limit.
* **Latency**: in steps, a sample's first result needs ``T + depth`` steps (a connection delays by one);
  streamed samples leave one per ``T`` steps.

Published figures used (no Loihi hardware was run here):

* Loihi 2 chip: 128 neuro cores, up to 1 million neurons and 120 million synapses per chip (Intel Labs,
  *Taking Neuromorphic Computing to the Next Level with Loihi 2*, technology brief, 2021), i.e. up to
  8,192 neurons per core; synapses per core: the chip total over 128 cores, 937,500.
* Input axons per core: 4,096, the first-generation Loihi figure (Davies et al., *Loihi: A Neuromorphic
  Manycore Processor with On-Chip Learning*, IEEE Micro 38(1), 2018); Loihi 2's is not published.
* Energy, Loihi 2: Hala Point (1,152 Loihi 2 chips) runs conventional deep networks at more than 15 trillion
  8-bit operations per second per watt (Intel, press release 17 April 2024). Counting every SOP and every
  neuron update as one such operation gives a best-case estimate, ``(SOPs + updates) / 15e12`` J.
* Energy, first-generation reference: 23.6 pJ per synaptic operation measured on Loihi (Davies et al.
  2018), ``SOPs x 23.6e-12`` J: the same network on the older 14 nm chip, for scale.
* Time per step: Hala Point's 20 petaops over its 140,544 cores is 1.42e11 operations per second per core;
  the busiest core's operations per step divided by that is a lower bound on the step time (per-step
  synchronisation and host input/output are not included).
"""

from __future__ import annotations

import math

import torch

__all__ = ["LOIHI2", "loihi_cost"]

LOIHI2 = {
    "cores_per_chip": 128,
    "neurons_per_core": 8192,  # 128 x 8,192 = the chip's "1 million" neurons
    "synapses_per_core": 120_000_000 // 128,
    "input_axons_per_core": 4096,
    "ops_per_joule": 15e12,
    "ops_per_second_per_core": 20e15 / 140_544,
    "loihi1_j_per_sop": 23.6e-12,
}


def _fanout(w: torch.Tensor) -> torch.Tensor:
    return (w != 0).sum(0).to(torch.float64)  # (n_pre,) synapses each presynaptic neuron reaches


def loihi_cost(net, spikes: dict, inputs: dict, chip: dict = LOIHI2) -> dict:
    """Per-sample cost of ``net`` given a run's ``spikes`` ``{pop: (T, B, n)}`` and ``inputs`` ``{name: (B, n)}``."""
    T = net.time_steps
    B = next(iter(inputs.values())).shape[0]
    depth = net.depth()
    layers, core_sops = {}, {p.name: 0.0 for p in net.pops}
    for c in net.conns:
        fan = _fanout(c.weight)
        if c.pre in net.inputs:
            active = (torch.as_tensor(inputs[c.pre]) != 0).to(torch.float64)  # (B, n), sent every step
            sops = float((active @ fan).sum()) * T / B
        else:
            sops = float((spikes[c.pre].to(torch.float64).sum(0) @ fan).sum()) / B
        core_sops[c.post] += sops
        nz = c.weight != 0
        layers[c.name] = {
            "sops_per_sample": sops,
            "synapses": int(nz.sum()),
            "max_fan_in": int(nz.sum(1).max()),
            "input_axons": int(nz.any(0).sum()),
        }
    cores, pops = 0, {}
    for p in net.pops:
        syn = sum(layers[c.name]["synapses"] for c in net.conns if c.post == p.name)
        axons = sum(layers[c.name]["input_axons"] for c in net.conns if c.post == p.name)
        k = max(
            math.ceil(p.n / chip["neurons_per_core"]),
            math.ceil(syn / chip["synapses_per_core"]),
            math.ceil(axons / chip["input_axons_per_core"]),
            1,
        )
        cores += k
        rate = float(spikes[p.name].to(torch.float64).mean()) if p.name in spikes else 0.0
        pops[p.name] = {
            "neurons": p.n,
            "synapses_in": syn,
            "input_axons": axons,
            "cores": k,
            "spike_rate": rate,
        }
    sops = sum(v["sops_per_sample"] for v in layers.values())
    updates = float(sum(p.n for p in net.pops) * T)
    busiest = max(
        (core_sops[p.name] / T + p.n) / pops[p.name]["cores"] for p in net.pops
    )  # ops per step per core
    step_s = busiest / chip["ops_per_second_per_core"]
    return {
        "sops_per_sample": sops,
        "neuron_updates_per_sample": updates,
        "cores": cores,
        "chips": math.ceil(cores / chip["cores_per_chip"]),
        "energy_per_sample_j": (sops + updates) / chip["ops_per_joule"],
        "energy_per_sample_j_loihi1": sops * chip["loihi1_j_per_sop"],
        "latency_steps": T + max(depth.values()),
        "steps_per_sample_streamed": T,
        "step_s_lower_bound": step_s,
        "latency_s_lower_bound": step_s * (T + max(depth.values())),
        "layers": layers,
        "populations": pops,
    }
