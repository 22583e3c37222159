"""Push model directories to the Hugging Face Hub and pull them back, verified before any file is parsed.

``push`` stages a copy of the directory (pickles left out), builds its ``exports/`` (:mod:`hub.exports`:
ONNX, NIR, Lava where the model has them, each verified), writes the manifest (SHA-256 and size of every
file) and a model card listing the exports with their verification figures, creates the repo (and the branch
named by ``revision``) and uploads it in one commit.

``pull`` is the one verified download every load goes through (``load_pretrained``, ``evospikenet-hub
pull``, ``evospikenet-serve --model ORG/NAME`` via :func:`resolve_model`):

1. the revision (branch, tag or commit; default ``main``) is resolved to a commit SHA once, and every file
   is fetched at that commit, so a branch moving meanwhile cannot mix two versions;
2. the manifest alone is downloaded and validated (:func:`hub.models.read_manifest`: relative paths inside
   the snapshot, allowed file types only, no pickle);
3. exactly the files it lists are downloaded (``allow_patterns`` naming each one; a ``.bin`` in the repo is
   never fetched), then every file's size and SHA-256 is checked before any is parsed, ``config.json``
   included (:func:`hub.models.verify_dir` with ``require_manifest``).

Both follow ``huggingface_hub``'s environment: ``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE`` (a pull
then resolves from the cache only), ``HF_HOME``/``HF_HUB_CACHE``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from evospikenet.atomic import atomic_write_bytes

from .card import build_card, exports_section
from .models import MANIFEST, PICKLE_SUFFIXES, file_digest, load_model, read_manifest, verify_dir

__all__ = [
    "push",
    "pull",
    "load_pretrained",
    "resolve_model",
    "write_manifest",
    "release_plan",
    "release",
]


def _endpoint(endpoint: str | None) -> str | None:
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def write_manifest(d: Path) -> Path:
    """Write ``evospikenet_manifest.json`` (size and SHA-256 of every other file) into ``d``, atomically."""
    d = Path(d)
    files = {
        f.relative_to(d).as_posix(): {"size": f.stat().st_size, "sha256": file_digest(f)}
        for f in sorted(d.rglob("*"))
        if f.is_file() and f.name not in (MANIFEST, "README.md") and not f.name.startswith(".")
    }
    return atomic_write_bytes(d / MANIFEST, json.dumps({"format": 1, "files": files}, indent=1).encode())


def push(
    model_dir,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    metrics: dict | None = None,
    commit_message: str | None = None,
    exports=True,
    qat_epochs: int = 3,
    log=None,
):
    """Verify, export, card and upload ``model_dir`` to ``repo_id``; returns the ``CommitInfo``.

    ``exports``: True for every format of :data:`hub.exports.FORMATS` the model has, a list of formats, or
    False for none; ``qat_epochs`` is passed to the Lava export.
    """
    from huggingface_hub import HfApi

    from .exports import FORMATS, build_exports

    src = Path(model_dir)
    verify_dir(src)
    model = load_model(src)
    api = HfApi(endpoint=_endpoint(endpoint), token=token)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage"
        skip = [f"*{s}" for s in PICKLE_SUFFIXES] + [MANIFEST, "exports", ".*"]
        shutil.copytree(src, stage, ignore=shutil.ignore_patterns(*skip))
        formats = FORMATS if exports is True else tuple(exports or ())
        rows = build_exports(model, stage, formats, qat_epochs=qat_epochs, log=log) if formats else []
        if rows:
            (stage / "exports").mkdir(exist_ok=True)
            atomic_write_bytes(stage / "exports" / "verification.json", json.dumps(rows, indent=1).encode())
        write_manifest(stage)
        if not (src / "README.md").is_file():
            build_card(stage, repo_id, model=model, metrics=metrics, exports=rows).save(stage / "README.md")
        elif rows:  # the author's card, with the exports of this upload appended
            text = (stage / "README.md").read_text()
            atomic_write_bytes(stage / "README.md", (text.rstrip() + "\n\n" + exports_section(rows)).encode())
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=str(stage),
            revision=revision,
            commit_message=commit_message or f"Upload {src.name} with evospikenet-hub",
        )


def _offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def pull(
    repo_id: str,
    revision: str | None = None,
    cache_dir=None,
    token: str | None = None,
    endpoint: str | None = None,
    local_dir=None,
) -> Path:
    """Download ``repo_id`` at ``revision`` (pinned to its commit) and verify it; returns the folder."""
    from huggingface_hub import HfApi, hf_hub_download, snapshot_download

    kw = dict(cache_dir=cache_dir, token=token, endpoint=_endpoint(endpoint), local_dir=local_dir)
    rev = revision
    if local_dir is not None and not _offline():  # a local folder keeps no refs: resolve the commit first
        rev = HfApi(endpoint=_endpoint(endpoint), token=token).model_info(repo_id, revision=revision).sha
    man = Path(hf_hub_download(repo_id, MANIFEST, revision=rev, **kw))
    if local_dir is None:  # <cache>/snapshots/<commit>/evospikenet_manifest.json: the commit the ref named
        rev = man.parent.name
    files = read_manifest(man.parent)  # validated before anything else is fetched
    wanted = sorted(files) + [MANIFEST, "README.md"]
    path = Path(snapshot_download(repo_id, revision=rev, allow_patterns=wanted, **kw))
    verify_dir(path, require_manifest=True)
    return path


def resolve_model(path_or_id, revision: str | None = None, **kwargs) -> Path:
    """A verified local model directory: ``path_or_id`` itself when it is a directory, else pulled."""
    p = Path(str(path_or_id))
    if p.is_dir():
        verify_dir(p)
        return p
    return pull(str(path_or_id), revision=revision, **kwargs)


def load_pretrained(repo_id_or_dir, revision: str | None = None, task: str | None = None, **kwargs):
    """A verified model from a local directory or a Hub repo id (pulled first), in eval mode."""
    return load_model(resolve_model(repo_id_or_dir, revision, **kwargs), task=task)


def release_plan(artifacts="artifacts", org: str = "evospikenet") -> list[tuple[Path, str]]:
    """``(directory, repo_id)`` for every publishable model directory under ``artifacts`` (verified ones)."""
    out, artifacts = [], Path(artifacts)
    for cfg in sorted(artifacts.rglob("config.json")):
        d = cfg.parent
        if "exports" in d.relative_to(artifacts).parts:
            continue
        try:
            verify_dir(d)
        except ValueError:
            continue
        name = (
            "-".join(d.relative_to(artifacts).parts).replace("_", "-").lower()
        )  # ecg_2ep/model -> ecg-2ep-model
        out.append((d, f"{org}/{name}"))
    return out


def release(artifacts="artifacts", org: str = "evospikenet", token: str | None = None, dry_run=None, **kw):
    """Publish every model of :func:`release_plan` with its exports; with no token (or ``dry_run``) only list."""
    token = token or os.environ.get("HF_TOKEN")
    plan = release_plan(artifacts, org)
    if dry_run is None:
        dry_run = not token
    done = []
    for d, rid in plan:
        if dry_run:
            print(f"would publish {d} -> {rid}")
            continue
        info = push(d, rid, token=token, **kw)
        print(f"published {d} -> {rid} ({getattr(info, 'oid', info)})")
        done.append((d, rid))
    return plan if dry_run else done
