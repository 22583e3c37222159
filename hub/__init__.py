"""EvoSpikeNet hub: publish to and pull from the Hugging Face Hub, export to ONNX, NIR and Lava.

* :func:`push` / :func:`pull` / :func:`load_pretrained` / :func:`resolve_model` (also ``evospikenet-hub
  push|pull``): safetensors-only model directories with a manifest, a model card (:mod:`hub.card`) and
  verified ``exports/`` (:mod:`hub.exports`); every load is checked file by file (:mod:`hub.models`,
  :mod:`hub.limits`).
* :func:`export_onnx` (``evospikenet-hub export DIR --format onnx``): the whole time loop in one graph.
* :func:`to_nir` / :func:`export_nir_file`: NIR graphs of feed-forward, convolutional and recurrent SNNs,
  the ECG net (:mod:`hub.nir_ecg`) and the digits net (:mod:`hub.nir_digits`).
* :mod:`hub.lava`: trained ECG nets in their Loihi 2 form and core networks with the ``loihi`` profile on
  Lava's bit-accurate simulator; :mod:`hub.lava.cost`: what they cost on the chip.

See ``docs/hub.md``. This package imports ``evospikenet`` only (never ``training`` or ``serving``).
"""

__all__ = [
    "push",
    "pull",
    "load_pretrained",
    "resolve_model",
    "release",
    "release_plan",
    "load_model",
    "verify_dir",
    "ModelLoadError",
    "export_onnx",
    "DigitsClassifier",
    "to_nir",
    "export_nir_file",
    "read_into_snntorch",
    "SpikingSequential",
    "RecurrentLIF",
]

_WHERE = {
    "push": "publish",
    "pull": "publish",
    "load_pretrained": "publish",
    "resolve_model": "publish",
    "release": "publish",
    "release_plan": "publish",
    "load_model": "models",
    "verify_dir": "models",
    "ModelLoadError": "models",
    "export_onnx": "export_onnx",
    "DigitsClassifier": "export_onnx",
    "to_nir": "export_nir",
    "export_nir_file": "export_nir",
    "read_into_snntorch": "export_nir",
    "SpikingSequential": "export_nir",
    "RecurrentLIF": "export_nir",
}


def __getattr__(name: str):
    """Import the submodule that defines ``name`` on first use (``evospikenet-hub --help`` stays fast)."""
    if name not in _WHERE:
        raise AttributeError(f"module 'hub' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
