"""Helpers of the hub tests: the stand-in Hub import, tiny trained models."""

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hub_test_server import HubState, serve_in_thread  # noqa: E402,F401

TOKEN = "hf_test_token"


def tiny_ecg(train_steps: int = 3):
    """A small spiking ECG net trained a few Adam steps on random beats (so its weights are not the init)."""
    from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet

    torch.manual_seed(0)
    m = ECGSpikingNet(ECGSpikingConfig(channels=[4, 8, 8], hidden=16, time_steps=3))
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    x, rr, y = torch.randn(16, m.config.window), torch.randn(16, 6), torch.randint(0, 5, (16,))
    for _ in range(train_steps):
        loss = torch.nn.functional.cross_entropy(m(x, rr), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return m.eval()


def tiny_lm():
    """A 1-layer spiking LM (random weights) with the fused backend."""
    from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM

    torch.manual_seed(0)
    cfg = SpikingEvoSpikeNetConfig(
        d_model=16, n_layers=1, n_heads=2, context_length=16, time_steps=2, neuron_backend="evospikenet"
    )
    return SpikingEvoSpikeNetForCausalLM(cfg).eval()
