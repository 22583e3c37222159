import pytest

import evospikenet.models  # noqa: F401  (registers the Auto classes)
from evospikenet.models import SpikingEvoSpikeNetConfig


def _tiny_config(**kw) -> SpikingEvoSpikeNetConfig:
    base = dict(vocab_size=257, d_model=32, n_layers=2, n_heads=2, context_length=16, time_steps=4)
    base.update(kw)
    return SpikingEvoSpikeNetConfig(**base)


@pytest.fixture
def tiny_config():
    """Factory of tiny configs: ``tiny_config(neuron_backend="evospikenet")``."""
    return _tiny_config


@pytest.fixture(autouse=True)
def _one_thread():
    """These tiny models run far faster on one thread on a shared CPU (no OpenMP barriers)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
