"""CSR builders: counts, degrees, sortedness, int32 indices, bytes per synapse, error paths."""

import math

import pytest
import torch

from evospikenet.core import (
    bytes_per_synapse,
    csr_parts,
    fixed_indegree,
    fixed_probability,
    from_edges,
    out_degree,
    validate_structure,
)


def _check_valid(csr):
    crow, col, val = csr_parts(csr)
    assert crow.dtype == torch.int32 and col.dtype == torch.int32
    validate_structure(crow, col, val, *csr.shape)


@pytest.mark.parametrize("autapses", [False, True])
def test_fixed_probability_counts_and_structure(device, autapses):
    n_pre, n_post, p = 400, 400, 0.05
    csr = fixed_probability(n_pre, n_post, p, 0.5, seed=1, autapses=autapses, device=device)
    _check_valid(csr)
    assert csr.values().device.type == device.type
    possible = n_pre * n_post - (0 if autapses else n_pre)
    nnz = csr.values().numel()
    assert abs(nnz - p * possible) < 5 * math.sqrt(possible * p * (1 - p))
    dense = csr.to_dense()
    assert bool((dense[dense != 0] == 0.5).all())
    if not autapses:
        assert int(dense.diagonal().count_nonzero()) == 0
    # columns are drawn uniformly: each half of the columns holds about half the synapses
    left = int(dense[:, : n_post // 2].count_nonzero())
    assert abs(left - nnz / 2) < 5 * math.sqrt(nnz / 4)


def test_fixed_probability_extremes_and_seed():
    assert fixed_probability(20, 30, 0.0, seed=0).values().numel() == 0
    full = fixed_probability(20, 20, 1.0, seed=0)
    assert full.values().numel() == 20 * 19 and int(full.to_dense().diagonal().count_nonzero()) == 0
    assert fixed_probability(20, 30, 1.0, seed=0, autapses=True).values().numel() == 600
    a, b = fixed_probability(50, 60, 0.2, seed=7), fixed_probability(50, 60, 0.2, seed=7)
    assert torch.equal(a.col_indices(), b.col_indices())
    g = torch.Generator().manual_seed(3)
    c = fixed_probability(50, 60, 0.2, lambda n, gen: torch.randn(n, generator=gen), generator=g)
    assert c.values().std() > 0.5


def test_fixed_indegree_exact_degrees(device):
    csr = fixed_indegree(300, 200, 17, 2, dtype=torch.int8, seed=2, device=device)
    _check_valid(csr)
    dense = csr.to_dense().cpu()
    assert bool((dense.count_nonzero(dim=0) == 17).all())
    assert csr.values().dtype == torch.int8 and bool((csr.values() == 2).all())


@pytest.mark.parametrize("k", [5, 40])  # sparse (rejection) and dense (top-k) regimes
def test_fixed_indegree_no_autapses(k):
    csr = fixed_indegree(50, 50, k, seed=4)
    dense = csr.to_dense()
    assert bool((dense.count_nonzero(dim=0) == k).all())
    assert int(dense.diagonal().count_nonzero()) == 0
    assert out_degree(csr).sum() == 50 * k


def test_from_edges_sorts_and_keeps_weights(device):
    pre = torch.tensor([2, 0, 2, 1, 0])
    post = torch.tensor([1, 3, 0, 2, 0])
    w = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
    csr = from_edges(pre, post, w, 3, 4, device=device)
    _check_valid(csr)
    dense = torch.zeros(3, 4)
    dense[pre, post] = w
    assert torch.equal(csr.to_dense().cpu(), dense)
    assert csr.crow_indices().tolist() == [0, 2, 3, 5]
    with pytest.raises(ValueError, match="duplicate edge.*\\(2, 1\\)"):
        from_edges(torch.tensor([2, 2]), torch.tensor([1, 1]), 1.0, 3, 4)
    with pytest.raises(ValueError, match="post indices"):
        from_edges(torch.tensor([0]), torch.tensor([4]), 1.0, 3, 4)


def test_bytes_per_synapse_int8_and_float():
    csr8 = fixed_probability(2000, 2000, 0.05, 1, dtype=torch.int8, seed=0)
    b8 = bytes_per_synapse(csr8)
    nnz = csr8.values().numel()
    assert b8 == pytest.approx(5 + 4 * 2001 / nnz)
    assert b8 <= 5.1
    b32 = bytes_per_synapse(fixed_probability(2000, 2000, 0.05, 1.0, seed=0))
    assert b32 == pytest.approx(8 + 4 * 2001 / nnz)


def test_large_build_is_vectorised():
    """2e6 synapses build quickly and with int32 indices (1e8 is measured by the benchmark)."""
    csr = fixed_probability(20_000, 20_000, 0.005, 1, dtype=torch.int8, seed=0)
    assert abs(csr.values().numel() - 2e6) < 5 * math.sqrt(2e6)
    assert bytes_per_synapse(csr) < 5.1


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: fixed_probability(10, 10, 1.5), "p must be .*1.5"),
        (lambda: fixed_probability(10, 10, -0.1), "p must be .*-0.1"),
        (lambda: fixed_probability(0, 10, 0.1), "n_pre .*0"),
        (lambda: fixed_probability(10, -3, 0.1), "n_post .*-3"),
        (lambda: fixed_probability(10, 10, 0.1, dtype=torch.float64), "dtype"),
        (lambda: fixed_probability(10, 10, 0.1, 200, dtype=torch.int8), "weight .*200"),
        (lambda: fixed_probability(10, 10, 0.1, 1.5, dtype=torch.int8), "weight .*1.5"),
        (lambda: fixed_probability(10, 10, 0.1, float("nan")), "weight"),
        (lambda: fixed_indegree(10, 10, 10), "k must be .*10"),
        (lambda: fixed_indegree(10, 5, -1), "k must be .*-1"),
        (lambda: from_edges(torch.tensor([0.0]), torch.tensor([1]), 1.0, 2, 2), "pre must be"),
        (lambda: from_edges(torch.tensor([0, 1]), torch.tensor([1]), 1.0, 2, 2), "same length"),
        (lambda: from_edges(torch.tensor([0]), torch.tensor([1]), torch.ones(3), 2, 2), "weight tensor"),
        (lambda: fixed_probability(10, 10, 0.1, seed=1, generator=torch.Generator()), "seed"),
        (lambda: bytes_per_synapse(torch.zeros(3, 3)), "csr must be"),
    ],
)
def test_builder_errors_name_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_validate_structure_errors():
    crow = torch.tensor([0, 2, 3], dtype=torch.int32)
    val = torch.ones(3)
    with pytest.raises(ValueError, match="strictly increasing.*row 0"):
        validate_structure(crow, torch.tensor([2, 1, 0], dtype=torch.int32), val, 2, 3)
    with pytest.raises(ValueError, match="col entries"):
        validate_structure(crow, torch.tensor([0, 1, 3], dtype=torch.int32), val, 2, 3)
    with pytest.raises(ValueError, match="crow must be a 1-d int32"):
        validate_structure(crow.long(), torch.tensor([0, 1, 0], dtype=torch.int32), val, 2, 3)
    with pytest.raises(ValueError, match="crow must start at 0 and end at nnz"):
        col = torch.tensor([0, 1, 0], dtype=torch.int32)
        validate_structure(torch.tensor([0, 2, 2], dtype=torch.int32), col, val, 2, 3)
    with pytest.raises(ValueError, match="values must"):
        validate_structure(crow, torch.tensor([0, 1, 0], dtype=torch.int32), val.double(), 2, 3)
