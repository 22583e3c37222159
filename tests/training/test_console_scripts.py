"""The console scripts as a shell runs them: ``--help`` names the subcommands and options with an example,
0 and one JSON object on the last stdout line after success, non-zero after a failure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from trainutil import sub_env


def _run(name: str, *args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / name
    assert exe.exists(), f"{name} is not installed beside {sys.executable}: run `make install`"
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=sub_env(), capture_output=True, text=True, timeout=timeout
    )


def _last_json(p: subprocess.CompletedProcess) -> dict:
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "name, words",
    [
        ("evospikenet-train", ["fit", "validate", "test", "predict", "--config", "--ckpt_path", "example:"]),
        (
            "evospikenet-eval",
            ["lm", "ecg", "sst2", "multimodal", "examples:", "evospikenet-eval ecg --model"],
        ),
        ("evospikenet-demo", ["--out", "--steps", "--seed", "example: evospikenet-demo"]),
    ],
)
def test_help_names_subcommands_options_and_an_example(name, words, tmp_path):
    p = _run(name, "--help", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    for w in words:
        assert w in p.stdout, f"{name} --help does not mention {w!r}"


def test_eval_help_of_a_task_has_its_example(tmp_path):
    p = _run("evospikenet-eval", "sst2", "--help", cwd=tmp_path)
    assert p.returncode == 0 and "--tsv" in p.stdout and "example: evospikenet-eval sst2" in p.stdout


def test_demo_runs_and_prints_its_summary_last(tmp_path):
    p = _run("evospikenet-demo", "--out", str(tmp_path / "d"), "--steps", "300", cwd=tmp_path)
    assert p.returncode == 0, p.stderr[-2000:]
    res = _last_json(p)
    assert res["steps"] == 300 and res["integer_core"] is True and res["energy"]["energy_j"] > 0
    assert json.loads((tmp_path / "d" / "summary.json").read_text()) == res
    bad = _run("evospikenet-demo", "--steps", "0", cwd=tmp_path)
    assert bad.returncode != 0 and "--steps" in bad.stderr


def test_eval_scores_a_model_and_fails_on_bad_input(tmp_path):
    from evospikenet.data.paths import dataset_path
    from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet

    try:
        data = dataset_path("mitdb")
    except FileNotFoundError:
        pytest.skip("shared MIT-BIH data not present")
    ECGSpikingNet(ECGSpikingConfig(beat_before=90, beat_after=166, downsample=3)).save_pretrained(
        tmp_path / "m"
    )
    ok = _run(
        "evospikenet-eval",
        "ecg",
        "--model",
        str(tmp_path / "m"),
        "--data-dir",
        str(data),
        "--records",
        "121",
        cwd=tmp_path,
    )
    assert ok.returncode == 0, ok.stderr[-2000:]
    res = _last_json(ok)
    assert res["n_beats"] > 1000 and 0 <= res["accuracy"] <= 1 and res["integer_core_energy_per_beat_j"] > 0
    missing = _run("evospikenet-eval", "ecg", "--model", str(tmp_path / "none"), cwd=tmp_path)
    assert missing.returncode == 2 and "none" in missing.stderr
