"""NIR export of the STDP digits classifier (winner-take-all, adaptive thresholds) read back into snnTorch."""

import nir
import pytest
import torch
from hub_fixtures import ROOT
from torch import nn

from evospikenet.models.plastic_snn import PlasticDigitsSNN
from hub.cli import main as cli
from hub.export_nir import export_nir_file
from hub.export_onnx import DigitsClassifier
from hub.models import load_model
from hub.nir_digits import WTA_KEY
from hub.nir_read import run_digits_graph as _run

DIGITS_DIR = ROOT / "artifacts" / "digits_debug"


def _digits(n_exc=24, seed=0):
    torch.manual_seed(seed)
    net = PlasticDigitsSNN(n_in=64, n_exc=n_exc, time_steps=10)
    with torch.no_grad():
        net.theta.copy_(torch.rand(n_exc) * 0.3)  # learned offsets differ per neuron
    return DigitsClassifier(net, nn.Linear(n_exc, 10), 10.0).eval()


def _check(model, path, spikes_in):
    with torch.no_grad():
        logits, spikes = model(spikes_in, return_spikes=True)
    g = nir.read(str(path))
    assert g.nodes["exc"].metadata[WTA_KEY] in ("hard", b"hard")
    got_logits, got = _run(g, spikes_in)
    assert torch.equal(got, spikes), "every spike of the read-back network equals the model's"
    torch.testing.assert_close(got_logits, logits, atol=1e-5, rtol=1e-5)
    return spikes


def test_digits_round_trip_same_spikes_wta_and_thresholds(tmp_path):
    model = _digits()
    spikes_in = torch.bernoulli(torch.full((10, 16, 64), 0.05), generator=torch.Generator().manual_seed(1))
    spikes = _check(model, export_nir_file(model, tmp_path / "d.nir"), spikes_in)
    per_step = spikes.sum(-1)  # (T, B): neurons firing per sample and step
    assert float(per_step.max()) == 1.0 and 0.1 < float(per_step.mean()) < 0.9  # one winner at most, active
    assert len(set(spikes.argmax(-1)[per_step > 0].tolist())) > 3  # several neurons win
    # snnTorch's own LIF importer takes one threshold per layer: it refuses the per-neuron thresholds
    with pytest.raises(AssertionError, match="v_threshold must be same"):
        _run(nir.read(str(tmp_path / "d.nir")), spikes_in, honour=False)


def test_cli_exports_saved_digits_directory(tmp_path, capsys):
    if not (DIGITS_DIR / "model.safetensors").is_file():
        pytest.skip(
            f"no trained digits model in {DIGITS_DIR} (evospikenet-train fit --config recipes/digits/debug.yaml)"
        )
    out = tmp_path / "digits.nir"
    assert cli(["export", str(DIGITS_DIR), "--format", "nir", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    model = load_model(DIGITS_DIR)
    gen = torch.Generator().manual_seed(2)
    spikes_in = torch.bernoulli(torch.full((model.net.time_steps, 32, model.net.n_in), 0.25), generator=gen)
    _check(model, out, spikes_in)
