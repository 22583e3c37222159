"""``evospikenet-eval ecg``: score a saved ECG model on every annotated beat of WFDB records.

    evospikenet-eval ecg --model artifacts/ecg/model --data-dir /path/to/mitdb [--records 100 208 ...]

Beats too close to a record's edge are padded, not dropped. A record that cannot be read is reported on
stderr (naming it) and skipped; the others are scored. The last stdout line is one JSON object::

    {"n_beats", "accuracy", "weighted_f1", "macro_f1",
     "per_class": {"N": {precision, recall, f1, support}, ...},
     "energy_per_beat_j", "energy_per_beat_mem_j", "baseline_energy_per_beat_j",
     "baseline_energy_per_beat_mem_j", "integer_core_accuracy"}

Energies come from ``evospikenet.energy`` (SOPs 0.9 pJ, MACs 4.6 pJ; ``_mem`` adds SRAM accesses) measured on
the scored beats; the baseline's figures are the ones recorded in the model's config by ``make ecg``.
``integer_core_accuracy`` is the accuracy of the same network on the integer core (null for a float model).

``add_arguments(parser)`` and ``run(args) -> dict`` plug into the ``evospikenet-eval`` registry; ``main``
runs this subcommand alone (``python -m training.eval_ecg ...``).
"""

from __future__ import annotations

import argparse
import sys

from evospikenet.data.mitdb import BeatSet, BeatWindow, load_beats
from evospikenet.energy import EnergyModel, OpCounter

# torch, transformers and lightning are imported inside the functions: registering this subcommand in
# ``evospikenet-eval`` stays cheap.

__all__ = ["add_arguments", "run", "main", "evaluate_beats", "window_of", "KEYS"]

INT_ENERGY = EnergyModel(weight_bits=8, state_bits=16)  # the integer core's memory widths


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``ecg`` subcommand's options to ``parser``."""
    parser.add_argument("--model", required=True, help="save_pretrained directory of an ECG model")
    parser.add_argument("--data-dir", default=None, help="directory of WFDB records (default: shared mitdb)")
    parser.add_argument("--records", nargs="+", default=None, help="record names (default: every *.hea)")
    parser.add_argument("--batch-size", type=int, default=1024, help="beats per forward pass")
    parser.add_argument("--no-integer", action="store_true", help="skip the integer-core run")
    return parser


def window_of(config) -> BeatWindow:
    """The beat window a model was trained on (from its config)."""
    return BeatWindow(
        int(config.beat_before),
        int(config.beat_after),
        int(config.downsample),
        tuple(config.band) if config.band is not None else None,
    )


def evaluate_beats(model, beats: BeatSet, batch_size: int = 1024, integer: bool = True) -> dict:
    """Metrics, energy per beat and (spiking models) integer-core accuracy of ``model`` on ``beats``."""
    import torch

    from evospikenet.models.ecg import ECGSpikingNet, integer_forward

    from .ecg import classification_metrics

    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    model.eval()
    counter, preds, ipreds = OpCounter(), [], []
    x, rr = torch.from_numpy(beats.x), torch.from_numpy(beats.rr)
    spiking = isinstance(model, ECGSpikingNet)
    with torch.no_grad():
        for i in range(0, len(beats), batch_size):
            xb, rb = x[i : i + batch_size], rr[i : i + batch_size]
            preds.append(model(xb, rb, counter=counter).argmax(1))
            if spiking and integer:
                ipreds.append(integer_forward(model, xb, rb).argmax(1))
    pred = torch.cat(preds).numpy()
    out = classification_metrics(beats.y, pred)
    n = max(len(beats), 1)
    rep = EnergyModel().report(counter)
    out["energy_per_beat_j"] = rep.compute_j / n
    out["energy_per_beat_mem_j"] = rep.with_memory_j / n
    out["predictions"] = pred
    out["integer_core_accuracy"] = None
    if ipreds:
        ip = torch.cat(ipreds).numpy()
        out["integer_core_accuracy"] = float((ip == beats.y).mean())
        out["integer_core"] = classification_metrics(beats.y, ip)
        out["integer_core"]["predictions"] = ip
        out["integer_core_energy_per_beat_mem_j"] = INT_ENERGY.report(counter).with_memory_j / n
    out["sops_per_beat"] = rep.sops / n
    out["macs_per_beat"] = rep.macs / n
    return out


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
    "integer_core_accuracy",
)


def run(args: argparse.Namespace) -> dict:
    """Score ``args.model`` on ``args.records`` of ``args.data_dir``; returns the JSON-ready result dict.

    Raises ``ValueError`` (naming the path or record) when the model or every record is unusable."""
    from evospikenet.models.ecg import ECGSpikingNet, load_ecg_model

    try:  # the evaluate registry reports ValueError as a clean error
        model = load_ecg_model(args.model)
        beats = load_beats(args.data_dir, args.records, window_of(model.config), strict=False)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from e
    for e in beats.errors:
        print(f"error: {e} (skipped)", file=sys.stderr)
    for w in beats.warnings:
        print(f"warning: {w}", file=sys.stderr)
    res = evaluate_beats(model, beats, args.batch_size, integer=not getattr(args, "no_integer", False))
    cfg = model.config
    res["baseline_energy_per_beat_j"] = getattr(cfg, "baseline_energy_per_beat_j", None)
    res["baseline_energy_per_beat_mem_j"] = getattr(cfg, "baseline_energy_per_beat_mem_j", None)
    if not isinstance(model, ECGSpikingNet):  # scoring the baseline itself
        res["baseline_energy_per_beat_j"] = res["energy_per_beat_j"]
        res["baseline_energy_per_beat_mem_j"] = res["energy_per_beat_mem_j"]
    return {k: res[k] for k in KEYS}


def main(argv: list[str] | None = None) -> int:
    """``evospikenet-eval ecg`` run from this module: the JSON result is the last stdout line."""
    from .evaluate import main as evaluate_main

    return evaluate_main(["ecg", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
