"""Lava's bit-accurate simulator (``Loihi2SimCfg``, fixed point) against our ``loihi`` profile.

Two exports: a core network (recurrent, mixed-sign, biased) and the ECG classifier's Loihi form fed real
MIT-BIH beats; spikes are compared step by step, the readout voltages exactly.
"""

import numpy as np
import pytest
import torch
from hub_fixtures import ROOT

from evospikenet.core import Network, Population, Projection
from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet
from evospikenet.quant.loihi import encode_ecg, quantize_ecg, run_loihi
from hub.lava.bridge import (
    export_lava,
    lava_unavailable_reason,
    load_loihi,
    random_network,
    run_core,
    run_lava,
    run_lava_loihi,
    save_loihi,
)

REASON = lava_unavailable_reason()
needs_lava = pytest.mark.skipif(REASON is not None, reason=f"Lava venv unavailable: {REASON}")
ECG_DIR = ROOT / "artifacts" / "ecg" / "model"


def test_export_refuses_what_lava_cannot_express(tmp_path):
    a = Population("a", 3, "loihi")
    f = Population("f", 3, "lif")
    with pytest.raises(ValueError, match="needs 'loihi'"):
        export_lava(Network([a, f], []), tmp_path / "x.npz")
    w = torch.tensor([[0, -128, 0], [0, 0, -1], [0, 0, 0]], dtype=torch.int8).to_sparse_csr()
    w = torch.sparse_csr_tensor(w.crow_indices().int(), w.col_indices().int(), w.values(), (3, 3))
    with pytest.raises(ValueError, match="all-inhibitory matrix with -128"):
        export_lava(Network([a], [Projection("aa", a, a, w)]), tmp_path / "x.npz")
    with pytest.raises(ValueError, match="delay=1"):
        export_lava(Network([a], [Projection("aa", a, a, w, delay=2)]), tmp_path / "x.npz")


def test_export_doubles_weights_for_dense_lsb_truncation(tmp_path):
    net = random_network(4, 6)
    data = np.load(export_lava(net, tmp_path / "n.npz", 5))
    w = net.projections["bb"].weights.to_dense().numpy().astype(np.int32)
    assert np.array_equal(data["w_bb"], 2 * w.T)
    assert (data["w_bb"] % 2 == 0).all()


@pytest.mark.slow
@needs_lava
def test_lava_spikes_equal_core_loihi_profile_step_by_step():
    net = random_network()
    steps = 200
    core = run_core(net, steps)
    lava, _ = run_lava(net, steps)
    for name in ("a", "b"):
        assert lava[name].shape == core[name].shape == (steps, net.populations[name].n)
        assert 0.01 < core[name].mean() < 0.9  # both populations are active, not saturated
        bad = np.argwhere(lava[name] != core[name])
        assert bad.size == 0, f"{name}: first mismatch (step, neuron) {bad[:3].tolist()}"


def _real_beats(config, n_per_record=4, records=("208", "232")):
    from hub.lava.ecg import heldout_beats

    try:
        return heldout_beats(config, list(records), n_per_record)
    except FileNotFoundError as e:
        pytest.skip(f"MIT-BIH records unavailable: {e}")


def _active_ecg():
    """The recipe's ECG geometry with random weights, BN scaled so that every layer fires (not saturated)."""
    torch.manual_seed(0)
    m = ECGSpikingNet(ECGSpikingConfig(downsample=3, input_scale=0.02)).eval()
    with torch.no_grad():
        for bn, g in zip(m.bns, (8.0, 4.0, 4.0)):
            bn.weight.mul_(g)
        m.fc.weight.mul_(3.0)
    return m


def _assert_lava_equals_core(model, beats, tmp_path):
    net = load_loihi(save_loihi(quantize_ecg(model), tmp_path / "ecg.loihi.npz"))  # through the export file
    x, rr = torch.from_numpy(beats.x), torch.from_numpy(beats.rr)
    inputs = encode_ecg(net, x, rr)
    core, v = run_loihi(net, inputs)
    lava, lv, _ = run_lava_loihi(net, inputs)
    assert set(lava) == {"lif0", "lif1", "lif2", "lif_fc"}
    for name, s in lava.items():
        assert s.shape == core[name].shape == (net.time_steps, len(beats), net.pop(name).n)
        bad = torch.nonzero(s != core[name])
        assert bad.numel() == 0, f"{name}: first mismatches (step, beat, neuron) {bad[:3].tolist()}"
    assert torch.equal(lv, v), "readout voltages (the integer logits) differ"
    return core


@needs_lava
def test_ecg_loihi_form_bit_exact_on_real_beats(tmp_path):
    """8 held-out beats of records 208 and 232 through Lava: every spike and readout value as the core's."""
    model = _active_ecg()
    core = _assert_lava_equals_core(model, _real_beats(model.config), tmp_path)
    for name, s in core.items():
        if name != "out":
            assert 0.01 < float(s.float().mean()) < 0.9, f"{name} is silent or saturated"


@pytest.mark.slow
@needs_lava
def test_trained_ecg_model_bit_exact_on_lava(tmp_path):
    if not (ECG_DIR / "model.safetensors").is_file():
        pytest.skip(f"no trained ECG model in {ECG_DIR} (run `make ecg`)")
    from hub.models import load_model

    model = load_model(ECG_DIR)
    _assert_lava_equals_core(model, _real_beats(model.config, 10, ("100", "106", "208")), tmp_path)
