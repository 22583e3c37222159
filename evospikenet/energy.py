r"""Operation counting and the energy model behind every energy figure in the project.

Constants are per operation in 45 nm CMOS (Horowitz, "Computing's energy problem", ISSCC 2014), the standard in
the SNN literature. Floating point (the float models, and the float run of a spiking model):

* ``E_AC = 0.9 pJ``: one 32-bit float add. A synaptic operation (SOP) adds a weight when a spike arrives;
* ``E_MAC = 4.6 pJ``: one 32-bit float multiply (3.7 pJ) plus add (0.9 pJ), a conventional layer's MAC;
* ``E_UPDATE = 6.4 pJ``: one LIF state update, one neuron for one step: leak and integrate
  ``H = beta V + I`` (a multiply and an add, 4.6 pJ), the threshold compare (an add, 0.9 pJ) and the reset
  by subtraction (an add, 0.9 pJ, counted at every step whether or not the neuron fired).

Integer (``INTEGER_45NM``, the integer core: INT8 weights and spikes, INT16 membranes, INT32 accumulators;
Horowitz gives 0.03 pJ for an 8-bit and 0.1 pJ for a 32-bit add, a 16-bit add is taken as 0.05 pJ):

* SOP ``0.1 pJ``: one 32-bit integer add (an INT8 weight into the INT32 accumulator);
* MAC ``0.3 pJ``: an 8-bit integer multiply (0.2 pJ) plus the 32-bit add;
* update ``0.25 pJ``: five 16-bit operations of ``int_lif_step`` (0.05 pJ each): the rounded shift leak
  ``V - ((V + 2^(k-1)) >> k)`` (an add and a subtract; the shift is wiring), the add of the input current
  (saturated to INT16), the threshold compare and the reset subtract.

``INTEGER16_45NM`` is the same core with INT16 accumulators: SOP ``0.05 pJ`` (a 16-bit add), the other
prices unchanged (a MAC's INT8 x INT8 products still accumulate in 32 bits). It applies only where every
accumulator is proven not to overflow 16 bits for any input, as ``evospikenet.models.ecg_integer.integer_core``
checks from the weights (the sum of a row's absolute integer weights and bias).

Memory: ``E_SRAM = 5 pJ`` per 32-bit read or write from an 8 kB SRAM, scaled by the width of the word (an int8
weight costs ``5 pJ * 8 / 32``).

Compute energy is ``E = SOPs E_AC + MACs E_MAC + updates E_UPDATE``. The memory-inclusive estimate adds, per
SOP, one weight read; per MAC, a weight and an activation read; and per neuron update, a read and a write of
the membrane state: the accesses an event-driven core or an accelerator's datapath performs when nothing is
cached in registers:

.. math::

    E_{mem} = E + E_{SRAM} \Big(\mathrm{SOPs}\,\tfrac{b_w}{32} + \mathrm{MACs}\,(\tfrac{b_w}{32} + \tfrac{b_a}{32})
              + 2\,\mathrm{updates}\,\tfrac{b_v}{32}\Big)

Every spiking model counts the updates of every population it steps; float work a spiking model does besides
its SOPs (an encoder convolution, the spiking LM's TAS encoder, LayerNorms) is counted as MACs. ``OpCounter``
accumulates counts per layer name; ``EnergyModel.report(counter)`` turns them into joules.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import torch

__all__ = [
    "EnergyModel",
    "EnergyReport",
    "OpCounter",
    "HOROWITZ_45NM",
    "INTEGER_45NM",
    "INTEGER16_45NM",
    "linear_sops",
    "linear_macs",
    "conv_macs",
]


@dataclass(frozen=True)
class EnergyModel:
    """Energy constants in joules; the defaults are Horowitz 2014 at 45 nm, 32-bit float (module docstring)."""

    e_sop_j: float = 0.9e-12  # one accumulate (synaptic operation): a 32-bit float add
    e_mac_j: float = 4.6e-12  # one 32-bit float multiply-accumulate
    e_update_j: float = 6.4e-12  # one LIF state update (leak + integrate, compare, reset) per neuron and step
    e_sram_32b_j: float = 5e-12  # one 32-bit SRAM access (8 kB array)
    weight_bits: int = 32  # width of a stored weight (8 on the integer path)
    act_bits: int = 32  # width of an ANN activation
    state_bits: int = 32  # width of a membrane potential (16 on the integer path)

    def report(self, counter: OpCounter) -> EnergyReport:
        """Energy of everything ``counter`` holds, total and per layer."""
        per_layer: dict[str, float] = {}
        per_layer_mem: dict[str, float] = {}
        for name in counter.layers():
            s, m, u = counter.sops[name], counter.macs[name], counter.updates[name]
            compute = s * self.e_sop_j + m * self.e_mac_j + u * self.e_update_j
            mem = self.e_sram_32b_j * (
                s * self.weight_bits / 32
                + m * (self.weight_bits + self.act_bits) / 32
                + 2 * u * self.state_bits / 32
            )
            per_layer[name] = compute
            per_layer_mem[name] = compute + mem
        return EnergyReport(
            sops=counter.total_sops,
            macs=counter.total_macs,
            updates=counter.total_updates,
            compute_j=sum(per_layer.values()),
            with_memory_j=sum(per_layer_mem.values()),
            per_layer_j=per_layer,
            per_layer_with_memory_j=per_layer_mem,
        )

    def compute_j(self, sops: float = 0.0, macs: float = 0.0, updates: float = 0.0) -> float:
        """``SOPs * E_AC + MACs * E_MAC + updates * E_UPDATE``."""
        return sops * self.e_sop_j + macs * self.e_mac_j + updates * self.e_update_j


HOROWITZ_45NM = EnergyModel()
INTEGER_45NM = EnergyModel(
    e_sop_j=0.1e-12, e_mac_j=0.3e-12, e_update_j=0.25e-12, weight_bits=8, act_bits=8, state_bits=16
)
INTEGER16_45NM = EnergyModel(
    e_sop_j=0.05e-12, e_mac_j=0.3e-12, e_update_j=0.25e-12, weight_bits=8, act_bits=8, state_bits=16
)


@dataclass
class EnergyReport:
    """Counts and joules: compute only and with memory accesses."""

    sops: float
    macs: float
    updates: float
    compute_j: float
    with_memory_j: float
    per_layer_j: dict[str, float] = field(default_factory=dict)
    per_layer_with_memory_j: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Plain dict for JSON output."""
        return {
            "sops": self.sops,
            "macs": self.macs,
            "updates": self.updates,
            "energy_j": self.compute_j,
            "energy_with_memory_j": self.with_memory_j,
            "per_layer_j": dict(self.per_layer_j),
        }


class OpCounter:
    """Accumulates SOPs, MACs and neuron-state updates per layer name.

    Counts are Python floats (they exceed int32 in long runs); tensors passed in are summed on their device
    and read once.
    """

    def __init__(self) -> None:
        self.sops: dict[str, float] = defaultdict(float)
        self.macs: dict[str, float] = defaultdict(float)
        self.updates: dict[str, float] = defaultdict(float)

    def add_sops(self, layer: str, n: float | torch.Tensor) -> None:
        """Add ``n`` synaptic operations (accumulates triggered by spikes) to ``layer``."""
        self.sops[layer] += float(n)

    def add_macs(self, layer: str, n: float | torch.Tensor) -> None:
        """Add ``n`` multiply-accumulates to ``layer``."""
        self.macs[layer] += float(n)

    def add_updates(self, layer: str, n: float | torch.Tensor) -> None:
        """Add ``n`` neuron-state updates (one per neuron per step) to ``layer``."""
        self.updates[layer] += float(n)

    def layers(self) -> list[str]:
        """Every layer name seen, in first-seen order."""
        return list(dict.fromkeys([*self.sops, *self.macs, *self.updates]))

    @property
    def total_sops(self) -> float:
        return float(sum(self.sops.values()))

    @property
    def total_macs(self) -> float:
        return float(sum(self.macs.values()))

    @property
    def total_updates(self) -> float:
        return float(sum(self.updates.values()))

    def merge(self, other: OpCounter) -> OpCounter:
        """Add another counter's counts into this one; returns ``self``."""
        for src, dst in ((other.sops, self.sops), (other.macs, self.macs), (other.updates, self.updates)):
            for k, v in src.items():
                dst[k] += v
        return self

    def reset(self) -> None:
        """Forget every count."""
        self.sops.clear()
        self.macs.clear()
        self.updates.clear()


def linear_sops(spikes: torch.Tensor, out_features: int) -> torch.Tensor:
    """SOPs of a linear layer driven by binary ``spikes`` (..., in): each spike fans out to every output."""
    return spikes.detach().sum() * out_features


def linear_macs(n_rows: int, in_features: int, out_features: int) -> int:
    """MACs of a dense linear layer over ``n_rows`` input rows."""
    return n_rows * in_features * out_features


def conv_macs(
    out_positions: int, in_channels: int, out_channels: int, kernel_elems: int, groups: int = 1
) -> int:
    """MACs of a convolution: each output position of each output channel sums ``in/groups * kernel`` terms."""
    return out_positions * out_channels * (in_channels // groups) * kernel_elems
