"""Push model directories to the Hugging Face Hub and pull them back, verified before anything runs.

``push`` stages a copy of the directory with a manifest (SHA-256 and size of every file) and a model card,
creates the repo (and the branch named by ``revision``) and uploads it in one commit. ``pull`` downloads a
snapshot (safetensors, JSON and tokenizer files only; pickles are never fetched) into the usual cache and
runs :func:`hub.models.verify_dir` on it. Both follow ``huggingface_hub``'s environment: ``HF_ENDPOINT``,
``HF_TOKEN``, ``HF_HUB_OFFLINE`` (a pull then resolves from the cache only), ``HF_HOME``/``HF_HUB_CACHE``; a
revision may be a branch, a tag or a commit SHA (pinning).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .card import build_card
from .models import MANIFEST, file_digest, load_model, verify_dir

__all__ = ["push", "pull", "load_pretrained", "write_manifest", "release_plan", "release", "ALLOW_PATTERNS"]

# What a pull fetches: never pickles.
ALLOW_PATTERNS = ["*.json", "*.safetensors", "*.md", "*.txt", "*.model", "*.yaml"]


def _endpoint(endpoint: str | None) -> str | None:
    return endpoint or os.environ.get("HF_ENDPOINT") or None


def write_manifest(d: Path) -> Path:
    """Write ``evospikenet_manifest.json`` (size and SHA-256 of every other file) into ``d``."""
    files = {
        str(f.relative_to(d)): {"size": f.stat().st_size, "sha256": file_digest(f)}
        for f in sorted(d.rglob("*"))
        if f.is_file() and f.name not in (MANIFEST, "README.md")
    }
    out = d / MANIFEST
    out.write_text(json.dumps({"format": 1, "files": files}, indent=1))
    return out


def push(
    model_dir,
    repo_id: str,
    private: bool = False,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    metrics: dict | None = None,
    commit_message: str | None = None,
):
    """Verify, card and upload ``model_dir`` to ``repo_id``; returns the ``CommitInfo``."""
    from huggingface_hub import HfApi

    src = Path(model_dir)
    verify_dir(src)
    model = load_model(src)
    api = HfApi(endpoint=_endpoint(endpoint), token=token)
    with tempfile.TemporaryDirectory() as tmp:
        stage = Path(tmp) / "stage"
        shutil.copytree(
            src, stage, ignore=shutil.ignore_patterns("*.bin", "*.pt", "*.pth", "*.ckpt", "*.pkl")
        )
        write_manifest(stage)
        if not (src / "README.md").is_file():
            build_card(stage, repo_id, model=model, metrics=metrics).save(stage / "README.md")
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        if revision and revision != "main":
            api.create_branch(repo_id, branch=revision, exist_ok=True)
        return api.upload_folder(
            repo_id=repo_id,
            folder_path=str(stage),
            revision=revision,
            commit_message=commit_message or f"Upload {src.name} with evospikenet-hub",
        )


def pull(
    repo_id: str,
    revision: str | None = None,
    cache_dir=None,
    token: str | None = None,
    endpoint: str | None = None,
    local_dir=None,
) -> Path:
    """Download ``repo_id`` at ``revision`` (cache-aware, offline-aware) and verify it; returns the folder."""
    from huggingface_hub import snapshot_download

    path = snapshot_download(
        repo_id,
        revision=revision,
        cache_dir=cache_dir,
        token=token,
        endpoint=_endpoint(endpoint),
        local_dir=local_dir,
        allow_patterns=ALLOW_PATTERNS,
    )
    verify_dir(path)
    return Path(path)


def load_pretrained(repo_id_or_dir, revision: str | None = None, task: str | None = None, **kwargs):
    """A verified model from a local directory or a Hub repo id (pulled first), in eval mode."""
    p = Path(str(repo_id_or_dir))
    d = p if p.is_dir() else pull(str(repo_id_or_dir), revision=revision, **kwargs)
    return load_model(d, task=task)


def release_plan(artifacts="artifacts", org: str = "evospikenet") -> list[tuple[Path, str]]:
    """``(directory, repo_id)`` for every publishable model directory under ``artifacts`` (verified ones)."""
    out, artifacts = [], Path(artifacts)
    for cfg in sorted(artifacts.rglob("config.json")):
        d = cfg.parent
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
    """Publish every model of :func:`release_plan`; with no token (or ``dry_run``) only list them."""
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
