"""``make ecg``: train the spiking ECG classifier, its float twin and ResNet-18-1D, score them once, save.

    python -m training.ecg_run [--out artifacts/ecg] [--tune] [--trainer.max_epochs=2] [--data.records=[100]]

The three recipes (``--spiking``, ``--twin``, ``--baseline``) are LightningCLI configs that share their
``data`` and ``trainer`` sections (same split, same budget; a difference is an error), run in process through
``training.cli.fit``; ``--trainer.*`` and ``--data.*`` arguments override all three. The beats are cut once.

* ``--tune``: train before each record's validation slice and score on that slice (inside the first 80 % of
  every record): the runs that make choices. Writes ``tune.json``.
* default: train on the first 80 % of every record and score once on the last 20 % (the test part, which no
  choice looked at). Writes under ``--out``: ``model/`` (the spiking net; its config records the ResNet's
  and the twin's energy per beat), ``twin/``, ``resnet18/``, ``results.json``, ``confusion.png``,
  ``per_class_f1.png``, ``energy.png``.

The spiking net also runs on the integer core, counted from its own spikes and priced at integer widths; its
comparisons are with the twin's and the ResNet's MACs priced as INT8 MACs. The de Chazal inter-patient split
(DS1 train, DS2 test) needs all 48 records; ``results.json`` says whether it was measurable. The last stdout
line is one JSON object (the headline figures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from evospikenet.data.mitdb import AAMI_CLASSES, de_chazal_split, list_records
from evospikenet.energy import INTEGER_45NM

from .cli import fit, parse_with_overrides, pipeline_parser
from .eval_ecg import evaluate_beats

__all__ = ["main", "run_models", "GOALS"]

ROLES = ("spiking", "twin", "resnet18")
GOALS = {"weighted_f1": 0.975, "macro_f1": 0.90, "energy_vs_resnet18": 0.15, "energy_vs_twin": 0.25}


def _sections(cli) -> dict:
    cfg = cli.config.as_dict()
    trainer = {k: v for k, v in cfg["trainer"].items() if k != "default_root_dir"}
    return {"data": cfg["data"], "trainer": trainer}


def run_models(recipes: dict, overrides: list[str], root: Path, held_out: str = "test") -> dict:
    """Fit every role's recipe on one shared data module; score each on ``held_out`` ("val" or "test").

    Returns ``{"results": {role: evaluate_beats(...)}, "models": {role: model}, "datamodule": dm}``."""
    res, models, dm, first = {}, {}, None, None
    common = ["--trainer.logger=false", "--trainer.enable_checkpointing=false", *overrides]
    for role in ROLES:
        print(f"== training {role}", flush=True)
        cli, secs = fit([recipes[role]], *common, f"--trainer.default_root_dir={root / role}", datamodule=dm)
        if first is None:
            first, dm = (_sections(cli), recipes[role]), cli.datamodule
        elif _sections(cli) != first[0]:
            diff = [k for k in first[0] if first[0][k] != _sections(cli)[k]]
            raise ValueError(
                f"the {diff} sections of {first[1]!r} and {recipes[role]!r} differ; "
                "the comparison needs the same split and budget"
            )
        models[role] = cli.model.model.eval()
        beats = dm.val_set if held_out == "val" else dm.test_set
        res[role] = evaluate_beats(models[role], beats, integer=role == "spiking")
        res[role]["train_seconds"] = secs
        print(f"== {role}: " + json.dumps({k: res[role][k] for k in ("accuracy", "weighted_f1", "macro_f1")}))
    res["spiking (integer core)"] = res["spiking"].pop("integer_core")
    for role in ("twin", "resnet18"):
        res[role].pop("integer_core")
    return {"results": res, "models": models, "datamodule": dm}


def _energy_ratios(res: dict) -> dict:
    """Spiking over float energy per beat: float runs at 32-bit float prices, the integer core against the
    same MACs priced as INT8 MACs (``INTEGER_45NM``)."""
    e = {k: res[k]["energy_per_beat_j"] for k in res}
    int8 = {k: res[k]["macs_per_beat"] * INTEGER_45NM.e_mac_j for k in ("twin", "resnet18")}
    ic = e["spiking (integer core)"]
    return {
        "energy_vs_resnet18": e["spiking"] / e["resnet18"],
        "energy_vs_twin": e["spiking"] / e["twin"],
        "integer_core_energy_vs_resnet18_int8": ic / int8["resnet18"],
        "integer_core_energy_vs_twin_int8": ic / int8["twin"],
        "twin_energy_per_beat_int8_j": int8["twin"],
        "resnet18_energy_per_beat_int8_j": int8["resnet18"],
    }


def _plots(out: Path, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(res)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4))
    for ax, name in zip(np.atleast_1d(axes), names):
        cm = np.asarray(res[name]["confusion"])
        ax.imshow(np.log1p(cm), cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ticks = dict(xticks=range(5), yticks=range(5), xticklabels=AAMI_CLASSES, yticklabels=AAMI_CLASSES)
        ax.set(**ticks, xlabel="predicted", ylabel="true", title=name)
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(8, 4))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        f1 = [res[name]["per_class"][c]["f1"] for c in AAMI_CLASSES]
        ax.bar(np.arange(5) + k * width, f1, width, label=name)
    ax.set(xticks=np.arange(5) + 0.4 - width / 2, xticklabels=AAMI_CLASSES, ylabel="F1", ylim=(0, 1.05))
    ax.set_title("per-class F1 on the held-out beats")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "per_class_f1.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    x = np.arange(len(names))
    ax.bar(x - 0.2, [res[n]["energy_per_beat_j"] for n in names], 0.4, label="compute")
    ax.bar(x + 0.2, [res[n]["energy_per_beat_mem_j"] for n in names], 0.4, label="with memory")
    ax.set(xticks=x, xticklabels=names, ylabel="energy per beat (J)", yscale="log", title="energy per beat")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "energy.png", dpi=120)
    plt.close(fig)


def _strip(res: dict) -> dict:
    return {k: {kk: vv for kk, vv in v.items() if kk != "predictions"} for k, v in res.items()}


def _headline(res: dict, ratios: dict) -> dict:
    s = res["spiking"]
    out = {f"{k}.{m}": res[k][m] for k in res for m in ("accuracy", "weighted_f1", "macro_f1")}
    out.update(ratios)
    out["goals"] = {
        "weighted_f1>=0.975": s["weighted_f1"] >= GOALS["weighted_f1"],
        "macro_f1>=0.90": s["macro_f1"] >= GOALS["macro_f1"],
        "energy_vs_resnet18<=0.15": ratios["energy_vs_resnet18"] <= GOALS["energy_vs_resnet18"],
        "energy_vs_twin<=0.25": ratios["energy_vs_twin"] <= GOALS["energy_vs_twin"],
    }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = pipeline_parser(
        "training.ecg_run", __doc__, "python -m training.ecg_run --tune --trainer.max_epochs=4"
    )
    ap.add_argument("--spiking", default="recipes/ecg/spiking.yaml", help="recipe of the spiking net")
    ap.add_argument("--twin", default="recipes/ecg/twin.yaml", help="recipe of the float twin")
    ap.add_argument("--baseline", default="recipes/ecg/resnet18.yaml", help="recipe of ResNet-18-1D")
    ap.add_argument("--out", default="artifacts/ecg", help="output directory")
    ap.add_argument(
        "--tune", action="store_true", help="score on the validation slices (choices), not the test"
    )
    args, overrides = parse_with_overrides(ap, argv)
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    recipes = {"spiking": args.spiking, "twin": args.twin, "resnet18": args.baseline}
    if args.tune:
        overrides = ["--data.tuning=true", *overrides]
    exp = run_models(recipes, overrides, out / "lightning", "val" if args.tune else "test")
    res, models, dm = exp["results"], exp["models"], exp["datamodule"]
    ratios = _energy_ratios(res)
    hp = dm.hparams
    summary = {
        "held_out": "validation slices" if args.tune else "test (the last part of every record)",
        "split": {
            "train": f"f < {hp.train_fraction - hp.val_fraction if args.tune else hp.train_fraction:g}",
            "validation": f"{hp.train_fraction - hp.val_fraction:g} <= f < {hp.train_fraction:g}",
            "test": f"f >= {hp.train_fraction:g}",
            "f": "R-peak position as a fraction of its record's length (within-patient split by time)",
        },
        "records": sorted(set(dm.train_set.record.tolist())),
        "skipped_records": [str(e) for e in dm.errors],
        "beats": {
            "train": dm.train_set.counts(),
            "validation": dm.val_set.counts(),
            "test": dm.test_set.counts(),
        },
        "results": _strip(res),
        **_headline(res, ratios),
        "de_chazal_ds1_ds2": de_chazal_split(list_records(dm.hparams.data_dir or _mitdb())),
        "wall_seconds": time.time() - t0,
        "command": "python -m training.ecg_run"
        + (" --tune" if args.tune else "")
        + " "
        + " ".join(overrides),
    }
    if not args.tune:
        snn = models["spiking"]
        snn.config.baseline_energy_per_beat_j = res["resnet18"]["energy_per_beat_j"]
        snn.config.baseline_energy_per_beat_mem_j = res["resnet18"]["energy_per_beat_mem_j"]
        snn.config.twin_energy_per_beat_j = res["twin"]["energy_per_beat_j"]
        for role, sub in (("spiking", "model"), ("twin", "twin"), ("resnet18", "resnet18")):
            models[role].save_pretrained(out / sub)
        _plots(out, res)
    (out / ("tune.json" if args.tune else "results.json")).write_text(
        json.dumps(summary, indent=2, default=float)
    )
    print(
        json.dumps(
            {k: summary[k] for k in _headline(res, ratios)} | {"wall_seconds": summary["wall_seconds"]}
        )
    )
    return 0


def _mitdb() -> Path:
    from evospikenet.data.paths import dataset_path

    return dataset_path("mitdb")


if __name__ == "__main__":
    raise SystemExit(main())
