"""Spike encoders: rate, latency, delta and level crossing (TAS lives with the spiking LM)."""

from .basic import delta_encode, latency_encode, level_crossing_encode, rate_encode

__all__ = ["rate_encode", "latency_encode", "delta_encode", "level_crossing_encode"]
