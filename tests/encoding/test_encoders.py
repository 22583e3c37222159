"""Rate, latency, delta and level-crossing encoders."""

import pytest
import torch

from evospikenet.encoding import delta_encode, latency_encode, level_crossing_encode, rate_encode


def test_rate_code_mean_matches_probability():
    x = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0])
    s = rate_encode(x.expand(4000, 5).contiguous(), num_steps=5)
    assert s.shape == (5, 4000, 5)
    assert torch.allclose(s.mean((0, 1)), x, atol=0.02)


def test_latency_code_fires_once_strong_first():
    s = latency_encode(torch.tensor([[1.0, 0.5, 0.0]]), num_steps=11)
    assert s.sum(0).tolist() == [[1.0, 1.0, 0.0]]
    assert int(torch.nonzero(s[:, 0, 0])[0]) == 0 and int(torch.nonzero(s[:, 0, 1])[0]) == 5


def test_delta_code_marks_changes():
    x = torch.tensor([0.0, 0.0, 1.0, 1.0, 0.2]).view(5, 1)
    s = delta_encode(x, threshold=0.5)
    assert s[:, 0, 0].tolist() == [0, 0, 1, 0, 0]
    assert s[:, 0, 1].tolist() == [0, 0, 0, 0, 1]


def test_level_crossing_counts_levels():
    x = torch.linspace(0, 1.05, 106).view(106, 1)  # ends between levels: no rounding ties
    s = level_crossing_encode(x, delta=0.1)
    assert int(s[:, 0, 0].sum()) == 10 and int(s[:, 0, 1].sum()) == 0
    s_down = level_crossing_encode(x.flip(0), delta=0.1)
    assert int(s_down[:, 0, 1].sum()) == 10


@pytest.mark.parametrize(
    "call", [lambda: rate_encode(torch.ones(2), 0), lambda: delta_encode(torch.ones(3, 1), -1.0)]
)
def test_bad_arguments(call):
    with pytest.raises(ValueError):
        call()
