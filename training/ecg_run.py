"""``make ecg``: train the spiking ECG classifier and the ResNet-18-1D baseline from scratch, evaluate, save.

    python -m training.ecg_run --spiking recipes/ecg/spiking.yaml --baseline recipes/ecg/resnet18.yaml \\
        --out artifacts/ecg

Both recipes are LightningCLI configs (``trainer``, ``model``, ``data`` with ``class_path`` / ``init_args``);
their ``data`` and ``trainer`` sections must be identical (same split, same budget). Steps: cut the beats
once, split within each patient by time, train the baseline then the spiking net, score both on the held-out
later part of every record (float, and the spiking net on the integer core too), and write under ``--out``:

* ``model/``: the spiking net's ``save_pretrained`` directory; its config records the baseline's energy
  per beat (``baseline_energy_per_beat_j`` / ``_mem_j``);
* ``resnet18/``: the baseline's ``save_pretrained`` directory; ``baseline_energy.json``;
* ``results.json``: every figure, the split description and the de Chazal DS1/DS2 status;
* ``confusion.png``, ``per_class_f1.png``, ``energy.png``.

When all 48 MIT-BIH records are present, both models are also trained on DS1 and tested on DS2 (de Chazal);
otherwise ``results.json`` says why that is not measurable.
"""

from __future__ import annotations

import argparse
import importlib
import json
import time
from pathlib import Path

import numpy as np
import yaml

from evospikenet.data.mitdb import AAMI_CLASSES, de_chazal_split, list_records, load_beats

__all__ = ["main", "load_recipe", "instantiate", "train_one"]

SPLIT_TEXT = (
    "within-patient split by time: in every record the beats in the first {pct:.0f} % of the signal "
    "train and the beats in the remaining {rest:.0f} % validate (no shuffling across the split); "
    "the figures are on the validation beats, which the models never saw"
)


def load_recipe(path: str | Path) -> dict:
    """Read a LightningCLI YAML recipe."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"recipe {str(p)!r} does not exist")
    rec = yaml.safe_load(p.read_text()) or {}
    for key in ("model", "data"):
        if key not in rec or "class_path" not in rec[key]:
            raise ValueError(f"recipe {str(p)!r} needs a '{key}' section with class_path")
    return rec


def instantiate(section: dict, **overrides):
    """Build ``class_path(**init_args, **overrides)`` from a recipe section."""
    mod, _, name = section["class_path"].rpartition(".")
    cls = getattr(importlib.import_module(mod), name)
    return cls(**{**(section.get("init_args") or {}), **overrides})


def _trainer(recipe: dict, root: Path, max_epochs: int | None):
    import lightning as L

    kw = dict(recipe.get("trainer") or {})
    if max_epochs is not None:
        kw["max_epochs"] = max_epochs
    kw.update(logger=False, enable_checkpointing=False, default_root_dir=str(root))
    kw.setdefault("enable_model_summary", False)
    return L.Trainer(**kw)


def train_one(recipe: dict, dm, root: Path, max_epochs: int | None = None):
    """Seed, build and fit the recipe's LightningModule on ``dm``; returns (module, seconds)."""
    import lightning as L

    L.seed_everything(int(recipe.get("seed_everything", 0)), workers=True)
    lit = instantiate(recipe["model"])
    trainer = _trainer(recipe, root, max_epochs)
    t0 = time.time()
    trainer.fit(lit, datamodule=dm)
    return lit, time.time() - t0


def _strip(res: dict) -> dict:
    out = {k: v for k, v in res.items() if k != "predictions"}
    if "integer_core" in out:
        out["integer_core"] = {k: v for k, v in out["integer_core"].items() if k != "predictions"}
    return out


def _plots(out: Path, y: np.ndarray, res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    names = list(res)
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 4))
    for ax, name in zip(np.atleast_1d(axes), names):
        cm = confusion_matrix(y, res[name]["predictions"], labels=range(len(AAMI_CLASSES)))
        ax.imshow(np.log1p(cm), cmap="Blues")
        for (i, j), v in np.ndenumerate(cm):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8)
        ax.set(
            xticks=range(5),
            yticks=range(5),
            xticklabels=AAMI_CLASSES,
            yticklabels=AAMI_CLASSES,
            xlabel="predicted",
            ylabel="true",
            title=name,
        )
    fig.tight_layout()
    fig.savefig(out / "confusion.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(names)
    for k, name in enumerate(names):
        f1 = [res[name]["per_class"][c]["f1"] for c in AAMI_CLASSES]
        ax.bar(np.arange(5) + k * width, f1, width, label=name)
    ax.set(
        xticks=np.arange(5) + 0.4 - width / 2,
        xticklabels=AAMI_CLASSES,
        ylabel="F1",
        ylim=(0, 1.05),
        title="per-class F1 on held-out beats",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "per_class_f1.png", dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    models = [n for n in names if "energy_per_beat_j" in res[n]]
    comp = [res[n]["energy_per_beat_j"] for n in models]
    mem = [res[n]["energy_per_beat_mem_j"] for n in models]
    x = np.arange(len(models))
    ax.bar(x - 0.2, comp, 0.4, label="compute")
    ax.bar(x + 0.2, mem, 0.4, label="with memory")
    ax.set(xticks=x, xticklabels=models, ylabel="energy per beat (J)", yscale="log", title="energy per beat")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "energy.png", dpi=120)
    plt.close(fig)


def _experiment(spk: dict, base: dict, out: Path, dm, val, max_epochs, integer: bool = True) -> dict:
    from .eval_ecg import evaluate_beats

    res, models, times = {}, {}, {}
    for role, recipe in (("resnet18", base), ("spiking", spk)):
        print(f"== training {role}", flush=True)
        lit, secs = train_one(recipe, dm, out / "lightning" / role, max_epochs)
        models[role], times[role] = lit.model.eval(), secs
        res[role] = evaluate_beats(models[role], val, integer=integer)
        res[role]["train_seconds"] = secs
        print(f"== {role}: " + json.dumps({k: res[role][k] for k in ("accuracy", "weighted_f1", "macro_f1")}))
    if res["spiking"].get("integer_core") is not None:
        res["spiking (integer core)"] = res["spiking"].pop("integer_core")
    return {"results": res, "models": models}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(prog="ecg_run", description=__doc__.split("\n")[0])
    ap.add_argument("--spiking", default="recipes/ecg/spiking.yaml", help="recipe of the spiking net")
    ap.add_argument(
        "--baseline", default="recipes/ecg/resnet18.yaml", help="recipe of the ResNet-18-1D baseline"
    )
    ap.add_argument("--out", default="artifacts/ecg", help="output directory")
    ap.add_argument("--data-dir", default=None, help="WFDB directory (overrides the recipes' data_dir)")
    ap.add_argument(
        "--max-epochs", type=int, default=None, help="override both recipes' max_epochs (smoke runs)"
    )
    args = ap.parse_args(argv)
    t_start = time.time()
    spk, base = load_recipe(args.spiking), load_recipe(args.baseline)
    if args.data_dir is not None:
        for r in (spk, base):
            r["data"].setdefault("init_args", {})["data_dir"] = args.data_dir
    for key in ("data", "trainer"):
        if spk.get(key) != base.get(key):
            raise ValueError(
                f"the '{key}' sections of {args.spiking!r} and {args.baseline!r} differ; "
                "the comparison needs the same split and budget"
            )
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    dm = instantiate(spk["data"])
    dm.setup("fit")
    frac = float(dm.hparams.train_fraction)
    exp = _experiment(spk, base, out, dm, dm.val_set, args.max_epochs)
    res, models = exp["results"], exp["models"]
    snn, resnet = models["spiking"], models["resnet18"]
    b_j, b_mem = res["resnet18"]["energy_per_beat_j"], res["resnet18"]["energy_per_beat_mem_j"]
    snn.config.baseline_energy_per_beat_j = b_j
    snn.config.baseline_energy_per_beat_mem_j = b_mem
    snn.save_pretrained(out / "model")
    resnet.save_pretrained(out / "resnet18")
    (out / "baseline_energy.json").write_text(
        json.dumps(
            {
                "model": "ResNet-18-1D",
                "energy_per_beat_j": b_j,
                "energy_per_beat_mem_j": b_mem,
                "macs_per_beat": res["resnet18"]["macs_per_beat"],
            },
            indent=2,
        )
    )
    s = res["spiking"]
    data_dir = dm.hparams.data_dir
    from evospikenet.data.paths import dataset_path

    chazal = de_chazal_split(list_records(data_dir or dataset_path("mitdb")))
    if chazal["measurable"]:
        dm2 = instantiate(spk["data"], records=chazal["train"], train_fraction=0.999)
        dm2.setup("fit")
        test = load_beats(data_dir, chazal["test"], dm.window)
        inter = _experiment(spk, base, out / "de_chazal", dm2, test, args.max_epochs)["results"]
        chazal = {
            "measurable": True,
            "train": "DS1",
            "test": "DS2",
            "results": {k: _strip(v) for k, v in inter.items()},
        }
    summary = {
        "split": SPLIT_TEXT.format(pct=100 * frac, rest=100 * (1 - frac)),
        "records": sorted(set(dm.train_set.record.tolist())),
        "skipped_records": [str(e) for e in dm.errors],
        "train_beats": dm.train_set.counts(),
        "validation_beats": dm.val_set.counts(),
        "results": {k: _strip(v) for k, v in res.items()},
        "energy_reduction_compute": 1.0 - s["energy_per_beat_j"] / b_j,
        "energy_reduction_with_memory": 1.0 - s["energy_per_beat_mem_j"] / b_mem,
        "integer_core_accuracy": s["integer_core_accuracy"],
        "de_chazal_ds1_ds2": chazal,
        "goals": {
            "weighted_f1>=0.97": s["weighted_f1"] >= 0.97,
            "macro_f1>=0.80": s["macro_f1"] >= 0.80,
            "energy_reduction_compute>=0.85": 1.0 - s["energy_per_beat_j"] / b_j >= 0.85,
        },
        "wall_seconds": time.time() - t_start,
        "command": "make ecg",
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2, default=float))
    _plots(out, dm.val_set.y, res)
    print(
        json.dumps(
            {
                k: summary[k]
                for k in (
                    "energy_reduction_compute",
                    "energy_reduction_with_memory",
                    "integer_core_accuracy",
                    "goals",
                    "wall_seconds",
                )
            },
            default=float,
        )
    )
    return summary


if __name__ == "__main__":
    main()
