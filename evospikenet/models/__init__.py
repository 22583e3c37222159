"""Models of EvoSpikeNet, registered with ``transformers``' Auto classes on import.

Importing ``evospikenet.models`` registers ``model_type="spiking_evospikenet"`` with ``AutoConfig``,
``AutoModelForCausalLM`` and ``AutoModelForSequenceClassification``, and ``"multimodal_evospikenet"`` with
``AutoConfig`` and ``AutoModel`` (idempotent), so ``from_pretrained``,
``generate()`` and ``pipeline("text-generation")`` work without ``trust_remote_code``.
"""

from __future__ import annotations

from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForSequenceClassification

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
    """Register the spiking LM and the multimodal LM with the ``transformers`` Auto classes (idempotent)."""
    from .multimodal import MM_MODEL_TYPE, MultiModalEvoSpikeNetConfig, MultiModalEvoSpikeNetForCausalLM

    AutoConfig.register(MODEL_TYPE, SpikingEvoSpikeNetConfig, exist_ok=True)
    AutoModelForCausalLM.register(SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM, exist_ok=True)
    AutoModelForSequenceClassification.register(
        SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForSequenceClassification, exist_ok=True
    )
    AutoConfig.register(MM_MODEL_TYPE, MultiModalEvoSpikeNetConfig, exist_ok=True)
    AutoModel.register(MultiModalEvoSpikeNetConfig, MultiModalEvoSpikeNetForCausalLM, exist_ok=True)


register_auto_classes()

from . import multimodal  # noqa: E402
