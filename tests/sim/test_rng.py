"""The counter-based random streams: Philox4x32-10 known answers, binomial and multinomial draws."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats


def test_philox_known_answers(popnet):
    # Random123's known-answer vectors for philox4x32-10 (counter, key) -> output.
    cases = [
        ([0, 0, 0, 0], [0, 0], [0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8]),
        ([0xFFFFFFFF] * 4, [0xFFFFFFFF] * 2, [0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD]),
        (
            [0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344],
            [0xA4093822, 0x299F31D0],
            [0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1],
        ),
    ]
    for ctr, key, want in cases:
        got = popnet.philox_words(key[0], key[1], torch.tensor([ctr], dtype=torch.int64))[0].tolist()
        assert got == want


@pytest.mark.parametrize("n, p", [(12, 0.3), (40, 0.9), (2000, 0.5), (10**6, 0.013), (77169, 1 / 3)])
def test_binomial_matches_its_distribution(popnet, n, p):
    """Mean, variance and the chi-square of the pmf over 20,000 draws (both inversion and BTRS branches)."""
    x = popnet.binomial_draws(n, p, 20000, 7).numpy()
    mean, var = n * p, n * p * (1 - p)
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / len(x))
    assert abs(x.var() / var - 1) < 0.05
    # Chi-square over the central bins holding 99.9 % of the mass, tails pooled.
    lo, hi = stats.binom.ppf([0.0005, 0.9995], n, p).astype(int)
    edges = np.arange(lo, hi + 2)
    observed = np.histogram(np.clip(x, lo, hi), bins=edges)[0]
    expected = np.diff(stats.binom.cdf(edges - 1, n, p))
    expected[0] += stats.binom.cdf(lo - 1, n, p)
    expected[-1] += stats.binom.sf(hi, n, p)
    keep = expected * len(x) >= 5
    chi2 = (((observed - expected * len(x)) ** 2) / (expected * len(x)))[keep].sum()
    assert stats.chi2.sf(chi2, keep.sum() - 1) > 1e-4


def test_binomial_edges(popnet):
    assert popnet.binomial_draws(0, 0.5, 10, 1).tolist() == [0] * 10
    assert popnet.binomial_draws(17, 0.0, 10, 1).tolist() == [0] * 10
    assert popnet.binomial_draws(17, 1.0, 10, 1).tolist() == [17] * 10
