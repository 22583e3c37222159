"""Stateless-by-default neuron modules: ``forward(x, state=None) -> (spikes, state)``."""

from .lif import LIF, IntegerLIF, LoihiLIF
from .spike_linear import SpikeLinear

__all__ = ["LIF", "IntegerLIF", "LoihiLIF", "SpikeLinear"]
