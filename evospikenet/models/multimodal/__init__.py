"""MultiModalEvoSpikeNetLM: spiking LM + spiking vision / biosignal encoders, with Auto registration.

``evospikenet.models`` registers ``model_type="multimodal_evospikenet"`` with ``AutoConfig`` and ``AutoModel``
(idempotent), so ``AutoModel.from_pretrained(dir)`` loads a saved model after ``import evospikenet``.
"""

from __future__ import annotations

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
]
