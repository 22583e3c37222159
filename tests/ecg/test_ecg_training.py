"""ECG training and evaluation: metrics, Lightning wiring on a tiny split, the eval CLI's JSON contract."""

import json
import shutil

import lightning as L
import numpy as np
import pytest
import yaml

from training.ecg import ECGLitModule, MITBIHDataModule, classification_metrics
from training.ecg_run import instantiate, load_recipe
from training.eval_ecg import KEYS, main

RECIPES = "recipes/ecg"


def _mitdb():
    try:
        from evospikenet.data.paths import dataset_path

        return dataset_path("mitdb")
    except FileNotFoundError:
        pytest.skip("shared MIT-BIH data not present")


def test_classification_metrics_by_hand():
    y = np.array([0, 0, 0, 1, 1, 2])
    p = np.array([0, 0, 1, 1, 0, 2])
    m = classification_metrics(y, p)
    # class 0: P 2/3 R 2/3; class 1: P 1/2 R 1/2; class 2: P 1 R 1
    f = {0: 2 / 3, 1: 0.5, 2: 1.0}
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx(np.mean(list(f.values())))  # over the classes present only
    assert m["weighted_f1"] == pytest.approx((3 * f[0] + 2 * f[1] + 1 * f[2]) / 6)
    assert m["per_class"]["N"]["support"] == 3 and m["per_class"]["F"]["support"] == 0
    assert m["per_class"]["S"]["precision"] == pytest.approx(0.5)


def test_recipes_share_data_and_trainer_and_build():
    spk, base = load_recipe(f"{RECIPES}/spiking.yaml"), load_recipe(f"{RECIPES}/resnet18.yaml")
    assert spk["data"] == base["data"] and spk["trainer"] == base["trainer"]
    assert base["model"]["init_args"]["model_config"]["widths"] == [64, 128, 256, 512]
    for r in (spk, base, load_recipe(f"{RECIPES}/debug.yaml")):
        lit = instantiate(r["model"])
        assert lit.model.config.downsample == r["data"]["init_args"]["downsample"]


def test_window_mismatch_between_model_and_data_is_an_error():
    dm = MITBIHDataModule(records=["100"], downsample=2, max_train_beats=64)
    _mitdb()
    lit = ECGLitModule(model_config={"downsample": 3})
    trainer = L.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="downsample"):
        trainer.fit(lit, datamodule=dm)


def test_debug_recipe_fits_and_sets_rr_stats():
    _mitdb()
    r = load_recipe(f"{RECIPES}/debug.yaml")
    r["data"]["init_args"].update(records=["100"], max_train_beats=128)
    dm, lit = instantiate(r["data"]), instantiate(r["model"])
    trainer = L.Trainer(
        max_epochs=1,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(lit, datamodule=dm)
    assert len(dm.train_set) == 128
    np.testing.assert_allclose(lit.model.config.rr_mean, dm.train_set.rr.mean(0), rtol=1e-5)
    assert lit.model.config.input_scale == pytest.approx(dm.input_scale)
    assert {"val_acc", "val_macro_f1", "val_weighted_f1"} <= set(trainer.callback_metrics)


def test_eval_cli_json_contract_and_bad_record(tmp_path, capsys):
    from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet

    src = _mitdb()
    data = tmp_path / "data"
    data.mkdir()
    for ext in ("hea", "dat", "atr"):
        shutil.copy(src / f"121.{ext}", data / f"121.{ext}")
    (data / "555.hea").write_text("555 1 360 1000\n555.dat 212 200 11 1024 0 0 0 MLII\n")  # no .dat
    (data / "555.atr").write_bytes(b"")
    model = ECGSpikingNet(
        ECGSpikingConfig(
            beat_before=90,
            beat_after=166,
            downsample=3,
            baseline_energy_per_beat_j=1e-4,
            baseline_energy_per_beat_mem_j=3e-4,
        )
    )
    model.save_pretrained(tmp_path / "model")
    rc = main(["--model", str(tmp_path / "model"), "--data-dir", str(data), "--records", "121", "555"])
    out, err = capsys.readouterr()
    assert rc == 0 and "'555'" in err
    res = json.loads(out.strip().splitlines()[-1])
    assert tuple(res) == KEYS
    assert res["n_beats"] == 1494 and sum(v["support"] for v in res["per_class"].values()) == 1494
    assert list(res["per_class"]) == ["N", "S", "V", "F", "Q"]
    assert res["baseline_energy_per_beat_j"] == 1e-4 and 0 < res["energy_per_beat_j"] < 1e-4
    assert res["energy_per_beat_mem_j"] > res["energy_per_beat_j"] and 0 <= res["integer_core_accuracy"] <= 1
    rc = main(["--model", str(tmp_path / "model"), "--data-dir", str(data), "--records", "555"])
    assert rc == 2 and "555" in capsys.readouterr().err


def test_ecg_run_rejects_different_budgets(tmp_path):
    from training.ecg_run import main as run_main

    spk = yaml.safe_load(open(f"{RECIPES}/spiking.yaml"))
    spk["trainer"]["max_epochs"] = 1
    p = tmp_path / "spk.yaml"
    p.write_text(yaml.safe_dump(spk))
    with pytest.raises(ValueError, match="trainer"):
        run_main(
            ["--spiking", str(p), "--baseline", f"{RECIPES}/resnet18.yaml", "--out", str(tmp_path / "o")]
        )
