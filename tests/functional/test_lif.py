"""Float LIF against its closed form, and the fused multi-step kernel against the step function."""

import math

import pytest
import torch

from evospikenet.functional import ATan, FastSigmoid, lif_multistep, lif_params, lif_step
from evospikenet.functional.lif import LIFState
from evospikenet.functional.surrogate import SURROGATES, Sigmoid, StraightThrough, Triangle, get_surrogate


def run_steps(x_seq, params):
    state, out, vs = None, [], []
    for xt in x_seq:
        s, state = lif_step(xt, state, params)
        out.append(s)
        vs.append(state.v)
    return torch.stack(out), torch.stack(vs)


def test_membrane_decay_closed_form(device):
    p = lif_params(tau_mem=20e-3, dt=1e-3, v_th=10.0)
    state = lif_step(torch.zeros(1, 1, device=device), None, p)[1]._replace(
        v=torch.full((1, 1), 5.0, device=device)
    )
    for n in range(1, 50):
        _, state = lif_step(torch.zeros(1, 1, device=device), state, p)
        assert state.v.item() == pytest.approx(5.0 * math.exp(-n * 1e-3 / 20e-3), rel=1e-5)


@pytest.mark.parametrize("current", [1.2, 2.0, 5.0])
def test_time_to_first_spike_closed_form(current, device):
    tau, dt, v_th, r = 10e-3, 1e-4, 1.0, 1.0
    p = lif_params(tau_mem=tau, dt=dt, v_th=v_th, r=r, reset="zero")
    expected = math.ceil(-tau / dt * math.log(1 - v_th / (r * current)))
    x = torch.full((3 * expected, 1, 1), current, device=device)
    spikes, _ = run_steps(x, p)
    first = int(torch.nonzero(spikes[:, 0, 0])[0]) + 1  # steps are 1-based in the closed form
    assert first == expected


def test_subthreshold_current_never_fires(device):
    p = lif_params(tau_mem=10e-3, dt=1e-3, v_th=1.0)
    spikes, vs = run_steps(torch.full((500, 1, 1), 0.99, device=device), p)
    assert spikes.sum() == 0
    assert vs[-1].item() == pytest.approx(0.99, rel=1e-4)  # V -> R I


def test_refractory_period_sets_interspike_interval(device):
    tau, dt, current, ref = 10e-3, 1e-3, 3.0, 4e-3
    p = lif_params(tau_mem=tau, dt=dt, v_th=1.0, reset="zero", refractory=ref)
    n_star = math.ceil(-tau / dt * math.log(1 - 1.0 / current))
    spikes, vs = run_steps(torch.full((200, 1, 1), current, device=device), p)
    times = torch.nonzero(spikes[:, 0, 0]).flatten()
    isi = torch.diff(times)
    assert bool((isi == n_star + 4).all()), isi
    # Held at v_reset during the refractory steps right after a spike.
    t0 = int(times[0])
    assert bool((vs[t0 + 1 : t0 + 5, 0, 0] == 0.0).all())


@pytest.mark.parametrize("reset,expected", [("subtract", 0.5), ("zero", -0.2), ("none", 1.5)])
def test_reset_modes(reset, expected, device):
    p = lif_params(tau_mem=1e-3, dt=1e-3, v_th=1.0, v_reset=-0.2, reset=reset)
    beta = math.exp(-1.0)
    current = 1.5 / (1 - beta)  # one step from rest lands exactly on H = 1.5
    s, state = lif_step(torch.full((1, 1), current, device=device), None, p)
    assert s.item() == 1.0
    assert state.v.item() == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("surrogate", ["atan", "fast_sigmoid", "sigmoid", "triangle"])
def test_fused_multistep_matches_step_loop(reset, surrogate, device):
    p = lif_params(tau_mem=5e-3, dt=1e-3, v_th=1.0, reset=reset, surrogate=surrogate, v_rest=0.1)
    x = (torch.rand(30, 4, 8, device=device) * 3).requires_grad_()
    w = torch.randn(30, 4, 8, device=device)
    s_ref, v_ref = run_steps(x, p)
    ((s_ref * w).sum() + v_ref[-1].sum()).backward()
    g_ref = x.grad.clone()
    x.grad = None
    s_fused, state = lif_multistep(x, None, p)
    ((s_fused * w).sum() + state.v.sum()).backward()
    assert torch.equal(s_fused, s_ref)
    assert torch.allclose(state.v, v_ref[-1], atol=1e-6)
    assert torch.allclose(x.grad, g_ref, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_inference_multistep_matches_autograd_path(reset, gain, device):
    # no-grad path (evaluation, serving) must give the same spikes and membrane as the autograd kernel
    p = lif_params(tau_mem=5e-3, dt=1e-3, v_th=0.7, reset=reset, r=gain / (1 - math.exp(-0.2)), v_rest=0.05)
    x = torch.rand(12, 3, 5, device=device) * 2
    v0 = torch.rand(3, 5, device=device)
    s_ref, st_ref = lif_multistep(x.clone().requires_grad_(), LIFState(v0.clone(), torch.zeros(0)), p)
    with torch.no_grad():
        s, st = lif_multistep(x, LIFState(v0.clone(), torch.zeros(0)), p)
    assert s.sum() > 0 and torch.equal(s, s_ref.detach())
    assert torch.allclose(st.v, st_ref.v.detach(), atol=1e-6)
    assert not s.requires_grad


def test_multistep_with_refractory_uses_step_loop(device):
    p = lif_params(tau_mem=5e-3, dt=1e-3, v_th=1.0, refractory=2e-3)
    x = torch.rand(20, 2, 3, device=device) * 4
    s_ref, _ = run_steps(x, p)
    s, _ = lif_multistep(x, None, p)
    assert torch.equal(s, s_ref)


@pytest.mark.parametrize(
    "surrogate,formula",
    [
        (FastSigmoid(slope=25.0), lambda x: 1 / (1 + 25 * abs(x)) ** 2),
        (ATan(alpha=2.0), lambda x: 1.0 / (1 + (math.pi * x) ** 2)),
        (Sigmoid(slope=5.0), lambda x: 5 * (1 / (1 + math.exp(-5 * x))) * (1 - 1 / (1 + math.exp(-5 * x)))),
        (Triangle(width=1.0), lambda x: max(0.0, 1 - abs(x))),
        (StraightThrough(), lambda x: 1.0),
    ],
)
def test_surrogate_gradients_follow_their_formula(surrogate, formula):
    for value in (-0.7, -0.1, 0.0, 0.05, 0.4):
        x = torch.tensor(value, requires_grad=True)
        y = surrogate(x)
        y.backward()
        assert y.item() == (1.0 if value >= 0 else 0.0)
        assert x.grad.item() == pytest.approx(formula(value), rel=1e-5, abs=1e-7)


def test_surrogate_registry():
    assert set(SURROGATES) >= {"atan", "fast_sigmoid", "sigmoid", "triangle", "straight_through"}
    assert get_surrogate("atan", alpha=3.0) == ATan(alpha=3.0)
    with pytest.raises(ValueError, match="surrogate"):
        get_surrogate("relu")


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"tau_mem": -1.0}, "tau_mem"),
        ({"tau_mem": 0.0}, "tau_mem"),
        ({"dt": float("nan")}, "dt"),
        ({"refractory": -1e-3}, "refractory"),
        ({"reset": "hard"}, "reset"),
        ({"v_th": 0.0, "v_reset": 0.0}, "v_th"),
    ],
)
def test_bad_parameters_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        lif_params(**kwargs)


def test_bad_input_dtype_and_shape():
    p = lif_params()
    with pytest.raises(ValueError, match="x must have dtype"):
        lif_step(torch.ones(2, 3, dtype=torch.int32), None, p)
    with pytest.raises(ValueError, match="x must have"):
        lif_multistep(torch.ones(5), None, p)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        lif_step([1.0, 2.0], None, p)
