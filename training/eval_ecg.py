"""``evospikenet-eval ecg``: score a saved ECG model on every annotated beat of WFDB records.

    evospikenet-eval ecg --model artifacts/ecg/model --data-dir /path/to/mitdb [--records 100 208 ...]

Beats too close to a record's edge are padded, not dropped. A record that cannot be read, or whose sampling
rate differs from the one the model was trained at, is reported on stderr (naming it) and skipped; the others
are scored. The last stdout line is one JSON object::

    {"n_beats", "accuracy", "weighted_f1", "macro_f1",
     "per_class": {"N": {precision, recall, f1, support}, ...},
     "energy_per_beat_j", "energy_per_beat_mem_j", "baseline_energy_per_beat_j",
     "baseline_energy_per_beat_mem_j", "twin_energy_per_beat_j",
     "integer_core_accuracy", "integer_core_energy_per_beat_j"}

Energies come from ``evospikenet.energy`` measured on the scored beats: the float run priced with
``HOROWITZ_45NM`` (32-bit float), the integer core's run counted from its own spikes and priced at its
accumulator width (``INTEGER16_45NM`` when every accumulator provably fits 16 bits, else ``INTEGER_45NM``;
``evospikenet.models.ecg_integer``); ``_mem`` adds SRAM accesses. The baseline's (ResNet-18-1D) and the
float twin's figures are the ones ``make ecg`` recorded in the spiking model's config (a float model scored
here is its own baseline). ``integer_core_*`` is null for a float model or with ``--no-integer``.
"""

from __future__ import annotations

import argparse
import sys

from evospikenet.data.mitdb import AAMI_CLASSES, BeatSet, BeatWindow, load_beats
from evospikenet.energy import HOROWITZ_45NM, OpCounter

# torch, transformers and torchmetrics are imported inside the functions: registering this subcommand in
# ``evospikenet-eval`` stays cheap.

__all__ = ["add_arguments", "run", "evaluate_beats", "classification_metrics", "window_of", "KEYS"]

K = len(AAMI_CLASSES)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``ecg`` subcommand's options to ``parser``."""
    parser.add_argument("--model", required=True, help="save_pretrained directory of an ECG model")
    parser.add_argument("--data-dir", default=None, help="directory of WFDB records (default: shared mitdb)")
    parser.add_argument("--records", nargs="+", default=None, help="record names (default: every *.hea)")
    parser.add_argument("--batch-size", type=int, default=1024, help="beats per forward pass")
    parser.add_argument("--no-integer", action="store_true", help="skip the integer-core run")
    return parser


def window_of(config) -> BeatWindow:
    """The beat window (and sampling rate) a model was trained on, from its config."""
    return BeatWindow(
        int(config.beat_before),
        int(config.beat_after),
        int(config.downsample),
        tuple(config.band) if config.band is not None else None,
        float(config.fs),
    )


def classification_metrics(y_true, y_pred) -> dict:
    """Accuracy, weighted and macro F1, per-class precision / recall / F1 / support, and the confusion matrix.

    Macro F1 averages over the classes that occur in ``y_true`` or ``y_pred`` (torchmetrics), weighted F1
    weights each class by its support."""
    import torch
    from torchmetrics.functional.classification import (
        multiclass_confusion_matrix,
        multiclass_f1_score,
        multiclass_precision,
        multiclass_recall,
    )

    y, p = torch.as_tensor(y_true), torch.as_tensor(y_pred)
    if len(y) == 0:
        raise ValueError("y_true must hold at least one beat, got none")
    f1 = multiclass_f1_score(p, y, K, average="none")
    prec, rec = multiclass_precision(p, y, K, average="none"), multiclass_recall(p, y, K, average="none")
    support = torch.bincount(y, minlength=K)
    return {
        "n_beats": len(y),
        "accuracy": float((y == p).float().mean()),
        "weighted_f1": float(multiclass_f1_score(p, y, K, average="weighted")),
        "macro_f1": float(multiclass_f1_score(p, y, K, average="macro")),
        "per_class": {
            c: {
                "precision": float(prec[i]),
                "recall": float(rec[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, c in enumerate(AAMI_CLASSES)
        },
        "confusion": multiclass_confusion_matrix(p, y, K).tolist(),  # rows: true class, columns: predicted
    }


def evaluate_beats(model, beats: BeatSet, batch_size: int = 1024, integer: bool = True) -> dict:
    """Metrics and energy per beat of ``model`` on ``beats``; for a spiking model also the integer core's.

    Returns ``classification_metrics`` plus ``energy_per_beat_j`` / ``_mem_j``, ``sops_per_beat``,
    ``macs_per_beat``, ``updates_per_beat``, ``predictions`` and (spiking, ``integer``) ``integer_core``: the
    same figures of the integer run."""
    import torch

    from evospikenet.models.ecg import ECGSpikingNet
    from evospikenet.models.ecg_integer import integer_core, integer_forward

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    model.eval()
    runs = {"float": (lambda xb, rb, c: model(xb, rb, counter=c), HOROWITZ_45NM)}
    if integer and type(model) is ECGSpikingNet:  # not the twin, a subclass
        core = integer_core(model)
        runs["integer"] = (lambda xb, rb, c: integer_forward(model, xb, rb, c, core), core.energy_model)
    x, rr = torch.from_numpy(beats.x), torch.from_numpy(beats.rr)
    n = max(len(beats), 1)
    out = {}
    with torch.no_grad():
        for name, (fwd, prices) in runs.items():
            counter = OpCounter()
            pred = torch.cat(
                [
                    fwd(x[i : i + batch_size], rr[i : i + batch_size], counter).argmax(1)
                    for i in range(0, len(beats), batch_size)
                ]
            ).numpy()
            rep = prices.report(counter)
            out[name] = {
                **classification_metrics(beats.y, pred),
                "energy_per_beat_j": rep.compute_j / n,
                "energy_per_beat_mem_j": rep.with_memory_j / n,
                "sops_per_beat": rep.sops / n,
                "macs_per_beat": rep.macs / n,
                "updates_per_beat": rep.updates / n,
                "predictions": pred,
            }
    if "integer" in out:
        out["integer"]["accumulator_bits"] = core.acc_bits
    res = out["float"]
    res["integer_core"] = out.get("integer")
    return res


KEYS = (
    "n_beats",
    "accuracy",
    "weighted_f1",
    "macro_f1",
    "per_class",
    "energy_per_beat_j",
    "energy_per_beat_mem_j",
    "baseline_energy_per_beat_j",
    "baseline_energy_per_beat_mem_j",
    "twin_energy_per_beat_j",
    "integer_core_accuracy",
    "integer_core_energy_per_beat_j",
)


def run(args: argparse.Namespace) -> dict:
    """Score ``args.model`` on ``args.records`` of ``args.data_dir``; returns the JSON-ready result dict.

    Raises ``ValueError`` (naming the path or record) when the model or every record is unusable."""
    from evospikenet.models.ecg import ECGResNet18, ECGSpikingNet, load_ecg_model

    try:  # the evaluate registry reports ValueError as a clean error
        model = load_ecg_model(args.model)
        beats = load_beats(args.data_dir, args.records, window_of(model.config), strict=False)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from e
    for e in beats.errors:
        print(f"error: {e} (skipped)", file=sys.stderr)
    for w in beats.warnings:
        print(f"warning: {w}", file=sys.stderr)
    res = evaluate_beats(model, beats, args.batch_size, integer=not args.no_integer)
    cfg = model.config
    res["baseline_energy_per_beat_j"] = getattr(cfg, "baseline_energy_per_beat_j", None)
    res["baseline_energy_per_beat_mem_j"] = getattr(cfg, "baseline_energy_per_beat_mem_j", None)
    res["twin_energy_per_beat_j"] = getattr(cfg, "twin_energy_per_beat_j", None)
    if isinstance(model, ECGResNet18):  # scoring the baseline itself
        res["baseline_energy_per_beat_j"] = res["energy_per_beat_j"]
        res["baseline_energy_per_beat_mem_j"] = res["energy_per_beat_mem_j"]
    elif type(model) is not ECGSpikingNet:  # the twin
        res["twin_energy_per_beat_j"] = res["energy_per_beat_j"]
    ic = res.pop("integer_core")
    res["integer_core_accuracy"] = ic["accuracy"] if ic else None
    res["integer_core_energy_per_beat_j"] = ic["energy_per_beat_j"] if ic else None
    return {k: res[k] for k in KEYS}
