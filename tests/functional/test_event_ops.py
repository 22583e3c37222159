"""Event-driven inference kernels against the dense tensor code they replace."""

import pytest
import torch
import torch.nn.functional as F

import evospikenet.functional.event_ops as eo
from evospikenet.functional import lif_multistep, lif_params
from evospikenet.functional.lif import LIFState
from evospikenet.neurons import SpikeLinear

pytestmark = pytest.mark.skipif(not eo.event_kernels_enabled(), reason="no C++ compiler for the kernels")


@pytest.fixture
def calls(monkeypatch):
    """Count the calls that reach the C++ kernels."""
    ext, n = eo._load(), {"linear": 0, "lif": 0, "ln_lif": 0}

    class Spy:
        def spike_linear(self, *a):
            n["linear"] += 1
            return ext.spike_linear(*a)

        def lif_forward(self, *a):
            n["lif"] += 1
            return ext.lif_forward(*a)

        def ln_lif_forward(self, *a):
            n["ln_lif"] += 1
            return ext.ln_lif_forward(*a)

    monkeypatch.setattr(eo, "_load", lambda: Spy())
    return n


@pytest.mark.parametrize("density", [0.02, 0.15, 0.6])  # 0.6: above DENSE_ABOVE, the BLAS product
@pytest.mark.parametrize("shape", [(37, 259, 67), (8, 256, 1024), (5, 1024, 256)])
def test_spike_linear_matches_dense(density, shape):
    torch.manual_seed(0)
    n, k, m = shape
    x = (torch.rand(3, n, k) < density).float()  # (3, N, K) binary
    w, b = torch.randn(m, k), torch.randn(m)
    got = eo.spike_linear(x, w, b)
    assert got.shape == (3, n, m)
    assert torch.allclose(got, F.linear(x, w, b), atol=1e-4, rtol=1e-5)


def test_spike_linear_scales_non_binary_inputs():
    torch.manual_seed(1)
    x = (torch.rand(20, 100) < 0.1).float() * torch.randn(20, 100)  # sparse, any values
    x[3] = 0.0  # a silent row
    w = torch.randn(70, 100)
    got = eo.spike_linear(x, w)
    assert torch.allclose(got, x @ w.T, atol=1e-5)
    assert torch.equal(got[3], torch.zeros(70))


def test_kernel_runs_only_without_gradient(calls):
    x = (torch.rand(4, 64) < 0.2).float()
    lin = SpikeLinear(64, 32, bias=False)
    y = lin(x)  # training: the dense product, with a gradient
    y.sum().backward()
    assert calls["linear"] == 0 and lin.weight.grad is not None
    with torch.no_grad():
        lin(x)
    assert calls["linear"] == 1


def test_kernels_can_be_turned_off(calls, monkeypatch):
    monkeypatch.setenv("EVOSPIKENET_EVENT_KERNELS", "0")
    with torch.no_grad():
        SpikeLinear(16, 8)((torch.rand(2, 16) < 0.3).float())
        lif_multistep(torch.rand(4, 2, 3), None, lif_params())
    assert calls == {"linear": 0, "lif": 0, "ln_lif": 0}


def test_transposed_weight_cache_follows_weight_updates():
    lin = SpikeLinear(32, 16, bias=False)
    x = (torch.rand(6, 32) < 0.3).float()
    with torch.no_grad():
        first = lin(x)
        lin.weight.mul_(2.0)  # in place: a new version of the same storage
        assert torch.allclose(lin(x), 2 * first, atol=1e-5)
        lin.weight = torch.nn.Parameter(torch.randn(16, 32))  # new storage
        assert torch.allclose(lin(x), x @ lin.weight.T, atol=1e-5)


def test_spike_linear_is_a_drop_in_linear():
    ref = torch.nn.Linear(24, 12)
    lin = SpikeLinear(24, 12)
    assert set(lin.state_dict()) == set(ref.state_dict())
    lin.load_state_dict(ref.state_dict())
    x = (torch.rand(5, 24) < 0.25).float()
    with torch.no_grad():
        assert torch.allclose(lin(x), ref(x), atol=1e-6)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("v_rest", [0.0, 0.25])
def test_native_lif_matches_tensor_loop(reset, v_rest, calls, monkeypatch):
    # dyadic inputs and beta 1/2: every operation is exact in float32, so both paths agree bit for bit
    p = lif_params(
        tau_mem=1.0 / 0.6931471805599453, dt=1.0, v_th=1.0, reset=reset, v_rest=v_rest, v_reset=0.125
    )
    assert p.beta == pytest.approx(0.5)
    x = torch.randint(-8, 40, (9, 3, 7)).float() / 16
    v0 = torch.randint(0, 16, (3, 7)).float() / 16
    with torch.no_grad():
        s, st = lif_multistep(x, LIFState(v0.clone(), torch.zeros(0)), p)
        assert calls["lif"] == 1
        monkeypatch.setenv("EVOSPIKENET_EVENT_KERNELS", "0")
        s_ref, st_ref = lif_multistep(x, LIFState(v0.clone(), torch.zeros(0)), p)
    assert calls["lif"] == 1 and s.sum() > 0
    assert torch.equal(s, s_ref) and torch.equal(st.v, st_ref.v)


def test_spiking_lm_eval_matches_with_and_without_kernels(monkeypatch):
    from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM

    torch.manual_seed(0)
    cfg = SpikingEvoSpikeNetConfig(vocab_size=257, d_model=64, n_layers=2, n_heads=4, context_length=16)
    model = SpikingEvoSpikeNetForCausalLM(cfg).eval()
    ids = torch.randint(0, 257, (3, 16))
    with torch.no_grad():
        fast = model(ids)
        monkeypatch.setenv("EVOSPIKENET_EVENT_KERNELS", "0")
        ref = model(ids)
    # the sums run in another order: a spike may flip where a potential sits within rounding of threshold
    assert torch.allclose(fast.logits, ref.logits, atol=1e-3)
    assert float(fast.spike_rate) == pytest.approx(float(ref.spike_rate), abs=1e-3)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("layout", ["contiguous", "strided", "no_affine"])
def test_fused_layernorm_lif_matches_layernorm_then_lif(reset, layout, calls):
    torch.manual_seed(0)
    T, N, D = 5, 37, 259  # D not a multiple of 8: the vector loop and its scalar tail
    x = torch.randn(T, N, 3 * D)[..., D : 2 * D] if layout == "strided" else torch.randn(T, N, D)
    ln = torch.nn.LayerNorm(D, elementwise_affine=layout != "no_affine")
    if layout != "no_affine":
        with torch.no_grad():
            ln.weight.uniform_(0.5, 2.0)
            ln.bias.uniform_(-0.5, 0.5)
    p = lif_params(
        tau_mem=2.0, dt=1.0, v_th=1.0, r=3.0, reset=reset, v_reset=-0.1
    )  # gain (1 - beta) r = 1.18
    gain = (1.0 - p.beta) * p.r
    with torch.no_grad():
        s, v = eo.ln_lif_forward_native(
            x, ln.weight, ln.bias, ln.eps, p.beta, gain, 0.0, p.v_th, p.v_reset, reset
        )
        y = F.layer_norm(x, (D,), ln.weight, ln.bias, ln.eps)
        ref_s, ref_state = lif_multistep(y, LIFState(torch.zeros(N, D), torch.zeros(0)), p)
    assert calls["ln_lif"] == 1 and s.shape == x.shape and v.shape == (N, D)
    assert 0.02 < float(s.mean()) < 0.9  # the populations fire, and not always
    # the row statistics are summed in another order than torch's: a potential within rounding of the
    # threshold may flip, which these random currents make rare, never common
    flips = (s != ref_s).float().mean()
    assert float(flips) < 1e-3
    agree = (s == ref_s).all(dim=0)  # neurons whose spike trains match: same membrane up to rounding
    assert torch.allclose(v[agree], ref_state.v[agree], atol=1e-4)


def test_lif_population_takes_the_fused_path_only_in_evaluation(calls):
    from evospikenet.models.spiking_lm.neurons import LIFPopulation

    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 64)  # (T, B, L, D)
    ln, lif = torch.nn.LayerNorm(64), LIFPopulation(0.5, 1.0, "evospikenet")
    seen = []
    lif.register_forward_hook(lambda _m, _i, out: seen.append(out[0]))
    s_train, _ = lif(x, norm=ln)  # training: LayerNorm, then the autograd LIF, gradients reach the norm
    s_train.sum().backward()
    assert calls["ln_lif"] == 0 and ln.weight.grad is not None
    with torch.no_grad():
        s_eval, mem = lif(x, norm=ln)
        s_ref, mem_ref = lif(ln(x))
    assert calls["ln_lif"] == 1 and len(seen) == 3  # hooks see the spikes of the fused call too
    assert torch.equal(seen[1], s_eval) and float((s_eval != s_ref).float().mean()) < 1e-3
    assert mem.shape == mem_ref.shape == (3, 8, 64)


def test_snntorch_backend_keeps_its_own_path(calls):
    from evospikenet.models.spiking_lm.neurons import LIFPopulation

    x, ln = torch.randn(4, 2, 32), torch.nn.LayerNorm(32)
    with torch.no_grad():
        s, _ = LIFPopulation(0.5, 1.0, "snntorch")(x, norm=ln)
        ref, _ = LIFPopulation(0.5, 1.0, "snntorch")(ln(x))
    assert calls["ln_lif"] == 0 and torch.equal(s, ref)
