"""Model directories and exports are written to a temporary place and renamed into place.

A crash in the middle of ``save_pretrained`` (here: the weight file write fails half way) leaves the old
model directory intact and loadable, and no temporary directory behind; the same for an ONNX export.
"""

import json

import pytest
import torch
from hub_fixtures import tiny_ecg

from hub.models import load_model
from hub.publish import write_manifest


def _same(a, b):
    x, rr = torch.randn(4, a.config.window), torch.randn(4, 6)
    with torch.no_grad():
        return torch.equal(a(x, rr), b(x, rr))


def _crash_half_way(monkeypatch):
    import transformers.modeling_utils as mu

    real = mu.safe_save_file

    def half(tensors, filename, metadata=None):
        real(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:  # a crash mid-write: the file is cut short
            f.truncate(f.seek(0, 2) // 2)
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(mu, "safe_save_file", half)


def test_crash_during_save_pretrained_leaves_the_old_model_intact(tmp_path, monkeypatch):
    old = tiny_ecg(1)
    old.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "metrics.json").write_text('{"accuracy": 0.9}')
    new = tiny_ecg(4)
    new.config.hidden = 16
    _crash_half_way(monkeypatch)
    with pytest.raises(OSError, match="disk full"):
        new.save_pretrained(tmp_path / "m")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]  # no temporary directory left behind
    assert _same(old, load_model(tmp_path / "m"))
    assert json.loads((tmp_path / "m" / "metrics.json").read_text()) == {"accuracy": 0.9}


def test_a_finished_save_replaces_weights_and_keeps_the_authors_files(tmp_path):
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "metrics.json").write_text("{}")
    (tmp_path / "m" / "exports").mkdir()
    (tmp_path / "m" / "exports" / "model.onnx").write_bytes(b"old graph")
    write_manifest(tmp_path / "m")
    new = tiny_ecg(4)
    new.save_pretrained(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["config.json", "metrics.json", "model.safetensors"]  # stale exports and manifest dropped
    assert _same(new, load_model(tmp_path / "m"))


def test_crash_during_onnx_export_keeps_the_previous_export(tmp_path, monkeypatch):
    import onnx

    from hub.export_onnx import export_onnx

    model = tiny_ecg(1)
    path = export_onnx(model, tmp_path / "model.onnx")
    before = path.read_bytes()

    def broken(*a, **k):
        raise onnx.checker.ValidationError("simulated")

    monkeypatch.setattr(onnx.checker, "check_model", broken)
    with pytest.raises(onnx.checker.ValidationError):
        export_onnx(tiny_ecg(4), path)
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["model.onnx"]
