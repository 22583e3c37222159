"""Homeostasis: rates converge into +-30 % of 10 Hz from too-high and too-low starts (float and integer)."""

import math

import pytest
import torch
from plasticity_helpers import FakeNet, FakePop

from evospikenet.functional import int_lif_params, int_lif_step
from evospikenet.plasticity import (
    Homeostasis,
    homeostasis_params,
    homeostasis_step,
    int_homeostasis_params,
    int_homeostasis_step,
)

N, DT, TARGET = 100, 1e-3, 10.0


def run_float(v_th0, eta, steps, measure=2000, seed=1):
    """Noisy-input LIF population (tau 20 ms) under homeostasis; rates (Hz) over the last ``measure``."""
    g = torch.Generator().manual_seed(seed)
    beta = math.exp(-DT / 20e-3)
    mu = 0.5 + torch.rand(N, generator=g)  # heterogeneous mean drive
    p = homeostasis_params(eta=eta, tau_rate=0.3, dt=DT)
    v_th, state, v, count = torch.full((N,), v_th0), None, torch.zeros(1, N), torch.zeros(N)
    for t in range(steps):
        v = beta * v + (1 - beta) * (mu + 1.5 * torch.randn(1, N, generator=g))
        s = (v >= v_th).float()
        v = v - s * v_th
        v_th, state = homeostasis_step(v_th, s, state, p)
        if t >= steps - measure:
            count += s[0]
    return count / (measure * DT)


def run_int(v_th0, eta, steps, measure=2000, seed=1):
    """Integer LIF (int16 membrane, shift leak) with per-neuron int16 thresholds under integer homeostasis."""
    g = torch.Generator().manual_seed(seed)
    lif = int_lif_params(v_th=64, leak_shift=4)
    mu = 3 + 3 * torch.rand(N, generator=g)
    p = int_homeostasis_params(eta=eta, tau_rate=0.25, dt=DT)
    v_th, state, lif_state, count = torch.full((N,), v_th0, dtype=torch.int16), None, None, torch.zeros(N)
    for t in range(steps):
        current = (mu + 20 * torch.randn(1, N, generator=g)).round().to(torch.int32)
        s, lif_state = int_lif_step(current, lif_state, lif._replace(v_th=v_th))
        v_th, state = int_homeostasis_step(v_th, s, state, p)
        assert v_th.dtype == torch.int16
        if t >= steps - measure:
            count += s[0].float()
    return count / (measure * DT)


def in_band(rates):
    return (
        abs(float(rates.mean()) - TARGET) <= 0.3 * TARGET
        and float(((rates - TARGET).abs() <= 3).float().mean()) >= 0.9
    )


@pytest.mark.parametrize("v_th0", [0.2, 3.0])
def test_float_rates_converge_from_both_sides(v_th0):
    before = run_float(v_th0, eta=0.0, steps=1000, measure=1000)  # no feedback: far from the target
    assert not in_band(before)
    assert (float(before.mean()) > 2 * TARGET) if v_th0 < 1 else (float(before.mean()) < 0.2 * TARGET)
    assert in_band(run_float(v_th0, eta=3e-4, steps=6000))


@pytest.mark.parametrize("v_th0", [8, 400])
def test_int_rates_converge_from_both_sides(v_th0):
    before = run_int(v_th0, eta=0.0, steps=1000, measure=1000)
    assert not in_band(before)
    assert in_band(run_int(v_th0, eta=0.02, steps=6000))


def test_float_step_formula():
    p = homeostasis_params(eta=0.1, tau_rate=0.01, dt=DT, v_th_min=0.5)
    v_th = torch.tensor([1.0, 1.0, 0.55])
    s = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    new, st = homeostasis_step(v_th, s, None, p)
    r = 10.0 + 0.1 * (torch.tensor([500.0, 0.0, 0.0]) - 10.0)  # mean over batch: 0.5 spike/step = 500 Hz
    assert torch.allclose(st.rate, r)
    assert torch.allclose(new, torch.tensor([1.0 + 0.1 * (r[0] - 10), 1.0 + 0.1 * (r[1] - 10), 0.5]))


def test_rule_writes_v_th_in_place_float_and_int():
    for v_th in (torch.full((3,), 1.0), torch.full((3,), 100, dtype=torch.int16)):
        pop = FakePop("a", 3, v_th=v_th)
        ptr = pop.v_th.data_ptr()
        eta = 1e-3 if v_th.is_floating_point() else 0.05
        rule = Homeostasis("a", eta=eta, tau_rate=0.05)
        net = FakeNet([pop], {}, [rule], dt=DT)
        for t in range(200):  # neuron 0 fires every step, 1 never, 2 at 10 Hz
            s = torch.tensor(
                [[1, 0, int(t % 100 == 0)]], dtype=v_th.dtype if v_th.is_floating_point() else torch.int8
            )
            net.step(t, {"a": s})
        assert pop.v_th.data_ptr() == ptr and pop.v_th.dtype == v_th.dtype
        assert float(pop.v_th[0]) > float(v_th[0]) > float(pop.v_th[1])
        assert abs(float(pop.v_th[2]) - float(v_th[2])) < abs(float(pop.v_th[1]) - float(v_th[1]))
        assert rule.rate_hz[0] > 900 and rule.rate_hz[1] < 1


@pytest.mark.parametrize(
    "kwargs, name",
    [({"tau_rate": -1.0}, "tau_rate"), ({"eta": -1e-3}, "eta"), ({"target_hz": -5.0}, "target_hz"),
     ({"dt": 0.0}, "dt"), ({"v_th_min": 2.0, "v_th_max": 1.0}, "v_th_min")],
)  # fmt: skip
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        homeostasis_params(**kwargs)


def test_bad_integer_arguments():
    with pytest.raises(ValueError, match="v_th_min"):
        int_homeostasis_params(v_th_min=0)
    with pytest.raises(ValueError, match="target_hz"):
        int_homeostasis_params(target_hz=2000.0)
    with pytest.raises(ValueError, match="v_th"):
        int_homeostasis_step(
            torch.ones(3), torch.zeros(1, 3, dtype=torch.int8), None, int_homeostasis_params()
        )
    with pytest.raises(ValueError, match="dt"):
        Homeostasis("a", dt=1e-3)
