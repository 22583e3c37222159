import pytest
import torch

from evospikenet.models.multimodal import MultiModalEvoSpikeNetConfig, MultiModalEvoSpikeNetForCausalLM

TINY = dict(
    d_model=16,
    n_layers=1,
    n_heads=2,
    mlp_ratio=2,
    time_steps=2,
    neuron_backend="evospikenet",
    vision_channels=[4, 4],
    signal_channels=[4, 4],
    max_new_tokens=6,
)


@pytest.fixture
def tiny_kwargs():
    return dict(TINY)


@pytest.fixture
def tiny_config():
    return MultiModalEvoSpikeNetConfig(**TINY)


@pytest.fixture
def tiny_model(tiny_config):
    torch.manual_seed(0)
    return MultiModalEvoSpikeNetForCausalLM(tiny_config).eval()
