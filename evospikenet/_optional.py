"""Optional dependencies, checked in one place: ``available("transformers")`` answers without importing."""

from __future__ import annotations

import importlib.util

__all__ = ["available"]


def available(name: str) -> bool:
    """True if ``name`` can be imported."""
    return importlib.util.find_spec(name) is not None
