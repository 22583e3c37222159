"""ONNX export (whole time loop) of the ECG net, the STDP digits net and the spiking LM vs PyTorch."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from hub_fixtures import tiny_ecg, tiny_lm
from torch import nn

from evospikenet.models.plastic_snn import PlasticDigitsSNN, PlasticSNNState, plastic_snn_step
from hub.cli import main as cli
from hub.export_onnx import DigitsClassifier, cpu_only_ops, export_onnx, wrap_for_onnx


def _digits():
    torch.manual_seed(0)
    net = PlasticDigitsSNN(n_in=64, n_exc=20, time_steps=8)
    return DigitsClassifier(net, nn.Linear(20, 10), 10.0).eval()


def _run(path, names, inputs):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return sess.run(None, {k: v.numpy() for k, v in zip(names, inputs)})


def _inputs(kind, model, batch):
    torch.manual_seed(3)
    if kind == "ecg":
        return [torch.randn(batch, model.config.window) * 2, torch.randn(batch, 6)]
    if kind == "digits":
        return [torch.bernoulli(torch.full((8, batch, 64), 0.3))]
    return [torch.randint(0, 257, (batch, 11))]


@pytest.mark.parametrize("kind", ["ecg", "digits", "lm"])
def test_onnx_matches_pytorch_spikes_and_logits(kind, tmp_path):
    model = {"ecg": tiny_ecg, "digits": _digits, "lm": tiny_lm}[kind]()
    path = export_onnx(model, tmp_path / f"{kind}.onnx", with_spikes=True)
    assert cpu_only_ops(path) == []
    wrap, _, names, _, _ = wrap_for_onnx(model, with_spikes=True)
    for batch in (1, 5):  # batch is dynamic (the graph was traced with 2)
        x = _inputs(kind, model, batch)
        with torch.inference_mode():
            ref_logits, ref_spikes = wrap(*x)
        logits, spikes = _run(path, names, x)
        assert spikes.shape == tuple(ref_spikes.shape)
        assert float(ref_spikes.mean()) > 0  # something spiked
        assert (spikes == ref_spikes.numpy()).mean() >= 0.999
        assert np.abs(logits - ref_logits.numpy()).max() <= 1e-3


def test_onnx_graph_unrolls_all_time_steps(tmp_path):
    model = tiny_ecg()
    g = onnx.load(str(export_onnx(model, tmp_path / "e.onnx"))).graph
    n_ge = sum(n.op_type == "GreaterOrEqual" for n in g.node)  # one threshold test per LIF layer and step
    assert n_ge == 4 * model.config.time_steps
    assert not any(n.op_type in ("Loop", "Scan") for n in g.node)


def test_lm_sequence_length_is_dynamic(tmp_path):
    model = tiny_lm()
    path = export_onnx(model, tmp_path / "lm.onnx")
    for length in (3, 16):
        ids = torch.randint(0, 257, (2, length))
        with torch.inference_mode():
            ref = model(input_ids=ids).logits
        (got,) = _run(path, ["input_ids"], [ids])
        assert got.shape == (2, length, 257) and np.abs(got - ref.numpy()).max() <= 1e-3


def test_digits_graph_form_equals_the_model_step():
    """DigitsClassifier's WTA (ArgMax/OneHot) is ``plastic_snn_step`` of the model, spike for spike."""
    m = _digits()
    x = torch.bernoulli(torch.full((8, 6, 64), 0.3))
    _, s = m(x, return_spikes=True)
    st = PlasticSNNState(torch.zeros(6, 20), m.net.theta.clone())
    w = m.net.proj.dense()
    for t in range(8):
        ref, st = plastic_snn_step(x[t], w, st, m.net.layer)
        assert torch.equal(ref, s[t])


def test_cli_export_onnx(tmp_path, capsys):
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    assert cli(["export", str(tmp_path / "m"), "--format", "onnx"]) == 0
    assert (tmp_path / "m" / "exports" / "model.onnx").is_file()
    assert cli(["export", str(tmp_path / "nope"), "--format", "onnx"]) == 2
    assert "does not exist" in capsys.readouterr().err
