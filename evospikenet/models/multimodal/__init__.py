"""MultiModalEvoSpikeNetLM: spiking LM + spiking vision / biosignal encoders, with Auto registration.

Importing this package registers ``model_type="multimodal_evospikenet"`` with ``AutoConfig`` and ``AutoModel``
(idempotent), so ``AutoModel.from_pretrained(dir)`` loads a saved model after ``import evospikenet``.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel

from .config import MM_MODEL_TYPE, MultiModalEvoSpikeNetConfig
from .encoders import EncoderOutput, SignalSpikeEncoder, SpikeEncoder, VisionSpikeEncoder
from .model import MultiModalEvoSpikeNetForCausalLM
from .tokenizer import SPECIAL_TOKENS, WordTokenizer

__all__ = [
    "MM_MODEL_TYPE",
    "SPECIAL_TOKENS",
    "MultiModalEvoSpikeNetConfig",
    "MultiModalEvoSpikeNetForCausalLM",
    "EncoderOutput",
    "SpikeEncoder",
    "VisionSpikeEncoder",
    "SignalSpikeEncoder",
    "WordTokenizer",
    "register_multimodal_auto_classes",
]


def register_multimodal_auto_classes() -> None:
    """Register the config with ``AutoConfig`` and the model with ``AutoModel`` (safe to call twice)."""
    AutoConfig.register(MM_MODEL_TYPE, MultiModalEvoSpikeNetConfig, exist_ok=True)
    AutoModel.register(MultiModalEvoSpikeNetConfig, MultiModalEvoSpikeNetForCausalLM, exist_ok=True)


register_multimodal_auto_classes()
