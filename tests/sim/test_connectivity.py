"""Connectivity: fixed total number per block, the published distributions, and independence of the ranks."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from evospikenet.sim import PD14Config, pd14_spec
from evospikenet.sim.engine import NativeEngine
from evospikenet.sim.pd14 import psc_over_psp, synapse_totals


@pytest.fixture(scope="module")
def spec():
    return pd14_spec(PD14Config(scale=0.02, drive="poisson", thalamic=True))


@pytest.fixture(scope="module")
def full(spec, popnet):
    e = NativeEngine(spec, seed=3)
    e.build()
    return e


def _rows(engine) -> np.ndarray:
    src, tgt, d, w = engine.synapses()
    return np.stack([src.numpy(), tgt.numpy(), d.numpy(), w.double().numpy()], 1)


def test_pd14_parameters():
    """The description's derived values: 87.8 pA for 0.15 mV, 298.9 M synapses, DC drive 562 pA in L2/3E."""
    assert psc_over_psp(250.0, 10.0, 0.5) * 0.15 == pytest.approx(87.81, abs=0.01)
    full = pd14_spec()
    assert full.n_neurons == 77169 and full.n_synapses_total == 298_880_968
    assert full.populations[0].i_e == pytest.approx(1e-3 * 8 * 1600 * 87.8085 * 0.5, rel=1e-4)
    assert synapse_totals(0.1009, 20683, 20683) == pytest.approx(
        math.log(1 - 0.1009) / math.log(1 - 1 / 20683**2)
    )
    assert full.weight_mean[0][2] == pytest.approx(2 * full.weight_mean[0][0])  # L4E -> L23E doubled
    assert full.weight_mean[0][1] == pytest.approx(-4 * full.weight_mean[0][0])  # g = -4


def test_every_block_has_its_total(spec, full):
    n_pop = len(spec.populations)
    for a in range(n_pop):
        for b in range(n_pop):
            assert int(full.out_degree(a, b).sum()) == spec.n_synapses[a][b]
        assert int(full.out_degree(a, n_pop).sum()) == spec.generators[0].n_synapses[a]
    assert len(_rows(full)) == spec.n_synapses_total


def test_weights_delays_and_targets_follow_the_description(spec, full):
    rows = _rows(full)
    firsts, n_pop = spec.first_ids(), len(spec.populations)
    pop_of = np.searchsorted(np.array(firsts), rows[:, :2].astype(np.int64), side="right") - 1
    dt = spec.dt
    for a, b in [(0, 0), (0, 1), (2, 3), (4, 5), (0, 2)]:
        blk = rows[(pop_of[:, 1] == a) & (pop_of[:, 0] == b)]
        mu, k = spec.weight_mean[a][b], len(blk)
        w = blk[:, 3]
        assert np.all(np.sign(w) == np.sign(mu))
        assert abs(w.mean() - mu) < 5 * 0.1 * abs(mu) / math.sqrt(k)
        assert abs(w.std() / (0.1 * abs(mu)) - 1) < 0.05
        # Delays: a normal redrawn below dt / 2, rounded to steps: P(d = j) for j >= 1 in closed form.
        dm = spec.delay_mean[a][b]
        law = stats.norm(dm, 0.5 * dm)
        top = int(blk[:, 2].max())
        j = np.arange(1, top + 1)
        p = (law.cdf((j + 0.5) * dt) - law.cdf(np.maximum(j - 0.5, 0.5) * dt)) / law.sf(0.5 * dt)
        observed = np.bincount(blk[:, 2].astype(int), minlength=top + 1)[1:]
        keep = p * k >= 5
        chi2 = ((observed - p * k) ** 2 / (p * k))[keep].sum()
        assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4, (a, b)
        # Targets uniform over population a.
        counts = np.bincount(blk[:, 1].astype(np.int64) - firsts[a], minlength=spec.populations[a].size)
        assert stats.chisquare(counts).pvalue > 1e-4
    # Thalamic synapses only onto L4 and L6, positive.
    th = rows[pop_of[:, 0] == n_pop]
    assert set(np.unique(pop_of[pop_of[:, 0] == n_pop][:, 1])) == {2, 3, 6, 7}
    assert np.all(th[:, 3] > 0)


def test_out_degrees_are_multinomial(spec, full):
    """Out-degrees of sources in a block: Binomial(K, 1/N_b) marginals (mean exact, variance close)."""
    d = full.out_degree(0, 0).double().numpy()
    k, n = spec.n_synapses[0][0], spec.populations[0].size
    assert d.sum() == k
    assert abs(d.var() / (k / n * (1 - 1 / n)) - 1) < 0.15


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_hold_disjoint_shares_of_the_same_network(spec, full, ranks):
    whole = _rows(full)
    parts = []
    for r in range(ranks):
        e = NativeEngine(spec, seed=3, rank=r, ranks=ranks)
        e.build()
        rows = _rows(e)
        assert np.all(rows[:, 1].astype(np.int64) % ranks == r)  # only synapses onto its own neurons
        parts.append(rows)
    union = np.concatenate(parts)
    key = np.lexsort(union.T[::-1])
    ref = np.lexsort(whole.T[::-1])
    assert np.array_equal(union[key], whole[ref])


def test_seed_changes_the_network(spec, full, popnet):
    other = NativeEngine(spec, seed=4)
    other.build()
    assert not torch.equal(other.out_degree(0, 0), full.out_degree(0, 0))
