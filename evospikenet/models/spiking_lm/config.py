"""Configuration of SpikingEvoSpikeNetLM, a ``transformers`` config with its own ``model_type``."""

from __future__ import annotations

from transformers import PretrainedConfig

from ..._validate import check_int_range, check_positive

__all__ = ["SpikingEvoSpikeNetConfig", "MODEL_TYPE", "NEURON_BACKENDS", "TAS_MODES"]

MODEL_TYPE = "spiking_evospikenet"
NEURON_BACKENDS = ("snntorch", "evospikenet")
TAS_MODES = ("auto", "stochastic", "deterministic")
# Field values that reproduce checkpoints saved before these fields existed (see ``from_dict``).
FIRST_DESIGN = {
    "attn_gain": 1.0,
    "attn_center": False,
    "attn_out_norm": True,
    "attn_out_gain": 1.0,
    "embed_init_std": 1.0,
    "embed_scale": 1.0,
}
# Fields added later, with the values that keep older checkpoints' behaviour when a saved config lacks them.
LATER_FIELDS = {
    "tas_tau_bound": 0.0,  # the TAS window was unbounded (softplus + 1e-3) before the bound existed
}


def _pos_int(name: str, value) -> None:
    check_int_range(name, value, 1, 2**31 - 1)


def _pos_float(name: str, value) -> None:
    check_positive(name, value)


class SpikingEvoSpikeNetConfig(PretrainedConfig):
    """Sizes and switches of the spiking LM (a dataclass under transformers >= 5; every field commented).

    Incompatible sizes (``d_model`` not divisible by ``n_heads``, non-positive sizes, a decay outside
    (0, 1), an unknown backend) raise ``ValueError`` naming the field.
    """

    model_type = MODEL_TYPE
    attribute_map = {
        "hidden_size": "d_model",
        "num_hidden_layers": "n_layers",
        "num_attention_heads": "n_heads",
        "max_position_embeddings": "context_length",
    }

    vocab_size: int = 257  # token vocabulary (257: bytes + <|endoftext|>; 50257 for GPT-2 BPE)
    d_model: int = 128  # width of the residual stream and of every spiking population D
    n_layers: int = 2  # number of spiking Transformer blocks
    n_heads: int = 4  # ChronoSpikeAttention heads (d_model must be divisible by it)
    mlp_ratio: int = 4  # hidden width of the spiking MLP is mlp_ratio * d_model
    context_length: int = 128  # longest token sequence one forward call accepts
    time_steps: int = 4  # T: simulation steps per token (every neuron runs T steps)
    neuron_backend: str = "snntorch"  # "snntorch" (snn.Leaky, explicit membrane) or "evospikenet" (fused LIF)
    lif_beta: float = 0.5  # membrane decay per step beta = exp(-dt/tau), in (0, 1)
    lif_threshold: float = 1.0  # firing threshold V_th of every LIF neuron
    surrogate_alpha: float = 2.0  # ATan surrogate steepness (peak derivative alpha / 2)
    readout: str = (
        "membrane"  # head input: "membrane" (non-spiking integrator LN(u)) or "spikes" (final LIF rates)
    )
    tas_mode: str = "auto"  # "auto": Bernoulli in training, deterministic in eval; or force either
    tas_alpha_init: float = 2.0  # initial TAS gain alpha (> 0, kept positive by softplus)
    tas_beta_init: float = 3.0  # initial TAS offset beta (higher: sparser input spikes)
    tas_tau_init: float = 1.0  # initial TAS window tau_window (> 0, predicted per token)
    tas_tau_bound: float = 4.0  # TAS window kept in [tau_init/b, tau_init*b]; 0: unbounded (first design)
    attn_tau_init: float = 2.0  # initial temporal-coincidence constant tau (steps) of each head
    attn_gain: float = 8.0  # fixed factor g of the score gain: lambda = g * (learned scale, init 1)
    attn_center: bool = True  # score (q - m_q) . k, the query's deviation from its mean rate
    attn_causal: bool = True  # attend to earlier tokens only (the causal LM needs it); False: the whole text
    signed_inputs: bool = False  # block inputs x, h as ON/OFF neuron pairs: signed spikes of LN(u)
    signed_qk: bool = False  # q and k as ON/OFF neuron pairs: signed spikes of LN(W x) (2D neurons each)
    v_norm: bool = True  # LayerNorm on the value current; False: v = LIF(v_gain * W_v x), keeping its scale
    v_gain: float = 8.0  # without v_norm, the value population receives v_gain * W_v x
    attn_out_norm: bool = False  # LayerNorm before the attention-output LIF (first design); else a gain
    attn_out_gain: float = 1.5  # without attn_out_norm, the attention-output LIF receives gain * o
    embed_init_std: float = 0.02  # std of the token and position embedding tables
    embed_scale: float = 50.0  # fixed factor: TAS reads e = embed_scale * (E[x] + P[i]) (std 1 at init)
    tas_residual_gain: float = 1.0  # weight g of the TAS spikes onto the residual stream: u0 = g * TAS(e)
    layer_norm_eps: float = 1e-5  # epsilon of the pre-spike LayerNorms
    aeg_weight: float = 0.0  # AEG: weight of the spike-rate penalty added to the loss (0 = off)
    aeg_target_rate: float = 0.0  # AEG energy budget: only the mean rate above this is penalised
    meta_stdp: bool = False  # add the MetaSTDP fast-weight path to every block
    meta_stdp_tau_init: float = 8.0  # initial STDP trace constant tau_plus of the fast weights (tokens)
    meta_stdp_eta: float = 0.5  # meta-plasticity rate: tau_plus <- tau_plus + eta (R - R_baseline)
    meta_stdp_tau_range: tuple = (1.0, 64.0)  # clamp range of tau_plus (tokens)
    classifier_dropout: float = 0.0  # dropout before the sequence-classification head
    resid_dropout: float = 0.0  # training: dropout of the branch currents W_o a, W_2 z (one mask per token)
    classifier_pooling: str = "last"  # classification input: "last" real token, or "mean" over real tokens
    initializer_range: float = 0.02  # std of the Linear weights
    bos_token_id: int | None = 256  # beginning-of-sequence id (byte-level default: <|endoftext|>)
    eos_token_id: int | None = 256  # end-of-sequence id
    pad_token_id: int | None = 256  # padding id
    tie_word_embeddings: bool = False  # the LM head has its own weights

    @classmethod
    def from_dict(cls, config_dict: dict, **kwargs):
        """Configs saved before ``embed_scale`` existed load with the values of the first block design
        (LayerNorm on the attention output, unit score and embedding factors), and saved configs without a
        field of ``LATER_FIELDS`` take its old value, so old checkpoints keep their behaviour."""
        if "model_type" in config_dict and "embed_scale" not in config_dict:
            config_dict = {**FIRST_DESIGN, **config_dict}
        if "model_type" in config_dict:
            config_dict = {**LATER_FIELDS, **config_dict}
        return super().from_dict(config_dict, **kwargs)

    def __post_init__(self, **kwargs):
        super().__post_init__(**kwargs)
        self.validate_architecture()

    def validate_architecture(self):
        """Raise ``ValueError`` naming the first incompatible field."""
        for name in (
            "vocab_size",
            "d_model",
            "n_layers",
            "n_heads",
            "mlp_ratio",
            "context_length",
            "time_steps",
        ):
            _pos_int(name, getattr(self, name))
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.neuron_backend not in NEURON_BACKENDS:
            raise ValueError(f"neuron_backend must be one of {NEURON_BACKENDS}, got {self.neuron_backend!r}")
        if self.classifier_pooling not in ("last", "mean"):
            raise ValueError(f"classifier_pooling must be 'last' or 'mean', got {self.classifier_pooling!r}")
        if self.readout not in ("spikes", "membrane"):
            raise ValueError(f"readout must be 'spikes' or 'membrane', got {self.readout!r}")
        if self.tas_mode not in TAS_MODES:
            raise ValueError(f"tas_mode must be one of {TAS_MODES}, got {self.tas_mode!r}")
        if not (0.0 < self.lif_beta < 1.0):
            raise ValueError(f"lif_beta must lie in (0, 1), got {self.lif_beta!r}")
        for name in (
            "lif_threshold",
            "surrogate_alpha",
            "tas_alpha_init",
            "tas_tau_init",
            "attn_tau_init",
            "attn_gain",
            "attn_out_gain",
            "v_gain",
        ):
            _pos_float(name, getattr(self, name))
        for name in (
            "embed_init_std",
            "embed_scale",
            "tas_residual_gain",
            "meta_stdp_tau_init",
            "initializer_range",
            "layer_norm_eps",
        ):
            _pos_float(name, getattr(self, name))
        for name in ("classifier_dropout", "resid_dropout"):
            if not (0.0 <= getattr(self, name) < 1.0):
                raise ValueError(f"{name} must lie in [0, 1), got {getattr(self, name)!r}")
        if self.tas_tau_bound != 0 and not self.tas_tau_bound > 1:
            raise ValueError(f"tas_tau_bound must be 0 (unbounded window) or > 1, got {self.tas_tau_bound!r}")
        if self.aeg_weight < 0 or self.aeg_target_rate < 0:
            raise ValueError(
                f"aeg_weight and aeg_target_rate must be >= 0, "
                f"got {self.aeg_weight!r}, {self.aeg_target_rate!r}"
            )
        for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
            tid = getattr(self, name)
            if tid is not None and not (0 <= tid < self.vocab_size):
                raise ValueError(f"{name} must be in [0, vocab_size={self.vocab_size}), got {tid!r}")
