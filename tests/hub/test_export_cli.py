"""``evospikenet-hub export DIR --format nir|lava`` from saved model directories: export or a clear refusal."""

import nir
import pytest
import torch
from hub_fixtures import tiny_ecg

from evospikenet.quant.loihi import encode_ecg, quantize_ecg, run_loihi
from hub.cli import main
from hub.export_nir import read_into_snntorch
from hub.lava.bridge import load_loihi


def test_cli_exports_saved_ecg_net_to_nir_with_same_outputs(tmp_path, capsys):
    model = tiny_ecg()
    model.save_pretrained(tmp_path / "m")
    assert main(["export", str(tmp_path / "m"), "--format", "nir"]) == 0
    path = tmp_path / "m" / "exports" / "model.nir"
    assert capsys.readouterr().out.strip() == str(path)
    torch.manual_seed(3)
    x, rr = torch.randn(8, model.config.window) * 2.0, torch.randn(8, 6)  # (B, L), (B, 6)
    m = read_into_snntorch(nir.read(str(path)))
    state, outs = None, []
    with torch.no_grad():
        for _ in range(model.config.time_steps):
            out, state = m(x=x.unsqueeze(1), rr=rr, state=state)
            outs.append(out)
        torch.testing.assert_close(torch.stack(outs).mean(0), model(x, rr), atol=1e-5, rtol=0)
    assert main(["export", str(tmp_path / "m"), "--format", "nir", "--out", str(tmp_path / "o.nir")]) == 0
    assert set(nir.read(str(tmp_path / "o.nir")).nodes) == set(nir.read(str(path)).nodes)


@pytest.mark.parametrize(
    "fmt, kind, words",
    [
        ("nir", "resnet", ["ECGResNet18", "no NIR form"]),
        ("lava", "resnet", ["ECGResNet18", "no Lava form", "float network"]),
    ],
)
def test_cli_refuses_models_without_that_form_naming_the_class(fmt, kind, words, tmp_path, capsys):
    from evospikenet.models.ecg import ECGResNet18, ECGResNetConfig

    model = tiny_ecg(1) if kind == "snn" else ECGResNet18(ECGResNetConfig(widths=[4, 4, 4, 4])).eval()
    model.save_pretrained(tmp_path / "m")
    assert main(["export", str(tmp_path / "m"), "--format", fmt]) == 2
    err = capsys.readouterr().err
    assert all(w in err for w in words), err
    assert not (tmp_path / "m" / "exports").exists()


def test_cli_nir_export_checks_the_directory_first(tmp_path, capsys):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"model_type": "bert"}')
    assert main(["export", str(tmp_path / "m"), "--format", "nir"]) == 2
    assert "not an EvoSpikeNet model" in capsys.readouterr().err


def test_cli_exports_saved_ecg_net_to_lava_loihi_form(tmp_path, capsys):
    """``--format lava --qat-epochs 0``: the plain-rounded Loihi form, loadable and equal to quantize_ecg."""
    model = tiny_ecg()
    model.save_pretrained(tmp_path / "m")
    assert main(["export", str(tmp_path / "m"), "--format", "lava", "--qat-epochs", "0"]) == 0
    path = tmp_path / "m" / "exports" / "model.loihi.npz"
    assert capsys.readouterr().out.strip() == str(path)
    net, ref = load_loihi(path), quantize_ecg(model)
    assert [c.name for c in net.conns] == ["conv0", "conv1", "conv2", "fc", "rr", "readout"]
    assert all(torch.equal(a.weight, b.weight) and a.exp == b.exp for a, b in zip(net.conns, ref.conns))
    assert net.meta["qat_epochs"] == 0
    torch.manual_seed(3)
    x, rr = torch.randn(8, model.config.window), torch.randn(8, 6)
    assert torch.equal(run_loihi(net, encode_ecg(net, x, rr))[1], run_loihi(ref, encode_ecg(ref, x, rr))[1])
    assert main(["export", str(tmp_path / "m"), "--format", "lava", "--qat-epochs", "-1"]) == 2
    assert "--qat-epochs must be >= 0" in capsys.readouterr().err


def test_cli_refuses_digits_for_lava_naming_the_reason(tmp_path, capsys):
    from test_nir_digits import DIGITS_DIR

    if not (DIGITS_DIR / "model.safetensors").is_file():
        pytest.skip(f"no trained digits model in {DIGITS_DIR}")
    assert main(["export", str(DIGITS_DIR), "--format", "lava", "--out", str(tmp_path / "d.npz")]) == 2
    assert "winner-take-all" in capsys.readouterr().err and not (tmp_path / "d.npz").exists()
