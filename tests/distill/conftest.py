"""Tiny models and tokenizers made in the tests (no downloads)."""

import pytest
import torch


class FakeTeacher:
    """A deterministic classifier teacher that counts the texts it scored."""

    name = "fake/teacher"
    revision = "r1"
    batch_size = 4

    def __init__(self):
        self.calls = 0

    @property
    def identity(self):
        return f"{self.name}@{self.revision}"

    def logits(self, texts):
        self.calls += len(texts)
        n = torch.tensor([float(len(t)) for t in texts])
        return torch.stack([-0.1 * n, 0.1 * n - 1.0], dim=-1)  # (N, 2)


@pytest.fixture
def fake_teacher():
    return FakeTeacher()


@pytest.fixture(scope="session")
def byte_tok():
    from evospikenet.data.text import byte_tokenizer

    return byte_tokenizer()


@pytest.fixture(scope="session")
def tiny_gpt2():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(
        vocab_size=257,
        n_positions=128,
        n_embd=32,
        n_layer=2,
        n_head=2,
        bos_token_id=256,
        eos_token_id=256,
        pad_token_id=256,
    )
    return GPT2LMHeadModel(cfg).eval()


@pytest.fixture(scope="session")
def tiny_spiking_cls():
    import evospikenet.models  # noqa: F401
    from evospikenet.models.spiking_lm import (
        SpikingEvoSpikeNetConfig,
        SpikingEvoSpikeNetForSequenceClassification,
    )

    torch.manual_seed(0)
    cfg = SpikingEvoSpikeNetConfig(
        vocab_size=257, d_model=16, n_layers=1, n_heads=2, context_length=64, time_steps=2, num_labels=2
    )
    return SpikingEvoSpikeNetForSequenceClassification(cfg).eval()
