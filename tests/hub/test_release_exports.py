"""A release carries exports/: built and verified at push, listed in the card and manifest, pulled back whole."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from hub_fixtures import ROOT, TOKEN, tiny_ecg, tiny_lm

from hub.lava.bridge import lava_unavailable_reason, load_loihi
from hub.models import MANIFEST, ModelLoadError, load_model
from hub.publish import pull, push


@pytest.mark.slow  # builds and verifies three exports (Lava on 100 held-out beats when the venv is there)
def test_released_ecg_exports_pull_back_verified_and_run(hub_server, tmp_path):
    state, url = hub_server
    tiny_ecg().save_pretrained(tmp_path / "m")
    try:
        push(tmp_path / "m", "evo/ecg", endpoint=url, token=TOKEN, qat_epochs=0)
    except FileNotFoundError as e:
        pytest.skip(f"MIT-BIH records unavailable for the Lava export's check: {e}")
    d = pull("evo/ecg", endpoint=url, cache_dir=tmp_path / "cache")
    manifest = json.loads((d / MANIFEST).read_text())["files"]
    for f in (
        "exports/model.onnx",
        "exports/model.nir",
        "exports/model.loihi.npz",
        "exports/verification.json",
    ):
        assert (d / f).is_file() and f in manifest
    rows = {r["format"]: r for r in json.loads((d / "exports" / "verification.json").read_text())}
    assert rows["onnx"]["verification"]["same_class"] == 1.0
    assert rows["nir"]["verification"]["spike_match"] == 1.0
    lava = rows["lava"]["verification"]
    assert lava["beats"] == 100 and lava["records"] == 5
    if lava_unavailable_reason() is None:
        assert lava["spike_match"] == 1.0 and lava["readout_match"] is True
    card = (d / "README.md").read_text()
    for f in (
        "exports/model.onnx",
        "exports/model.nir",
        "exports/model.loihi.npz",
        "spike_match 1",
        "InferenceSession",
    ):
        assert f in card
    # the pulled ONNX graph and the pulled weights in PyTorch give the same outputs
    model = load_model(d)
    torch.manual_seed(5)
    x, rr = torch.randn(6, model.config.window), torch.rand(6, 6)
    sess = ort.InferenceSession(str(d / "exports" / "model.onnx"), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": x.numpy(), "rr": rr.numpy()})
    with torch.no_grad():
        np.testing.assert_allclose(got, model(x, rr).numpy(), atol=1e-5, rtol=0)
    assert load_loihi(d / "exports" / "model.loihi.npz").time_steps == model.config.time_steps
    # an export changed in the repository after publishing fails its digest
    files = dict(state.repos["evo/ecg"]["commits"][state.resolve("evo/ecg", "main")])
    onnx_bytes = bytearray(files["exports/model.onnx"])
    onnx_bytes[-5] ^= 1
    state.commit("evo/ecg", "main", {"exports/model.onnx": bytes(onnx_bytes)}, [], "tamper")
    with pytest.raises(ModelLoadError, match=r"exports/model.onnx.*SHA-256"):
        pull("evo/ecg", endpoint=url, cache_dir=tmp_path / "cache2")


def test_lm_release_lists_what_has_no_form(hub_server, tmp_path):
    _, url = hub_server
    tiny_lm().save_pretrained(tmp_path / "lm")
    push(tmp_path / "lm", "evo/lm", endpoint=url, token=TOKEN)
    d = pull("evo/lm", endpoint=url, cache_dir=tmp_path / "cache")
    assert (d / "exports" / "model.onnx").is_file() and not (d / "exports" / "model.nir").exists()
    card = (d / "README.md").read_text()
    assert "no nir form for SpikingEvoSpikeNetForCausalLM" in card and "no lava form" in card


SCRIPT = Path(sys.executable).with_name("evospikenet-hub")  # the installed console script


def _cli(*args, env=None):
    full = (
        {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        | {"OMP_NUM_THREADS": "1"}
        | (env or {})
    )
    return subprocess.run(
        [str(SCRIPT), *args], capture_output=True, text=True, env=full, cwd=ROOT, timeout=600
    )


@pytest.mark.slow  # two fresh interpreters
def test_console_script_help_and_pull(hub_server, tmp_path):
    _, url = hub_server
    r = _cli("--help")
    assert r.returncode == 0
    for word in ("push", "pull", "export", "release", "--format lava", "example:"):
        assert word in r.stdout
    tiny_ecg(1).save_pretrained(tmp_path / "art" / "m")
    push(tmp_path / "art" / "m", "evo/cli", endpoint=url, token=TOKEN, exports=False)
    r = _cli("pull", "evo/cli", "--cache-dir", str(tmp_path / "cache"), env={"HF_ENDPOINT": url})
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "cache") in Path(r.stdout.strip().splitlines()[-1]).parents
    r = _cli("pull", "evo/nope", "--cache-dir", str(tmp_path / "cache"), env={"HF_ENDPOINT": url})
    assert r.returncode == 2 and "evospikenet-hub: error:" in r.stderr
    r = _cli("release", "--artifacts", str(tmp_path / "art"), "--org", "evo", "--dry-run")
    assert r.returncode == 0
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [[str(tmp_path / "art" / "m"), "evo/m"]]
