"""The NEST reference script (scripts/pd14_nest.py) run for real in .venv-nest, as a subprocess: exit
status, the last JSON line, the run directory it writes, and the network it builds (synapse totals)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evospikenet.sim import PD14Config, pd14_spec
from evospikenet.sim.recording import iter_spikes, load_spikes, read_run

ROOT = Path(__file__).resolve().parents[2]
NEST_PY = ROOT / ".venv-nest" / "bin" / "python"
SCRIPT = ROOT / "scripts" / "pd14_nest.py"
KEYS = {"simulator", "scale", "threads", "seed", "n_neurons", "n_synapses", "build_s", "sim_s", "t_model_s",
        "rtf", "rates_hz", "peak_rss_gib"}  # fmt: skip

needs_nest = pytest.mark.skipif(
    not NEST_PY.exists(), reason="no .venv-nest: `make nest-venv` installs NEST 3.10 (the PD14 reference)"
)


def run_nest(*args, timeout=600) -> tuple[subprocess.CompletedProcess, dict | None]:
    proc = subprocess.run(
        [str(NEST_PY), str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=timeout
    )
    lines = proc.stdout.strip().splitlines()
    last = json.loads(lines[-1]) if proc.returncode == 0 and lines else None
    return proc, last


@pytest.fixture(scope="module")
def tiny_spec(tmp_path_factory):
    """PD14 at 2 % with Poisson drive and the thalamic pulse moved into the run (100-110 ms)."""
    spec = pd14_spec(PD14Config(scale=0.02, drive="poisson", thalamic=True))
    spec.generators[0] = dataclasses.replace(spec.generators[0], start_ms=100.0, stop_ms=110.0)
    path = tmp_path_factory.mktemp("spec") / "spec.json"
    spec.to_json(path)
    return spec, path


@needs_nest
def test_nest_builds_the_spec_and_writes_a_run(tiny_spec, tmp_path):
    spec, path = tiny_spec
    out = tmp_path / "run"
    proc, res = run_nest("--spec", path, "--t-presim", 100, "--t-sim", 200, "--seed", 3, "--threads", 2,
                         "--record", "--out", out)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert KEYS <= set(res) and res["simulator"] == "nest"
    assert res["n_neurons"] == spec.n_neurons == 1544
    # NEST's own connection count (before devices) equals the spec's totals, generator synapses included
    assert res["n_synapses"] == spec.n_synapses_total
    assert res["t_model_s"] == pytest.approx(0.2) and res["threads"] == 2 and res["seed"] == 3
    assert set(res["rates_hz"]) == {p.name for p in spec.populations}

    run = read_run(out)
    assert run["dt_ms"] == spec.dt and run["n_steps"] == 3000
    assert [p["first_id"] for p in run["populations"]] == spec.first_ids()[: len(spec.populations)]
    for steps, _ in iter_spikes(out):  # each file in ascending step order, as the format says
        assert np.all(np.diff(steps) >= 0)
    steps, gids = load_spikes(out)
    assert len(steps) > 100
    assert steps.min() >= 0 and steps.max() < 3000
    assert gids.min() >= 0 and gids.max() < spec.n_neurons
    # the rates in the JSON are the spike file's simulation-phase counts (steps >= 1000)
    counts = np.bincount(gids[steps >= 1000], minlength=spec.n_neurons)
    for name, f, p in zip(res["rates_hz"], spec.first_ids(), spec.populations):
        assert res["rates_hz"][name] == pytest.approx(counts[f : f + p.size].sum() / p.size / 0.2, abs=1e-4)
    # the thalamic pulse (100-110 ms, delays ~1.5 ms) drives L4E: more spikes just after it than before
    l4e = (gids >= spec.first_ids()[2]) & (gids < spec.first_ids()[3])
    before = np.count_nonzero(l4e & (steps >= 900) & (steps < 1000))
    after = np.count_nonzero(l4e & (steps >= 1010) & (steps < 1110))
    assert after > 2 * before + 5

    # without --record the rates come from the recorders' counts alone: the same network and seed agree
    proc2, res2 = run_nest("--spec", path, "--t-presim", 100, "--t-sim", 200, "--seed", 3, "--threads", 2,
                           "--out", tmp_path / "run2")  # fmt: skip
    assert proc2.returncode == 0, proc2.stderr[-3000:]
    assert res2["rates_hz"] == res["rates_hz"]
    assert not (tmp_path / "run2" / "spikes").exists()


@needs_nest
def test_nest_refuses_too_few_threads_and_bad_specs(tmp_path):
    full = tmp_path / "full.json"
    pd14_spec(PD14Config(scale=1.0)).to_json(full)
    proc, _ = run_nest("--spec", full, "--threads", 1, "--out", tmp_path / "x", timeout=120)
    assert proc.returncode == 2
    assert "--threads 3" in proc.stderr
    bad = tmp_path / "bad.json"
    bad.write_text('{"populations": []')
    proc, _ = run_nest("--spec", bad, "--out", tmp_path / "y", timeout=120)
    assert proc.returncode == 2 and "cannot read the spec" in proc.stderr


def test_script_runs_without_nest_on_the_path():
    """The script itself parses in the main venv (its NEST import comes after the argument checks)."""
    proc = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "--spec" in proc.stdout
