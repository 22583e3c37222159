"""Optional dependencies, checked in one place.

``require("wfdb", extra="train")`` imports and returns the module or raises an ``ImportError`` that says
which extra to install; ``available("transformers")`` answers without raising.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

__all__ = ["available", "require", "EXTRAS"]

# Which pip extra brings each optional package.
EXTRAS: dict[str, str] = {
    "transformers": "lm",
    "snntorch": "lm",
    "tokenizers": "lm",
    "lightning": "train",
    "wfdb": "train",
    "datasets": "train",
    "sklearn": "train",
    "ray": "serve",
    "gradio": "serve",
    "fastapi": "serve",
    "accelerate": "serve",
    "onnx": "export",
    "onnxruntime": "export",
    "nir": "export",
    "nirtorch": "export",
    "huggingface_hub": "export",
}


def available(name: str) -> bool:
    """True if ``name`` can be imported."""
    return importlib.util.find_spec(name) is not None


def require(name: str, extra: str | None = None) -> ModuleType:
    """Import ``name`` or raise ``ImportError`` naming the extra that installs it."""
    try:
        return importlib.import_module(name)
    except ImportError as err:
        extra = extra or EXTRAS.get(name, "dev")
        raise ImportError(
            f"{name} is needed for this feature: pip install 'evospikenet[{extra}]' (or `make install`)"
        ) from err
