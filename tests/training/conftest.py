"""Fixtures of the training tests: one thread per process (the machine is shared), a bare argv (helpers
live in ``trainutil``)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _plain_argv(monkeypatch):
    """LightningCLI(args=...) warns when pytest's own argv is present; give it a bare argv."""
    monkeypatch.setattr("sys.argv", ["evospikenet-train"])
