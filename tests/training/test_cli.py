"""The CLI and the recipes: every recipe parses, every debug recipe fits, bad recipes fail before training."""

from __future__ import annotations

import csv
import json

import pytest
import torch
import yaml
from trainutil import LM_DEBUG, RECIPES

from training.cli import run_cli

GPU_BASE = RECIPES / "gpu" / "base.yaml"
GPU_OVERLAYS = sorted(p for p in (RECIPES / "gpu").glob("*.yaml") if p != GPU_BASE)
# Lightning recipes; recipes/pd14/ holds simulator recipes (tests/sim).
ALL_RECIPES = sorted(p for p in RECIPES.rglob("*.yaml") if p.parent.name != "pd14")
DEBUG_RECIPES = sorted(RECIPES.glob("*/debug.yaml"))


def _configs(recipe) -> list[str]:
    """The --config files that make a whole recipe: a GPU overlay goes after the GPU base."""
    return [str(GPU_BASE), str(recipe)] if recipe in GPU_OVERLAYS else [str(recipe)]


def test_layout():
    assert {p.parent.name for p in DEBUG_RECIPES} >= {"lm", "sst2", "digits", "ecg", "multimodal"}
    gpu = sorted(p.name for p in (RECIPES / "gpu").glob("*.yaml"))
    assert gpu == ["base.yaml", "deepspeed_zero2.yaml", "deepspeed_zero3.yaml", "fsdp.yaml"]
    for overlay in GPU_OVERLAYS:  # an overlay sets the strategy and nothing else
        cfg = yaml.safe_load(overlay.read_text())
        assert set(cfg) == {"trainer"} and set(cfg["trainer"]) == {"strategy"}


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_recipe_parses(recipe, capsys):
    configs = _configs(recipe)
    with pytest.raises(SystemExit) as e:
        run_cli(["fit", *(a for c in configs for a in ("--config", c)), "--print_config"])
    assert e.value.code == 0
    resolved = yaml.safe_load(capsys.readouterr().out)
    src = {}
    for c in configs:
        src = {**src, **yaml.safe_load(open(c))}
    assert resolved["model"]["class_path"] == src["model"]["class_path"]
    assert resolved["data"]["class_path"] == src["data"]["class_path"]
    strategy = src["trainer"].get("strategy")
    if isinstance(strategy, dict):  # the overlay's strategy won
        assert resolved["trainer"]["strategy"]["class_path"] == strategy["class_path"]
        for k, v in strategy["init_args"].items():
            assert resolved["trainer"]["strategy"]["init_args"][k] == v


@pytest.mark.parametrize("recipe", ALL_RECIPES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_key_is_commented(recipe):
    for n, line in enumerate(recipe.read_text().splitlines(), 1):
        s = line.strip()
        if s and not s.startswith("#") and not s.endswith(":"):
            assert "#" in line, f"{recipe.name}:{n} has no comment: {line!r}"


def _write(tmp_path, mutate) -> str:
    cfg = yaml.safe_load(LM_DEBUG.read_text())
    mutate(cfg)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c["trainer"].update(max_stepz=3), "max_stepz"),
        (lambda c: c["model"]["init_args"].update(learning_rate=0.1), "learning_rate"),
        (lambda c: c["data"]["init_args"].update(seq_len="long"), "seq_len"),
        (lambda c: c["trainer"].update(max_steps="many"), "max_steps"),
    ],
    ids=["unknown-trainer-key", "unknown-model-key", "data-type", "trainer-type"],
)
def test_bad_recipe_fails_before_training_naming_the_key(tmp_path, capsys, monkeypatch, mutate, key):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as e:
        run_cli(["fit", "--config", _write(tmp_path, mutate)])
    assert e.value.code != 0
    assert key in capsys.readouterr().err
    assert not (tmp_path / "artifacts").exists()  # nothing was built, nothing trained


def _metrics(root) -> list[dict]:
    files = sorted(root.rglob("metrics.csv"))
    assert files, f"no metrics.csv under {root}"
    with open(files[-1]) as f:
        return list(csv.DictReader(f))


def test_lm_debug_fits_and_exports(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli(["fit", "--config", str(LM_DEBUG), "--trainer.max_steps=10", "--trainer.val_check_interval=5"])
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import evospikenet.models.spiking_lm  # noqa: F401  (registers the config class)

    export = tmp_path / "artifacts" / "spiking_lm_debug"
    model = AutoModelForCausalLM.from_pretrained(export)
    tok = AutoTokenizer.from_pretrained(export)
    ids = torch.tensor([tok("To be")["input_ids"]])
    assert model(input_ids=ids).logits.shape == (1, ids.shape[1], 257)
    rows = _metrics(tmp_path / "artifacts" / "runs" / "lm_debug")
    keys = set().union(*(r.keys() for r in rows))
    assert {"train_loss", "val_loss", "energy/step_j", "energy/sops"} <= keys
    assert any(k.startswith("spike_rate/") for k in keys)
    ckpts = {p.name for p in (tmp_path / "artifacts" / "runs" / "lm_debug").rglob("*.ckpt")}
    assert "last.ckpt" in ckpts and "epoch=0-step=10.ckpt" in ckpts
    config = json.loads((export / "config.json").read_text())
    assert config["d_model"] == 32 and config["model_type"] == "spiking_evospikenet"


@pytest.mark.parametrize("task", ["sst2", "digits", "ecg"])
def test_debug_recipe_fits(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli(["fit", "--config", str(RECIPES / task / "debug.yaml"), "--trainer.enable_progress_bar=false"])
    rows = _metrics(tmp_path / "artifacts" / "runs" / f"{task}_debug")
    losses = [float(r["train_loss"]) for r in rows if r.get("train_loss")]
    assert losses and all(torch.isfinite(torch.tensor(losses)))
    assert (tmp_path / "artifacts" / "runs" / f"{task}_debug").rglob("last.ckpt")


def test_validate_and_predict_from_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(RECIPES / "digits" / "debug.yaml")
    base = [
        "--config",
        cfg,
        "--trainer.enable_progress_bar=false",
        "--trainer.limit_train_batches=3",
        "--trainer.max_epochs=1",
    ]
    run_cli(["fit", *base])
    ckpt = next((tmp_path / "artifacts").rglob("last.ckpt"))
    cli = run_cli(["validate", *base, "--ckpt_path", str(ckpt)])
    assert 0.0 <= float(cli.trainer.callback_metrics["val_acc"]) <= 1.0
    cli = run_cli(["predict", *base, "--ckpt_path", str(ckpt), "--trainer.limit_predict_batches=2"])
    preds = cli.trainer.predict_loop.predictions
    assert len(preds) == 2 and preds[0].shape == (32,) and int(preds[0].max()) < 10


def test_ckpt_path_last_resumes_from_the_recipe_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["--config", str(LM_DEBUG), "--trainer.val_check_interval=null", "--trainer.limit_val_batches=0"]
    run_cli(["fit", *base, "--trainer.max_steps=4"])
    last = tmp_path / "artifacts" / "runs" / "lm_debug" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 4
    cli = run_cli(["fit", *base, "--trainer.max_steps=6", "--trainer.max_epochs=2", "--ckpt_path", "last"])
    assert cli.trainer.ckpt_path is not None and cli.trainer.ckpt_path.endswith("last.ckpt")
    assert cli.trainer.global_step == 6
    assert torch.load(last, weights_only=True)["global_step"] == 6


def _console_script(name: str) -> str:
    """The installed console script beside this interpreter (``.venv/bin/<name>``)."""
    import sys
    from pathlib import Path

    path = Path(sys.executable).parent / name
    assert path.exists(), f"{name} is not installed beside {sys.executable}: run `make install`"
    return str(path)


def test_console_script_exit_status(tmp_path):
    """``evospikenet-train`` as a shell runs it: 0 after a successful fit, non-zero for a bad recipe."""
    import subprocess

    from trainutil import sub_env

    cmd = [_console_script("evospikenet-train"), "fit", "--config", str(LM_DEBUG), "--trainer.max_steps=2"]
    ok = subprocess.run(cmd, cwd=tmp_path, env=sub_env(), capture_output=True, text=True, timeout=300)
    assert ok.returncode == 0, ok.stderr[-3000:]
    assert "EvoSpikeNetCLI object" not in ok.stdout + ok.stderr
    assert (tmp_path / "artifacts" / "spiking_lm_debug" / "config.json").exists()
    bad = subprocess.run(
        [*cmd[:-1], "--trainer.max_stepz=2"],
        cwd=tmp_path,
        env=sub_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0 and "max_stepz" in bad.stderr
