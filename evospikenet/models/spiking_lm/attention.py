r"""ChronoSpikeAttention: causal attention computed from spike trains.

Queries, keys and values are binary spike trains over ``T`` steps, ``q_{i,t}, k_{j,t}, v_{j,t} \in
\{0,1\}^{d_h}`` per head. The score of query token ``i`` for key token ``j`` counts spike coincidences
across time, weighted by a temporal kernel:

.. math::

    \kappa_h(t, t') = e^{-|t - t'| / \tau_h}, \qquad Z_h = \sum_{t,t'} \kappa_h(t, t')

    S_{ij} = \frac{\lambda_h}{Z_h \sqrt{d_h}} \sum_{t,t'} \kappa_h(t,t')\, q_{i,t} \cdot k_{j,t'}

    A_{ij} = \mathrm{softmax}_{j \le i}(S_{ij}), \qquad o_{i,t} = \sum_{j \le i} A_{ij}\, v_{j,t}

causal over tokens (``j <= i``; padded keys are masked). With ``causal=False`` (``attn_causal`` in the
config, for classifiers) the sums and the softmax run over every real token ``j`` of the text instead.
``lambda_h = g s_h`` with a learned ``s_h`` (init 1) and a fixed factor ``g`` (``attn_gain``, 8 by default):
binary rates give coincidence scores of order ``sqrt(d_h) r``, so with ``g = 1`` the softmax starts almost
uniform and Adam, which moves ``s_h`` by about the learning rate per step, takes thousands of steps to
sharpen it. With ``center`` the query is taken relative to its mean rate ``m_i`` over steps and channels,
``(q_{i,t} - m_i) . k_{j,t'}``: the term ``m_i sum k_j`` would otherwise favour keys that simply fire more
(still an accumulate, of the key's count). ``q . k`` of binary vectors is a coincidence count (AND and
accumulate); ``A v`` with binary ``v`` sums attention weights where a value spike arrived
(accumulate-only). ``tau_h`` and ``lambda_h`` are learned per head.

Limits:

* ``tau -> inf`` (``kappa = 1``, ``Z = T^2``): ``S_ij = lambda r_{q,i} . r_{k,j} / sqrt(d_h)`` with the firing
  rates ``r = (1/T) sum_t s_t``, and ``(1/T) sum_t o_{i,t} = sum_j A_ij r_{v,j}``: exactly scaled dot-product
  attention ``softmax(Q K^T / sqrt(d_k)) V`` on the rates (``lambda = 1``), which spikes approximate as
  ``T`` grows.
* ``tau -> 0`` (``kappa = I``, ``Z = T``): only synchronous coincidences count,
  ``S_ij = lambda/(T sqrt(d_h)) sum_t q_{i,t} . k_{j,t}``.

Floats that remain: the kernel-weighted score, the softmax and the weights ``A`` (one per token pair and head,
the attention normalisation), and the mixture ``o`` in [0, 1], which the block turns back into spikes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["ChronoAttnParams", "temporal_kernel", "chrono_spike_attention"]


class ChronoAttnParams(NamedTuple):
    """Per-head learned quantities."""

    tau: torch.Tensor  # (H,) temporal constant in steps, > 0 (inf allowed)
    scale: torch.Tensor  # (H,) score gain lambda
    center: bool = False  # score (q - m_q) . k, m_q the query token's mean rate over steps and channels
    causal: bool = True  # j <= i only; False: every token of the text (a bidirectional encoder)


def temporal_kernel(time_steps: int, tau: torch.Tensor) -> torch.Tensor:
    """``kappa_h(t, t') = exp(-|t - t'| / tau_h)``: (H,) -> (H, T, T)."""
    t = torch.arange(time_steps, device=tau.device, dtype=tau.dtype)
    dist = (t[:, None] - t[None, :]).abs()  # (T, T)
    return torch.exp(-dist[None] / tau[:, None, None])


def chrono_spike_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    params: ChronoAttnParams,
    key_mask: torch.Tensor | None = None,
    return_weights: bool = False,
    segments: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """ChronoSpikeAttention, causal over tokens unless ``params.causal`` is False.

    ``q, k, v``: (T, B, H, L, d_h) spike trains; ``key_mask``: (B, L) bool, True for real tokens;
    ``segments``: (B, L) text index of each token of packed rows (``packing.py``): a query sees only keys
    of its own text.
    Returns ``o`` (T, B, H, L, d_h) and, if asked, the weights ``A`` (B, H, L, L).
    """
    T, B, H, L, dh = q.shape
    kappa = temporal_kernel(T, params.tau.to(q.dtype))  # (H, T, T)
    z = kappa.sum(dim=(1, 2))  # (H,)
    k_filt = torch.einsum("htu,ubhjd->bhjtd", kappa, k)  # (B, H, L, T, d_h)
    qf = q.permute(1, 2, 3, 0, 4).reshape(B, H, L, T * dh)  # (B, H, L, T*d_h)
    if params.center:
        qf = qf - qf.mean(dim=-1, keepdim=True)
    scores = qf @ k_filt.reshape(B, H, L, T * dh).transpose(-1, -2)  # (B, H, L, L)
    scores = scores * (params.scale.to(q.dtype) / (z * dh**0.5)).view(1, H, 1, 1)
    allowed = torch.ones(L, L, dtype=torch.bool, device=q.device)  # (L, L)
    if params.causal:
        allowed = allowed.tril()  # j <= i
    if key_mask is not None:
        eye = torch.eye(L, dtype=torch.bool, device=q.device)
        allowed = allowed & (key_mask[:, None, None, :].bool() | eye)  # (B, 1, L, L)
    if segments is not None:
        allowed = allowed & (segments[:, None, :, None] == segments[:, None, None, :])  # (B, 1, L, L)
    attn = scores.masked_fill(~allowed, float("-inf")).softmax(dim=-1)  # (B, H, L, L)
    vf = v.permute(1, 2, 3, 0, 4).reshape(B, H, L, T * dh)
    o = (attn @ vf).reshape(B, H, L, T, dh).permute(3, 0, 1, 2, 4)  # (T, B, H, L, d_h)
    return o, (attn if return_weights else None)
