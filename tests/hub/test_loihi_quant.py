"""The Loihi form of the ECG net (evospikenet.quant.loihi): arithmetic, field widths, the twin, fine-tuning."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hub_fixtures import tiny_ecg

from evospikenet.quant.loihi import (
    LoihiConn,
    LoihiNet,
    LoihiPop,
    conv1d_matrix,
    encode_ecg,
    quantize_ecg,
    run_loihi,
)
from evospikenet.quant.loihi_qat import LoihiTwin, finetune_loihi


def test_conv1d_matrix_is_the_convolution():
    torch.manual_seed(0)
    w, x = torch.randn(5, 3, 7), torch.randn(4, 3, 29)
    m = conv1d_matrix(w, stride=2, padding=3, length=29)
    want = F.conv1d(x, w, stride=2, padding=3)  # (4, 5, 15)
    torch.testing.assert_close(x.reshape(4, -1) @ m.T, want.reshape(4, -1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("exp", [-3, -1, 0, 1, 2])
def test_connection_current_is_floor_of_scaled_sum(exp):
    g = torch.Generator().manual_seed(exp + 10)
    w = torch.randint(-127, 128, (6, 9), generator=g, dtype=torch.int32)
    x = torch.randint(-127, 128, (5, 9), generator=g, dtype=torch.int32)
    got = LoihiConn("c", "x", "p", w, exp).current(x)
    for b in range(5):
        for i in range(6):
            s = sum(int(w[i, j]) * int(x[b, j]) for j in range(9))
            want = s * 2**exp if exp >= 0 else s // 2**-exp  # Python's // is floor division
            assert int(got[b, i]) == want


def test_one_neuron_fires_when_the_closed_form_says():
    """Constant current a: v_t = trunc(3/4 v_{t-1}) + 64 a; it fires at the first t with v_t > 64 vth."""
    a, vth = 37, 100
    net = LoihiNet(
        {"x": 1},
        [LoihiPop("p", 1, 1024, vth, torch.zeros(1, dtype=torch.int32), 0)],
        [LoihiConn("c", "x", "p", torch.tensor([[a]], dtype=torch.int32), 0)],
        8,
        "p",
    )
    spikes, _ = run_loihi(net, {"x": torch.ones(1, 1, dtype=torch.int32)})
    v, want = 0, []
    for _ in range(8):
        v = int(v * 3072 / 4096) + 64 * a  # v >= 0: truncation is floor
        want.append(int(v > 64 * vth))
        v = 0 if v > 64 * vth else v
    assert spikes["p"][:, 0, 0].tolist() == want and 0 < sum(want) < 8


def test_quantised_net_respects_loihi_field_widths_and_refuses_tampering():
    net = quantize_ecg(tiny_ecg())
    for p in net.pops:
        assert 0 <= p.dv <= 4095 and 0 < p.vth < 2**17 and 0 <= p.bias_exp <= 7
        assert int(p.bias_mant.abs().max()) <= 4095
    for c in net.conns:
        assert int(c.weight.abs().max()) <= 127 and int(c.weight.abs().max()) >= 64  # 8 bits, well used
    assert net.depth() == {"lif0": 1, "lif1": 2, "lif2": 3, "lif_fc": 4, "out": 5}
    spec, arrays = net.to_arrays()
    arrays["w_fc"] = arrays["w_fc"].astype(np.int32) * 2  # outside [-127, 127]
    with pytest.raises(ValueError, match="connection 'fc': weights outside"):
        LoihiNet.from_arrays(spec, arrays)
    spec["populations"][0]["vth"] = 2**17
    with pytest.raises(ValueError, match="vth = 131072 outside"):
        LoihiNet.from_arrays(spec, net.to_arrays()[1])


def test_pipeline_rules_refuse_recurrent_and_mixed_depths():
    z = torch.zeros(2, dtype=torch.int32)
    w = torch.ones(2, 2, dtype=torch.int32)
    pops = [LoihiPop("a", 2, 0, 1, z, 0), LoihiPop("b", 2, 0, 1, z, 0)]
    rec = LoihiNet({"x": 2}, pops, [LoihiConn("i", "x", "a", w, 0), LoihiConn("r", "b", "a", w, 0)], 2, "b")
    with pytest.raises(ValueError, match="not an earlier population"):
        rec.depth()
    mixed = LoihiNet({"x": 2}, pops, [LoihiConn("i", "x", "a", w, 0), LoihiConn("j", "x", "b", w, 0)], 2, "b")
    mixed.conns.append(LoihiConn("ab", "a", "b", w, 0))
    with pytest.raises(ValueError, match="one pipeline depth"):
        mixed.depth()


def test_twin_predicts_what_the_quantised_net_computes():
    model = tiny_ecg()
    torch.manual_seed(4)
    x, rr = torch.randn(64, model.config.window) * 2.0, torch.randn(64, 6)
    twin = LoihiTwin(model)
    same = twin.to_model(model)  # BN set to the identity: the same Loihi form, bit for bit
    a, b = quantize_ecg(model), quantize_ecg(same)
    assert all(torch.equal(p.weight, q.weight) for p, q in zip(a.conns, b.conns))
    with torch.no_grad():
        want = twin(x, rr).argmax(1)
    got = run_loihi(a, encode_ecg(a, x, rr))[1].argmax(1)
    assert float((want == got).float().mean()) >= 0.9  # the twin leaves out only the decay's truncation


def test_finetuning_lowers_the_loihi_form_loss_on_its_training_beats():
    model = tiny_ecg()
    with torch.no_grad():  # enough drive that every layer fires
        for bn in model.bns[1:]:
            bn.weight.mul_(5.0)
    g = torch.Generator().manual_seed(5)
    x, rr = torch.randn(256, model.config.window, generator=g) * 2.0, torch.randn(256, 6, generator=g)
    y = torch.randint(0, 5, (256,), generator=g)  # labels the network has to learn through its Loihi form
    with torch.no_grad():
        before = float(F.cross_entropy(LoihiTwin(model)(x, rr), y))
    tuned = finetune_loihi(
        model, x.numpy(), rr.numpy(), y.numpy(), epochs=4, epoch_beats=1024, batch_size=64, lr=1e-2
    )
    with torch.no_grad():
        after = float(F.cross_entropy(LoihiTwin(tuned)(x, rr), y))
    assert after < 0.9 * before
    assert quantize_ecg(tuned).meta["model_type"] == "evospikenet_ecg_snn"
