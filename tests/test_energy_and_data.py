"""Energy accounting formulas, argument checks and data-directory resolution."""

import pytest
import torch

from evospikenet import energy
from evospikenet._validate import check_probability
from evospikenet.data import paths


def test_compute_energy_formula():
    c = energy.OpCounter()
    c.add_sops("fc1", 1000)
    c.add_macs("fc2", 10)
    c.add_updates("fc1", 50)
    rep = energy.HOROWITZ_45NM.report(c)
    assert rep.compute_j == pytest.approx(1000 * 0.9e-12 + 10 * 4.6e-12 + 50 * 6.4e-12)
    assert rep.updates == 50
    mem = 5e-12 * (1000 * 1 + 10 * 2 + 2 * 50 * 1)
    assert rep.with_memory_j == pytest.approx(rep.compute_j + mem)
    assert set(rep.per_layer_j) == {"fc1", "fc2"}


def test_integer_widths_cut_memory_energy():
    c = energy.OpCounter()
    c.add_sops("l", 100)
    c.add_updates("l", 10)
    wide = energy.EnergyModel().report(c).with_memory_j
    narrow = energy.EnergyModel(weight_bits=8, state_bits=16).report(c).with_memory_j
    assert narrow < wide
    assert narrow - 100 * 0.9e-12 - 10 * 6.4e-12 == pytest.approx(5e-12 * (100 * 8 / 32 + 2 * 10 * 16 / 32))


def test_integer_prices_each_operation_at_integer_widths():
    c = energy.OpCounter()
    c.add_sops("l", 100)
    c.add_macs("enc", 10)
    c.add_updates("l", 20)
    rep = energy.INTEGER_45NM.report(c)
    assert rep.compute_j == pytest.approx(100 * 0.1e-12 + 10 * 0.3e-12 + 20 * 0.25e-12)
    mem = 5e-12 * (100 * 8 / 32 + 10 * (8 + 8) / 32 + 2 * 20 * 16 / 32)
    assert rep.with_memory_j == pytest.approx(rep.compute_j + mem)
    assert (
        energy.INTEGER_45NM.compute_j(sops=1, macs=1, updates=1)
        < energy.HOROWITZ_45NM.compute_j(1, 1, 1) / 10
    )


def test_linear_counts():
    s = torch.zeros(4, 3, 10)
    s[0, 0, :3] = 1
    assert float(energy.linear_sops(s, 7)) == 21
    assert energy.linear_macs(12, 10, 7) == 840
    assert (
        energy.conv_macs(out_positions=5, in_channels=4, out_channels=8, kernel_elems=3, groups=2)
        == 5 * 8 * 2 * 3
    )


def test_counter_merge():
    a, b = energy.OpCounter(), energy.OpCounter()
    a.add_sops("x", 1)
    b.add_sops("x", 2)
    b.add_macs("y", 3)
    a.merge(b)
    assert a.total_sops == 3 and a.total_macs == 3


def test_data_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path))
    (tmp_path / "mitdb").mkdir()
    assert paths.resolve_data_dir() == tmp_path
    assert paths.dataset_path("mitdb") == tmp_path / "mitdb"
    with pytest.raises(FileNotFoundError, match="sst2"):
        paths.dataset_path("sst2")
    monkeypatch.setenv(paths.ENV_VAR, str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="EVOSPIKENET_DATA_DIR"):
        paths.resolve_data_dir()
    assert paths.resolve_data_dir(tmp_path) == tmp_path


def test_data_dir_missing_everywhere(monkeypatch, tmp_path):
    monkeypatch.delenv(paths.ENV_VAR, raising=False)
    monkeypatch.setattr(paths, "_REPO_ROOT", tmp_path / "repo")
    with pytest.raises(FileNotFoundError, match="Set EVOSPIKENET_DATA_DIR"):
        paths.resolve_data_dir()


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan"), "0.5"])
def test_probability_check_names_argument(value):
    with pytest.raises(ValueError, match="p_connect"):
        check_probability("p_connect", value)
