"""``evospikenet-hub``: push, pull, export and release models from the shell (see :func:`build_parser`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .exports import EXPORT_NAMES

__all__ = ["main", "build_parser", "export_dir", "EXPORT_NAMES"]


EPILOG = """subcommands:
  push DIR REPO_ID        upload a saved model directory with its manifest, card and exports/
  pull REPO_ID            download a model (weights, config, card, exports/) and verify every file
  export DIR --format F   write DIR's model as ONNX, NIR or a Loihi 2 (Lava) deployment
  release --org ORG       publish every verified model directory under artifacts/ (lists only without a token)

example:
  evospikenet-hub export artifacts/ecg/model --format lava   # -> artifacts/ecg/model/exports/model.loihi.npz

Environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE and HF_HOME as everywhere in huggingface_hub."""


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="evospikenet-hub",
        description="Publish, pull and export EvoSpikeNet models (safetensors only, verified by SHA-256).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = ap.add_subparsers(dest="cmd", required=True, metavar="{push,pull,export,release}")
    p = sub.add_parser("push", help="upload a saved model directory with its card and exports")
    p.add_argument("dir", help="save_pretrained directory")
    p.add_argument("repo_id", help="ORG/NAME on the Hub")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", default=None, help="branch to commit to (created if missing)")
    p.add_argument("--no-exports", action="store_true", help="upload without building exports/")
    p.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN)")
    p.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT)")
    q = sub.add_parser("pull", help="download and verify a model into the cache")
    q.add_argument("repo_id", help="ORG/NAME on the Hub")
    q.add_argument("--revision", default=None, help="branch, tag or commit SHA (pinned as a commit)")
    q.add_argument("--cache-dir", default=None, help="cache folder (default: HF_HUB_CACHE)")
    q.add_argument("--local-dir", default=None, help="download into this folder instead of the cache")
    q.add_argument("--token", default=None, help="Hub token (default: HF_TOKEN)")
    q.add_argument("--endpoint", default=None, help="Hub URL (default: HF_ENDPOINT)")
    e = sub.add_parser("export", help="export a saved model directory")
    e.add_argument("dir", help="save_pretrained directory")
    e.add_argument("--format", required=True, choices=tuple(EXPORT_NAMES), help="export format")
    e.add_argument(
        "--out", default=None, help="output path (default: DIR/exports/<model.onnx|.nir|.loihi.npz>)"
    )
    e.add_argument("--with-spikes", action="store_true", help="onnx: add the spike trains as a second output")
    e.add_argument(
        "--qat-epochs", type=int, default=3, help="lava: Loihi-aware fine-tuning epochs (0: plain rounding)"
    )
    e.add_argument("--data-dir", default=None, help="lava: MIT-BIH records for fine-tuning (default: shared)")
    r = sub.add_parser("release", help="publish every model directory under artifacts/")
    r.add_argument("--artifacts", default="artifacts", help="folder searched for model directories")
    r.add_argument("--org", required=True, help="Hub organisation or user")
    r.add_argument("--dry-run", action="store_true", help="only list (also the default with no token)")
    return ap


def export_dir(
    d, fmt: str, out=None, with_spikes: bool = False, qat_epochs: int = 3, data_dir=None, log=None
):
    """Load the saved directory ``d`` safely (``hub.models.load_model``) and write it as ``fmt``; returns the path.

    ``nir``: ``ECGSpikingNet`` and the STDP digits classifier; ``lava``: ``ECGSpikingNet``
    (:func:`hub.lava.ecg.loihi_ecg`). Other classes raise ``ValueError`` naming the class and the reason.
    """
    from .models import load_model

    d = Path(d)
    model = load_model(d)
    name = type(model).__name__
    out = Path(out) if out is not None else d / "exports" / EXPORT_NAMES[fmt]
    if fmt == "onnx":
        from .export_onnx import export_onnx

        return export_onnx(model, out, with_spikes=with_spikes)
    if fmt == "nir":
        from .export_nir import NIR_CLASSES, export_nir_file

        if name not in NIR_CLASSES:
            raise ValueError(
                f"--format nir: the saved model in {str(d)!r} ({name}) has no NIR form; NIR export takes "
                f"{', '.join(NIR_CLASSES)} directories and, from Python, hub.export_nir.SpikingSequential stacks"
            )
        return export_nir_file(model, out)
    if name != "ECGSpikingNet":
        reasons = {
            "DigitsClassifier": "its winner-take-all (one spike per step, the whole sample's membranes reset) "
            "and batch-shared adaptive thresholds have no Loihi LIF/Dense form",
            "ECGResNet18": "it is a float network (ReLU, pooling, residual adds), not a spiking one",
        }
        why = reasons.get(name, "attention, softmax and float layers have no Loihi 2 LIF/Dense form")
        raise ValueError(f"--format lava: the saved model in {str(d)!r} ({name}) has no Lava form: {why}")
    from .lava.bridge import save_loihi
    from .lava.ecg import loihi_ecg

    return save_loihi(loihi_ecg(model, qat_epochs=qat_epochs, data_dir=data_dir, log=log), out)


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def main(argv=None) -> int:
    a = build_parser().parse_args(argv)
    try:
        if a.cmd == "push":
            from .publish import push

            info = push(
                a.dir,
                a.repo_id,
                private=a.private,
                revision=a.revision,
                token=a.token,
                endpoint=a.endpoint,
                exports=not a.no_exports,
            )
            print(getattr(info, "commit_url", info))
        elif a.cmd == "pull":
            from .publish import pull

            print(pull(a.repo_id, a.revision, a.cache_dir, a.token, a.endpoint, a.local_dir))
        elif a.cmd == "export":
            if a.qat_epochs < 0:
                raise ValueError(f"--qat-epochs must be >= 0, got {a.qat_epochs}")
            print(export_dir(a.dir, a.format, a.out, a.with_spikes, a.qat_epochs, a.data_dir, log=_log))
        else:
            from .publish import release

            plan = release(a.artifacts, a.org, dry_run=True if a.dry_run else None)
            print(json.dumps([[str(d), r] for d, r in plan]))
    except (ValueError, FileNotFoundError, OSError, RuntimeError) as err:
        print(f"evospikenet-hub: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
