"""Spike statistics of run directories: closed forms on synthetic spike files, KS distances against scipy,
the warm-up, several rank files, and bad input (missing files, a file cut mid-record)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from evospikenet.sim.analysis import compare, ks_distance, spike_statistics
from evospikenet.sim.cli import analyze_main
from evospikenet.sim.recording import SpikeWriter

DT = 0.1  # ms


def write_run(path, pops, n_steps, spikes, ranks=1):
    """A run directory: ``pops`` [(name, size)], ``spikes`` [(step, gid)] (any order); gid % ranks picks the
    rank file, each file sorted by step as an engine writes it."""
    first, at = [], 0
    for _, n in pops:
        first.append(at)
        at += n
    run = {
        "populations": [{"name": nm, "first_id": f, "size": n} for (nm, n), f in zip(pops, first)],
        "dt_ms": DT,
        "n_steps": n_steps,
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(json.dumps(run))
    sp = np.asarray(spikes, np.int64).reshape(-1, 2)
    sp = sp[np.lexsort((sp[:, 1], sp[:, 0]))]
    for r in range(ranks):
        mine = sp[sp[:, 1] % ranks == r]
        w = SpikeWriter(path / "spikes" / f"rank{r:04d}.bin", buffer_records=64)  # small: many flushes
        w.append(mine[:, 0], mine[:, 1])
        w.close()
    return path


def regular(gid, period_steps, n_steps, offset=0):
    return [(s, gid) for s in range(offset + period_steps - 1, n_steps, period_steps)]


def poisson_steps(rng, rate_hz, n_steps):
    """Steps of a Bernoulli(rate dt) train: Poisson in the limit of small ``rate dt``."""
    return np.flatnonzero(rng.random(n_steps) < rate_hz * DT * 1e-3)


def test_regular_train_rate_and_cv(tmp_path):
    # 100 Hz: a spike every 100 steps (10 ms); 2 s run, 0.5 s warm-up -> 150 spikes in 1.5 s
    run = write_run(tmp_path / "r", [("A", 3)], 20000, regular(0, 100, 20000) + regular(1, 250, 20000, 7))
    st = spike_statistics(run, warmup_ms=500.0)
    (a,) = st.populations
    np.testing.assert_allclose(a.rate, [100.0, 40.0, 0.0])
    np.testing.assert_array_equal(a.cv, [0.0, 0.0])  # neuron 2 is silent: no CV
    assert st.n_spikes == 150 + 60


def test_warmup_is_excluded(tmp_path):
    # neuron 0 bursts during the warm-up only (every step up to 499.9 ms), then is silent
    burst = [(s, 0) for s in range(5000)]
    run = write_run(tmp_path / "r", [("A", 2)], 15000, burst + regular(1, 200, 15000))
    st = spike_statistics(run, warmup_ms=500.0)
    assert st.populations[0].rate[0] == 0.0
    np.testing.assert_allclose(st.populations[0].rate[1], 50.0)
    assert len(st.populations[0].cv) == 1  # the burst's ISIs are gone too
    # a spike in step 4999 has time 500.0 ms = the warm-up's end: discarded; step 5000 (500.1 ms) is kept
    run2 = write_run(tmp_path / "r2", [("A", 1)], 15000, [(4999, 0), (5000, 0)])
    assert spike_statistics(run2, warmup_ms=500.0).n_spikes == 1
    # without a warm-up the burst counts
    assert spike_statistics(run, warmup_ms=0.0).populations[0].rate[0] == pytest.approx(5000 / 1.5)


def test_poisson_cv_near_one(tmp_path):
    rng = np.random.default_rng(1)
    n_steps = 2_000_000  # 200 s at 20 Hz: ~4,000 ISIs per neuron
    spikes = [(s, g) for g in range(10) for s in poisson_steps(rng, 20.0, n_steps)]
    st = spike_statistics(write_run(tmp_path / "r", [("P", 10)], n_steps, spikes), warmup_ms=0.0)
    cv = st.populations[0].cv
    # discrete-time ISIs are geometric, CV = sqrt(1 - rate dt) = 0.999; sampling SD of one CV ~ 0.016
    assert len(cv) == 10
    assert abs(cv.mean() - 1.0) < 0.03
    np.testing.assert_allclose(st.populations[0].rate, 20.0, rtol=0.1)


def test_correlation_identical_and_independent(tmp_path):
    rng = np.random.default_rng(2)
    n_steps = 1_000_000  # 100 s -> 50,000 bins of 2 ms
    train = poisson_steps(rng, 10.0, n_steps)
    same = [(s, g) for g in (0, 1) for s in train]
    run = write_run(tmp_path / "same", [("S", 2)], n_steps, same)
    np.testing.assert_allclose(spike_statistics(run, warmup_ms=0.0).populations[0].corr, [1.0])

    n = 40
    indep = [(s, g) for g in range(n) for s in poisson_steps(rng, 10.0, n_steps)]
    st = spike_statistics(write_run(tmp_path / "ind", [("I", n)], n_steps, indep), warmup_ms=0.0, n_corr=n)
    cc = st.populations[0].corr
    assert len(cc) == n * (n - 1) // 2
    # each coefficient ~ N(0, 1/sqrt(50,000) = 0.0045)
    assert abs(cc.mean()) < 0.002
    assert np.abs(cc).max() < 0.025


def test_correlation_sample_is_fixed_and_silent_pairs_are_dropped(tmp_path):
    n_steps = 20000
    spikes = [s for g in range(0, 300, 2) for s in regular(g, 97 + g % 13, n_steps)]  # odd gids silent
    run = write_run(tmp_path / "r", [("A", 300)], n_steps, spikes)
    a = spike_statistics(run, warmup_ms=0.0, n_corr=50, seed=3).populations[0].corr
    b = spike_statistics(run, warmup_ms=0.0, n_corr=50, seed=3).populations[0].corr
    np.testing.assert_array_equal(a, b)
    n_active = len(a)
    k = (1 + np.sqrt(1 + 8 * n_active)) / 2  # pairs = k (k - 1) / 2 over the active sampled neurons
    assert k == int(k) and 10 < k < 40  # about half of the 50 sampled neurons fire


def test_ks_distance_matches_scipy():
    rng = np.random.default_rng(4)
    for a, b in [
        (rng.normal(size=300), rng.normal(0.3, 1.2, size=170)),
        (rng.integers(0, 5, 100).astype(float), rng.integers(0, 7, 80).astype(float)),  # ties
        (np.zeros(10), np.zeros(4)),
    ]:
        assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert np.isnan(ks_distance(np.empty(0), np.ones(3)))


def test_compare_two_runs_and_rank_files(tmp_path):
    n_steps = 30000
    rng = np.random.default_rng(5)
    sp1 = [(s, g) for g in range(20) for s in poisson_steps(rng, 5.0 + g, n_steps)]
    sp2 = [(s, g) for g in range(20) for s in poisson_steps(rng, 8.0, n_steps)]
    pops = [("E", 12), ("I", 8)]
    one = spike_statistics(write_run(tmp_path / "a1", pops, n_steps, sp1), warmup_ms=500.0)
    two = spike_statistics(write_run(tmp_path / "a2", pops, n_steps, sp1, ranks=3), warmup_ms=500.0)
    for p, q in zip(one.populations, two.populations):  # the same spikes in 1 or 3 files
        np.testing.assert_array_equal(p.rate, q.rate)
        np.testing.assert_allclose(p.cv, q.cv)
        np.testing.assert_allclose(p.corr, q.corr)
    other = spike_statistics(write_run(tmp_path / "b", pops, n_steps, sp2), warmup_ms=500.0)
    ks = compare(one, other)
    assert set(ks) == {"ks_rate", "ks_cv", "ks_corr"} and set(ks["ks_rate"]) == {"E", "I"}
    for p, q in zip(one.populations, other.populations):
        assert ks["ks_rate"][p.name] == pytest.approx(stats.ks_2samp(p.rate, q.rate).statistic)
        assert ks["ks_cv"][p.name] == pytest.approx(stats.ks_2samp(p.cv, q.cv).statistic)
    assert all(v == 0.0 for d in compare(one, two).values() for v in d.values())
    with pytest.raises(ValueError, match="different populations"):
        compare(one, spike_statistics(write_run(tmp_path / "c", [("X", 20)], n_steps, sp1)))


def test_analyze_main_json_and_plots(tmp_path, capsys):
    n_steps = 12000
    rng = np.random.default_rng(6)
    pops = [("E", 30), ("I", 10)]
    a = write_run(
        tmp_path / "a", pops, n_steps, [(s, g) for g in range(40) for s in poisson_steps(rng, 9, n_steps)]
    )
    b = write_run(
        tmp_path / "b", pops, n_steps, [(s, g) for g in range(40) for s in poisson_steps(rng, 9, n_steps)]
    )
    assert analyze_main([str(a), "--against", str(b), "--n-corr", "20", "--out", str(tmp_path / "an")]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(out["populations"]) == {"E", "I"}
    assert {"rate_hz", "cv", "corr"} <= set(out["populations"]["E"])
    assert out["populations"]["E"]["rate_hz"] == pytest.approx(9.0, rel=0.25)
    for k in ("ks_rate", "ks_cv", "ks_corr"):
        assert set(out[k]) == {"E", "I"} and all(0.0 <= v <= 1.0 for v in out[k].values())
    for name in ("raster.png", "distributions.png"):
        data = (tmp_path / "an" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert (tmp_path / "an" / "summary.json").exists()


def test_error_paths(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="run.json"):
        spike_statistics(tmp_path / "nothing")
    run = write_run(tmp_path / "r", [("A", 2)], 10000, regular(0, 100, 10000))
    with open(run / "spikes" / "rank0000.bin", "ab") as f:
        f.write(b"\x01\x02\x03")  # a record cut short
    with pytest.raises(ValueError, match="cut mid-record"):
        spike_statistics(run)
    assert analyze_main([str(run)]) == 2
    assert "cut mid-record" in capsys.readouterr().err
    for p in (run / "spikes").glob("*"):
        p.unlink()
    with pytest.raises(FileNotFoundError, match="--record"):
        spike_statistics(run)
    bad = write_run(tmp_path / "bad", [("A", 2)], 10000, [(100, 5)])  # gid beyond the populations
    with pytest.raises(ValueError, match="outside"):
        spike_statistics(bad)
    with pytest.raises(ValueError, match="warm-up"):
        spike_statistics(write_run(tmp_path / "short", [("A", 2)], 3000, []), warmup_ms=500.0)
    (tmp_path / "nopop").mkdir()
    (tmp_path / "nopop" / "run.json").write_text(json.dumps({"dt_ms": 0.1, "n_steps": 10}))
    with pytest.raises(ValueError, match="populations"):
        spike_statistics(tmp_path / "nopop")
