"""The fused Linear + LIF layer against a plain autograd reference (lif_step in a Python loop)."""

from __future__ import annotations

import pytest
import torch

from evospikenet.functional import fused
from evospikenet.functional.fused import SpikingLinearLIF, spiking_linear_lif
from evospikenet.functional.lif import lif_multistep, lif_params, lif_step
from evospikenet.functional.surrogate import ATan, FastSigmoid, Sigmoid, StraightThrough, Surrogate, Triangle


def _reference(x, w, b, params):
    """Plain autograd: one Linear per step and lif_step."""
    state, out = None, []
    for xt in x.unbind(0):
        s, state = lif_step(xt @ w + b, state, params)
        out.append(s)
    return torch.stack(out), state.v


def _data(T=12, B=3, K=40, N=24, p=0.15, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(T, B, K, generator=g) < p).float()
    w = torch.randint(-64, 128, (K, N), generator=g).float() / 128  # dyadic: exact sums in any order
    b = torch.randint(-16, 32, (N,), generator=g).float() / 64
    return x, w, b


@pytest.mark.skipif(not fused.fused_available(), reason="no C++ compiler for the fused kernels")
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("threshold", [1.0, 0.0])  # always sparse, always dense
def test_matches_autograd_reference(reset, threshold):
    params = lif_params(tau_mem=5e-3, dt=1e-3, reset=reset, v_rest=0.0, r=2.0)
    x, w, b = _data()
    w1, b1 = w.clone().requires_grad_(), b.clone().requires_grad_()
    w2, b2 = w.clone().requires_grad_(), b.clone().requires_grad_()
    s1, st = spiking_linear_lif(x, w1, b1, None, params, sparse_threshold=threshold)
    s2, v2 = _reference(x, w2, b2, params)
    assert 0 < s2.sum() < s2.numel()  # some, not all, neurons spike
    assert torch.equal(s1, s2)
    torch.testing.assert_close(st.v, v2, rtol=0, atol=1e-5)
    loss = lambda s, v: (s * torch.linspace(-1, 2, s.shape[-1])).sum() + (v**2).sum()  # noqa: E731
    loss(s1, st.v).backward()
    loss(s2, v2).backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(b1.grad, b2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not fused.fused_available(), reason="no C++ compiler for the fused kernels")
def test_non_binary_input_takes_dense_path():
    params = lif_params()
    x, w, b = _data(p=0.3)
    x = x * 0.5  # not spikes: the sparse kernel must not be used
    w1 = w.clone().requires_grad_()
    w2 = w.clone().requires_grad_()
    s1, _ = spiking_linear_lif(x, w1, None, None, params, sparse_threshold=1.0)
    s2, _ = _reference(x, w2, torch.zeros(w.shape[1]), params)
    assert torch.equal(s1, s2)
    s1.sum().backward()
    s2.sum().backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-5, atol=1e-5)


def test_refractory_falls_back_to_lif_multistep():
    params = lif_params(refractory=2e-3)
    x, w, b = _data()
    s, st = spiking_linear_lif(x, w, b, None, params)
    s_ref, st_ref = lif_multistep(x @ w + b, None, params)
    assert torch.equal(s, s_ref) and torch.equal(st.v, st_ref.v)


def test_module_shapes_and_bad_arguments():
    layer = SpikingLinearLIF(40, 24)
    assert layer.weight.shape == (40, 24)
    x, _, _ = _data()
    s, st = layer(x)
    assert s.shape == (12, 3, 24) and st.v.shape == (3, 24)
    with pytest.raises(ValueError, match="sparse_threshold"):
        SpikingLinearLIF(4, 4, sparse_threshold=1.5)
    with pytest.raises(ValueError, match="in_features"):
        SpikingLinearLIF(0, 4)
    with pytest.raises(ValueError, match="x"):
        layer(torch.zeros(5, 2, 7))


class _Cubic(Surrogate):
    """A surrogate the C++ backward does not know: its derivative comes from torch."""

    def grad(self, x):
        return 1.0 / (1.0 + x.abs() ** 3)


@pytest.mark.skipif(not fused.fused_available(), reason="no C++ compiler for the fused kernels")
@pytest.mark.parametrize(
    "surrogate",
    [ATan(3.0), FastSigmoid(10.0), Sigmoid(4.0), Triangle(0.7), StraightThrough(), _Cubic()],
    ids=lambda s: type(s).__name__,
)
def test_every_surrogate_matches_reference(surrogate):
    params = lif_params(tau_mem=5e-3, dt=1e-3, r=2.0, surrogate=surrogate)
    x, w, b = _data()
    w1, w2 = w.clone().requires_grad_(), w.clone().requires_grad_()
    s1, st = spiking_linear_lif(x, w1, b, None, params, sparse_threshold=1.0)
    s2, v2 = _reference(x, w2, b, params)
    assert torch.equal(s1, s2)
    loss = lambda s, v: (s * torch.linspace(-1, 2, s.shape[-1])).sum() + v.sum()  # noqa: E731
    loss(s1, st.v).backward()
    loss(s2, v2).backward()
    torch.testing.assert_close(w1.grad, w2.grad, rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not fused.fused_available(), reason="no C++ compiler for the fused kernels")
@pytest.mark.parametrize("reset", ["subtract", "zero"])
@pytest.mark.parametrize("threshold", [1.0, 0.0])  # sparse hidden spikes, dense product
def test_two_stacked_layers_pass_input_gradients(reset, threshold, monkeypatch):
    """Gradients through a hidden layer: dL/dX = dL/dY W^T, and every weight's gradient as autograd's."""
    calls = []
    apply = fused._SpikingLinearLIF.apply
    monkeypatch.setattr(fused._SpikingLinearLIF, "apply", lambda *a: calls.append(1) or apply(*a))
    params = lif_params(tau_mem=5e-3, dt=1e-3, reset=reset, r=2.0)
    x, w, b = _data(K=40, N=32)
    g = torch.Generator().manual_seed(1)
    w_out = torch.randint(-64, 128, (32, 20), generator=g).float() / 64
    xs = [x.clone().requires_grad_() for _ in range(2)]
    ws = [(w.clone().requires_grad_(), w_out.clone().requires_grad_()) for _ in range(2)]
    hid, _ = spiking_linear_lif(xs[0], ws[0][0], b, None, params, sparse_threshold=threshold)
    s1, _ = spiking_linear_lif(hid, ws[0][1], None, None, params, sparse_threshold=threshold)
    hid_ref, _ = _reference(xs[1], ws[1][0], b, params)
    s2, _ = _reference(hid_ref, ws[1][1], torch.zeros(20), params)
    assert len(calls) == 2  # both layers ran the fused kernels, the second with an input that needs grad
    assert torch.equal(hid, hid_ref) and 0 < hid.sum() < hid.numel() and torch.equal(s1, s2) and s2.sum() > 0
    weights = torch.linspace(-1, 2, 20)
    (s1 * weights).sum().backward()
    (s2 * weights).sum().backward()
    for a, r in ((xs[0].grad, xs[1].grad), (ws[0][0].grad, ws[1][0].grad), (ws[0][1].grad, ws[1][1].grad)):
        assert r.abs().sum() > 0
        torch.testing.assert_close(a, r, rtol=1e-5, atol=1e-5)
