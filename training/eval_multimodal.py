"""``evospikenet-eval multimodal``: score a multimodal spiking LM's answers on digits or MIT-BIH beats.

    evospikenet-eval multimodal --model DIR --data digits
    evospikenet-eval multimodal --model DIR --data mitdb [--data-dir DIR] [--records 100 208 ...]

``digits`` asks "what digit is this ?" about each of the 360 held-out digits (the fixed seeded 20 % of
``evospikenet.data.multimodal.digits_split``); ``mitdb`` asks "what kind of beat is this ?" about every
annotated beat of the records (as ``evospikenet-eval ecg`` does: edge beats padded, an unreadable record
reported on stderr and skipped). An answer is right when the digits (AAMI classes) it names are exactly the
true one. The last stdout line is one JSON object ``{"data", "n", "accuracy", ...}`` (plus per-class
accuracy, the encoders' auxiliary-readout accuracy and the spike rate). ``--ablate`` zeroes the modality's
prefix currents (the model answers blind): the with/without-modality ablation.

``add_arguments(parser)`` and ``run(args) -> dict`` plug into the ``evospikenet-eval`` registry.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from evospikenet.data.multimodal import named_classes, named_digits

__all__ = ["add_arguments", "run", "score_answers", "DIGIT_PROMPT", "BEAT_PROMPT"]

DIGIT_PROMPT = "what digit is this ?"
BEAT_PROMPT = "what kind of beat is this ?"


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the ``multimodal`` subcommand's options to ``parser``."""
    parser.add_argument("--model", required=True, help="save_pretrained directory of the multimodal LM")
    parser.add_argument("--data", required=True, choices=("digits", "mitdb"), help="what to score")
    parser.add_argument(
        "--data-dir", default=None, help="mitdb: directory of WFDB records (default: shared mitdb)"
    )
    parser.add_argument(
        "--records", nargs="+", default=None, help="mitdb: record names (default: every *.hea)"
    )
    parser.add_argument("--seed", type=int, default=0, help="digits: seed of the held-out split")
    parser.add_argument("--batch-size", type=int, default=512, help="items per forward pass")
    parser.add_argument("--ablate", action="store_true", help="zero the modality prefix (answer blind)")
    return parser


@torch.no_grad()
def score_answers(model, data: str, x, y, rr=None, batch_size: int = 512, ablate: bool = False) -> dict:
    """Ask ``model`` about every item of ``x`` (images or beats); accuracy of the answers against ``y``."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
    model.eval()
    prompt, named, key = (
        (DIGIT_PROMPT, named_digits, "images")
        if data == "digits"
        else (BEAT_PROMPT, named_classes, "signals")
    )
    x, y = torch.as_tensor(x), np.asarray(y)
    answers, aux, spikes, steps = [], [], 0.0, 0
    for i in range(0, len(y), batch_size):
        xb = x[i : i + batch_size]
        rb = torch.as_tensor(rr[i : i + batch_size]) if rr is not None else None
        enc = model.encode(**{key: xb}, rr=rb)
        aux.append(enc[key].aux_logits.argmax(1))
        for s in enc[key].spikes:
            spikes, steps = spikes + float(s.sum()), steps + s.numel()
        if ablate:
            enc = {
                k: v._replace(current=torch.zeros_like(v.current), aux_logits=torch.zeros_like(v.aux_logits))
                for k, v in enc.items()
            }
        answers += model.generate_from_encoded([prompt] * len(xb), enc, model.config.max_new_tokens)
    right = np.array([named(a) == {int(t)} for a, t in zip(answers, y)])
    aux = torch.cat(aux).numpy()
    per_class = {int(c): float(right[y == c].mean()) for c in np.unique(y)}
    return {
        "data": data,
        "n": int(len(y)),
        "accuracy": float(right.mean()) if len(y) else 0.0,
        "aux_accuracy": float((aux == y).mean()) if len(y) else 0.0,
        "per_class_accuracy": per_class,
        "encoder_spike_rate": spikes / max(steps, 1),
        "ablated": bool(ablate),
        "examples": answers[:5],
        "answers": answers,
    }


def _load(path: str):
    from evospikenet.models.multimodal import MultiModalEvoSpikeNetForCausalLM

    if not (Path(path) / "config.json").is_file():
        raise ValueError(f"--model must be a directory written by save_pretrained, got {path!r}")
    return MultiModalEvoSpikeNetForCausalLM.from_pretrained(path).eval()


def run(args: argparse.Namespace) -> dict:
    """Score ``args.model`` on ``args.data``; returns the JSON-ready dict (without the answer list)."""
    model = _load(args.model)
    if args.data == "digits":
        from evospikenet.data.multimodal import digits_split

        x, y = digits_split(args.seed)["test"]
        res = score_answers(model, "digits", x, y, None, args.batch_size, args.ablate)
    else:
        from evospikenet.data.mitdb import BeatWindow, load_beats

        c = model.config
        window = BeatWindow(
            int(c.beat_before), int(c.beat_after), int(c.downsample), tuple(c.band) if c.band else None
        )
        try:
            beats = load_beats(args.data_dir, args.records, window, strict=False)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from e
        for e in beats.errors:
            print(f"error: {e} (skipped)", file=sys.stderr)
        res = score_answers(model, "mitdb", beats.x, beats.y, beats.rr, args.batch_size, args.ablate)
    res.pop("answers")
    return res
