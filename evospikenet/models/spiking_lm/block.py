r"""Spiking Transformer block, spike bookkeeping and the MetaSTDP fast-weight path.

One block, with ``u`` the residual membrane stream (T, B, L, D) and every LIF a ``LIFPopulation``:

.. math::

    x = \mathrm{LIF}(\mathrm{LN}(u)), \quad q = \mathrm{LIF}(\mathrm{LN}(W_q x)), \quad
    k = \mathrm{LIF}(\mathrm{LN}(W_k x)), \quad v = \mathrm{LIF}(\mathrm{LN}(W_v x))

    a = \mathrm{LIF}(g_o\, \mathrm{ChronoSpikeAttention}(q, k, v)), \qquad u \leftarrow u + W_o a

    h = \mathrm{LIF}(\mathrm{LN}(u)), \quad z = \mathrm{LIF}(\mathrm{LN}(W_1 h)), \quad u \leftarrow u + W_2 z

With ``resid_dropout`` p > 0, training drops each element of the branch currents ``W_o a`` and ``W_2 z`` with
probability p (one mask for the T steps of a token) and scales the rest by 1/(1-p); evaluation is unchanged.

Signed populations (``signed_inputs`` for ``x`` and ``h``, ``signed_qk`` for ``q`` and ``k``; off by default):
each channel is an ON/OFF pair of LIF neurons driven by ``+y`` and ``-y``, and the synapses read
``s = LIF(y) - LIF(-y) \in \{-1, 0, 1\}`` (an excitatory or an inhibitory event, still accumulate-only:
the weight is added or subtracted). A binary population keeps only the positive side of ``LN(u)``; the pair
keeps its sign, at 2D neurons, every one counted in the rates. With ``v_norm=False`` the value population
receives ``g_v W_v x`` (``v_gain``) instead of ``LN(W_v x)``, keeping the scale of the value current.

Every synaptic layer (``W_q, W_k, W_v, W_o, W_1, W_2``, the LM head) reads spikes (binary, or the signed
events of ON/OFF pairs), so its work is accumulate-only (SOPs); what passes from one block's synapses to the
next is spikes. Floats that remain, and why:

* the residual stream ``u`` is a membrane-potential shortcut ("membrane shortcut" of spike-driven
  Transformers): it sums the synaptic currents ``W a`` and ``W z`` (accumulates), keeping a deep stack
  trainable; it is never multiplied by a weight;
* the pre-spike LayerNorms act as adaptive gain control of each population's input current so the
  firing rate stays in range during training (counted as MACs, 2 per element);
* the attention weights and mixture (see ``attention.py``).

In evaluation and serving on the CPU the four synaptic layers run event-driven (``SpikeLinear``: each
token reads only the weight columns of the inputs that spiked), with the same result as the dense product.

The attention output ``o`` (a mixture of binary value spikes, in [0, 1]) drives its population through a
fixed gain ``g_o`` (``attn_out_gain``) rather than a LayerNorm: normalising ``o`` per token removed its mean
and sign, which carry how much value activity the attended tokens hold (on tiny Shakespeare the
LayerNorm cost 0.12 nats in a float model at 300 steps and 0.02 in this one at 600; docs/spiking_lm.md).
``attn_out_norm=True`` restores the first design, which checkpoints saved before these fields load with.

MetaSTDP fast weights (optional, ``config.meta_stdp``): from the block's input rates
``r_i = (1/T) sum_t x_{i,t}``, an STDP-like trace builds per sequence the fast weight
``F_i = sum_{j < i} exp(-(i - 1 - j) / tau_+) r_{j+1} (r_j - m_j)^T / D`` (pre ``r_j`` before post
``r_{j+1}``, causal; ``m_j`` the token's mean rate, a covariance rule; the readout centres ``r_i`` too),
and the block adds ``W_fw F_i (r_i - m_i)`` to ``u``: an associative memory that recalls what followed a
pattern the last time it occurred. This path is float (rates and fast weights; its MACs are counted).
The plasticity constant follows a reward, meta-plasticity as in the design:
``tau_+ <- clip(tau_+ + eta (R - R_baseline))``, ``R_baseline`` a running mean of ``R``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from ...neurons.spike_linear import SpikeLinear
from .attention import ChronoAttnParams, chrono_spike_attention
from .neurons import LIFPopulation

__all__ = ["LayerStats", "SpikingBlock", "MetaSTDP", "stdp_fast_weight_readout", "LN_MACS_PER_ELEMENT"]

LN_MACS_PER_ELEMENT = 2  # MACs counted per element of a LayerNorm (statistics + affine)


class LayerStats(NamedTuple):
    """Activity of one spiking population in one forward call."""

    name: str  # population name, e.g. "block0.mlp_hidden"
    spikes: torch.Tensor  # () sum of |s| over all neurons and steps (differentiable, for AEG)
    neuron_steps: int  # neurons x steps (x batch x tokens): the denominator of the rate
    sops: torch.Tensor  # () synaptic operations its spikes trigger (detached)
    macs: float  # float multiply-accumulates spent on its input (LayerNorm, softmax)
    lif: bool = True  # LIF neurons (one state update per neuron and step); False: the TAS encoder


def _stats(
    name: str,
    s: torch.Tensor,
    fan_out: int,
    macs: float = 0.0,
    extra_sops=None,
    signed: bool = False,
    lif: bool = True,
) -> LayerStats:
    """Stats of spikes ``s`` (0/1, or -1/0/1 with ``signed``: the TAS encoder's signed spikes)."""
    total = s.abs().sum() if signed else s.sum()
    sops = total.detach() * fan_out
    if extra_sops is not None:
        sops = sops + extra_sops
    return LayerStats(name, total, s.numel(), sops, float(macs), lif)


def stdp_fast_weight_readout(r: torch.Tensor, tau_plus: torch.Tensor) -> torch.Tensor:
    """MetaSTDP readout ``y_i = F_i r_i`` with ``F_i`` the causal STDP trace; ``r`` (B, L, D) -> (B, L, D).

    ``y_i = sum_{j <= i-1} exp(-(i-1-j)/tau_+) ((r_j - m_j) . (r_i - m_i) / D) r_{j+1}``, ``m`` the mean rate
    of a token over channels (a covariance Hebbian rule, so unrelated patterns cancel).
    """
    B, L, D = r.shape
    i = torch.arange(L, device=r.device)
    lag = (i[:, None] - 1 - i[None, :]).to(r.dtype)  # (L, L): i - 1 - j
    decay = torch.exp(-lag.clamp_min(0) / tau_plus) * (lag >= 0)  # j <= i - 1
    c = r - r.mean(dim=-1, keepdim=True)  # covariance rule: centred per token
    sim = c @ c.transpose(1, 2) / D  # (B, L, L): (r_i - m_i) . (r_j - m_j) / D
    succ = torch.cat([r[:, 1:], torch.zeros_like(r[:, :1])], dim=1)  # r_{j+1}, (B, L, D)
    return (sim * decay) @ succ


class MetaSTDP(nn.Module):
    """Fast-weight path with a reward-driven plasticity constant ``tau_+`` (buffers, not gradients)."""

    def __init__(self, d_model: int, tau_init: float, eta: float, tau_range: tuple, init_std: float) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, d_model, bias=False)
        nn.init.normal_(self.proj.weight, std=init_std)
        self.register_buffer("tau_plus", torch.tensor(float(tau_init)))
        self.register_buffer("reward_baseline", torch.tensor(float("nan")))
        self.eta = float(eta)
        self.tau_range = (float(tau_range[0]), float(tau_range[1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (T, B, L, D) block input spikes -> current (1, B, L, D) added at every step
        y = stdp_fast_weight_readout(x.mean(0), self.tau_plus)  # (B, L, D)
        y = y * torch.rsqrt(y.pow(2).mean(dim=-1, keepdim=True) + 1e-6)  # RMS-normalised recall
        return self.proj(y)[None]

    @torch.no_grad()
    def meta_update(self, reward: float, momentum: float = 0.9) -> float:
        """``tau_+ <- clip(tau_+ + eta (R - R_baseline))``, then update the baseline; returns tau_+."""
        if torch.isnan(self.reward_baseline):
            self.reward_baseline.fill_(float(reward))
        delta = self.eta * (float(reward) - float(self.reward_baseline))
        self.tau_plus.copy_((self.tau_plus + delta).clamp(*self.tau_range))
        self.reward_baseline.mul_(momentum).add_((1.0 - momentum) * float(reward))
        return float(self.tau_plus)


def _fire(pop: LIFPopulation, current: torch.Tensor, norm: nn.LayerNorm, signed: bool):
    """Spikes of ``pop`` driven by ``norm(current)`` (T, ..., D): binary, or with ``signed`` the ON/OFF pairs
    ``s = LIF(y) - LIF(-y)`` in {-1, 0, 1}, ``y = norm(current)`` (2D neurons). Returns the spikes the synapses
    read and the binary spikes of every neuron (for the rates and SOPs)."""
    if not signed:
        s, _ = pop(current, norm=norm)
        return s, s
    y = norm(current)
    raw, _ = pop(torch.cat([y, -y], dim=-1))  # (T, ..., 2D): ON neurons, then OFF neurons
    on, off = raw.chunk(2, dim=-1)
    return on - off, raw


class SpikingBlock(nn.Module):
    """Spiking pre-norm Transformer block over (T, B, L, D) currents (see the module docstring)."""

    def __init__(self, config, index: int) -> None:
        super().__init__()
        c = config
        d, hidden = c.d_model, c.mlp_ratio * c.d_model
        self.name = f"block{index}"
        self.n_heads = c.n_heads
        self.attn_gain, self.attn_center = float(c.attn_gain), bool(c.attn_center)
        self.attn_causal = bool(c.attn_causal)
        self.attn_out_gain = float(c.attn_out_gain)
        self.signed_inputs, self.signed_qk = bool(c.signed_inputs), bool(c.signed_qk)
        self.v_gain = None if c.v_norm else float(c.v_gain)

        def lif():
            return LIFPopulation(c.lif_beta, c.lif_threshold, c.neuron_backend, c.surrogate_alpha)

        def ln(n):
            return nn.LayerNorm(n, eps=c.layer_norm_eps)

        self.ln_in, self.lif_in = ln(d), lif()
        self.w_qkv = SpikeLinear(d, 3 * d, bias=False)
        self.ln_q, self.ln_k, self.ln_v = ln(d), ln(d), (ln(d) if c.v_norm else None)
        self.lif_q, self.lif_k, self.lif_v = lif(), lif(), lif()
        self.attn_log_tau = nn.Parameter(torch.full((c.n_heads,), float(c.attn_tau_init)).log())
        self.attn_scale = nn.Parameter(torch.ones(c.n_heads))
        self.ln_attn, self.lif_attn = (ln(d) if c.attn_out_norm else None), lif()
        self.w_o = SpikeLinear(d, d, bias=False)
        self.ln_mlp, self.lif_mlp = ln(d), lif()
        self.w_1 = SpikeLinear(d, hidden, bias=False)
        self.ln_hidden, self.lif_hidden = ln(hidden), lif()
        self.w_2 = SpikeLinear(hidden, d, bias=False)
        self.resid_dropout = float(c.resid_dropout)
        self.meta_stdp = (
            MetaSTDP(d, c.meta_stdp_tau_init, c.meta_stdp_eta, c.meta_stdp_tau_range, c.initializer_range)
            if c.meta_stdp
            else None
        )

    def _drop(self, current: torch.Tensor) -> torch.Tensor:
        """Inverted dropout of a branch current (T, B, L, D) in training, one mask for all T steps: a dropped
        synapse output stays silent for the whole token rather than flickering from step to step."""
        p = self.resid_dropout
        if not self.training or p == 0.0:
            return current
        keep = torch.empty_like(current[:1]).bernoulli_(1.0 - p)  # (1, B, L, D)
        return current * keep / (1.0 - p)

    def forward(
        self,
        u: torch.Tensor,
        key_mask: torch.Tensor | None = None,
        return_attn: bool = False,
        segments: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[LayerStats], torch.Tensor | None]:
        # u: (T, B, L, D) residual membrane stream
        T, B, L, D = u.shape
        H, dh = self.n_heads, D // self.n_heads
        n = self.name
        stats = []
        x, x_raw = _fire(self.lif_in, u, self.ln_in, self.signed_inputs)  # (T, B, L, D)
        macs = LN_MACS_PER_ELEMENT * u.numel()
        if self.meta_stdp is not None:  # rates, similarities, readout and projection of the fast-weight path
            macs += x.numel() + 2 * B * L * L * D + B * L * D * D
        stats.append(_stats(f"{n}.in", x_raw, 3 * D, macs))
        cur_q, cur_k, cur_v = self.w_qkv(x).chunk(3, dim=-1)  # 3 x (T, B, L, D)
        q, q_raw = _fire(self.lif_q, cur_q, self.ln_q, self.signed_qk)
        k, k_raw = _fire(self.lif_k, cur_k, self.ln_k, self.signed_qk)
        if self.v_gain is None:
            v, _ = self.lif_v(cur_v, norm=self.ln_v)
        else:  # the value current keeps its scale (a LayerNorm would remove it): (T, B, L, D)
            v, _ = self.lif_v(self.v_gain * cur_v)

        def heads(s):  # (T, B, L, D) -> (T, B, H, L, dh)
            return s.view(T, B, L, H, dh).transpose(2, 3)

        qh, kh, vh = heads(q), heads(k), heads(v)
        params = ChronoAttnParams(
            self.attn_log_tau.exp(), self.attn_gain * self.attn_scale, self.attn_center, self.attn_causal
        )
        o, attn = chrono_spike_attention(qh, kh, vh, params, key_mask, return_attn, segments)
        o = o.transpose(2, 3).reshape(T, B, L, D)  # (T, B, L, D) in [0, 1]
        with torch.no_grad():  # event counts of the coincidence scores and of A v (accumulates)
            # Spike counts per token over the steps, summed on the contiguous (T, B, L, D) tensors (the head
            # views are strided, which made these sums a tenth of a serving forward pass).
            # Signed q, k: an ON or OFF spike is one event either way.
            q_count = q.abs().sum(0) if self.signed_qk else q.sum(0)
            k_count = k.abs().sum(0) if self.signed_qk else k.sum(0)
            q_count = q_count.view(B, L, H, dh).transpose(1, 2)  # (B, H, L, dh)
            k_count = k_count.view(B, L, H, dh).transpose(1, 2)  # (B, H, L, dh)
            v_tok = v.sum(dim=(0, 3))  # (B, L) value spikes of each token
            if self.attn_causal:  # keys j <= i: key j is read by the L - j queries i >= j
                coinc = (q_count * k_count.cumsum(dim=2)).sum()
                av = (v_tok * torch.arange(L, 0, -1, device=v.device, dtype=v.dtype)).sum()
                pairs = B * H * L * (L + 1) / 2
            else:  # every key, by every query
                coinc = (q_count * k_count.sum(dim=2, keepdim=True)).sum()
                av = L * v_tok.sum()
                pairs = B * H * L * L
        ln_macs = LN_MACS_PER_ELEMENT * q.numel()
        center_macs = pairs if self.attn_center else 0.0  # m_q * (key spike count)
        v_macs = ln_macs if self.v_gain is None else v.numel()  # LayerNorm, or the gain
        stats.append(_stats(f"{n}.q", q_raw, 0, ln_macs + center_macs, coinc))
        stats.append(_stats(f"{n}.k", k_raw, 0, ln_macs))
        stats.append(_stats(f"{n}.v", v, 0, v_macs + pairs, av))  # + softmax
        if self.ln_attn is not None:  # the first block design: LayerNorm, then spikes
            a, _ = self.lif_attn(o, norm=self.ln_attn)
            stats.append(_stats(f"{n}.attn_out", a, D, ln_macs))
        else:  # the mixture of value spikes drives the population directly (one multiply per element)
            a, _ = self.lif_attn(self.attn_out_gain * o)
            stats.append(_stats(f"{n}.attn_out", a, D, o.numel()))
        u = u + self._drop(self.w_o(a))
        if self.meta_stdp is not None:
            u = u + self.meta_stdp(x)
        h, h_raw = _fire(self.lif_mlp, u, self.ln_mlp, self.signed_inputs)
        stats.append(_stats(f"{n}.mlp_in", h_raw, self.w_1.out_features, ln_macs))
        z, _ = self.lif_hidden(self.w_1(h), norm=self.ln_hidden)
        stats.append(_stats(f"{n}.mlp_hidden", z, D, LN_MACS_PER_ELEMENT * z.numel()))
        u = u + self._drop(self.w_2(z))
        return u, stats, attn
