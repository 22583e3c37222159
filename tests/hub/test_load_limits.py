"""A small config.json cannot ask for a huge model, and weights must have the shapes the config implies.

Each oversized field is refused by name before anything is allocated (``load_model`` would otherwise try to
build, say, a 10^9-wide embedding); a weight whose shape disagrees with the config is refused naming the
tensor, before ``load_state_dict``.
"""

import json

import pytest
from hub_fixtures import tiny_ecg, tiny_lm

from hub.limits import LoadLimits, check_config_limits
from hub.models import ModelLoadError, load_model, verify_dir


def _edit(d, **changes):
    cfg = json.loads((d / "config.json").read_text())
    cfg.update(changes)
    (d / "config.json").write_text(json.dumps(cfg))


@pytest.fixture
def lm_dir(tmp_path):
    tiny_lm().save_pretrained(tmp_path / "lm")
    return tmp_path / "lm"


@pytest.mark.parametrize(
    "field, value",
    [
        ("d_model", 10**9),
        ("n_layers", 100_000),
        ("n_heads", 4096),
        ("vocab_size", 10**10),
        ("context_length", 10**8),
        ("time_steps", 10**6),
        ("mlp_ratio", 10**4),
    ],
)
def test_oversized_lm_fields_are_refused_by_name(lm_dir, field, value):
    _edit(lm_dir, **{field: value})
    with pytest.raises(ModelLoadError, match=f"{field} = {value} is outside"):
        load_model(lm_dir)


@pytest.mark.parametrize("value", [True, "64", 1.5, -4, 0, None])
def test_size_fields_must_be_positive_integers(lm_dir, value):
    _edit(lm_dir, d_model=value)
    with pytest.raises(ModelLoadError, match="d_model"):
        verify_dir(lm_dir)


def test_fields_within_limits_but_a_huge_product_are_refused(lm_dir):
    _edit(lm_dir, d_model=8192, n_layers=128, n_heads=128, vocab_size=1_000_000)
    with pytest.raises(ModelLoadError, match="parameters, over LoadLimits.parameters"):
        verify_dir(lm_dir)


@pytest.mark.parametrize(
    "field, value", [("channels", [4, 10**8, 8]), ("hidden", 10**8), ("beat_after", 10**9)]
)
def test_oversized_ecg_fields_are_refused_by_name(tmp_path, field, value):
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    _edit(tmp_path / "m", **{field: value})
    with pytest.raises(ModelLoadError, match=field):
        load_model(tmp_path / "m")


def test_limits_are_configurable():
    cfg = {"channels": [4, 8, 8], "kernels": [7, 5, 5], "strides": [2, 2, 2], "hidden": 16, "time_steps": 3}
    cfg |= {"beat_before": 90, "beat_after": 166}
    assert check_config_limits(cfg, "evospikenet_ecg_snn", "x") > 0
    with pytest.raises(ModelLoadError, match=r"hidden = 16 is outside \[1, 8\] \(LoadLimits.neurons\)"):
        check_config_limits(cfg, "evospikenet_ecg_snn", "x", LoadLimits(neurons=8))


def test_weights_must_have_the_shapes_the_config_implies(lm_dir):
    _edit(lm_dir, d_model=32, n_heads=2)  # within limits, but the stored tensors are 16 wide
    with pytest.raises(ModelLoadError, match=r"tensor '.*' has shape \(.*\), the config implies"):
        load_model(lm_dir)
    tiny_ecg(1).save_pretrained(lm_dir.parent / "ecg")
    _edit(lm_dir.parent / "ecg", hidden=24)
    with pytest.raises(
        ModelLoadError, match=r"tensor 'fc.(weight|bias)' has shape \(16.*the config implies \(24"
    ):
        load_model(lm_dir.parent / "ecg")
