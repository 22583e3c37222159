"""The ECG net on the integer core: parity with the float net, its own op counts, accumulator bounds."""

import pytest
import torch

from evospikenet.energy import INTEGER16_45NM, INTEGER_45NM, OpCounter
from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet
from evospikenet.models.ecg_integer import _shift, integer_core, integer_forward

W = dict(beat_before=90, beat_after=166, downsample=3)  # 86-sample window


def _inputs(b, n=86):
    return torch.randn(b, n) * 0.5, torch.rand(b, 6) + 0.5


def _net(seed=1, **kw):
    torch.manual_seed(seed)
    m = ECGSpikingNet(ECGSpikingConfig(**W, input_scale=0.02, **kw)).eval()
    with torch.no_grad():  # give BN non-trivial statistics
        for bn in m.bns:
            bn.running_mean.uniform_(-0.1, 0.1)
            bn.running_var.uniform_(0.5, 1.5)
    return m


def test_integer_core_agrees_with_float_net():
    m = _net()
    x, rr = _inputs(256)
    f = m(x, rr)
    i = integer_forward(m, x, rr)
    assert i.dtype == torch.int64
    agree = (f.argmax(1) == i.argmax(1)).float().mean().item()
    assert agree >= 0.9, agree
    # logits are proportional: integer logits ~ T * float logits / readout scale
    corr = torch.corrcoef(torch.stack([f.flatten(), i.double().flatten().float()]))[0, 1]
    assert corr > 0.95


def test_integer_core_counts_its_own_spikes():
    m = _net(seed=2)
    x, rr = _inputs(16)
    cf, ci = OpCounter(), OpCounter()
    m(x, rr, counter=cf)
    integer_forward(m, x, rr, counter=ci)
    assert ci.macs == cf.macs and ci.updates == cf.updates  # same layers, same steps
    assert ci.total_sops > 0 and ci.sops["readout"] % 5 == 0
    with torch.no_grad():  # silence the hidden layer on the integer core only: its SOPs must follow
        m.fc.bias.fill_(-100.0)
    ci2 = OpCounter()
    integer_forward(m, x, rr, counter=ci2)
    assert ci2.sops["readout"] == 0 and ci2.sops["conv2"] == ci.sops["conv2"]


def test_thresholds_and_biases_carry_each_layers_scale():
    m = _net()
    core = integer_core(m)
    with torch.no_grad():
        (w0, _), (w2, b2), _ = m.folded()
    s = float(w2.abs().max()) / 127  # the conv's weight LSB is its membrane unit
    assert core.theta["conv2"] == round(m.config.v_th / s)
    torch.testing.assert_close(core.bias["conv2"], torch.round(b2.double() / s).to(torch.int64))
    assert core.theta["enc"] == round(m.config.v_th / (float(w0.abs().max()) / 127 * m.config.input_scale))
    assert set(core.weights) == {"enc", "conv2", "conv3", "fc", "rr", "readout"}
    assert all(float(w.abs().max()) == 127 for k, w in core.weights.items() if k != "rr")  # full INT8 range


def test_accumulator_bound_is_the_row_sum_and_reached_by_all_spikes():
    m = _net()
    core = integer_core(m)
    wq, bq = core.weights["conv2"], core.bias["conv2"]
    assert core.bounds["conv2"] == int((wq.abs().sum((1, 2)) + bq.abs()).max())
    # a row whose weights and bias share one sign reaches its bound when every input spikes
    with torch.no_grad():
        m.convs[1].weight.abs_()
        m.bns[1].bias.fill_(0.5)
        m.bns[1].running_mean.zero_()
    core = integer_core(m)
    c = m.convs[1]
    ones = torch.ones(1, c.in_channels, 3 * c.kernel_size[0], dtype=torch.float64)
    acc = torch.nn.functional.conv1d(ones, core.weights["conv2"], stride=c.stride, padding=0)
    assert int((acc + core.bias["conv2"][:, None]).max()) == core.bounds["conv2"]
    readout = core.weights["readout"].abs().sum(1).to(torch.int64) + core.bias["readout"].abs()
    assert core.bounds["readout"] == m.config.time_steps * int(readout.max())


def test_accumulator_width_and_prices_follow_the_bounds():
    m = _net()  # PyTorch's uniform init: the fc rows' absolute sums go past INT16
    wide = integer_core(m)
    assert wide.bounds["fc"] > 32767 and wide.acc_bits == 32 and wide.energy_model is INTEGER_45NM
    with torch.no_grad():  # keep one fc weight in eight (a trained net's rows are far from uniform)
        m.fc.weight.mul_((torch.rand_like(m.fc.weight) < 0.125).float())
        m.rr_proj.weight.mul_(0.1)  # and RR weights of a trained net's size against fc
    narrow = integer_core(m)
    assert max(narrow.bounds.values()) <= 32767
    assert narrow.acc_bits == 16 and narrow.energy_model is INTEGER16_45NM
    assert INTEGER16_45NM.e_sop_j == INTEGER_45NM.e_sop_j / 2


def test_rr_current_is_shifted_not_multiplied():
    assert _shift(torch.tensor([5, -5, 6, -6, 7]), -1).tolist() == [3, -2, 3, -3, 4]  # round half up
    assert _shift(torch.tensor([3, -3]), 2).tolist() == [12, -12]
    m = _net()
    core = integer_core(m)
    rr = m.rr_proj.weight.detach().double() * (8 / 127) / (float(m.fc.weight.detach().abs().max()) / 127)
    torch.testing.assert_close(
        core.weights["rr"] * 2.0**core.rr_shift, rr, atol=2.0**core.rr_shift / 2, rtol=0
    )
    assert 64 <= float(rr.abs().max()) / 2.0**core.rr_shift <= 127  # the exponent keeps 7-8 bits


def test_threshold_out_of_int16_range_is_an_error():
    m = _net(v_th=1e-6)
    with pytest.raises(ValueError, match="layer 'enc': threshold rounds to .* below 1"):
        integer_core(m)


def test_tiny_weights_coarsen_the_unit_not_the_threshold_range():
    m = _net()
    with torch.no_grad():
        m.convs[0].weight.mul_(0.25)  # weight LSB below V_th / 2^14 (about V_th / 55,000)
    core = integer_core(m)
    assert core.theta["enc"] == 2**14
    assert 25 <= float(core.weights["enc"].abs().max()) <= 40  # 127 / (55,000 / 2^14) levels
    x, rr = _inputs(64)
    assert integer_forward(m, x, rr, core=core).shape == (64, 5)
