"""MetaSTDP: tau+ follows reward relative to a running baseline, clamped; the STDP rule uses the new tau+."""

import math

import pytest
import torch
from plasticity_helpers import FakeNet, FakePop, FakeProj, make_csr

from evospikenet.plasticity import STDP, MetaSTDP, meta_init_state, meta_params, meta_step


def test_step_formula_uses_previous_baseline():
    p = meta_params(eta=0.01, alpha=0.25, lo=1e-3, hi=0.1)
    st = meta_init_state(0.02, p, baseline_init=1.0)
    v, st = meta_step(3.0, st, p)
    assert v == pytest.approx(0.02 + 0.01 * (3.0 - 1.0))
    assert st.baseline == pytest.approx(0.75 * 1.0 + 0.25 * 3.0)
    v2, st = meta_step(0.0, st, p)
    assert v2 == pytest.approx(v + 0.01 * (0.0 - 1.5))


def test_rewards_move_tau_plus_the_right_way_and_settle():
    p = meta_params(eta=1e-3, alpha=0.2, lo=1e-3, hi=0.2)
    st = meta_init_state(0.02, p)  # baseline taken from the first reward
    v, st = meta_step(1.0, st, p)
    assert v == 0.02  # first reward defines the baseline
    rising = [v]
    for r in torch.linspace(1.0, 5.0, 20).tolist():  # improving task: reward above baseline
        v, st = meta_step(r, st, p)
        rising.append(v)
    assert all(b >= a for a, b in zip(rising, rising[1:])) and rising[-1] > 0.02 + 5e-3
    top = v
    for _ in range(5):  # a worse outcome than the baseline: tau+ shrinks
        v, st = meta_step(0.0, st, p)
    assert v < top
    for _ in range(200):  # constant reward: the baseline catches up and tau+ stops moving
        v, st = meta_step(2.0, st, p)
    v_next, _ = meta_step(2.0, st, p)
    assert abs(v_next - v) < 1e-9


def test_clamped_to_range():
    p = meta_params(eta=1.0, alpha=0.5, lo=5e-3, hi=0.05)
    st = meta_init_state(0.02, p, baseline_init=0.0)
    v, st = meta_step(100.0, st, p)
    assert v == 0.05
    v, st = meta_step(-1000.0, st, p)
    assert v == 5e-3


@pytest.mark.parametrize("dtype", [torch.float32, torch.int8])
def test_in_network_reward_changes_the_stdp_window(dtype):
    """Rewards raise tau+; a pre->post pair at lag 10 then potentiates by A+ exp(-10 ms / tau+_new)."""
    a = FakePop("a", 2)
    crow, col, vals = make_csr([(0, 1)], 2, 2, 0.0 if dtype == torch.float32 else 0, dtype=dtype)
    proj = FakeProj(a, a, crow, col, vals)
    amp = 0.01 if dtype == torch.float32 else 4.0
    stdp = STDP("p", a_plus=amp, a_minus=0.0, tau_plus=10e-3, w_min=-1 if dtype == torch.int8 else -1.0)
    rewards = iter([0.0] + [10.0] * 5 + [0.0] * 100)
    meta = MetaSTDP(
        stdp, eta=1e-3, alpha=0.1, lo=1e-3, hi=0.1, reward_fn=lambda net, t, s: next(rewards), every=1
    )
    net = FakeNet([a], {"p": proj}, [meta], dt=1e-3)
    silent = torch.zeros(1, 2, dtype=dtype)
    for t in range(6):  # six rewards: the first sets the baseline, the next five are above it
        net.step(t, {"a": silent})
    tau = meta.value
    assert tau > 10e-3 + 20e-3 and stdp.get_param("tau_plus") == tau
    if dtype == torch.int8:
        assert stdp.params.m_plus == round(2**16 * math.exp(-1e-3 / tau))
    meta.reward_fn = None
    w0 = float(proj.values[0]) if dtype == torch.float32 else int(stdp.state.shadow[0])
    for t in range(6, 20):
        s = torch.zeros(1, 2, dtype=dtype)
        s[0, 0], s[0, 1] = int(t == 7), int(t == 17)
        net.step(t, {"a": s})
    if dtype == torch.float32:
        assert float(proj.values[0]) - w0 == pytest.approx(amp * math.exp(-10e-3 / tau), abs=1e-6)
    else:
        assert int(stdp.state.shadow[0]) - w0 == pytest.approx(256 * amp * math.exp(-10e-3 / tau), abs=3)


def test_bad_arguments():
    for kwargs, name in [({"eta": -1.0}, "eta"), ({"alpha": 0.0}, "alpha"), ({"alpha": 1.5}, "alpha"),
                         ({"lo": 0.3, "hi": 0.2}, "lo"), ({"hi": -1.0}, "hi")]:  # fmt: skip
        with pytest.raises(ValueError, match=name):
            meta_params(**kwargs)
    with pytest.raises(ValueError, match="reward"):
        meta_step(float("nan"), meta_init_state(0.02, meta_params()), meta_params())
    with pytest.raises(ValueError, match="param"):
        MetaSTDP(STDP("p"), param="w_max")
    with pytest.raises(ValueError, match="stdp"):
        MetaSTDP(object())
