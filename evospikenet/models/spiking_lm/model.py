r"""SpikingEvoSpikeNetLM: a spiking Transformer LM as ``transformers`` models.

Forward pass for ids ``(B, L)``:

.. math::

    e_i = g_e (E[x_i] + P[i]), \qquad u^{(0)} = g\,\mathrm{TAS}(e), \qquad
    \mathrm{TAS}(e) \in \{-1,0,1\}^{T \times B \times L \times D}

    u^{(l+1)} = \mathrm{Block}_l(u^{(l)}), \qquad
    \mathrm{logits}_i = W_{head} \frac{1}{T}\sum_t r_{t,i} + b, \qquad
    r = \mathrm{LN}(u^{(n)}) \;\text{(readout="membrane")} \;\text{or}\; \mathrm{LIF}(\mathrm{LN}(u^{(n)}))
    \;\text{("spikes")}

``g`` is ``tas_residual_gain`` (1 by default): the synaptic weight of the TAS spikes onto the residual stream.

The default readout is the membrane of non-spiking output neurons (leaky-integrator readout, the usual SNN
output layer): every block stays spiking, only the head does dense MACs (counted). On tiny Shakespeare it
learns markedly faster than reading binary rates through one more surrogate (see ``benchmarks/lm.py``).

Each token position runs its own ``T``-step window (membranes start at rest for every call), so the model is
parallel over tokens in training, causal through ChronoSpikeAttention only, and generation needs no state
but the token prefix (no KV cache, no hidden globals; ``generate()`` recomputes the prefix, cropped to the
context). Spike statistics (per-population firing rates, SOPs, energy per token via ``evospikenet.energy``)
come back on every output as ``spike_stats``; every spiking neuron (TAS included) and every step counts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import GenerationMixin, PreTrainedModel
from transformers.modeling_outputs import ModelOutput

from ...atomic import AtomicSaveMixin
from ...energy import HOROWITZ_45NM, EnergyModel, OpCounter
from .block import LN_MACS_PER_ELEMENT, LayerStats, MetaSTDP, SpikingBlock, _stats
from .config import SpikingEvoSpikeNetConfig
from .neurons import LIFPopulation
from .packing import check_position_ids, pool_segments, segment_ids
from .tas import TASEncoder, tas_macs

__all__ = [
    "SpikeStats",
    "SpikingLMOutput",
    "SpikingEvoSpikeNetPreTrainedModel",
    "SpikingEvoSpikeNetModel",
    "SpikingEvoSpikeNetForCausalLM",
    "SpikingEvoSpikeNetForSequenceClassification",
]


class SpikeStats:
    """Spike activity of one forward call, with lazily computed summaries."""

    def __init__(self, layers: list[LayerStats], n_tokens: int) -> None:
        self.layers = layers  # one entry per spiking population
        self.n_tokens = n_tokens  # tokens processed (B x L)

    def mean_rate(self) -> torch.Tensor:
        """Differentiable mean firing rate over every neuron and step (the AEG quantity)."""
        total = sum(s.spikes for s in self.layers)
        return total / sum(s.neuron_steps for s in self.layers)

    def layer_rates(self) -> dict[str, float]:
        """Firing rate (spikes per neuron per step) of each population."""
        return {s.name: float(s.spikes.detach()) / s.neuron_steps for s in self.layers if s.neuron_steps}

    def op_counter(self) -> OpCounter:
        """Counts per population as an ``OpCounter`` (SOPs, MACs, neuron updates)."""
        c = OpCounter()
        for s in self.layers:
            c.add_sops(s.name, s.sops)
            c.add_macs(s.name, s.macs)
            if s.lif:
                c.add_updates(s.name, s.neuron_steps)
        return c

    def sops_per_token(self) -> float:
        return self.op_counter().total_sops / self.n_tokens

    def energy_per_token_j(self, model: EnergyModel = HOROWITZ_45NM) -> float:
        """Compute energy (SOPs x E_AC + MACs x E_MAC + updates x E_UPDATE) per token."""
        return model.report(self.op_counter()).compute_j / self.n_tokens

    def summary(self) -> dict:
        """Plain dict for JSON and the UI."""
        return {
            "spike_rate": float(self.mean_rate().detach()),
            "layer_rates": self.layer_rates(),
            "sops_per_token": self.sops_per_token(),
            "energy_per_token_j": self.energy_per_token_j(),
        }


@dataclass
class SpikingLMOutput(ModelOutput):
    """Output of the spiking models: loss, logits, spike statistics, optional attention weights."""

    loss: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    spike_rate: torch.FloatTensor | None = None  # () mean firing rate, differentiable
    spike_stats: SpikeStats | None = None
    attentions: tuple | None = None
    hidden_spikes: torch.Tensor | None = None  # (T, B, L, D) readout: final spikes or normalised membrane


class SpikingEvoSpikeNetPreTrainedModel(AtomicSaveMixin, PreTrainedModel):
    config_class = SpikingEvoSpikeNetConfig
    config: SpikingEvoSpikeNetConfig
    base_model_prefix = "spiking"
    _no_split_modules = ["SpikingBlock"]
    _supports_cache_class = False

    @torch.no_grad()
    def _init_weights(self, module):
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            if isinstance(getattr(module, "_evo_skip_init", None), bool):
                return
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.embed_init_std)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def meta_update(self, reward: float) -> list[float]:
        """Apply the MetaSTDP meta-plasticity step to every block; returns the new ``tau_+`` values."""
        return [m.meta_update(reward) for m in self.modules() if isinstance(m, MetaSTDP)]


class SpikingEvoSpikeNetModel(SpikingEvoSpikeNetPreTrainedModel):
    """Embeddings, TAS encoder, spiking blocks and the final spiking population."""

    def __init__(self, config: SpikingEvoSpikeNetConfig) -> None:
        super().__init__(config)
        c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.pos_emb = nn.Embedding(c.context_length, c.d_model)
        self.tas = TASEncoder(c.d_model, c.tas_alpha_init, c.tas_beta_init, c.tas_tau_init, c.tas_tau_bound)
        self.tas.tau_proj._evo_skip_init = True
        self.blocks = nn.ModuleList(SpikingBlock(c, i) for i in range(c.n_layers))
        self.ln_out = nn.LayerNorm(c.d_model, eps=c.layer_norm_eps)
        self.lif_out = LIFPopulation(c.lif_beta, c.lif_threshold, c.neuron_backend, c.surrogate_alpha)
        self.post_init()

    def get_input_embeddings(self):
        return self.tok_emb

    def set_input_embeddings(self, value):
        self.tok_emb = value

    def embed(self, input_ids: torch.Tensor, start: int = 0, position_ids=None) -> torch.Tensor:
        """``e = embed_scale (E[x] + P[p])``: (B, L) ids -> (B, L, D), the input of TAS; ``p = start + i``, or
        ``position_ids`` (B, L) for packed rows."""
        if position_ids is not None:
            return self.config.embed_scale * (self.tok_emb(input_ids) + self.pos_emb(position_ids))
        pos = torch.arange(start, start + input_ids.shape[1], device=input_ids.device)
        return self.config.embed_scale * (self.tok_emb(input_ids) + self.pos_emb(pos)[None])

    def check_input_ids(self, input_ids: torch.Tensor) -> None:
        """Raise ``ValueError`` for empty input, over-long sequences and ids out of range."""
        if not isinstance(input_ids, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
            raise ValueError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        if input_ids.numel() == 0:
            raise ValueError(f"input_ids is empty (shape {tuple(input_ids.shape)}); give at least one token")
        if input_ids.shape[1] > self.config.context_length:
            raise ValueError(
                f"input_ids has {input_ids.shape[1]} tokens, over the context length "
                f"{self.config.context_length}; crop or split the sequence"
            )
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= self.config.vocab_size:
            raise ValueError(
                f"input_ids must lie in [0, {self.config.vocab_size}), got values in [{lo}, {hi}]"
            )

    def encode_tokens(self, e: torch.Tensor) -> tuple[torch.Tensor, list[LayerStats]]:
        """Embeddings ``e`` (B, L, D) -> the residual stream's start ``u0 = g TAS(e)`` (T, B, L, D), ``g`` the
        ``tas_residual_gain``, and the TAS population's stats (its signed spikes, before the gain)."""
        c = self.config
        spikes, _ = self.tas(e, c.time_steps, self.tas_stochastic())  # (T, B, L, D) in {-1, 0, 1}
        B, L, D = e.shape
        stats = [_stats("tas", spikes, 1, tas_macs(B * L, D, c.time_steps), signed=True, lif=False)]
        u = spikes if c.tas_residual_gain == 1.0 else c.tas_residual_gain * spikes
        return u, stats

    def tas_stochastic(self) -> bool:
        mode = self.config.tas_mode
        return self.training if mode == "auto" else mode == "stochastic"

    def forward(
        self, input_ids, attention_mask=None, output_attentions=False, fanout_out: int = 0, position_ids=None
    ):
        """Return the readout (T, B, L, D) (final spikes, or the normalised membrane for
        ``readout="membrane"``), the list of ``LayerStats`` and the per-block attention weights.

        ``position_ids`` (B, L) marks packed rows (``packing.py``): positions restart at 0 for each text, and
        a token attends only to its own text."""
        self.check_input_ids(input_ids)
        c = self.config
        B, L = input_ids.shape
        key_mask = attention_mask.bool() if attention_mask is not None else None
        segments = None
        if position_ids is not None:
            check_position_ids(position_ids, input_ids, attention_mask, c.context_length)
            position_ids = position_ids.to(input_ids.device).long()
            segments = segment_ids(position_ids, attention_mask)[0]
        u, stats = self.encode_tokens(self.embed(input_ids, position_ids=position_ids))  # (T, B, L, D)
        attns = []
        for block in self.blocks:
            u, block_stats, attn = block(u, key_mask, output_attentions, segments)
            stats.extend(block_stats)
            attns.append(attn)
        if c.readout == "membrane":  # non-spiking leaky-integrator readout: the head does MACs
            s = self.ln_out(u)  # (T, B, L, D) float
            zero = s.new_zeros(())
            stats.append(LayerStats("out_membrane", zero, 0, zero, float(LN_MACS_PER_ELEMENT * u.numel())))
            return s, stats, (tuple(attns) if output_attentions else None)
        s, _ = self.lif_out(u, norm=self.ln_out)  # (T, B, L, D)
        stats.append(_stats("out", s, fanout_out, LN_MACS_PER_ELEMENT * u.numel()))
        return s, stats, (tuple(attns) if output_attentions else None)


def _head_stats(config, logits: torch.Tensor) -> LayerStats:
    """Float work of the head: the 1/T rate scale per logit, or the dense MACs of a membrane readout."""
    zero = logits.new_zeros(())
    per_logit = config.d_model if config.readout == "membrane" else 1
    return LayerStats("head", zero, 0, zero.detach(), float(logits.numel() * per_logit))


def _aeg_loss(config, rate: torch.Tensor) -> torch.Tensor:
    return config.aeg_weight * F.relu(rate - config.aeg_target_rate)


class SpikingEvoSpikeNetForCausalLM(SpikingEvoSpikeNetPreTrainedModel, GenerationMixin):
    """Causal LM head on the readout (membrane of non-spiking output neurons, or final firing rates).

    ``loss = CE(logits[:, :-1], labels[:, 1:]) + aeg_weight * relu(mean_rate - aeg_target_rate)``.

    Generation reads windows of at most ``generation_window = context_length - 1`` tokens. The loss has no
    label for a window's last position, and causal attention lets only that position read its own input,
    so the last row of the position table never receives a gradient: it keeps its random initialisation
    (times ``embed_scale``, as large as a token's embedding). A full window put that noise on the newest
    token, and samples turned to noise once they outgrew the context.
    """

    def __init__(self, config: SpikingEvoSpikeNetConfig) -> None:
        if not config.attn_causal:
            raise ValueError(
                "attn_causal must be True for the causal LM (a token may not see the ones it predicts); "
                "attn_causal=False is for sequence classification"
            )
        super().__init__(config)
        self.spiking = SpikingEvoSpikeNetModel(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=True)  # bias: the unigram prior
        self.post_init()

    def get_input_embeddings(self):
        return self.spiking.tok_emb

    def get_output_embeddings(self):
        return self.lm_head

    def set_output_embeddings(self, value):
        self.lm_head = value

    @property
    def generation_window(self) -> int:
        """Most tokens one generation step reads: every position the training loss reaches (see above)."""
        return max(1, self.config.context_length - 1)

    def prepare_inputs_for_generation(self, input_ids, attention_mask=None, **kwargs):
        ctx = self.generation_window
        if attention_mask is not None:
            attention_mask = attention_mask[:, -ctx:]
        return {"input_ids": input_ids[:, -ctx:], "attention_mask": attention_mask}

    def forward(self, input_ids=None, attention_mask=None, labels=None, output_attentions=False, **kwargs):
        s, layers, attns = self.spiking(input_ids, attention_mask, output_attentions, self.config.vocab_size)
        logits = self.lm_head(s.mean(0))  # (B, L, V)
        stats = SpikeStats(layers + [_head_stats(self.config, logits)], input_ids.numel())
        rate = stats.mean_rate()
        loss = None
        if labels is not None:
            ce = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]).float(),
                labels[:, 1:].reshape(-1),
                ignore_index=-100,
            )
            loss = ce + _aeg_loss(self.config, rate) if self.config.aeg_weight > 0 else ce
        return SpikingLMOutput(loss, logits, rate, stats, attns, s)


def _pool(r: torch.Tensor, attention_mask, how: str) -> torch.Tensor:
    """(B, L, D) time-averaged readout -> (B, D): the last real token (the causal summary of the text), or
    the mean over real tokens ``sum_l m_l r_l / sum_l m_l``."""
    B, L, _ = r.shape
    m = torch.ones(B, L, device=r.device) if attention_mask is None else attention_mask.to(r.device).float()
    if how == "mean":
        return (r * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1.0)
    last = m.long().cumsum(1).argmax(1)  # (B,) index of the last real token
    return r[torch.arange(B, device=r.device), last]


class SpikingEvoSpikeNetForSequenceClassification(SpikingEvoSpikeNetPreTrainedModel):
    """Classification head on the readout of the last real token (the causal summary of the text) or on
    its mean over the real tokens (``classifier_pooling``)."""

    def __init__(self, config: SpikingEvoSpikeNetConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.spiking = SpikingEvoSpikeNetModel(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.score = nn.Linear(config.d_model, config.num_labels, bias=True)
        self.post_init()

    def get_input_embeddings(self):
        return self.spiking.tok_emb

    def forward(
        self, input_ids=None, attention_mask=None, labels=None, output_attentions=False, position_ids=None,
        **kwargs,
    ):  # fmt: skip
        """Logits (B, C); for packed rows (``position_ids`` restarting at 0, ``packing.py``) one row per
        packed text, row by row, and ``labels`` (one per text) in that order."""
        s, layers, attns = self.spiking(input_ids, attention_mask, output_attentions, 0, position_ids)
        how = self.config.classifier_pooling
        if position_ids is None:
            pooled = _pool(s.mean(0), attention_mask, how)  # (B, D)
        else:
            seg, n = segment_ids(position_ids.to(s.device).long(), attention_mask)
            pooled = pool_segments(s.mean(0), seg, n, attention_mask, how)  # (texts, D)
        logits = self.score(self.dropout(pooled))
        stats = SpikeStats(layers, input_ids.numel())
        rate = stats.mean_rate()
        loss = None
        if labels is not None:
            if self.num_labels == 1:
                loss = F.mse_loss(logits.squeeze(-1).float(), labels.float())
            else:
                loss = F.cross_entropy(logits.float(), labels.view(-1))
            if self.config.aeg_weight > 0:
                loss = loss + _aeg_loss(self.config, rate)
        return SpikingLMOutput(loss, logits, rate, stats, attns, s)
