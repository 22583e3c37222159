"""Models of EvoSpikeNet, registered with ``transformers``' Auto classes on import.

Importing ``evospikenet.models`` registers ``model_type="spiking_evospikenet"`` with ``AutoConfig``,
``AutoModelForCausalLM`` and ``AutoModelForSequenceClassification`` (idempotent), so ``from_pretrained``,
``generate()`` and ``pipeline("text-generation")`` work without ``trust_remote_code``.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSequenceClassification

from .float_lm import FloatTransformerLM, FloatTransformerLMConfig
from .spiking_lm import (
    MODEL_TYPE,
    SpikeStats,
    SpikingEvoSpikeNetConfig,
    SpikingEvoSpikeNetForCausalLM,
    SpikingEvoSpikeNetForSequenceClassification,
    SpikingEvoSpikeNetModel,
    SpikingLMOutput,
)

__all__ = [
    "MODEL_TYPE",
    "SpikingEvoSpikeNetConfig",
    "SpikingEvoSpikeNetModel",
    "SpikingEvoSpikeNetForCausalLM",
    "SpikingEvoSpikeNetForSequenceClassification",
    "SpikingLMOutput",
    "SpikeStats",
    "FloatTransformerLM",
    "FloatTransformerLMConfig",
    "register_auto_classes",
    "multimodal",
]


def register_auto_classes() -> None:
    """Register the spiking LM with the ``transformers`` Auto classes (safe to call twice)."""
    AutoConfig.register(MODEL_TYPE, SpikingEvoSpikeNetConfig, exist_ok=True)
    AutoModelForCausalLM.register(SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM, exist_ok=True)
    AutoModelForSequenceClassification.register(
        SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForSequenceClassification, exist_ok=True
    )


register_auto_classes()

from . import multimodal  # noqa: E402  (registers multimodal_evospikenet with AutoConfig / AutoModel)
