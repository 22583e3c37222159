"""STDP against its closed-form pair rule, float (1e-6) and integer (documented quantisation bound)."""

import math

import pytest
import torch
from dispatch_helpers import DtypeRecorder
from plasticity_helpers import FakeNet, FakePop, FakeProj, make_csr

from evospikenet.plasticity import (
    STDP,
    int_stdp_error_bound,
    int_stdp_init_state,
    int_stdp_params,
    int_stdp_step,
    stdp_params,
    stdp_step,
)

DT = 1e-3
LAGS = [-30, -12, -5, -1, 1, 3, 8, 20, 40]  # t_post - t_pre in steps


def formula(k, a_plus, a_minus, tau_plus, tau_minus):
    d = k * DT
    if d > 0:
        return a_plus * math.exp(-d / tau_plus)
    if d < 0:
        return -a_minus * math.exp(-abs(d) / tau_minus)
    return 0.0


def drive_pair(step_fn, values, crow, col, params, k, n_steps=None, t0=2, state=None, int_spikes=False):
    """Spike pre neuron 0 at t0 and post neuron 1 at t0 + k (k < 0: post first); return final values."""
    dtype, dev = (torch.int8 if int_spikes else torch.float32), values.device
    t_pre, t_post = (t0, t0 + k) if k >= 0 else (t0 - k, t0)
    n_steps = max(t_pre, t_post) + 2 if n_steps is None else n_steps
    for t in range(n_steps):
        pre = torch.zeros(1, 2, dtype=dtype, device=dev)
        post = torch.zeros(1, 2, dtype=dtype, device=dev)
        pre[0, 0] = int(t == t_pre)
        post[0, 1] = int(t == t_post)
        values, state = step_fn(values, crow, col, pre, post, state, params)
    return values, state


@pytest.mark.parametrize("k", LAGS + [0])
def test_float_pair_matches_formula(k, device):
    p = stdp_params(
        a_plus=0.01, a_minus=0.0125, tau_plus=17e-3, tau_minus=33e-3, dt=DT, w_min=-1.0, w_max=1.0
    )
    crow, col, vals = (x.to(device) for x in make_csr([(0, 1)], 2, 2, 0.5))
    new, _ = drive_pair(stdp_step, vals, crow, col, p, k)
    assert abs(float(new[0]) - 0.5 - formula(k, 0.01, 0.0125, 17e-3, 33e-3)) < 1e-6


def test_float_only_existing_entries_change_and_bounds_clip():
    p = stdp_params(a_plus=0.3, a_minus=0.3, dt=DT, w_min=0.0, w_max=0.6)
    # pre 0 -> post 1 exists; pre 0 -> post 0 and 1 -> 1 do not.
    crow, col, vals = make_csr([(0, 1), (1, 0)], 2, 2, 0.5)
    new, _ = drive_pair(stdp_step, vals, crow, col, p, 2)
    assert new.shape == vals.shape  # no entries created
    assert float(new[0]) == pytest.approx(0.6)  # 0.5 + 0.3 e^{-0.1} clipped at w_max
    assert float(new[1]) == 0.5  # (1 -> 0): neither neuron 1 pre nor 0 post fired
    new, _ = drive_pair(stdp_step, vals, crow, col, p, -2)
    assert float(new[0]) == pytest.approx(0.5 - 0.3 * math.exp(-0.1))


def test_float_all_to_all_sums_pairs_and_batch_is_averaged():
    p = stdp_params(a_plus=0.01, a_minus=0.0, dt=DT, w_min=-1.0, w_max=1.0)
    crow, col, vals = make_csr([(0, 1)], 2, 2, 0.0)
    state = None
    pre_times, t_post = (2, 6), 10
    for t in range(12):
        pre = torch.zeros(2, 2)
        post = torch.zeros(2, 2)
        pre[0, 0] = float(t in pre_times)
        post[0, 1] = float(t == t_post)  # sample 1 stays silent
        vals, state = stdp_step(vals, crow, col, pre, post, state, p)
    expect = sum(0.01 * math.exp(-(t_post - tp) * DT / 20e-3) for tp in pre_times) / 2
    assert float(vals[0]) == pytest.approx(expect, abs=1e-7)


def test_float_nearest_mode_keeps_only_last_pre():
    p = stdp_params(a_plus=0.01, a_minus=0.0, dt=DT, w_min=-1.0, w_max=1.0, mode="nearest")
    crow, col, vals = make_csr([(0, 1)], 2, 2, 0.0)
    state = None
    for t in range(12):
        pre = torch.tensor([[float(t in (2, 6)), 0.0]])
        post = torch.tensor([[0.0, float(t == 10)]])
        vals, state = stdp_step(vals, crow, col, pre, post, state, p)
    assert float(vals[0]) == pytest.approx(0.01 * math.exp(-4 * DT / 20e-3), abs=1e-7)


@pytest.mark.parametrize("k", LAGS + [0])
@pytest.mark.parametrize("amp", [1.0, 2.5])
def test_int_pair_within_quantisation(k, amp, device):
    p = int_stdp_params(a_plus=amp, a_minus=amp * 0.8, tau_plus=17e-3, tau_minus=33e-3, dt=DT)
    crow, col, vals = (x.to(device) for x in make_csr([(0, 1)], 2, 2, 10, dtype=torch.int8))
    state0 = int_stdp_init_state(1, 2, 2, vals)
    new, state = drive_pair(int_stdp_step, vals, crow, col, p, k, state=state0, int_spikes=True)
    df = int(state.shadow[0]) - int(state0.shadow[0])  # shadow units (2^8 per int8 unit)
    want = 256 * formula(k, amp, amp * 0.8, 17e-3, 33e-3)
    assert abs(df - want) <= int_stdp_error_bound(p, k)
    assert int_stdp_error_bound(p, k) < 6  # below 6/256 of one int8 weight unit for these lags
    assert new.dtype == torch.int8 and int(new[0]) == int(state.shadow[0]) >> 8


def test_int_weights_follow_shadow_and_saturate():
    p = int_stdp_params(a_plus=40.0, a_minus=40.0, dt=DT, w_min=-5, w_max=120)
    crow, col, vals = make_csr([(0, 1)], 2, 2, 100, dtype=torch.int8)
    state = None
    for _ in range(5):  # five potentiating pairs with lag 1: +~39 units each, saturating at w_max
        vals, state = drive_pair(
            int_stdp_step, vals, crow, col, p, 1, n_steps=8, t0=1, state=state, int_spikes=True
        )
    assert int(vals[0]) == 120 and int(state.shadow[0]) == 120 * 256 + 255
    for _ in range(10):
        vals, state = drive_pair(
            int_stdp_step, vals, crow, col, p, -1, n_steps=8, t0=1, state=state, int_spikes=True
        )
    assert int(vals[0]) == -5 and int(state.shadow[0]) == -5 * 256


def test_int_step_uses_no_floating_point():
    p = int_stdp_params(a_plus=1.0, a_minus=1.0, dt=DT)
    crow, col, vals = make_csr([(0, 1), (1, 0), (1, 1)], 2, 2, 3, dtype=torch.int8)
    state = int_stdp_init_state(3, 2, 2, vals)
    pre = torch.tensor([[1, 0], [0, 1], [1, 1]], dtype=torch.int8)
    post = torch.tensor([[0, 1], [1, 1], [0, 0]], dtype=torch.int8)
    with DtypeRecorder() as rec:
        for _ in range(3):
            vals, state = int_stdp_step(vals, crow, col, pre, post, state, p)
            pre, post = post, pre
    assert rec.seen and not rec.floating(), sorted(rec.floating())[:5]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"a_plus": -0.1}, "a_plus"),
        ({"a_minus": -1.0}, "a_minus"),
        ({"tau_plus": -5e-3}, "tau_plus"),
        ({"tau_minus": 0.0}, "tau_minus"),
        ({"dt": -1.0}, "dt"),
        ({"w_min": 2.0, "w_max": 1.0}, "w_min"),
        ({"mode": "triplet"}, "mode"),
    ],
)
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        stdp_params(**kwargs)


def test_bad_integer_arguments_and_dtypes():
    with pytest.raises(ValueError, match="w_max"):
        int_stdp_params(w_max=200)
    with pytest.raises(ValueError, match="tau_plus"):
        int_stdp_params(tau_plus=-1.0)
    crow, col, vals = make_csr([(0, 1)], 2, 2, 1.0)
    with pytest.raises(ValueError, match="values"):
        int_stdp_step(
            vals,
            crow,
            col,
            torch.zeros(1, 2, dtype=torch.int8),
            torch.zeros(1, 2, dtype=torch.int8),
            None,
            int_stdp_params(),
        )
    with pytest.raises(ValueError, match="pre_spikes"):
        stdp_step(vals, crow, col, torch.zeros(1, 3), torch.zeros(1, 2), None, stdp_params())
    with pytest.raises(ValueError, match="dt"):
        STDP("p", dt=1e-3)
    with pytest.raises(ValueError, match="tau_minus"):
        STDP("p", tau_minus=-2.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.int8])
def test_rule_in_network_updates_in_place(dtype):
    a = FakePop("a", 2)
    crow, col, vals = make_csr([(0, 1)], 2, 2, 0.5 if dtype == torch.float32 else 10, dtype=dtype)
    proj = FakeProj(a, a, crow, col, vals)
    rule = STDP(
        "rec",
        a_plus=0.01 if dtype == torch.float32 else 2.0,
        a_minus=0.0,
        w_min=-1 if dtype != torch.float32 else -1.0,
    )
    net = FakeNet([a], {"rec": proj}, [rule], dt=DT)
    storage = proj.values.data_ptr()
    for t in range(10):
        s = torch.zeros(1, 2, dtype=dtype)
        s[0, 0] = int(t == 2)
        s[0, 1] = int(t == 5)
        net.step(t, {"a": s})
    assert proj.values.data_ptr() == storage  # written in place
    if dtype == torch.float32:
        assert float(proj.values[0]) == pytest.approx(0.5 + 0.01 * math.exp(-3e-3 / 20e-3), abs=1e-6)
    else:  # +2 units * e^{-0.15} = 1.72 units: shadow 10*256 + 128 + 441 = 3129, weight 3129 >> 8 = 12
        assert int(rule.state.shadow[0]) - (10 * 256 + 128) == pytest.approx(512 * math.exp(-0.15), abs=2)
        assert int(proj.values[0]) == 12 and rule.integer
