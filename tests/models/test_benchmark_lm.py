"""``benchmarks/lm.py`` end to end on a tiny text: the JSON it prints, config overrides and ``--only``."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--quick",
    "--steps",
    "3",
    "--context",
    "16",
    "--batch-size",
    "2",
    "--d-model",
    "16",
    "--n-heads",
    "2",
]
TINY += ["--n-layers", "1", "--eval-windows", "2", "--sample-tokens", "2"]


@pytest.fixture
def lm_bench(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text("ROMEO: speak, speak again.\n" * 40)
    monkeypatch.setenv("EVOSPIKENET_DATA_DIR", str(tmp_path))
    spec = importlib.util.spec_from_file_location("bench_lm", ROOT / "benchmarks" / "lm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_both_models_and_the_ratio_on_the_last_line(lm_bench, capsys):
    res = lm_bench.main([*TINY, "--set", "signed_inputs=true", "--set", "tas_residual_gain=0.25"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(res))
    # the signed block by default, and --set overrides its fields (its residual gain is 0.5)
    assert last["config"]["block"] == "signed" and last["config"]["signed_qk"] is True
    assert last["config"]["signed_inputs"] is True and last["config"]["tas_residual_gain"] == 0.25
    assert last["config"]["tas_mode"] == "deterministic" and last["config"]["aeg_weight"] == 0.3
    assert {"val_loss", "spike_rate", "energy_per_token_j", "train_tokens_per_s", "params"} <= set(
        last["spiking"]
    )
    assert last["ratio_val_loss"] == pytest.approx(last["spiking"]["val_loss"] / last["float"]["val_loss"])


def test_the_validation_curve_does_not_change_training(lm_bench, capsys):
    """``--eval-every`` logs mid-run validation losses without touching the training run's result."""
    plain = lm_bench.main([*TINY, "--only", "spiking"])
    capsys.readouterr()
    curve = lm_bench.main([*TINY, "--only", "spiking", "--eval-every", "1", "--eval-windows-mid", "1"])
    logged = [ln for ln in capsys.readouterr().err.splitlines() if "val_loss" in ln]
    assert [ln.split()[2] for ln in logged] == ["1", "2"]  # steps 1 and 2 of 0..2
    assert curve["spiking"]["val_loss"] == plain["spiking"]["val_loss"]


def test_only_one_model_and_bad_overrides(lm_bench, capsys):
    res = lm_bench.main([*TINY, "--only", "float", "--block", "binary"])
    assert set(res) == {"config", "float"}
    assert res["config"]["block"] == "binary" and "signed_inputs" not in res["config"]
    # --set also overrides the sizes the flags set
    assert lm_bench.main([*TINY, "--only", "float", "--set", "d_model=8"])["config"]["d_model"] == 8
    with pytest.raises(SystemExit, match="FIELD=VALUE"):
        lm_bench.main([*TINY, "--set", "signed_inputs"])
    with pytest.raises(SystemExit, match="no_such_field"):
        lm_bench.main([*TINY, "--set", "no_such_field=1"])


def test_the_float_morph_runs_through_the_shared_loop(lm_bench, capsys, monkeypatch):
    """``benchmarks/lm_morph.py`` trains with ``lm.py``'s loop, so a new option there must reach it too (the
    loop's ``log_every`` once broke it)."""
    monkeypatch.setitem(sys.modules, "lm", lm_bench)  # the morph imports the benchmark as ``lm``
    spec = importlib.util.spec_from_file_location("bench_lm_morph", ROOT / "benchmarks" / "lm_morph.py")
    morph = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(morph)
    tiny = ["--steps", "2", "--context", "16", "--batch-size", "2", "--eval-windows", "2"]
    plain = morph.main(tiny)
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == plain and last["switches"] == [] and last["steps"] == 2
    switched = morph.main([*tiny, "--switch", "mlp_ln", "--switch", "in_relu"])
    assert switched["switches"] == ["in_relu", "mlp_ln"]
    assert switched["val_loss"] != plain["val_loss"]  # the switches change the model
    with pytest.raises(SystemExit):
        morph.main([*tiny, "--switch", "no_such_switch"])
