"""A core network with the ``loihi`` profile on Lava's bit-accurate CPU simulator: identical spike trains."""

import numpy as np
import pytest
import torch

from evospikenet.core import Network, Population, Projection, fixed_probability
from hub.lava.bridge import export_lava, lava_unavailable_reason, run_core, run_lava

REASON = lava_unavailable_reason()


def _w8(n_pre, n_post, p, lo, hi, seed):
    g = torch.Generator().manual_seed(seed)
    return fixed_probability(
        n_pre,
        n_post,
        p,
        dtype=torch.int8,
        seed=seed,
        weight=lambda k, _g: torch.randint(lo, hi, (k,), generator=g).to(torch.int8),
    )


def make_net(n_a: int = 40, n_b: int = 160, seed: int = 0) -> Network:
    """Biased drivers ``a`` (random initial voltages) -> recurrent ``b`` (mixed-sign weights) -| ``a``."""
    g = torch.Generator().manual_seed(seed)
    a = Population(
        "a",
        n_a,
        "loihi",
        dict(du=4095, dv=256, vth=20, bias_mant=100, bias_exp=1),
        v0=torch.randint(0, 1280, (n_a,), generator=g).to(torch.int32),
    )
    b = Population("b", n_b, "loihi", dict(du=3000, dv=400, vth=40))
    return Network(
        [a, b],
        [
            Projection("ab", a, b, _w8(n_a, n_b, 0.3, -40, 90, seed + 1)),
            Projection("bb", b, b, _w8(n_b, n_b, 0.1, -128, 100, seed + 2)),
            Projection("ba", b, a, _w8(n_b, n_a, 0.05, -6, 0, seed + 3)),
        ],
    )


def test_export_refuses_what_lava_cannot_express(tmp_path):
    a = Population("a", 3, "loihi")
    f = Population("f", 3, "lif")
    with pytest.raises(ValueError, match="needs 'loihi'"):
        export_lava(Network([a, f], []), tmp_path / "x.npz")
    w = torch.tensor([[0, -128, 0], [0, 0, -1], [0, 0, 0]], dtype=torch.int8).to_sparse_csr()
    w = torch.sparse_csr_tensor(w.crow_indices().int(), w.col_indices().int(), w.values(), (3, 3))
    with pytest.raises(ValueError, match="all-inhibitory matrix with -128"):
        export_lava(Network([a], [Projection("aa", a, a, w)]), tmp_path / "x.npz")
    with pytest.raises(ValueError, match="delay=1"):
        export_lava(Network([a], [Projection("aa", a, a, w, delay=2)]), tmp_path / "x.npz")


def test_export_doubles_weights_for_dense_lsb_truncation(tmp_path):
    net = make_net(4, 6)
    data = np.load(export_lava(net, tmp_path / "n.npz", 5))
    w = net.projections["bb"].weights.to_dense().numpy().astype(np.int32)
    assert np.array_equal(data["w_bb"], 2 * w.T)
    assert (data["w_bb"] % 2 == 0).all()


@pytest.mark.slow
@pytest.mark.skipif(REASON is not None, reason=f"Lava venv unavailable: {REASON}")
def test_lava_spikes_equal_core_loihi_profile_step_by_step():
    net = make_net()
    steps = 200
    core = run_core(net, steps)
    lava, _ = run_lava(net, steps)
    for name in ("a", "b"):
        assert lava[name].shape == core[name].shape == (steps, net.populations[name].n)
        assert 0.01 < core[name].mean() < 0.9  # both populations are active, not saturated
        bad = np.argwhere(lava[name] != core[name])
        assert bad.size == 0, f"{name}: first mismatch (step, neuron) {bad[:3].tolist()}"
