"""Quantised deployment forms of trained networks (pure torch): :mod:`evospikenet.quant.loihi` for Loihi 2."""

from .loihi import LoihiConn, LoihiNet, LoihiPop, encode_ecg, quantize_ecg, run_loihi

__all__ = ["LoihiConn", "LoihiNet", "LoihiPop", "encode_ecg", "quantize_ecg", "run_loihi"]
