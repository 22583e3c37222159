"""``evospikenet-hub``: push, pull, export and release from the shell.

::

    evospikenet-hub push DIR REPO_ID [--private] [--revision REV] [--token T] [--endpoint URL]
    evospikenet-hub pull REPO_ID [--revision REV] [--cache-dir D] [--local-dir D]
    evospikenet-hub export DIR --format {onnx,nir,lava} [--out PATH] [--with-spikes]  (nir: ECGSpikingNet; lava: refused)
    evospikenet-hub release [--artifacts artifacts] --org ORG [--dry-run]

The environment variables of ``huggingface_hub`` apply (``HF_ENDPOINT``, ``HF_TOKEN``, ``HF_HUB_OFFLINE``).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="evospikenet-hub", description="Publish, pull and export EvoSpikeNet models"
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("push", help="upload a saved model directory with its card")
    p.add_argument("dir")
    p.add_argument("repo_id")
    p.add_argument("--private", action="store_true")
    p.add_argument("--revision", default=None, help="branch to commit to (created if missing)")
    p.add_argument("--token", default=None)
    p.add_argument("--endpoint", default=None)
    q = sub.add_parser("pull", help="download and verify a model into the cache")
    q.add_argument("repo_id")
    q.add_argument("--revision", default=None, help="branch, tag or commit SHA")
    q.add_argument("--cache-dir", default=None)
    q.add_argument("--local-dir", default=None)
    q.add_argument("--token", default=None)
    q.add_argument("--endpoint", default=None)
    e = sub.add_parser("export", help="export a saved model directory")
    e.add_argument("dir")
    e.add_argument("--format", required=True, choices=("onnx", "nir", "lava"))
    e.add_argument("--out", default=None, help="output path (default: DIR/model.<format>)")
    e.add_argument("--with-spikes", action="store_true", help="onnx: add the spike trains as a second output")
    r = sub.add_parser("release", help="publish every model directory under artifacts/")
    r.add_argument("--artifacts", default="artifacts")
    r.add_argument("--org", required=True)
    r.add_argument("--dry-run", action="store_true", help="only list (also the default with no token)")
    return ap


def _export(a) -> Path:
    """Load the saved directory safely (``hub.models.load_model``) and write it in ``a.format``.

    ``nir``: models that ``hub.export_nir.to_nir`` takes (a saved ``ECGSpikingNet``); ``lava``: no saved
    model type maps to the Lava bridge (it runs core ``Network``s with ``loihi`` populations and no external
    input), so every class is refused with the reason. Errors are ``ValueError`` naming the model class.
    """
    from .models import load_model

    d = Path(a.dir)
    model = load_model(d)
    name = type(model).__name__
    if a.format == "onnx":
        from .export_onnx import export_onnx

        return export_onnx(model, a.out or d / "model.onnx", with_spikes=a.with_spikes)
    if a.format == "nir":
        from evospikenet.models.ecg import ECGSpikingNet

        from .export_nir import export_nir_file

        if not isinstance(model, ECGSpikingNet):
            raise ValueError(
                f"--format nir: the saved model in {str(d)!r} ({name}) has no NIR form; NIR export "
                f"takes ECGSpikingNet directories and, from Python, hub.export_nir.SpikingSequential stacks"
            )
        return export_nir_file(model, a.out or d / "model.nir")
    reason = (
        "its float encoder, convolutions, per-beat input and subtract reset have no Loihi 2 process in the "
        "bridge (use --format nir and a NIR-to-Lava tool)"
        if name == "ECGSpikingNet"
        else "it is not a core Network with loihi-profile populations"
    )
    raise ValueError(
        f"--format lava: the saved model in {str(d)!r} ({name}) has no Lava form: {reason}; "
        f"hub.lava.bridge.export_lava exports an evospikenet.core.Network (neuron='loihi', delay-1 delta "
        f"projections, no external inputs) built in Python"
    )


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        if a.cmd == "push":
            from .publish import push

            info = push(
                a.dir, a.repo_id, private=a.private, revision=a.revision, token=a.token, endpoint=a.endpoint
            )
            print(getattr(info, "commit_url", info))
        elif a.cmd == "pull":
            from .publish import pull

            print(pull(a.repo_id, a.revision, a.cache_dir, a.token, a.endpoint, a.local_dir))
        elif a.cmd == "export":
            print(_export(a))
        else:
            from .publish import release

            plan = release(a.artifacts, a.org, dry_run=True if a.dry_run else None)
            print(json.dumps([[str(d), r] for d, r in plan]))
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"evospikenet-hub: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
