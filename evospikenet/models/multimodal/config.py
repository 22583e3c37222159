"""Configuration of MultiModalEvoSpikeNetLM: the spiking LM's fields, the encoders and the word vocabulary."""

from __future__ import annotations

from ..spiking_lm.config import SpikingEvoSpikeNetConfig, _pos_int
from .tokenizer import SPECIAL_TOKENS, default_vocab

__all__ = ["MultiModalEvoSpikeNetConfig", "MM_MODEL_TYPE", "FUSIONS"]

MM_MODEL_TYPE = "multimodal_evospikenet"
FUSIONS = ("prefix", "prefix+context")  # see model.py


class MultiModalEvoSpikeNetConfig(SpikingEvoSpikeNetConfig):
    """Spiking LM sizes (inherited) + vision / biosignal encoders + word vocabulary (every field commented).

    ``vocab`` holds the words of the word-level tokenizer (special tokens first); ``vocab_size`` and the
    special ids follow from it. Incompatible sizes raise ``ValueError`` naming the field.
    """

    model_type = MM_MODEL_TYPE

    vocab: list | None = None  # words of the tokenizer; None: tokenizer.default_vocab()
    image_size: int = 8  # images are (C, image_size, image_size)
    image_channels: int = 1  # C: channels of an image (1: grey levels)
    image_max_value: float = 16.0  # pixel value mapped to 1.0 (sklearn digits: 0..16)
    patch_size: int = 4  # image_size / patch_size squared patches become prefix tokens
    vision_channels: list = (16, 32)  # channels of the vision encoder conv and its spiking conv
    signal_length: int = 86  # samples of a beat window (BeatWindow(90, 166, 3).length = 86)
    signal_tokens: int = 4  # the beat's spiking feature map is cut into this many prefix tokens
    signal_channels: list = (16, 32)  # channels of the biosignal encoder conv and its spiking conv
    n_rr: int = 6  # RR features joined to every signal token (0: none; evospikenet.data.mitdb.RR_FEATURES)
    rr_mean: list | None = None  # training-set mean of each RR feature (None: 0)
    rr_std: list | None = None  # training-set std of each RR feature (None: 1)
    beat_before: int = 90  # beat window: samples before the R peak at 360 Hz (BeatWindow.before)
    beat_after: int = 166  # beat window: samples from the R peak on (BeatWindow.after)
    downsample: int = 3  # beat window: keep every d-th sample (BeatWindow.downsample)
    band: list = (0.5, 40.0)  # band-pass edges in Hz applied to a record before cutting beats
    fusion: str = (
        "prefix+context"  # "prefix": spiking prefix tokens; "prefix+context": also their mean current
    )
    # added to every text token's residual stream (see model.py)
    aux_weight: float = 0.5  # weight of the encoders' auxiliary label loss (0: off); training only
    n_digit_classes: int = 10  # labels of the vision auxiliary head
    n_signal_classes: int = 5  # labels of the biosignal auxiliary head (AAMI N, S, V, F, Q)
    max_new_tokens: int = 12  # default answer length limit of generate()
    image_words: list = (
        "image",
        "picture",
        "digit",
        "number",
        "drawn",
        "handwritten",
        "photo",
    )  # mean an image
    signal_words: list = (
        "beat",
        "heartbeat",
        "ecg",
        "signal",
        "rhythm",
        "heart",
    )  # prompt words meaning a beat
    context_length: int = 48  # longest prefix + text sequence one forward call accepts
    d_model: int = 64  # width of the residual stream
    vocab_size: int = 64  # set from vocab (kept for the transformers API)
    bos_token_id: int | None = 1  # <bos>
    eos_token_id: int | None = 3  # <eos>
    pad_token_id: int | None = 0  # <pad>

    def __post_init__(self, **kwargs):
        if self.vocab is None:
            self.vocab = default_vocab()
        self.vocab = list(self.vocab)
        if tuple(self.vocab[: len(SPECIAL_TOKENS)]) != SPECIAL_TOKENS:
            raise ValueError(f"vocab must start with {SPECIAL_TOKENS}, got {self.vocab[:5]!r}")
        if len(set(self.vocab)) != len(self.vocab):
            raise ValueError("vocab must not repeat a word")
        self.vocab_size = len(self.vocab)
        self.pad_token_id, self.bos_token_id, self.eos_token_id = 0, 1, 3
        super().__post_init__(**kwargs)

    def validate_architecture(self):
        super().validate_architecture()
        for name in ("image_size", "image_channels", "patch_size", "signal_length", "signal_tokens"):
            _pos_int(name, getattr(self, name))
        if self.image_size % self.patch_size != 0:
            raise ValueError(
                f"image_size ({self.image_size}) must be divisible by patch_size ({self.patch_size})"
            )
        if self.fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}, got {self.fusion!r}")
        if self.n_rr < 0:
            raise ValueError(f"n_rr must be >= 0, got {self.n_rr!r}")
        for name in ("vision_channels", "signal_channels"):
            v = list(getattr(self, name))
            if len(v) != 2 or any(not isinstance(c, int) or c < 1 for c in v):
                raise ValueError(f"{name} must be two positive ints, got {v!r}")
        if self.aux_weight < 0:
            raise ValueError(f"aux_weight must be >= 0, got {self.aux_weight!r}")
        longest = max(self.n_image_tokens, self.signal_tokens) + 4
        if self.context_length < longest:
            raise ValueError(
                f"context_length ({self.context_length}) must be >= {longest} (prefix + 4 tokens)"
            )

    @property
    def n_image_tokens(self) -> int:
        """Prefix tokens of one image: (image_size / patch_size)^2."""
        return (self.image_size // self.patch_size) ** 2

    @property
    def window(self) -> int:
        """Samples of a beat window after downsampling (must equal signal_length)."""
        return len(range(0, self.beat_before + self.beat_after, self.downsample))
