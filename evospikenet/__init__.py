"""EvoSpikeNet: event-driven spiking neural networks in PyTorch.

Importing the package also registers the spiking language models with ``transformers``' Auto classes when
``transformers`` is installed, so a model pulled from the Hub loads with no code beyond ``import evospikenet``.
"""

from __future__ import annotations

from . import encoding, energy, functional, neurons
from ._optional import available

__version__ = "0.1.0"

__all__ = ["functional", "neurons", "encoding", "energy", "core", "plasticity", "__version__"]

from . import core, plasticity  # noqa: E402  (after the leaf modules they build on)

if available("transformers") and available("snntorch"):
    from . import models  # noqa: F401,E402  (registers the Auto classes)

    __all__.append("models")
