"""Safe loading of the project's saved model directories (safetensors only, checked before anything runs).

A directory holds ``config.json`` and ``model.safetensors`` (plus tokenizer files for the LMs) and, when
it was
published by :mod:`hub.publish`, ``evospikenet_manifest.json``: the SHA-256 and size of every file. Checks, in
order, each failing with :class:`ModelLoadError` (a ``ValueError``) that names the file and the problem:

1. ``config.json`` exists and is JSON; its model type is one of :data:`KNOWN_TYPES` (a model of another
   library, e.g. ``bert``, is refused); the keys that type needs are present.
2. weights come from ``model.safetensors`` only (a pickle ``*.bin``/``*.pt`` alone is refused, never loaded).
3. with a manifest, every listed file has its recorded size (truncation) and SHA-256 (tampering).
4. the safetensors header parses and covers the file (a truncated file without manifest fails here).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from torch import nn

__all__ = [
    "ModelLoadError",
    "KNOWN_TYPES",
    "MANIFEST",
    "model_type_of",
    "verify_dir",
    "load_model",
    "file_digest",
]

MANIFEST = "evospikenet_manifest.json"
DIGITS_TYPE = "evospikenet_plastic_digits"
# model type -> config keys it needs
KNOWN_TYPES = {
    "spiking_evospikenet": ("d_model", "n_layers", "n_heads", "vocab_size", "context_length", "time_steps"),
    "evospikenet_ecg_snn": ("channels", "kernels", "strides", "hidden", "time_steps"),
    "evospikenet_ecg_resnet18": ("widths", "blocks"),
    DIGITS_TYPE: ("network_config", "n_classes", "feature_scale"),
    "multimodal_evospikenet": (
        "vocab",
        "d_model",
        "n_layers",
        "image_size",
        "signal_length",
        "context_length",
    ),
}


class ModelLoadError(ValueError):
    """A saved model directory failed a safety or consistency check (nothing was run)."""


def file_digest(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _read_config(d: Path) -> dict:
    f = d / "config.json"
    if not f.is_file():
        raise ModelLoadError(f"{str(d)!r} has no config.json")
    try:
        cfg = json.loads(f.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{str(f)!r} is not valid JSON: {e}") from None
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{str(f)!r} must hold a JSON object")
    return cfg


def model_type_of(cfg: dict) -> str | None:
    """The model type of a config (the STDP digits module's Lightning config maps to ``DIGITS_TYPE``)."""
    if "model_type" in cfg:
        return cfg["model_type"]
    if str(cfg.get("_class_path", "")).endswith("STDPDigitsModule"):
        return DIGITS_TYPE
    return None


def _check_safetensors(f: Path) -> None:
    size = f.stat().st_size
    with open(f, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelLoadError(f"{str(f)!r} is truncated ({size} bytes): no safetensors header")
        n = int.from_bytes(head, "little")
        if n > size - 8:
            raise ModelLoadError(f"{str(f)!r} is truncated: header of {n} bytes in a {size}-byte file")
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelLoadError(f"{str(f)!r} has a corrupt safetensors header") from None
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise ModelLoadError(
            f"{str(f)!r} is truncated or padded: header says {8 + n + end} bytes, file has {size}"
        )


def verify_dir(path) -> tuple[dict, str]:
    """Run checks 1-4 on a model directory; returns ``(config, model_type)``."""
    d = Path(path)
    if not d.is_dir():
        raise ModelLoadError(f"model directory {str(d)!r} does not exist")
    cfg = _read_config(d)
    mt = model_type_of(cfg)
    if mt not in KNOWN_TYPES:
        raise ModelLoadError(
            f"config.json of {str(d)!r} has model type {mt!r}, not an EvoSpikeNet model "
            f"(one of {sorted(KNOWN_TYPES)}); refusing to load it"
        )
    missing = [k for k in KNOWN_TYPES[mt] if k not in cfg]
    if missing:
        raise ModelLoadError(f"config.json of {str(d)!r} ({mt}) lacks required keys {missing}")
    st = d / "model.safetensors"
    if not st.is_file():
        pickles = sorted(p.name for p in d.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".ckpt", ".pkl"))
        extra = f"; found {pickles}, which are never loaded (pickle can run code)" if pickles else ""
        raise ModelLoadError(f"{str(d)!r} has no model.safetensors{extra}")
    man = d / MANIFEST
    if man.is_file():
        entries = json.loads(man.read_text()).get("files", {})
        for name, info in entries.items():
            f = d / name
            if not f.is_file():
                raise ModelLoadError(f"{str(f)!r} listed in the manifest is missing")
            if f.stat().st_size != info["size"]:
                raise ModelLoadError(
                    f"{str(f)!r} has {f.stat().st_size} bytes, the manifest says {info['size']} (truncated?)"
                )
            if file_digest(f) != info["sha256"]:
                raise ModelLoadError(f"{str(f)!r} does not match its SHA-256 in the manifest (tampered?)")
    _check_safetensors(st)
    return cfg, mt


def _load_digits(d: Path, cfg: dict) -> nn.Module:
    from safetensors.torch import load_file

    from evospikenet.models.plastic_snn import PlasticDigitsSNN

    from .export_onnx import DigitsClassifier

    sd = load_file(str(d / "model.safetensors"))
    n_in = int(sd["net.proj.crow"].numel() - 1)
    net = PlasticDigitsSNN(n_in=n_in, **cfg["network_config"])
    readout = nn.Linear(net.n_exc, int(cfg["n_classes"]))
    model = DigitsClassifier(net, readout, cfg["feature_scale"])
    model.load_state_dict(sd, strict=True)
    return model.eval()


def load_model(path, task: str | None = None) -> nn.Module:
    """Verify then load a saved model directory (any project model type) in eval mode.

    ``task`` picks the head of a spiking LM config (``"causal-lm"`` or ``"sequence-classification"``); by
    default the config's ``architectures`` decides.
    """
    d = Path(path)
    cfg, mt = verify_dir(d)
    import evospikenet  # noqa: F401  (registers the Auto classes)

    if mt == DIGITS_TYPE:
        return _load_digits(d, cfg)
    if mt.startswith("evospikenet_ecg"):
        from evospikenet.models.ecg import load_ecg_model

        return load_ecg_model(d)
    if mt == "multimodal_evospikenet":
        from evospikenet.models.multimodal import MultiModalEvoSpikeNetForCausalLM

        return MultiModalEvoSpikeNetForCausalLM.from_pretrained(str(d)).eval()
    from safetensors.torch import load_file
    from transformers import AutoConfig

    from evospikenet.models import SpikingEvoSpikeNetForCausalLM, SpikingEvoSpikeNetForSequenceClassification

    arch = (cfg.get("architectures") or [""])[0]
    if task is None:
        task = "sequence-classification" if "SequenceClassification" in arch else "causal-lm"
    if task not in ("causal-lm", "sequence-classification"):
        raise ValueError(f"task must be 'causal-lm' or 'sequence-classification', got {task!r}")
    cls = (
        SpikingEvoSpikeNetForSequenceClassification if task != "causal-lm" else SpikingEvoSpikeNetForCausalLM
    )
    # Built on the CPU and filled from safetensors here (not ``from_pretrained``, which builds on the meta
    # device, where snnTorch's Leaky constructor cannot run).
    model = cls(AutoConfig.from_pretrained(str(d)))
    missing, unexpected = model.load_state_dict(load_file(str(d / "model.safetensors")), strict=False)
    if unexpected or [k for k in missing if not k.endswith(("tau_plus", "reward_baseline"))]:
        raise ModelLoadError(
            f"weights of {str(d)!r} do not fit {cls.__name__}: missing {missing}, unexpected {unexpected}"
        )
    return model.eval()
