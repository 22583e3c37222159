"""Fixtures of the simulator tests (helpers live in ``simutil``)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def popnet():
    """The engine's extension (compiled once per environment, about a minute)."""
    from evospikenet.sim.engine import load_popnet

    try:
        return load_popnet()
    except Exception as err:  # no compiler: every simulator test says why it cannot run
        pytest.skip(f"the population-network engine could not be built: {err}")
