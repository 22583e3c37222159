"""Push/pull over HTTP on 127.0.0.1 (stand-in Hub, olah mirror), revisions, offline mode, tokens, release."""

import os
import shutil
import socket
import subprocess
import sys
import time

import pytest
import torch
from hub_fixtures import ROOT, TOKEN, tiny_ecg, tiny_lm
from huggingface_hub.errors import HfHubHTTPError

from hub.card import build_card
from hub.models import MANIFEST, load_model
from hub.publish import pull, push, release_plan

OLAH = ROOT / ".venv-olah" / "bin" / "olah-cli"


def _same_ecg(a, b):
    torch.manual_seed(1)
    x, rr = torch.randn(5, a.config.window), torch.randn(5, 6)
    with torch.no_grad():
        return torch.equal(a(x, rr), b(x, rr))


def test_push_trained_ecg_pull_into_empty_cache_same_outputs(hub_server, tmp_path):
    state, url = hub_server
    m = tiny_ecg()
    m.save_pretrained(tmp_path / "ecg")
    info = push(tmp_path / "ecg", "evo/ecg-tiny", endpoint=url, token=TOKEN, exports=False)
    assert info.oid == state.repos["evo/ecg-tiny"]["branches"]["main"]
    cache = tmp_path / "cache"
    assert not cache.exists()
    d = pull("evo/ecg-tiny", endpoint=url, cache_dir=cache)
    assert {"config.json", "model.safetensors", MANIFEST, "README.md"} <= set(os.listdir(d))
    assert _same_ecg(m, load_model(d))
    card = (d / "README.md").read_text()
    for needle in (
        "license: apache-2.0",
        "spike_rate",
        "energy_per_sample_j",
        'load_pretrained("evo/ecg-tiny")',
    ):
        assert needle in card


def test_push_pull_spiking_lm_same_logits(hub_server, tmp_path):
    _, url = hub_server
    m = tiny_lm()
    m.save_pretrained(tmp_path / "lm")
    push(tmp_path / "lm", "evo/lm-tiny", endpoint=url, token=TOKEN, exports=False)
    d = pull("evo/lm-tiny", endpoint=url, cache_dir=tmp_path / "cache")
    ids = torch.randint(0, 257, (2, 9))
    with torch.no_grad():
        assert torch.equal(m(input_ids=ids).logits, load_model(d)(input_ids=ids).logits)


def test_revisions_branch_and_commit_pinning(hub_server, tmp_path):
    _, url = hub_server
    a, b = tiny_ecg(1), tiny_ecg(4)
    a.save_pretrained(tmp_path / "a")
    b.save_pretrained(tmp_path / "b")
    first = push(tmp_path / "a", "evo/ecg", endpoint=url, token=TOKEN, exports=False)
    push(tmp_path / "b", "evo/ecg", endpoint=url, token=TOKEN, revision="v2", exports=False)
    cache = tmp_path / "cache"
    assert _same_ecg(a, load_model(pull("evo/ecg", endpoint=url, cache_dir=cache)))
    assert _same_ecg(b, load_model(pull("evo/ecg", revision="v2", endpoint=url, cache_dir=cache)))
    push(tmp_path / "b", "evo/ecg", endpoint=url, token=TOKEN, exports=False)  # main moves on
    pinned = pull("evo/ecg", revision=first.oid, endpoint=url, cache_dir=cache)
    assert _same_ecg(a, load_model(pinned))
    assert _same_ecg(b, load_model(pull("evo/ecg", endpoint=url, cache_dir=cache)))


def test_push_without_valid_token_is_refused(hub_server, tmp_path):
    _, url = hub_server
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    with pytest.raises(HfHubHTTPError, match="401"):
        push(tmp_path / "m", "evo/x", endpoint=url, token="wrong", exports=False)


def _run_py(code: str, env: dict) -> subprocess.CompletedProcess:
    # Start from a clean Hub environment: only what the test passes may steer the child.
    base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    full = {**base, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=300)


@pytest.mark.slow  # three fresh interpreters importing evospikenet: ~90 s on the shared machine
def test_env_endpoint_and_offline_mode(hub_server, tmp_path):
    _, url = hub_server
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    push(tmp_path / "m", "evo/off", endpoint=url, token=TOKEN, exports=False)
    code = "from hub.publish import pull; print(pull('evo/off'))"
    cache = str(tmp_path / "hfcache")
    r = _run_py(code, {"HF_ENDPOINT": url, "HF_HUB_CACHE": cache})  # endpoint from the environment
    assert r.returncode == 0, r.stderr
    dead = "http://127.0.0.1:9"  # nothing listens: offline mode must not try it
    r = _run_py(code, {"HF_ENDPOINT": dead, "HF_HUB_CACHE": cache, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 0, r.stderr
    r = _run_py(code, {"HF_ENDPOINT": url, "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"})
    assert r.returncode != 0 and "offline" in r.stderr.lower()


def test_card_has_metrics_recipe_and_usage(tmp_path):
    m = tiny_ecg(1)
    m.save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "metrics.json").write_text('{"f1_macro": 0.91}')
    (tmp_path / "m" / "recipe.yaml").write_text("trainer:\n  max_epochs: 3\n")
    card = build_card(tmp_path / "m", "evo/m", model=m)
    assert card.data.license == "apache-2.0"
    assert "| f1_macro | 0.91 |" in card.text and "max_epochs: 3" in card.text
    assert "mit-bih-arrhythmia" in card.data.datasets


def test_release_plan_lists_verified_models_only(tmp_path, capsys):
    from hub.publish import release

    tiny_ecg(1).save_pretrained(tmp_path / "art" / "ecg_small")
    (tmp_path / "art" / "junk").mkdir()
    (tmp_path / "art" / "junk" / "config.json").write_text('{"model_type": "bert"}')
    plan = release_plan(tmp_path / "art", "evo")
    assert [r for _, r in plan] == ["evo/ecg-small"]
    out = release(tmp_path / "art", "evo", token=None)
    assert out == plan and "would publish" in capsys.readouterr().out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(not OLAH.is_file(), reason="olah mirror not installed (.venv-olah; see docs/hub.md)")
def test_olah_mirror_serves_pushed_model_offline(hub_server, tmp_path):
    """Push to the stand-in, mirror the repo as git for olah (offline mode), pull through olah."""
    _, url = hub_server
    m = tiny_ecg()
    m.save_pretrained(tmp_path / "m")
    push(tmp_path / "m", "evo/ecg-olah", endpoint=url, token=TOKEN, exports=False)
    repo = tmp_path / "mirrors" / "models" / "evo" / "ecg-olah"
    pull("evo/ecg-olah", endpoint=url, local_dir=repo)
    shutil.rmtree(repo / ".cache", ignore_errors=True)
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "mirror"], check=True)
    port = _free_port()
    cfg = tmp_path / "olah.toml"
    cfg.write_text(
        f'[basic]\nhost = "127.0.0.1"\nport = {port}\nrepos-path = "{tmp_path / "olah_repos"}"\n'
        f'mirror-netloc = "127.0.0.1:{port}"\nmirror-lfs-netloc = "127.0.0.1:{port}"\n'
        f'mirrors-path = ["{tmp_path / "mirrors"}"]\n[accessibility]\noffline = true\n'
    )
    proc = subprocess.Popen(
        [str(OLAH), "-c", str(cfg)], cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.2)
        d = pull("evo/ecg-olah", endpoint=f"http://127.0.0.1:{port}", cache_dir=tmp_path / "cache")
        assert _same_ecg(m, load_model(d))
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_push_pull_multimodal_same_answers_and_logits(hub_server, tmp_path):
    from evospikenet.models.multimodal import MultiModalEvoSpikeNetConfig, MultiModalEvoSpikeNetForCausalLM

    _, url = hub_server
    torch.manual_seed(0)
    cfg = MultiModalEvoSpikeNetConfig(
        d_model=32,
        n_layers=1,
        n_heads=2,
        mlp_ratio=2,
        time_steps=2,
        vision_channels=[4, 4],
        signal_channels=[4, 4],
    )
    m = MultiModalEvoSpikeNetForCausalLM(cfg).eval()
    m.save_pretrained(tmp_path / "mm")
    push(tmp_path / "mm", "evo/mm-tiny", endpoint=url, token=TOKEN, exports=False)
    pulled = load_model(pull("evo/mm-tiny", endpoint=url, cache_dir=tmp_path / "cache"))
    images = torch.randint(0, 17, (2, 1, 8, 8)).float()
    with torch.no_grad():
        assert m.generate(text="what digit is this?", images=images) == pulled.generate(
            text="what digit is this?", images=images
        )
    a, b = m.state_dict(), pulled.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
