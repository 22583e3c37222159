"""Model registry: task -> name -> factory, the extension point for the models that land later.

A factory takes the model's configuration as keyword arguments and returns an ``nn.Module``. The
LightningModules in ``training.modules`` look models up here by ``(task, name)``; a new model registers
itself as the multimodal LM does (``training.multimodal``)::

    from training.registry import register_model

    @register_model("multimodal_lm", "spiking_multimodal")
    def build_multimodal(**cfg):
        return MultiModalEvoSpikeNetForCausalLM(MultiModalEvoSpikeNetConfig(**cfg))

Built-in entries (imported lazily, so registering never pulls in ``transformers``):

* ``("causal_lm", "spiking_lm")``: ``SpikingEvoSpikeNetForCausalLM`` with ``SpikingEvoSpikeNetConfig(**cfg)``;
* ``("seq_cls", "spiking_lm")``: ``SpikingEvoSpikeNetForSequenceClassification``;
* ``("causal_lm", "gpt2")`` and ``("seq_cls", "gpt2")``: a (tiny) ``transformers`` GPT-2, the ANN baseline;
* ``("stdp", "plastic_digits")``: ``PlasticDigitsSNN`` (unsupervised STDP + homeostasis + WTA).
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

__all__ = ["register_model", "build_model", "available_models", "TASKS"]

TASKS = ("causal_lm", "seq_cls", "stdp", "multimodal_lm")
_REGISTRY: dict[tuple[str, str], Callable[..., nn.Module]] = {}


def register_model(task: str, name: str) -> Callable:
    """Decorator registering ``factory(**cfg) -> nn.Module`` under ``(task, name)``."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")

    def deco(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[(task, name)] = factory
        return factory

    return deco


def available_models(task: str | None = None) -> list[tuple[str, str]]:
    """Registered ``(task, name)`` pairs, optionally for one task."""
    return sorted(k for k in _REGISTRY if task is None or k[0] == task)


def build_model(task: str, name: str, config: dict | None = None) -> nn.Module:
    """Instantiate the model registered under ``(task, name)`` with ``config``."""
    if (task, name) not in _REGISTRY:
        raise ValueError(
            f"model must be one of {[n for t, n in available_models(task)]} for task {task!r}, got {name!r}"
        )
    return _REGISTRY[(task, name)](**(config or {}))


@register_model("causal_lm", "spiking_lm")
def _spiking_causal_lm(**cfg) -> nn.Module:
    from evospikenet.models.spiking_lm import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM

    return SpikingEvoSpikeNetForCausalLM(SpikingEvoSpikeNetConfig(**cfg))


@register_model("seq_cls", "spiking_lm")
def _spiking_seq_cls(**cfg) -> nn.Module:
    from evospikenet.models.spiking_lm import (
        SpikingEvoSpikeNetConfig,
        SpikingEvoSpikeNetForSequenceClassification,
    )

    cfg.setdefault("num_labels", 2)
    return SpikingEvoSpikeNetForSequenceClassification(SpikingEvoSpikeNetConfig(**cfg))


@register_model("causal_lm", "gpt2")
def _gpt2_causal_lm(**cfg) -> nn.Module:
    from transformers import GPT2Config, GPT2LMHeadModel

    return GPT2LMHeadModel(GPT2Config(**cfg))


@register_model("seq_cls", "gpt2")
def _gpt2_seq_cls(**cfg) -> nn.Module:
    from transformers import GPT2Config, GPT2ForSequenceClassification

    cfg.setdefault("num_labels", 2)
    return GPT2ForSequenceClassification(GPT2Config(**cfg))


@register_model("stdp", "plastic_digits")
def _plastic_digits(**cfg) -> nn.Module:
    from evospikenet.models.plastic_snn import PlasticDigitsSNN

    return PlasticDigitsSNN(**cfg)
