"""Loading refuses tampered, truncated, incomplete, pickle-only and foreign model directories."""

import json

import pytest
from hub_fixtures import tiny_ecg

from hub.models import ModelLoadError, load_model, verify_dir
from hub.publish import write_manifest


@pytest.fixture
def saved(tmp_path):
    d = tmp_path / "m"
    tiny_ecg(1).save_pretrained(d)
    write_manifest(d)
    return d


def test_clean_directory_loads(saved):
    assert verify_dir(saved)[1] == "evospikenet_ecg_snn"
    load_model(saved)


def test_tampered_weights_fail_the_digest(saved):
    f = saved / "model.safetensors"
    b = bytearray(f.read_bytes())
    b[-3] ^= 0x40  # one bit of a weight
    f.write_bytes(bytes(b))
    with pytest.raises(ModelLoadError, match="SHA-256"):
        load_model(saved)


@pytest.mark.parametrize("manifest", [True, False])
def test_truncated_weights_fail(saved, manifest):
    if not manifest:
        (saved / "evospikenet_manifest.json").unlink()
    f = saved / "model.safetensors"
    f.write_bytes(f.read_bytes()[:-10])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_model(saved)


def test_missing_config_key_fails(saved):
    cfg = json.loads((saved / "config.json").read_text())
    del cfg["channels"]
    (saved / "config.json").write_text(json.dumps(cfg))
    (saved / "evospikenet_manifest.json").unlink()
    with pytest.raises(ModelLoadError, match="lacks required keys \\['channels'\\]"):
        load_model(saved)


def test_foreign_model_type_fails(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "bert", "hidden_size": 8}')
    with pytest.raises(ModelLoadError, match="'bert', not an EvoSpikeNet model"):
        load_model(tmp_path)


def test_pickle_only_is_never_loaded(saved):
    (saved / "model.safetensors").rename(saved / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pytorch_model.bin.*never loaded"):
        load_model(saved)


def test_bad_json_and_missing_dir(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        verify_dir(tmp_path / "nope")
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        verify_dir(tmp_path)
