"""EvoSpikeNet hub: publish to and pull from the Hugging Face Hub, export to ONNX, NIR and Lava.

* :func:`push` / :func:`pull` / :func:`load_pretrained` (also ``evospikenet-hub push|pull``): safetensors
  only,
  verified model directories with a model card (:mod:`hub.card`).
* :func:`export_onnx` (``evospikenet-hub export DIR --format onnx``): the whole time loop in one graph.
* :func:`to_nir` / :func:`export_nir_file`: NIR graphs of feed-forward, convolutional and recurrent SNNs.
* :mod:`hub.lava.bridge`: a core network with the ``loihi`` profile on Lava's bit-accurate simulator.

See ``docs/hub.md``. This package imports ``evospikenet`` only (never ``training`` or ``serving``).
"""

from .export_nir import RecurrentLIF, SpikingSequential, export_nir_file, read_into_snntorch, to_nir
from .export_onnx import DigitsClassifier, export_onnx
from .models import ModelLoadError, load_model, verify_dir
from .publish import load_pretrained, pull, push, release, release_plan

__all__ = [
    "push",
    "pull",
    "load_pretrained",
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
