"""``benchmarks/lm.py`` end to end on a tiny text: the JSON it prints, the train / validation / test split it
reads, config overrides and ``--only``; and the position split behind it."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest
import torch

from evospikenet.data.text import LM_SPLIT, byte_tokenizer, load_tiny_shakespeare, position_split

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


TEXT = "ROMEO: speak, speak again.\n" * 40


@pytest.fixture
def lm_bench(tmp_path, monkeypatch):
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(TEXT)
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
    # both held-out parts, per model and as ratios; the rate and energy are the test part's
    for name in ("spiking", "float"):
        assert {"val_loss", "test_loss", "val_windows", "test_windows"} <= set(last[name])
        assert last[name]["val_windows"] == last[name]["test_windows"] == 2
    assert last["ratio_val"] == last["ratio_val_loss"]
    assert last["ratio_test"] == pytest.approx(last["spiking"]["test_loss"] / last["float"]["test_loss"])
    assert {"val_spike_rate", "val_energy_per_token_j"} <= set(last["spiking"])
    assert last["config"]["split"] == [0.8, 0.1, 0.1]


def test_training_reads_the_train_part_and_scores_validation_and_test(lm_bench, monkeypatch):
    """Every training batch comes from the first 80 % of the text, the scores from the next 10 % and the last
    10 %, and ``--no-test`` never scores the test part."""
    train, val, test = load_tiny_shakespeare(byte_tokenizer(), fractions=LM_SPLIT)
    batched, scored = [], []
    real_batches, real_evaluate = lm_bench.random_batches, lm_bench.evaluate

    def spy_batches(ids, *a, **kw):
        batched.append(ids)
        return real_batches(ids, *a, **kw)

    def spy_evaluate(model, ids, args, spiking, part="val"):
        scored.append((part, ids))
        return real_evaluate(model, ids, args, spiking, part)

    monkeypatch.setattr(lm_bench, "random_batches", spy_batches)
    monkeypatch.setattr(lm_bench, "evaluate", spy_evaluate)
    full = lm_bench.main([*TINY, "--eval-every", "2", "--eval-windows-mid", "1"])
    assert batched and all(ids is batched[0] for ids in batched) and torch.equal(batched[0], train)
    # per model: the mid-run check at step 2 on validation, then validation and test at the end
    assert [part for part, _ in scored] == ["val", "val", "test"] * 2
    assert all(torch.equal(ids, val if part == "val" else test) for part, ids in scored)
    scored.clear()
    held = lm_bench.main([*TINY, "--no-test"])
    assert [part for part, _ in scored] == ["val", "val"]
    assert (
        "ratio_test" not in held and "test_loss" not in held["spiking"] and "test_loss" not in held["float"]
    )
    # the same training run: the validation figures do not depend on whether the test part is scored
    assert held["ratio_val"] == full["ratio_val"]
    assert held["spiking"]["spike_rate"] == held["spiking"]["val_spike_rate"]


def test_position_split_is_disjoint_ordered_and_covers_the_text():
    for n in (10, 1_115_394, 1_115_395, 997):
        parts = position_split(n, LM_SPLIT)
        assert parts[0][0] == 0 and parts[-1][1] == n  # covers every position
        assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))  # consecutive: disjoint and in order
        assert [end - start for start, end in parts] == [
            int(0.8 * n),
            int(0.9 * n) - int(0.8 * n),
            n - int(0.9 * n),
        ]
    assert position_split(100, (0.9, 0.1)) == [(0, 90), (90, 100)]
    for bad in ((0.8, 0.1), (0.8, 0.3, -0.1), (1.0,), (0.5, float("nan"), 0.5)):
        with pytest.raises(ValueError, match="fractions"):
            position_split(100, bad)
    with pytest.raises(ValueError, match="too few"):
        position_split(5, LM_SPLIT)  # 5 * 0.1 rounds to an empty validation part


def test_tiny_shakespeare_in_three_parts_and_the_two_part_default(tmp_path):
    text = "".join(f"line {i}: ünïcode ✓\n" for i in range(200))  # multi-byte characters on the cuts
    (tmp_path / "tinyshakespeare").mkdir()
    (tmp_path / "tinyshakespeare" / "input.txt").write_text(text, encoding="utf-8")
    tok = byte_tokenizer()
    train, val, test = load_tiny_shakespeare(tok, tmp_path, fractions=LM_SPLIT)
    n = len(text)
    # the three parts, decoded, are the file's first 80 %, next 10 % and last 10 % of characters, in order
    assert tok.decode(train.tolist()) == text[: int(0.8 * n)]
    assert tok.decode(val.tolist()) == text[int(0.8 * n) : int(0.9 * n)]
    assert tok.decode(test.tolist()) == text[int(0.9 * n) :]
    assert tok.decode(torch.cat([train, val, test]).tolist()) == text
    # without fractions: the two-part split other callers rely on, unchanged (90 % / 10 %)
    head, tail = load_tiny_shakespeare(tok, tmp_path)
    assert tok.decode(head.tolist()) == text[: int(0.9 * n)] and torch.equal(tail, test)
    with pytest.raises(ValueError, match="train_fraction"):
        load_tiny_shakespeare(tok, tmp_path, 1.0)
    with pytest.raises(ValueError, match="fractions"):
        load_tiny_shakespeare(tok, tmp_path, fractions=(0.5, 0.2))


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
