"""NIR export of feed-forward, convolutional and recurrent SNNs and the ECG net, read back into snnTorch."""

import math
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from hub_fixtures import tiny_ecg
from torch import nn

from evospikenet.neurons import LIF
from hub.export_nir import (
    NIR_DT,
    RESET_KEY,
    RecurrentLIF,
    SpikingSequential,
    export_nir_file,
    read_into_snntorch,
    to_nir,
)
from hub.models import load_model

BETA = 0.75  # dyadic, with R = 1 / (1 - beta) the input gain is exactly 1.0 on both sides
P = dict(tau_mem=-1.0 / math.log(BETA), dt=1.0, r=1.0 / (1.0 - BETA), v_th=1.0, reset="zero")


def _nets():
    torch.manual_seed(0)
    ff = SpikingSequential(
        nn.Linear(20, 32), LIF("s", **P), nn.Linear(32, 10), LIF("s", **P), input_shape=(20,)
    )
    conv = SpikingSequential(
        nn.Conv2d(2, 4, 3, padding=1),
        LIF("s", **P),
        nn.Flatten(),
        nn.Linear(256, 10),
        LIF("s", **P),
        input_shape=(2, 8, 8),
    )
    rec = SpikingSequential(
        nn.Linear(20, 32), RecurrentLIF(32, **P), nn.Linear(32, 10), LIF("s", **P), input_shape=(20,)
    )
    with torch.no_grad():  # enough drive that the output layers fire
        for net, i in ((ff, 2), (conv, 3), (rec, 2)):
            net.layers[i].weight.mul_(4.0)
    return {"ff": ff, "conv": conv, "rec": rec}


@pytest.mark.parametrize("kind", ["ff", "conv", "rec"])
def test_nir_round_trip_into_snntorch_same_spikes(kind, tmp_path):
    net = _nets()[kind]
    torch.manual_seed(1)
    x = torch.rand(30, 3, *net.input_shape) * 3.0  # (T, B, ...)
    with torch.no_grad():
        ref = net(x)
    path = export_nir_file(net, tmp_path / f"{kind}.nir")
    m = read_into_snntorch(nir.read(str(path)))
    state, outs = None, []
    with torch.no_grad():
        for xt in x:
            out, state = m(xt) if state is None else m(xt, state)
            outs.append(out)
    got = torch.stack(outs)
    assert 0.01 < float(ref.mean()) < 0.99  # the comparison is not trivially all-silent or all-firing
    assert torch.equal(got, ref)


def test_lif_parameters_follow_the_euler_mapping():
    g = to_nir(_nets()["ff"])
    lif = g.nodes["1"]
    assert isinstance(lif, nir.LIF)
    assert 1.0 - NIR_DT / float(lif.tau[0]) == pytest.approx(BETA)
    assert float(lif.r[0]) * NIR_DT / float(lif.tau[0]) == pytest.approx(1.0)  # input gain (1 - beta) R
    assert float(lif.v_threshold[0]) == 1.0 and float(lif.v_reset[0]) == 0.0


def test_recurrent_loop_edges_and_bad_layers():
    g = to_nir(_nets()["rec"])
    assert ("1", "1.rec") in g.edges and ("1.rec", "1") in g.edges
    with pytest.raises(ValueError, match="reset must be 'zero'"):
        to_nir(SpikingSequential(nn.Linear(3, 3), LIF("s", reset="subtract"), input_shape=(3,)))
    with pytest.raises(ValueError, match="layers\\[0\\] must be"):
        SpikingSequential(nn.ReLU(), input_shape=(3,))
    with pytest.raises(ValueError, match="single-step"):
        SpikingSequential(LIF("m"), input_shape=(3,))


# --- the ECG spiking classifier (subtract reset, static RR side current, two inputs) ---

ECG_DIR = Path(__file__).resolve().parents[2] / "artifacts" / "ecg" / "model"
LIFS = ["lif0", "lif1", "lif2", "lif_fc"]


def _run_graph(graph, x, rr, T, honour_reset=True):
    """Read ``graph`` back into snnTorch modules, run ``T`` steps; per-step readout (T, B, 5), spikes per LIF."""
    m = read_into_snntorch(graph, honour_reset=honour_reset)
    rec = {k: [] for k in LIFS}
    for k in LIFS:
        m.mods[k].register_forward_hook(lambda mod, i, o, k=k: rec[k].append(o))
    state, outs = None, []
    with torch.no_grad():
        for _ in range(T):
            out, state = m(x=x.unsqueeze(1), rr=rr, state=state)
            outs.append(out)
    return torch.stack(outs), [torch.stack(rec[k]) for k in LIFS]


def _assert_same(model, graph, x, rr):
    with torch.no_grad():
        ref, spikes = model(x, rr, return_spikes=True)
    out, got = _run_graph(graph, x, rr, model.config.time_steps)
    for k, s, g in zip(LIFS, spikes, got):
        assert torch.equal(g, s), k
    torch.testing.assert_close(out.mean(0), ref, atol=1e-5, rtol=0)
    return spikes


def test_ecg_graph_structure_folds_bn_and_rr_standardisation():
    model = tiny_ecg()
    g = to_nir(model)
    assert sorted(k for k, n in g.nodes.items() if isinstance(n, nir.Input)) == ["rr", "x"]
    assert ("rr_proj", "lif_fc") in g.edges and ("fc", "lif_fc") in g.edges
    for k in LIFS:
        assert g.nodes[k].metadata[RESET_KEY] == "subtract" and float(g.nodes[k].v_reset.max()) == 0.0
    w0, b0 = model.folded()[0]
    np.testing.assert_allclose(g.nodes["conv0"].weight, w0.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(g.nodes["conv0"].bias, b0.detach().numpy(), rtol=1e-6, atol=1e-7)
    rr = torch.randn(4, 6)
    with torch.no_grad():
        want = model.rr_proj(model.standardise_rr(rr)) + model.fc.bias
    a = g.nodes["rr_proj"]
    got = rr.numpy() @ a.weight.T + a.bias
    np.testing.assert_allclose(got, want.numpy(), atol=1e-5)


def test_ecg_tiny_round_trip_same_spikes(tmp_path):
    model = tiny_ecg()
    with torch.no_grad():  # enough drive that the deeper layers fire (and reset by subtraction)
        for bn in model.bns[1:]:
            bn.weight.mul_(5.0)
    torch.manual_seed(2)
    x, rr = torch.randn(32, model.config.window) * 2.0, torch.randn(32, 6)  # (B, L), (B, 6)
    spikes = _assert_same(model, nir.read(str(export_nir_file(model, tmp_path / "ecg.nir"))), x, rr)
    assert all(0.05 < float(s.mean()) < 0.95 for s in spikes)  # not trivially silent or saturated
    # the subtract reset is what the metadata carries: NIR's plain zero reset gives other spikes here
    _, zero = _run_graph(nir.read(str(tmp_path / "ecg.nir")), x, rr, model.config.time_steps, False)
    assert any(not torch.equal(a, b) for a, b in zip(zero, spikes))


def test_ecg_trained_model_real_beats_same_spikes_and_zero_reset_gap():
    """The trained net on 300 real beats of record 208: exact with the metadata, not without it."""
    if not (ECG_DIR / "model.safetensors").is_file():
        pytest.skip(f"no trained ECG model in {ECG_DIR} (run `make ecg`)")
    try:
        from evospikenet.data.mitdb import BeatWindow, load_beats

        model = load_model(ECG_DIR)
        c = model.config
        beats = load_beats(
            records=["208"], window=BeatWindow(c.beat_before, c.beat_after, c.downsample, tuple(c.band))
        )
    except FileNotFoundError as e:
        pytest.skip(str(e))
    x, rr = torch.tensor(beats.x[-300:]), torch.tensor(beats.rr[-300:])  # the record's later (held-out) part
    g = to_nir(model)
    spikes = _assert_same(model, g, x, rr)
    # a reader that ignores the metadata runs NIR's zero reset: close, not identical
    out, got = _run_graph(g, x, rr, c.time_steps, honour_reset=False)
    agree = float(sum((a == b).sum() for a, b in zip(got, spikes)) / sum(s.numel() for s in spikes))
    with torch.no_grad():
        same_class = float((out.mean(0).argmax(1) == model(x, rr).argmax(1)).float().mean())
    assert 0.9 < agree < 1.0 and same_class > 0.9
