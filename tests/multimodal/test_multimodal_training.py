import json

import pytest

from evospikenet.data.paths import dataset_path
from training import evaluate, multimodal_run

HAS_MITDB = (lambda p: p.is_dir() and any(p.glob("*.hea")))(dataset_path("mitdb"))


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_eval_digits_prints_json_last_line(tiny_model, tmp_path, capsys):
    tiny_model.save_pretrained(tmp_path / "m")
    assert evaluate.main(["multimodal", "--model", str(tmp_path / "m"), "--data", "digits"]) == 0
    res = _last_json(capsys)
    assert res["data"] == "digits" and res["n"] == 360 and 0.0 <= res["accuracy"] <= 1.0
    assert set(res["per_class_accuracy"]) == {str(d) for d in range(10)}


@pytest.mark.skipif(not HAS_MITDB, reason="shared mitdb not present")
def test_eval_mitdb_scores_every_beat_of_the_record(tiny_model, tmp_path, capsys):
    from evospikenet.data.mitdb import BeatWindow, load_beats

    tiny_model.save_pretrained(tmp_path / "m")
    n = len(load_beats(None, ["100"], BeatWindow(90, 166, 3)))
    assert (
        evaluate.main(
            ["multimodal", "--model", str(tmp_path / "m"), "--data", "mitdb", "--records", "100", "--ablate"]
        )
        == 0
    )
    res = _last_json(capsys)
    assert res["data"] == "mitdb" and res["n"] == n and res["ablated"] is True


def test_eval_bad_model_dir_is_a_clear_error(tmp_path, capsys):
    assert evaluate.main(["multimodal", "--model", str(tmp_path / "none"), "--data", "digits"]) == 2
    assert "--model must be a directory" in capsys.readouterr().err


@pytest.mark.skipif(not HAS_MITDB, reason="shared mitdb not present")
def test_debug_recipe_trains_saves_and_evaluates(tmp_path, capsys):
    out = tmp_path / "mm"
    assert (
        multimodal_run.main(
            ["--recipe", "recipes/multimodal/debug.yaml", "--out", str(out), "--ecg-model", "none"]
        )
        == 0
    )
    res = json.loads((out / "results.json").read_text())
    assert res["digits"]["n"] == 360 and res["mitdb"]["n"] == 128
    assert res["digits_ablated"]["ablated"] and (out / "model" / "model.safetensors").is_file()
    from evospikenet.models.multimodal import MultiModalEvoSpikeNetForCausalLM

    m = MultiModalEvoSpikeNetForCausalLM.from_pretrained(out / "model")
    assert m.config.rr_mean is not None and len(m.config.rr_mean) == 6  # training-set RR stats saved
