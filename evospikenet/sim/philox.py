"""Philox4x32-10 in torch operations: the engine's counter-based random streams on any device.

The same function as ``csrc/popnet/rng.h`` (Salmon et al., SC 2011), computed on int64 tensors that hold
32-bit words. Products of two 32-bit words are formed from 16-bit halves, so no intermediate exceeds 2^34
and nothing relies on integer overflow. ``poisson_counts`` inverts a tabulated CDF exactly as the engine
does, so a tensor implementation draws the same background inputs and generator spikes.
"""

from __future__ import annotations

import torch

__all__ = ["philox", "open01", "seed_key", "poisson_cdf", "poisson_counts", "TAG"]

MASK = 0xFFFFFFFF
M0, M1 = 0xD2511F53, 0xCD9E8D57
W0, W1 = 0x9E3779B9, 0xBB67AE85
TAG = {"v0": 1, "tree": 2, "synapse": 3, "poisson": 4, "generator": 5}


def seed_key(seed: int) -> int:
    """The key's first word from a 64-bit seed (as ``seed_key`` in rng.h)."""
    seed &= (1 << 64) - 1
    return ((seed & MASK) ^ (((seed >> 32) * 0x85EBCA6B) & MASK)) & MASK


def _mulhilo(m: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mh, ml = m >> 16, m & 0xFFFF
    xh, xl = x >> 16, x & 0xFFFF
    mid = mh * xl + ml * xh
    t = ml * xl + ((mid & 0xFFFF) << 16)
    return mh * xh + (mid >> 16) + (t >> 32), t & MASK


def philox(k0: int, k1: int, c0, c1, c2, c3) -> list[torch.Tensor]:
    """Four int64 tensors of 32-bit words for counters ``(c0, c1, c2, c3)`` (tensors or ints, broadcast)."""
    c = [torch.as_tensor(v, dtype=torch.int64) for v in (c0, c1, c2, c3)]
    c = list(torch.broadcast_tensors(*c))
    for _ in range(10):
        hi0, lo0 = _mulhilo(M0, c[0])
        hi1, lo1 = _mulhilo(M1, c[2])
        c = [hi1 ^ c[1] ^ k0, lo1, hi0 ^ c[3] ^ k1, lo0]
        k0, k1 = (k0 + W0) & MASK, (k1 + W1) & MASK
    return c


def open01(x: torch.Tensor) -> torch.Tensor:
    """Uniform in (0, 1) from a 32-bit word, as ``open01`` in rng.h (float64)."""
    return (x.double() + 0.5) * (1.0 / 4294967296.0)


def poisson_cdf(lam: float) -> list[float]:
    """``P(count <= k)`` for k = 0, 1, ... while below 1 - 1e-15, then 1.0: the engine's table, summed in
    the same order so the values are bit-identical."""
    import math

    if lam <= 0:
        return [1.0]
    term = math.exp(-lam)
    cum, out = term, []
    for k in range(200):
        if cum >= 1.0 - 1e-15:
            break
        out.append(cum)
        term *= lam / (k + 1)
        cum += term
    return [*out, 1.0]


def poisson_counts(table: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Counts for uniforms ``u`` (n,) against per-row CDF tables ``table`` (n, K), as the engine's inversion."""
    return torch.searchsorted(table, u.unsqueeze(-1).contiguous()).squeeze(-1).clamp_(max=table.shape[-1] - 1)
