"""ECG models: ResNet-18-1D layout and MACs, SOP accounting, save/load round trips."""

import json

import pytest
import torch
from torch import nn

from evospikenet.energy import EnergyModel, OpCounter
from evospikenet.models.ecg import (
    ECGFloatTwin,
    ECGResNet18,
    ECGResNetConfig,
    ECGSpikingConfig,
    ECGSpikingNet,
    ECGTwinConfig,
    _conv_sops,
    load_ecg_model,
)

W = dict(beat_before=90, beat_after=166, downsample=3)  # 86-sample window


def _inputs(b, n=86):
    return torch.randn(b, n) * 0.5, torch.rand(b, 6) + 0.5


def test_resnet18_is_the_standard_layout():
    m = ECGResNet18(ECGResNetConfig(**W))
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv1d)]
    blocks = [mod for mod in m.layers]
    assert len(blocks) == 8 and len(convs) == 1 + 16 + 3  # stem, 8 BasicBlocks x 2, 3 projections
    assert [b.conv2.out_channels for b in blocks] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [b.conv1.stride[0] for b in blocks] == [1, 1, 2, 1, 2, 1, 2, 1]
    assert convs[0].kernel_size == (7,) and convs[0].stride == (2,)
    assert m.head.in_features == 512 + 6


def test_resnet18_mac_count_closed_form():
    m = ECGResNet18(ECGResNetConfig(**W)).eval()
    c = OpCounter()
    x, rr = _inputs(2)
    m(x, rr, counter=c)
    # stem: 86 -> 43 (conv k7 s2) -> 22 (max-pool 3/2); stages at lengths 22, 11, 6, 3
    macs = 43 * 64 * 7
    lengths, widths, cin = [22, 11, 6, 3], [64, 128, 256, 512], 64
    for i, (n, w) in enumerate(zip(lengths, widths)):
        macs += n * w * cin * 3 + n * w * w * 3  # first block
        if i > 0:
            macs += n * w * cin  # 1x1 projection
        macs += 2 * n * w * w * 3  # second block
        cin = w
    macs += (512 + 6) * 5
    assert c.total_macs == 2 * macs and c.total_sops == 0
    rep = EnergyModel().report(c)
    assert rep.compute_j == pytest.approx(2 * macs * 4.6e-12)


def test_conv_sops_match_brute_force():
    conv = nn.Conv1d(3, 7, 5, 2, 2, bias=False)
    s = (torch.rand(4, 3, 20) < 0.3).float()
    # brute force: each spike at position p reaches every output position whose window covers p
    brute = 0
    for p in range(20):
        reach = sum(1 for o in range(10) if 2 * o - 2 <= p <= 2 * o + 2)
        brute += s[:, :, p].sum().item() * reach * 7
    assert _conv_sops(s, conv).item() == brute


def test_spiking_energy_accounting_counts_spikes():
    m = ECGSpikingNet(ECGSpikingConfig(**W)).eval()
    x, rr = _inputs(3)
    c = OpCounter()
    _, spikes = m(x, rr, counter=c, return_spikes=True)
    assert c.macs["enc"] == 3 * 43 * 16 * 7 and c.macs["rr"] == 3 * 6 * 64
    assert c.sops["fc"] == spikes[2].sum().item() * 64
    assert c.sops["readout"] == spikes[3].sum().item() * 5
    assert c.updates["enc"] == 4 * 3 * 16 * 43
    for s in spikes:
        assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_float_twin_is_the_same_layout_with_dense_macs():
    twin, snn = ECGFloatTwin(ECGTwinConfig(**W)).eval(), ECGSpikingNet(ECGSpikingConfig(**W))
    assert [p.shape for p in twin.parameters()] == [p.shape for p in snn.parameters()]  # same widths
    c = OpCounter()
    x, rr = _inputs(3)
    logits = twin(x, rr, counter=c)
    assert logits.shape == (3, 5) and c.total_sops == 0 and c.total_updates == 0
    # 86 -> 43 -> 22 -> 11 samples; channels 16, 32, 32; hidden 64
    per_beat = 43 * 16 * 7 + 22 * 32 * 16 * 5 + 11 * 32 * 32 * 5 + 11 * 32 * 64 + 6 * 64 + 64 * 5
    assert c.total_macs == 3 * per_beat
    # ReLU for LIF: the twin's hidden layer is ReLU(W_fc a_3 + W_rr z + b), not a spike train
    with torch.no_grad():
        twin.load_state_dict(snn.state_dict())
        a = x.unsqueeze(1)
        for conv, bn in zip(twin.convs, twin.bns):
            a = torch.relu(bn(conv(a)))
        h = torch.relu(twin.fc(a.flatten(1)) + twin.rr_proj(twin.standardise_rr(rr)))
        torch.testing.assert_close(twin(x, rr), twin.out(h))


def test_lif_matches_the_integer_core_leak():
    cfg = ECGSpikingConfig(**W, leak_shift=3)
    m = ECGSpikingNet(cfg)
    assert m.lif.beta == pytest.approx(1 - 2**-3) and (1 - m.lif.beta) * m.lif.r == pytest.approx(1.0)


@pytest.mark.parametrize("kind", ["spiking", "twin", "resnet18"])
def test_save_pretrained_round_trip(tmp_path, kind):
    if kind == "spiking":
        m = ECGSpikingNet(
            ECGSpikingConfig(**W, baseline_energy_per_beat_j=1e-4, baseline_energy_per_beat_mem_j=3e-4)
        )
    elif kind == "twin":
        m = ECGFloatTwin(ECGTwinConfig(**W))
    else:
        m = ECGResNet18(ECGResNetConfig(**W))
    m.set_rr_stats([1, 1, 1, 1, 1, 1], [0.1, 0.2, 0.3, 0.1, 0.2, 0.3])
    m.eval()
    m.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file()
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["rr_std"] == pytest.approx([0.1, 0.2, 0.3, 0.1, 0.2, 0.3]) and cfg["downsample"] == 3
    if kind == "spiking":
        assert cfg["baseline_energy_per_beat_j"] == 1e-4 and cfg["baseline_energy_per_beat_mem_j"] == 3e-4
    m2 = load_ecg_model(tmp_path)
    assert type(m2) is type(m)
    x, rr = _inputs(5)
    torch.testing.assert_close(m2(x, rr), m(x, rr))


def test_bad_inputs_raise(tmp_path):
    m = ECGSpikingNet(ECGSpikingConfig(**W))
    with pytest.raises(ValueError, match="x must have shape"):
        m(torch.zeros(2, 85), torch.zeros(2, 6))
    with pytest.raises(ValueError, match="rr must have shape"):
        m(torch.zeros(2, 86), torch.zeros(2, 5))
    with pytest.raises(ValueError, match="channels"):
        ECGSpikingNet(ECGSpikingConfig(**W, channels=[8, 8]))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(ValueError, match="model_type"):
        load_ecg_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_ecg_model(tmp_path / "nope")
