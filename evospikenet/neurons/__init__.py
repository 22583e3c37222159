"""Stateless-by-default neuron modules: ``forward(x, state=None) -> (spikes, state)``."""

from .lif import LIF, IntegerLIF, LoihiLIF

__all__ = ["LIF", "IntegerLIF", "LoihiLIF"]
