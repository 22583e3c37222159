r"""Float Transformer LM baseline of the same size as the spiking LM (pre-LN GPT).

.. math::

    h^{(0)} = E[x] + P, \qquad h \leftarrow h + W_o \mathrm{softmax}(QK^T / \sqrt{d_h} + M) V,

    h \leftarrow h + W_2 \mathrm{GELU}(W_1 \mathrm{LN}(h)), \qquad \mathrm{logits} = W_{head} \mathrm{LN}(h)

with ``Q, K, V = LN(h) W_{q,k,v}`` and ``M`` the causal mask. Width, depth, heads, MLP ratio, context and
vocabulary come from a ``SpikingEvoSpikeNetConfig`` so both models are compared at equal size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["FloatTransformerLMConfig", "FloatTransformerLM"]


@dataclass
class FloatTransformerLMConfig:
    """Sizes of the float baseline."""

    vocab_size: int = 257  # token vocabulary
    d_model: int = 128  # residual width
    n_layers: int = 2  # Transformer blocks
    n_heads: int = 4  # attention heads
    mlp_ratio: int = 4  # MLP hidden width / d_model
    context_length: int = 128  # longest sequence

    @classmethod
    def from_spiking(cls, config) -> FloatTransformerLMConfig:
        """Same sizes as a ``SpikingEvoSpikeNetConfig``."""
        return cls(
            config.vocab_size,
            config.d_model,
            config.n_layers,
            config.n_heads,
            config.mlp_ratio,
            config.context_length,
        )


class _Block(nn.Module):
    def __init__(self, c: FloatTransformerLMConfig) -> None:
        super().__init__()
        self.n_heads = c.n_heads
        self.ln1, self.ln2 = nn.LayerNorm(c.d_model), nn.LayerNorm(c.d_model)
        self.qkv = nn.Linear(c.d_model, 3 * c.d_model, bias=False)
        self.proj = nn.Linear(c.d_model, c.d_model, bias=False)
        self.fc1 = nn.Linear(c.d_model, c.mlp_ratio * c.d_model)
        self.fc2 = nn.Linear(c.mlp_ratio * c.d_model, c.d_model)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        B, L, D = h.shape  # (B, L, D)
        q, k, v = self.qkv(self.ln1(h)).view(B, L, 3, self.n_heads, D // self.n_heads).permute(2, 0, 3, 1, 4)
        o = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # (B, H, L, dh)
        h = h + self.proj(o.transpose(1, 2).reshape(B, L, D))
        return h + self.fc2(F.gelu(self.fc1(self.ln2(h))))


class FloatTransformerLM(nn.Module):
    """Pre-LN GPT: ``forward(ids, labels=None) -> (logits, loss)``."""

    def __init__(self, config: FloatTransformerLMConfig) -> None:
        super().__init__()
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context_length, c.d_model)
        self.blocks = nn.ModuleList(_Block(c) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        for m in self.modules():
            if isinstance(m, (nn.Linear, nn.Embedding)):
                nn.init.normal_(m.weight, std=0.02)
                if isinstance(m, nn.Linear) and m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, ids: torch.Tensor, labels: torch.Tensor | None = None):
        B, L = ids.shape
        if L == 0 or L > self.config.context_length:
            raise ValueError(f"sequence length must be in [1, {self.config.context_length}], got {L}")
        h = self.tok_emb(ids) + self.pos_emb(torch.arange(L, device=ids.device))[None]
        for block in self.blocks:
            h = block(h)
        logits = self.head(self.ln_f(h))  # (B, L, V)
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1))
        return logits, loss

    def macs_per_token(self, length: int) -> float:
        """MACs per token at length ``length`` (linears, causal attention, LayerNorms at 2 per element)."""
        c = self.config
        d, hid = c.d_model, c.mlp_ratio * c.d_model
        per_layer = 3 * d * d + d * d + 2 * d * hid  # qkv, proj, fc1, fc2
        attn = 2 * d * (length + 1) / 2  # QK^T and AV over the causal prefix (mean length)
        norms = 2 * (2 * d)
        return c.n_layers * (per_layer + attn + norms) + 2 * d + d * c.vocab_size
