"""``make multimodal``: train the multimodal spiking LM from a recipe, evaluate, save the artifacts.

    python -m training.multimodal_run --recipe recipes/multimodal/full.yaml --out artifacts/multimodal \
        [--trainer.max_epochs=2]

Steps: fit the recipe in process (``training.cli.fit``; ``--trainer.*`` and ``--data.*`` arguments override
it), save the model with ``save_pretrained`` (safetensors) under ``--out/model``, then ask it about

* the 360 held-out digits ("what digit is this ?"), and
* the held-out MIT-BIH beats (the later ``1 - train_fraction`` of every record) when the recipe uses mitdb,

with the modality present and ablated (prefix currents zeroed: the model answers blind), and, when
``--ecg-model`` names a saved ECG classifier (``make ecg``), that classifier on the same beats. Everything
goes to ``--out/results.json``; the last stdout line is the same JSON without the answer lists.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from .cli import fit, parse_with_overrides, pipeline_parser
from .eval_multimodal import score_answers

__all__ = ["main", "evaluate"]


def evaluate(model, dm, ecg_model: str | None = None, batch_size: int = 512) -> dict:
    """Held-out answer accuracy per modality, with and without the modality, and the ECG classifier's."""
    res = {}
    if dm.hparams.digits:
        x, y = dm.digits["val"]
        res["digits"] = score_answers(model, "digits", x, y, None, batch_size)
        res["digits_ablated"] = score_answers(model, "digits", x, y, None, batch_size, ablate=True)
    if dm.hparams.mitdb:
        b = dm.beats["val"]
        res["mitdb"] = score_answers(model, "mitdb", b.x, b.y, b.rr, batch_size)
        res["mitdb_ablated"] = score_answers(model, "mitdb", b.x, b.y, b.rr, batch_size, ablate=True)
        if ecg_model and (Path(ecg_model) / "config.json").is_file():
            from evospikenet.data.mitdb import load_beats, split_by_time
            from evospikenet.models.ecg import load_ecg_model

            from .eval_ecg import evaluate_beats, window_of

            ecg = load_ecg_model(ecg_model)
            _, val = split_by_time(
                load_beats(dm.hparams.data_dir, dm.hparams.records, window_of(ecg.config)),
                dm.hparams.train_fraction,
            )
            same = len(val) == len(b) and bool(np.all(val.sample == b.sample))
            r = evaluate_beats(ecg, val, integer=False)
            res["ecg_classifier"] = {
                "model": str(ecg_model),
                "n": r["n_beats"],
                "accuracy": r["accuracy"],
                "same_beats": same,
            }
    for v in res.values():
        v.pop("answers", None)
    return res


def main(argv: list[str] | None = None) -> int:
    example = "python -m training.multimodal_run --recipe recipes/multimodal/debug.yaml --out /tmp/mm"
    p = pipeline_parser("training.multimodal_run", __doc__, example)
    p.add_argument("--recipe", default="recipes/multimodal/full.yaml", help="LightningCLI YAML recipe")
    p.add_argument("--out", default="artifacts/multimodal", help="output directory")
    p.add_argument("--ecg-model", default="artifacts/ecg/model", help="saved ECG classifier to compare with")
    args, overrides = parse_with_overrides(p, argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    cli, secs = fit([args.recipe], *overrides, f"--trainer.default_root_dir={out}")
    dm = cli.datamodule
    model = cli.model.model.eval()
    model.save_pretrained(out / "model")
    t0 = time.time()
    res = evaluate(model, dm, args.ecg_model)
    res.update(
        recipe=str(args.recipe), train_seconds=secs, eval_seconds=time.time() - t0, fusion=model.config.fusion
    )
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(
        json.dumps(
            {
                k: (
                    {kk: vv for kk, vv in v.items() if kk != "per_class_accuracy"}
                    if isinstance(v, dict)
                    else v
                )
                for k, v in res.items()
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
