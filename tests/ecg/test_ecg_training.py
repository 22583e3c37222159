"""ECG training and evaluation: metrics, the three-way split, Lightning wiring, ecg_run and the eval CLI."""

import json
import shutil
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import yaml

from training.cli import build
from training.ecg import ECGLitModule, MITBIHDataModule
from training.eval_ecg import KEYS, classification_metrics
from training.evaluate import main

RECIPES = Path(__file__).resolve().parents[2] / "recipes" / "ecg"


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
    assert m["confusion"][0] == [2, 1, 0, 0, 0] and m["confusion"][1] == [1, 1, 0, 0, 0]


def test_recipes_share_data_and_trainer_and_build():
    raw = {n: yaml.safe_load(open(f"{RECIPES}/{n}.yaml")) for n in ("spiking", "twin", "resnet18")}
    for n in ("twin", "resnet18"):
        assert raw[n]["data"] == raw["spiking"]["data"] and raw[n]["trainer"] == raw["spiking"]["trainer"]
    assert raw["resnet18"]["model"]["init_args"]["model_config"]["widths"] == [64, 128, 256, 512]
    twin, spk = raw["twin"]["model"]["init_args"], raw["spiking"]["model"]["init_args"]
    assert twin["arch"] == "twin" and {**twin, "arch": "spiking"} == spk  # only the neuron differs
    for n in ("spiking", "twin", "resnet18", "debug"):
        cli = build([f"{RECIPES}/{n}.yaml"])
        assert cli.model.model.config.downsample == cli.datamodule.hparams.downsample


def test_split_is_three_way_by_time_within_each_record():
    _mitdb()
    final = MITBIHDataModule(records=["100", "208"], downsample=3)
    tune = MITBIHDataModule(records=["100", "208"], downsample=3, tuning=True)
    final.setup(), tune.setup()
    assert final.train_set.frac.max() < 0.8 and final.test_set.frac.min() >= 0.8
    assert tune.train_set.frac.max() < 0.65 and final.val_set.frac.min() >= 0.65
    assert np.array_equal(final.val_set.sample, tune.val_set.sample)  # the same validation slice
    assert np.array_equal(final.test_set.sample, tune.test_set.sample)
    n = len(final.train_set) + len(final.test_set)
    assert n == len(tune.train_set) + len(tune.val_set) + len(tune.test_set)
    for dm in (final, tune):  # every record contributes to every part
        for part in (dm.train_set, dm.val_set, dm.test_set):
            assert set(part.record.tolist()) == {"100", "208"}
    with pytest.raises(ValueError, match="val_fraction"):
        MITBIHDataModule(train_fraction=0.5, val_fraction=0.6)


def test_window_mismatch_between_model_and_data_is_an_error():
    dm = MITBIHDataModule(records=["100"], downsample=2, max_train_beats=64)
    _mitdb()
    lit = ECGLitModule(model_config={"downsample": 3})
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(ValueError, match="downsample"):
        trainer.fit(lit, datamodule=dm)


def test_debug_recipe_fits_and_sets_rr_stats(tmp_path, monkeypatch):
    _mitdb()
    monkeypatch.chdir(tmp_path)
    over = ['--data.records=["100"]', "--data.max_train_beats=128", "--trainer.limit_val_batches=1"]
    cli = build([f"{RECIPES}/debug.yaml"], *over)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    dm, lit = cli.datamodule, cli.model
    assert len(dm.train_set) == 128
    np.testing.assert_allclose(lit.model.config.rr_mean, dm.train_set.rr.mean(0), rtol=1e-5)
    assert lit.model.config.input_scale == pytest.approx(dm.input_scale)
    assert {"val_acc", "val_macro_f1", "val_weighted_f1"} <= set(cli.trainer.callback_metrics)
    cli.trainer.test(cli.model, datamodule=dm)
    assert {"test_acc", "test_macro_f1", "test_weighted_f1"} <= set(cli.trainer.callback_metrics)
    assert (tmp_path / "artifacts" / "runs" / "ecg_debug" / "checkpoints" / "last.ckpt").is_file()


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
            twin_energy_per_beat_j=2e-9,
        )
    )
    model.save_pretrained(tmp_path / "model")
    rc = main(["ecg", "--model", str(tmp_path / "model"), "--data-dir", str(data), "--records", "121", "555"])
    out, err = capsys.readouterr()
    assert rc == 0 and "'555'" in err
    res = json.loads(out.strip().splitlines()[-1])
    assert tuple(res) == KEYS
    assert res["n_beats"] == 1494 and sum(v["support"] for v in res["per_class"].values()) == 1494
    assert list(res["per_class"]) == ["N", "S", "V", "F", "Q"]
    assert res["baseline_energy_per_beat_j"] == 1e-4 and 0 < res["energy_per_beat_j"] < 1e-4
    assert res["twin_energy_per_beat_j"] == 2e-9
    assert res["energy_per_beat_mem_j"] > res["energy_per_beat_j"] and 0 <= res["integer_core_accuracy"] <= 1
    assert 0 < res["integer_core_energy_per_beat_j"] < res["energy_per_beat_j"]
    rc = main(["ecg", "--model", str(tmp_path / "model"), "--data-dir", str(data), "--records", "555"])
    assert rc == 2 and "555" in capsys.readouterr().err


def test_a_record_at_another_sampling_rate_is_rejected_by_name(tmp_path, capsys):
    import wfdb

    from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet

    src = _mitdb()
    rec = wfdb.rdrecord(str(src / "121"), sampto=36000)
    ann = wfdb.rdann(str(src / "121"), "atr", sampto=36000)
    data = tmp_path / "data"
    data.mkdir()
    wfdb.wrsamp(
        "777",
        fs=250,
        units=rec.units,
        sig_name=rec.sig_name,
        p_signal=rec.p_signal,
        fmt=["212"] * 2,
        write_dir=str(data),
    )
    wfdb.wrann("777", "atr", ann.sample, ann.symbol, write_dir=str(data), fs=250)
    ECGSpikingNet(ECGSpikingConfig(beat_before=90, beat_after=166, downsample=3)).save_pretrained(
        tmp_path / "m"
    )
    rc = main(["ecg", "--model", str(tmp_path / "m"), "--data-dir", str(data), "--records", "777"])
    err = capsys.readouterr().err
    assert rc == 2 and "777.hea: sampling rate 250 Hz" in err and "360 Hz" in err


def test_ecg_run_rejects_different_budgets(tmp_path):
    from training.ecg_run import main as run_main

    _mitdb()
    twin = yaml.safe_load(open(f"{RECIPES}/twin.yaml"))
    twin["trainer"]["max_epochs"] = 1
    p = tmp_path / "twin.yaml"
    p.write_text(yaml.safe_dump(twin))
    small = [
        '--data.records=["100"]',
        "--data.max_train_beats=64",
        "--data.epoch_beats=64",
        "--trainer.max_epochs=1",
    ]
    with pytest.raises(ValueError, match="trainer"):
        run_main(["--twin", str(p), "--out", str(tmp_path / "o"), "--tune", *small[:3]])


def test_ecg_run_trains_scores_and_saves_the_three_models(tmp_path, capsys):
    from evospikenet.models.ecg import ECGFloatTwin, ECGResNet18, ECGSpikingNet, load_ecg_model
    from training.ecg_run import main as run_main

    _mitdb()
    out = tmp_path / "ecg"
    small = ['--data.records=["100", "208"]', "--data.epoch_beats=128", "--trainer.max_epochs=1"]
    assert run_main(["--out", str(out), *small]) == 0
    head = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    res = json.loads((out / "results.json").read_text())
    assert set(res["results"]) == {"spiking", "spiking (integer core)", "twin", "resnet18"}
    n_test = sum(res["beats"]["test"].values())
    assert all(r["n_beats"] == n_test for r in res["results"].values())
    e = {k: v["energy_per_beat_j"] for k, v in res["results"].items()}
    assert head["energy_vs_twin"] == pytest.approx(e["spiking"] / e["twin"])
    assert head["energy_vs_resnet18"] == pytest.approx(e["spiking"] / e["resnet18"])
    assert e["spiking (integer core)"] < e["spiking"] < e["twin"] < e["resnet18"]
    assert set(head["goals"]) == {
        "weighted_f1>=0.975",
        "macro_f1>=0.90",
        "energy_vs_resnet18<=0.15",
        "energy_vs_twin<=0.25",
    }
    kinds = {sub: type(load_ecg_model(out / sub)) for sub in ("model", "twin", "resnet18")}
    assert kinds == {"model": ECGSpikingNet, "twin": ECGFloatTwin, "resnet18": ECGResNet18}
    cfg = json.loads((out / "model" / "config.json").read_text())
    assert cfg["twin_energy_per_beat_j"] == pytest.approx(e["twin"])
    assert cfg["baseline_energy_per_beat_j"] == pytest.approx(e["resnet18"])
    for png in ("confusion.png", "per_class_f1.png", "energy.png"):
        assert (out / png).stat().st_size > 0
