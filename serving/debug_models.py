"""Tiny random-init models for tests and for endpoints started without a trained model.

Their answers are gibberish; ``/healthz`` names them ``debug`` (:func:`serving.local.model_name` recognises
the ``debug_models.json`` written beside them).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

__all__ = ["make_debug_models", "make_debug_multimodal"]


def make_debug_multimodal(out: str | os.PathLike, seed: int = 0) -> str:
    """Write a tiny random-init multimodal LM to ``out``; returns the path."""
    from evospikenet.models.multimodal import MultiModalEvoSpikeNetConfig, MultiModalEvoSpikeNetForCausalLM

    torch.manual_seed(seed)
    cfg = MultiModalEvoSpikeNetConfig(
        d_model=32, n_layers=1, n_heads=2, mlp_ratio=2, time_steps=2, vision_channels=[4, 4],
        signal_channels=[4, 4], max_new_tokens=6,
    )  # fmt: skip
    MultiModalEvoSpikeNetForCausalLM(cfg).save_pretrained(Path(out))
    return str(out)


def make_debug_models(out: str | os.PathLike, seed: int = 0) -> dict[str, str]:
    """Write tiny random-init models (``lm``, ``sentiment``, ``ecg``, ``multimodal``) under ``out``."""
    from evospikenet.data.text import byte_tokenizer
    from evospikenet.models import (
        SpikingEvoSpikeNetConfig,
        SpikingEvoSpikeNetForCausalLM,
        SpikingEvoSpikeNetForSequenceClassification,
    )
    from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet

    out = Path(out)
    torch.manual_seed(seed)
    tok = byte_tokenizer()
    small = dict(d_model=32, n_layers=2, n_heads=2, mlp_ratio=2, context_length=64, time_steps=4)
    paths = {}
    lm = SpikingEvoSpikeNetForCausalLM(SpikingEvoSpikeNetConfig(**small))
    cls_cfg = SpikingEvoSpikeNetConfig(
        **small,
        num_labels=2,
        id2label={0: "negative", 1: "positive"},
        label2id={"negative": 0, "positive": 1},
    )
    sent = SpikingEvoSpikeNetForSequenceClassification(cls_cfg)
    for name, model in (("lm", lm), ("sentiment", sent)):
        p = out / name
        model.save_pretrained(p)
        tok.save_pretrained(p)
        paths[name] = str(p)
    ecg = ECGSpikingNet(ECGSpikingConfig(channels=[4, 8, 8], hidden=16))
    ecg.save_pretrained(out / "ecg")
    paths["ecg"] = str(out / "ecg")
    paths["multimodal"] = make_debug_multimodal(out / "multimodal", seed)
    (out / "debug_models.json").write_text(json.dumps(paths))
    return paths
