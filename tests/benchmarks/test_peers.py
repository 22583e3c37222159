"""Every benchmark peer is configured as EvoSpikeNet's layer: the same spikes on the same input.

``benchmarks/_peers.py`` documents how each framework is set up; here each installed peer runs one and two
layers on a shared input and weights and must emit exactly EvoSpikeNet's spikes (so equal spike counts).
A peer that is not installed (``make bench-setup`` installs them) skips with the reason.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import pytest
import torch

sys.path.append(
    os.path.join(os.path.dirname(__file__), "..", "..", "benchmarks")
)  # appended: not shadowing packages

import _peers  # noqa: E402

from evospikenet.functional import fused  # noqa: E402

MODULES = {"snntorch": "snntorch", "snntorch_hoisted": "snntorch", "spikingjelly": "spikingjelly",
           "norse": "norse", "spyx": "spyx"}  # fmt: skip


def _case(sizes: list[int], scales: list[float]):
    """Input (50, 3, sizes[0]) at p = 0.2 and the layers' weights scaled per layer (more activity)."""
    x = (torch.rand(50, 3, sizes[0], generator=torch.Generator().manual_seed(0)) < 0.2).float()
    layers = [(w * c, b * c) for (w, b), c in zip(_peers.make_layers(sizes, seed=3), scales)]
    return x, layers


@pytest.mark.skipif(not fused.fused_available(), reason="no C++ compiler for the fused kernels")
@pytest.mark.parametrize("peer", sorted(MODULES))
@pytest.mark.parametrize(
    "sizes,scales", [([200, 160], [1.0]), ([200, 160, 96], [1.2, 2.5])], ids=["one", "two_layer"]
)
def test_peer_spikes_equal_evospikenet(peer, sizes, scales):
    if importlib.util.find_spec(MODULES[peer]) is None:
        pytest.skip(f"{MODULES[peer]} is not installed (make bench-setup installs the benchmark peers)")
    x, layers = _case(sizes, scales)
    ref = _peers.evospikenet(x, layers).spikes()
    assert 0.01 < float(ref.mean()) < 0.5, "the last layer must be active, not saturated"
    got = _peers.BUILDERS[peer](x, layers).spikes()
    assert got.shape == ref.shape
    assert int(got.sum()) == int(ref.sum())
    assert torch.equal(got, ref)


@pytest.mark.skipif(importlib.util.find_spec("snntorch") is None, reason="snntorch is not installed")
def test_snntorch_default_reset_would_differ():
    """The check has teeth: snnTorch's default delayed reset is a different layer and fails it."""
    import snntorch as snn

    x, layers = _case([200, 160], [1.0])
    ref = _peers.evospikenet(x, layers).spikes()
    fc, lif = (
        _peers._linear(*layers[0]),
        snn.Leaky(beta=_peers.BETA, threshold=1.0, reset_mechanism="subtract"),
    )
    with torch.no_grad():
        cur, mem, rec = fc(x), lif.reset_mem(), []
        for t in range(x.shape[0]):
            s, mem = lif(cur[t], mem)
            rec.append(s)
    assert int(torch.stack(rec).sum()) != int(ref.sum())
