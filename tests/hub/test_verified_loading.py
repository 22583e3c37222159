"""Attacks on model loading through the Hub stand-in (127.0.0.1): every load goes through the verified pull.

A hostile or broken repository may hold pickles, files the manifest does not list, a config.json edited
after publishing, a manifest pointing outside the snapshot, or no manifest at all; a local directory may hold
a ``pytorch_model.bin`` beside the safetensors or a shard index pointing elsewhere. Each is refused with an
error naming the file, before the file in question (or any other) is parsed.
"""

import hashlib
import json
import pickle

import pytest
from hub_fixtures import TOKEN, tiny_ecg, tiny_lm

from hub.models import MANIFEST, ModelLoadError, load_model, verify_dir
from hub.publish import pull, push, resolve_model


def _published(hub_server, tmp_path, repo="evo/m"):
    state, url = hub_server
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    info = push(tmp_path / "m", repo, endpoint=url, token=TOKEN, exports=False)
    return state, url, info.oid


def _commit(state, repo, adds=None, deletes=()):
    return state.commit(repo, "main", {k: v for k, v in (adds or {}).items()}, list(deletes), "edit")


def _files(state, repo, rev="main"):
    return state.repos[repo]["commits"][state.resolve(repo, rev)]


def _gets(state):
    return [p for m, p in state.requests if m == "GET"]


def test_pull_fetches_exactly_the_manifest_files_never_a_pickle(hub_server, tmp_path):
    state, url, _ = _published(hub_server, tmp_path)
    evil = pickle.dumps({"x": 1})
    _commit(state, "evo/m", {"pytorch_model.bin": evil, "extra/unlisted.json": b"{}", "notes.txt": b"hi"})
    state.requests.clear()
    d = pull("evo/m", endpoint=url, cache_dir=tmp_path / "cache")
    got = {p.relative_to(d).as_posix() for p in d.rglob("*") if p.is_file()}
    assert got == {"config.json", "model.safetensors", MANIFEST, "README.md"}
    assert not [p for p in _gets(state) if p.endswith((".bin", "unlisted.json", "notes.txt"))]
    load_model(d)


def test_config_edited_after_publishing_fails_its_digest_before_it_is_parsed(hub_server, tmp_path):
    state, url, _ = _published(hub_server, tmp_path)
    size = len(_files(state, "evo/m")["config.json"])
    _commit(state, "evo/m", {"config.json": b"{not json" + b" " * (size - 9)})  # same size, other bytes
    with pytest.raises(ModelLoadError, match=r"config.json.*SHA-256"):  # not a JSON error: never parsed
        pull("evo/m", endpoint=url, cache_dir=tmp_path / "cache")


def test_a_repository_without_manifest_is_refused(hub_server, tmp_path):
    state, url, _ = _published(hub_server, tmp_path)
    _commit(state, "evo/m", deletes=[MANIFEST])
    with pytest.raises(Exception, match="evospikenet_manifest.json"):
        pull("evo/m", endpoint=url, cache_dir=tmp_path / "cache")


@pytest.mark.parametrize(
    "name, words",
    [
        ("../../outside.json", "outside the model directory"),
        ("/etc/passwd.json", "outside the model directory"),
        ("pytorch_model.bin", "pickle file"),
        ("run.sh", "file type"),
    ],
)
def test_manifest_entries_are_confined_and_typed_before_any_download(hub_server, tmp_path, name, words):
    state, url, _ = _published(hub_server, tmp_path)
    man = json.loads(_files(state, "evo/m")[MANIFEST])
    man["files"][name] = {"size": 1, "sha256": hashlib.sha256(b"x").hexdigest()}
    _commit(state, "evo/m", {MANIFEST: json.dumps(man).encode()})
    state.requests.clear()
    with pytest.raises(ModelLoadError, match=words):
        pull("evo/m", endpoint=url, cache_dir=tmp_path / "cache")
    assert all(p.endswith(MANIFEST) for p in _gets(state) if "/resolve/" in p)  # nothing else was fetched


def test_pull_pins_the_revision_to_one_commit(hub_server, tmp_path):
    state, url, first = _published(hub_server, tmp_path)
    tiny_ecg(4).save_pretrained(tmp_path / "b")
    push(tmp_path / "b", "evo/m", endpoint=url, token=TOKEN, exports=False, revision="v2")
    head = state.resolve("evo/m", "v2")
    assert pull("evo/m", revision="v2", endpoint=url, cache_dir=tmp_path / "c").name == head
    assert pull("evo/m", revision=first, endpoint=url, cache_dir=tmp_path / "c").name == first


def test_local_directory_with_a_pickle_beside_safetensors_is_refused(tmp_path):
    tiny_ecg(1).save_pretrained(tmp_path / "m")
    (tmp_path / "m" / "pytorch_model.bin").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelLoadError, match=r"pytorch_model.bin.*never loaded"):
        resolve_model(tmp_path / "m")


def test_serving_loaders_refuse_what_the_verified_loader_refuses(tmp_path):
    """``evospikenet-serve --model DIR`` loads through serving.engine: the same checks apply."""
    from serving.engine import load_causal_lm, load_ecg

    tiny_lm().save_pretrained(tmp_path / "lm")
    (tmp_path / "lm" / "pytorch_model.bin").write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(ModelLoadError, match="pytorch_model.bin"):
        load_causal_lm(str(tmp_path / "lm"))
    tiny_ecg(1).save_pretrained(tmp_path / "ecg")
    cfg = json.loads((tmp_path / "ecg" / "config.json").read_text())
    (tmp_path / "ecg" / "config.json").write_text(json.dumps(cfg | {"hidden": 10**9}))
    with pytest.raises(ModelLoadError, match="hidden = 1000000000 is outside"):
        load_ecg(str(tmp_path / "ecg"))


def test_shard_index_pointing_outside_the_directory_is_refused(tmp_path):
    d = tmp_path / "m"
    tiny_ecg(1).save_pretrained(d)
    (d / "model.safetensors").rename(tmp_path / "outside.safetensors")
    (d / "model.safetensors.index.json").write_text(
        json.dumps({"weight_map": {"w": "../outside.safetensors"}})
    )
    with pytest.raises(ModelLoadError, match="outside the model directory"):
        verify_dir(d)
