"""``evospikenet-sim`` as users run it: subprocesses, exit statuses, the last JSON line, recipes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from simutil import REPO, run_sim

from evospikenet.sim import NetworkSpec
from evospikenet.sim.cli import KEYS
from evospikenet.sim.recording import load_spikes, read_run

KEYS_OUT = {
    "model", "scale", "ranks", "n_neurons", "n_synapses", "build_s", "sim_s", "t_model_s", "rtf",
    "synaptic_events", "rates_hz", "peak_rss_gib",
}  # fmt: skip
RECIPES = sorted((REPO / "recipes" / "pd14").glob("*.yaml"))


def _last_json(p) -> dict:
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_help_names_the_commands_with_an_example():
    p = run_sim("--help")
    assert all(w in p.stdout for w in ("pd14", "analyze", "spec", "torchrun", "--scale 0.1"))
    p = run_sim("pd14", "--help")
    assert all(
        w in p.stdout for w in ("--t-sim", "--deterministic", "--checkpoint-every", "--resume", "--record")
    )


def test_pd14_run_reports_and_records(tmp_path, popnet):
    out = tmp_path / "run"
    p = run_sim(
        "pd14", "--scale", "0.02", "--drive", "poisson", "--t-presim", "50", "--t-sim", "200",
        "--record", "--out", str(out), "--no-progress",
    )  # fmt: skip
    res = _last_json(p)
    assert KEYS_OUT <= set(res) and res["model"] == "pd14" and res["ranks"] == 1
    spec = NetworkSpec.from_json(out / "spec.json")
    assert res["n_neurons"] == spec.n_neurons and res["n_synapses"] == spec.n_synapses_total
    # sim_s is rounded to 1 ms and rtf to 1e-4 in the JSON, so they agree to 0.5 ms / 0.2 s + 1e-4
    assert res["t_model_s"] == pytest.approx(0.2)
    assert abs(res["rtf"] - res["sim_s"] / 0.2) <= 0.0005 / 0.2 + 1e-4
    run = read_run(out)
    assert run["status"] == "complete" and run["n_steps"] == 2500 and run["n_presim_steps"] == 500
    steps, gids = load_spikes(out, step_start=500)
    firsts = [p["first_id"] for p in run["populations"]]
    for pop, first in zip(run["populations"], firsts):
        n = ((gids >= first) & (gids < first + pop["size"])).sum()
        assert res["rates_hz"][pop["name"]] == pytest.approx(n / pop["size"] / 0.2, abs=1e-3)
    assert len(np.unique(steps)) > 100


def test_spec_command_round_trips(tmp_path):
    p = run_sim("spec", "--scale", "0.1", "--drive", "poisson", "--out", str(tmp_path / "s.json"))
    assert _last_json(p) == {"spec": str(tmp_path / "s.json")}
    spec = NetworkSpec.from_json(tmp_path / "s.json")
    assert spec.meta["scale"] == 0.1 and spec.populations[0].poisson_rate_hz == 8.0 * 160


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: p.name)
def test_recipes_are_complete_and_commented(recipe):
    data = yaml.safe_load(recipe.read_text())
    assert set(data) == set(KEYS)
    for n, line in enumerate(recipe.read_text().splitlines(), 1):
        if line.strip() and not line.lstrip().startswith("#"):
            assert "#" in line, f"{recipe.name}:{n} has no comment"


def test_recipe_with_overrides(tmp_path, popnet):
    p = run_sim(
        "pd14", "--config", str(REPO / "recipes" / "pd14" / "quick.yaml"), "--scale", "0.02",
        "--t-sim", "100", "--t-presim", "0", "--out", str(tmp_path / "q"), "--no-progress",
    )  # fmt: skip
    res = _last_json(p)
    assert res["scale"] == 0.02 and res["drive"] == "poisson" and res["deterministic"] is True
    assert (tmp_path / "q" / "spikes" / "rank0000.bin").exists()  # record: true from the recipe


def test_errors_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("scale: 0.1  # ok\nstepz: 3  # typo\n")
    p = run_sim("pd14", "--config", str(bad), check=False)
    assert p.returncode != 0 and "stepz" in p.stderr
    p = run_sim("pd14", "--scale", "0.1", "--k-scale", "2", "--out", str(tmp_path / "x"), check=False)
    assert p.returncode == 2 and "k_scale" in p.stderr
    p = run_sim("pd14", "--drive", "ac", check=False)
    assert p.returncode == 2 and "drive" in p.stderr
    p = run_sim("pd14", "--resume", str(tmp_path / "nothing"), check=False)
    assert p.returncode != 0 and "not a run directory" in p.stderr
