"""The microcircuit benchmark's verdicts: the best of our runs against NEST, every run's memory."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.append(str(Path(__file__).resolve().parents[2] / "benchmarks"))

import microcircuit  # noqa: E402

SYN = 300_000_000


def _run(sim_s: float, build_s: float, rss_gib: float) -> dict:
    return {"sim_s": sim_s, "rtf": sim_s / 10, "build_s": build_s, "peak_rss_gib": rss_gib, "n_synapses": SYN}


def _result(evo, evo2, nest=None, ks=0.01, ks_ref=0.01) -> dict:
    pops = {"A": None, "B": None}
    return {
        "nest": nest or _run(800.0, 120.0, 14.0),
        "evospikenet": evo,
        "evospikenet_2ranks": evo2,
        "ks_rate": dict.fromkeys(pops, ks),
        "ks_rate_nest_nest": dict.fromkeys(pops, ks_ref),
        "ks_cv": dict.fromkeys(pops, ks),
        "ks_cv_nest_nest": dict.fromkeys(pops, ks_ref),
        "ranks_identical": True,
    }


def test_speed_goals_use_the_best_run_and_memory_the_worst():
    g = microcircuit.goals(_result(_run(60.0, 20.0, 1.7), _run(32.0, 25.0, 2.2)))
    assert g["rtf"] == 3.2 and g["rtf_ranks"] == 2 and g["rtf_le_5"] and not g["rtf_le_2"]
    assert g["speedup_vs_nest"] == 25.0 and g["speedup_vs_nest_1rank"] == round(800 / 60, 3)
    assert g["speedup_2ranks"] == 1.875 and g["speedup_2ranks_ge_1_6"]
    assert g["bytes_per_synapse"] == round(2.2 * 2**30 / SYN, 2) and g["bytes_per_synapse_le_8"]
    assert g["build_le_nest"] and g["accuracy_rate"] and g["accuracy_cv"]


def test_misses_are_reported():
    g = microcircuit.goals(_result(_run(300.0, 130.0, 3.0), _run(250.0, 90.0, 2.0), ks=0.08, ks_ref=0.02))
    assert g["rtf"] == 25.0 and g["rtf_ranks"] == 2 and not g["rtf_le_5"]
    assert not g["speedup_ge_4"] and not g["build_le_nest"]  # the slowest build counts
    assert not g["bytes_per_synapse_le_8"]  # 3 GiB over 300 M synapses: 10.7 B
    assert not g["speedup_2ranks_ge_1_6"] and g["accuracy_rate"] is False


def test_missing_runs_give_no_verdict():
    g = microcircuit.goals(_result(None, None) | {"ks_rate": None})
    assert "rtf" not in g and "speedup_2ranks" not in g and g["accuracy_rate"] is None
