"""Integer LIF: exact integer semantics, no float op, agreement with the float form, Loihi fixed point."""

import math

import numpy as np
import pytest
import torch
from dispatch_helpers import DtypeRecorder
from hypothesis import given, settings
from hypothesis import strategies as st

from evospikenet.functional import (
    int_lif_params,
    int_lif_step,
    lif_params,
    lif_step,
    loihi_lif_params,
    loihi_lif_step,
)


def _ref_int_step(v, refrac, x, p):
    """Plain-Python reference of one int16 LIF step for one neuron."""
    i = max(-32768, min(32767, x))
    if p.leak == "shift":
        dec = v - ((v + (1 << p.leak_shift >> 1)) >> p.leak_shift)
    else:
        dec = (v * p.leak_mul + (1 << p.leak_bits >> 1)) >> p.leak_bits
    h = max(-32768, min(32767, dec + i))
    if refrac > 0:
        return 0, p.v_reset, refrac - 1
    if h >= p.v_th:
        return 1, (h - p.v_th if p.reset == "subtract" else p.v_reset), p.refractory
    return 0, h, max(refrac - 1, 0)


@settings(max_examples=60, deadline=None)
@given(
    xs=st.lists(st.integers(-40000, 40000), min_size=1, max_size=30),
    leak=st.sampled_from(["shift", "mul"]),
    reset=st.sampled_from(["subtract", "zero"]),
    refractory=st.integers(0, 3),
    v_th=st.integers(1, 32767),
)
def test_int_step_matches_python_reference(xs, leak, reset, refractory, v_th):
    p = int_lif_params(v_th=v_th, leak=leak, reset=reset, refractory=refractory, leak_shift=3, v_reset=-5)
    state, v, refrac = None, 0, 0
    for x in xs:
        s, state = int_lif_step(torch.tensor([[x]], dtype=torch.int32), state, p)
        s_ref, v, refrac = _ref_int_step(v, refrac, x, p)
        assert (int(s), int(state.v), int(state.refrac)) == (s_ref, v, refrac)


def test_int_step_dtypes_and_saturation(device):
    p = int_lif_params(v_th=30000, leak_shift=15)
    s, state = int_lif_step(torch.full((2, 3), 10**6, dtype=torch.int32, device=device), None, p)
    assert s.dtype == torch.int8 and state.v.dtype == torch.int16
    # 10**6 saturates to 32767 >= v_th: spike, subtract leaves 2767.
    assert bool((state.v == 2767).all())
    neg = torch.full((2, 3), -(10**6), dtype=torch.int32, device=device)
    _, state = int_lif_step(neg, state, p)
    assert bool((state.v == 2767 - 32768).all())  # the input saturates at -32768 before it is added
    _, state = int_lif_step(neg, state, p)
    assert bool((state.v == -32768).all())  # and the membrane saturates too


def test_shift_leak_decay_closed_form():
    p = int_lif_params(v_th=32767, leak_shift=4)
    state = int_lif_step(torch.tensor([[20000]], dtype=torch.int32), None, p)[1]
    v = 20000
    for _ in range(40):
        state = int_lif_step(torch.zeros(1, 1, dtype=torch.int32), state, p)[1]
        v = v - ((v + 8) >> 4)
        assert int(state.v) == v
    # it follows the float decay (1 - 2^-4)^n: each rounding moves < 1/2 unit, decaying, so < 8 in all
    assert abs(v - 20000 * (1 - 1 / 16) ** 40) < 8


def test_no_floating_point_anywhere_in_the_integer_step():
    p = int_lif_params(v_th=50, leak="mul", leak_mul=230, refractory=2)
    w = torch.randint(-127, 128, (16, 8), dtype=torch.int8)
    spikes = torch.randint(0, 2, (4, 16), dtype=torch.int8)
    rec = DtypeRecorder()
    state = None
    with rec:
        for _ in range(5):
            current = (spikes.to(torch.int32).unsqueeze(-1) * w.to(torch.int32)).sum(1)  # (B, 8) int32
            out, state = int_lif_step(current, state, p)
    assert rec.seen, "the recorder saw no op"
    floats = {(op, dt) for op, dt in rec.seen if dt.is_floating_point or dt.is_complex}
    assert not floats, f"floating-point ops in the integer step: {sorted(floats)[:5]}"


def test_recorder_would_catch_a_float_op():
    rec = DtypeRecorder()
    with rec:
        torch.ones(2, dtype=torch.int32) * 0.5
    assert any(dt.is_floating_point for _, dt in rec.seen)


def test_integer_and_float_forms_agree_within_quantisation():
    """The same 64 -> 32 network run in float and in int8/int16: spikes agree up to quantisation flips."""
    g = torch.Generator().manual_seed(3)
    n_in, n_out, steps, k = 64, 32, 300, 4
    w = torch.randn(n_in, n_out, generator=g) * 0.3
    scale = float(w.abs().max()) / 127
    w_int = torch.round(w / scale).to(torch.int8)
    w_q = w_int.float() * scale  # the float twin uses the quantised weights; the rest is arithmetic rounding
    spikes_in = (torch.rand(steps, 1, n_in, generator=g) < 0.15).float()
    beta = 1 - 2.0**-k
    v_th = 1.0
    th_int = round(v_th / scale)
    dt = 1e-3
    fp = lif_params(tau_mem=-dt / math.log(beta), dt=dt, v_th=th_int * scale, r=1 / (1 - beta))
    ip = int_lif_params(v_th=th_int, leak_shift=k)
    sf = si = None
    out_f, out_i, v_f, v_i = [], [], [], []
    for t in range(steps):
        of, sf = lif_step(spikes_in[t] @ w_q, sf, fp)
        oi, si = int_lif_step(spikes_in[t].to(torch.int32) @ w_int.to(torch.int32), si, ip)
        out_f.append(of)
        out_i.append(oi.float())
        v_f.append(sf.v)
        v_i.append(si.v.float() * scale)
    out_f, out_i = torch.stack(out_f), torch.stack(out_i)
    assert out_f.sum() > 50  # the network is active
    agreement = (out_f == out_i).float().mean().item()
    assert agreement >= 0.99, agreement
    assert abs(out_f.sum().item() - out_i.sum().item()) <= 0.05 * out_f.sum().item()
    # Before the first disagreement the membranes differ only by the floor rounding of the leak,
    # at most one integer unit per step, bounded by the geometric sum 1/(1 - beta) = 2^k units.
    first_diff = int(torch.nonzero((out_f != out_i).flatten(1).any(1))[0]) if agreement < 1 else steps
    err = (torch.stack(v_f)[:first_diff] - torch.stack(v_i)[:first_diff]).abs().max().item()
    assert err <= 2**k * scale + 1e-4, (err, scale)


def _lava_reference(a_seq, du, dv, vth, bias):
    """Lava PyLifModelBitAcc's arithmetic in numpy, for checking our torch implementation."""
    u = np.zeros(a_seq.shape[1], dtype=np.int32)
    v = np.zeros_like(u)
    out = []
    for a in a_seq:
        dc = np.int64(u) * (4096 - du - 1)
        dc = np.int32(np.sign(dc) * np.right_shift(np.abs(dc), 12))
        dc = dc + np.left_shift(a.astype(np.int32), 6)
        wr = np.where(dc > 2**23, dc - 2**24, dc)
        u = np.where(wr <= -(2**23), dc + 2**24, wr).astype(np.int32)
        dvv = np.int64(v) * (4096 - dv)
        dvv = np.int32(np.sign(dvv) * np.right_shift(np.abs(dvv), 12))
        v = np.clip(dvv + u + bias, -(2**23) + 1, 2**23 - 1).astype(np.int32)
        s = v > (vth << 6)
        v[s] = 0
        out.append(s.astype(np.int8))
    return np.stack(out), u, v


@pytest.mark.parametrize(
    "du,dv,vth,bias_mant,bias_exp", [(4095, 256, 10, 0, 0), (512, 128, 200, 30, 2), (0, 0, 1000, -7, 1)]
)
def test_loihi_profile_matches_lava_arithmetic(du, dv, vth, bias_mant, bias_exp, device):
    g = torch.Generator().manual_seed(1)
    a = torch.randint(-300, 600, (200, 50), generator=g, dtype=torch.int32)
    p = loihi_lif_params(du=du, dv=dv, vth=vth, bias_mant=bias_mant, bias_exp=bias_exp)
    state, spikes = None, []
    for t in range(a.shape[0]):
        s, state = loihi_lif_step(a[t : t + 1].to(device), state, p)
        spikes.append(s.cpu()[0])
    ref_s, ref_u, ref_v = _lava_reference(a.numpy(), du, dv, vth, bias_mant << bias_exp)
    assert np.array_equal(torch.stack(spikes).numpy(), ref_s)
    assert np.array_equal(state.u.cpu()[0].numpy(), ref_u)
    assert np.array_equal(state.v.cpu()[0].numpy(), ref_v)


def test_loihi_current_wraps_at_24_bits():
    p = loihi_lif_params(du=0, dv=4095, vth=2**17 - 1)
    start = loihi_lif_step(torch.zeros(1, 1, dtype=torch.int32), None, p)[1]
    u0 = start._replace(u=torch.tensor([[2**23]], dtype=torch.int32))
    # 2^23 * 4095 / 4096 = 2^23 - 2048; adding 32 << 6 = 2048 lands exactly on 2^23, which Lava keeps ...
    _, state = loihi_lif_step(torch.tensor([[32]], dtype=torch.int32), u0, p)
    assert int(state.u) == 2**23
    # ... while one more unit of input (64 more) exceeds it and wraps by 2^24.
    _, state = loihi_lif_step(torch.tensor([[33]], dtype=torch.int32), u0, p)
    assert int(state.u) == 2**23 + 64 - 2**24
    # Negative side: at or below -2^23 wraps up.
    un = start._replace(u=torch.tensor([[-(2**23)]], dtype=torch.int32))
    _, state = loihi_lif_step(torch.tensor([[-32]], dtype=torch.int32), un, p)
    assert int(state.u) == -(2**23) + 2**24


@pytest.mark.parametrize(
    "factory,kwargs,name",
    [
        (int_lif_params, {"v_th": 0}, "v_th"),
        (int_lif_params, {"leak_shift": 16}, "leak_shift"),
        (int_lif_params, {"leak": "exp"}, "leak"),
        (int_lif_params, {"refractory": -1}, "refractory"),
        (loihi_lif_params, {"du": 4096}, "du"),
        (loihi_lif_params, {"vth": -1}, "vth"),
        (loihi_lif_params, {"bias_exp": 8}, "bias_exp"),
    ],
)
def test_bad_integer_parameters(factory, kwargs, name):
    with pytest.raises(ValueError, match=name):
        factory(**kwargs)


def test_float_input_rejected_on_integer_path():
    with pytest.raises(ValueError, match="x must have dtype"):
        int_lif_step(torch.ones(1, 2), None, int_lif_params())
