r"""Sparse connectivity as ``torch.sparse_csr_tensor``: builders, validation and memory figures.

A projection from ``n_pre`` to ``n_post`` neurons is one CSR matrix ``W`` of shape ``(n_pre, n_post)``:
row ``i`` holds the OUTGOING synapses of presynaptic neuron ``i`` (so a spike of ``i`` touches one contiguous
row), columns are sorted and unique within a row, and indices are int32 (``crow`` of length ``n_pre + 1``,
``col`` of length ``nnz``). Values are float32 on the float path and int8 on the integer path, so one stored
synapse costs

.. math::

    \text{bytes/synapse} = b_{value} + 4 + 4 (n_{pre} + 1) / \mathrm{nnz}

which is ``5 + 4 (n_pre + 1) / nnz`` (at most 5.1 once a row holds 40 synapses on average) for int8.

Builders are vectorised and chunked (no Python loop over synapses): ``fixed_probability`` draws the gaps
between successive synapses of the flattened ``n_pre * n_post`` grid from a geometric distribution, which
yields each possible synapse independently with probability ``p`` and comes out already sorted;
``fixed_indegree`` draws ``k`` distinct presynaptic partners per postsynaptic neuron by rejection of
duplicates; ``from_edges`` sorts and validates an explicit edge list.

``weight`` is a scalar, a tensor of ``nnz`` values in CSR order, or a callable ``weight(n, generator) ->
tensor (n,)`` for random weights. On the integer path every weight must be an integer in ``[-128, 127]``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import torch

from .._validate import check_probability

__all__ = [
    "VALUE_DTYPES",
    "make_csr",
    "validate_structure",
    "fixed_probability",
    "fixed_indegree",
    "from_edges",
    "bytes_per_synapse",
    "csr_parts",
    "out_degree",
    "transpose_csr",
]

VALUE_DTYPES = (torch.float32, torch.int8)  # float path, integer path
_CHUNK = 1 << 22  # synapses drawn per chunk by the builders

Weight = float | int | torch.Tensor | Callable[[int, torch.Generator | None], torch.Tensor]


def _check_size(name: str, value) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer (no empty population), got {value!r}")
    return value


def _check_dtype(dtype) -> torch.dtype:
    if dtype not in VALUE_DTYPES:
        raise ValueError(f"dtype must be torch.float32 or torch.int8, got {dtype!r}")
    return dtype


def _generator(generator: torch.Generator | None, seed: int | None, device) -> torch.Generator | None:
    if generator is not None and seed is not None:
        raise ValueError(f"give either generator or seed, not both (seed={seed!r})")
    if seed is not None:
        g = torch.Generator(device=torch.device(device) if device is not None else "cpu")
        g.manual_seed(int(seed))
        return g
    return generator


def _weights(weight: Weight, nnz: int, dtype: torch.dtype, generator, device) -> torch.Tensor:
    """Materialise ``weight`` as a (nnz,) tensor of ``dtype`` on ``device``."""
    if callable(weight) and not isinstance(weight, torch.Tensor):
        w = weight(nnz, generator)
        if not isinstance(w, torch.Tensor) or w.shape != (nnz,):
            raise ValueError(f"weight callable must return a tensor of shape ({nnz},), got {w!r:.80}")
    elif isinstance(weight, torch.Tensor) and weight.ndim > 0:
        if weight.shape != (nnz,):
            raise ValueError(
                f"weight tensor must have shape ({nnz},) (one per synapse), got {tuple(weight.shape)}"
            )
        w = weight
    else:
        val = weight.item() if isinstance(weight, torch.Tensor) else weight
        if not isinstance(val, (int, float)) or isinstance(val, bool) or not math.isfinite(val):
            raise ValueError(f"weight must be a finite number, tensor or callable, got {weight!r}")
        if dtype == torch.int8 and (val != int(val) or not -128 <= val <= 127):
            raise ValueError(f"weight must be an integer in [-128, 127] for dtype int8, got {weight!r}")
        return torch.full((nnz,), val, dtype=dtype, device=device)
    w = w.to(device)
    if dtype == torch.int8:
        if w.is_floating_point():
            if not bool(torch.isfinite(w).all()) or not bool((w == w.round()).all()):
                raise ValueError("weight values must be integers for dtype int8")
        if nnz and (int(w.min()) < -128 or int(w.max()) > 127):
            raise ValueError(
                f"weight values must lie in [-128, 127] for dtype int8, got [{w.min()}, {w.max()}]"
            )
    elif not bool(torch.isfinite(w.to(torch.float32)).all()):
        raise ValueError("weight values contain NaN or inf")
    return w.to(dtype)


def make_csr(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n_pre: int, n_post: int
) -> torch.Tensor:
    """Wrap (already validated) CSR arrays in a ``torch.sparse_csr_tensor`` without copying them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "sparse CSR support is in beta"
        return torch.sparse_csr_tensor(crow, col, values, (n_pre, n_post), check_invariants=False)


def validate_structure(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n_pre: int, n_post: int
) -> None:
    """Check CSR invariants; raise ``ValueError`` naming the broken one.

    ``crow`` int32 (n_pre + 1,) starting at 0, non-decreasing, ending at nnz; ``col`` int32 (nnz,) in
    ``[0, n_post)`` strictly increasing within each row; ``values`` (nnz,) float32 or int8.
    """
    for name, t in (("crow", crow), ("col", col)):
        if not isinstance(t, torch.Tensor) or t.dtype != torch.int32 or t.ndim != 1:
            raise ValueError(f"{name} must be a 1-d int32 tensor, got {getattr(t, 'dtype', type(t))}")
    if not isinstance(values, torch.Tensor) or values.ndim != 1 or values.dtype not in VALUE_DTYPES:
        raise ValueError(
            f"values must be a 1-d float32 or int8 tensor, got {getattr(values, 'dtype', type(values))}"
        )
    if crow.numel() != n_pre + 1:
        raise ValueError(f"crow must have n_pre + 1 = {n_pre + 1} entries, got {crow.numel()}")
    nnz = col.numel()
    if values.numel() != nnz:
        raise ValueError(f"values must have nnz = {nnz} entries, got {values.numel()}")
    if int(crow[0]) != 0 or int(crow[-1]) != nnz:
        raise ValueError(f"crow must start at 0 and end at nnz={nnz}, got {int(crow[0])} and {int(crow[-1])}")
    counts = crow[1:].to(torch.int64) - crow[:-1]
    if bool((counts < 0).any()):
        raise ValueError("crow must be non-decreasing")
    if nnz == 0:
        return
    if int(col.min()) < 0 or int(col.max()) >= n_post:
        raise ValueError(f"col entries must lie in [0, {n_post}), got [{int(col.min())}, {int(col.max())}]")
    row = torch.repeat_interleave(torch.arange(n_pre, device=col.device), counts)
    unsorted = (row[1:] == row[:-1]) & (col[1:] <= col[:-1])
    if bool(unsorted.any()):
        i = int(row[1:][unsorted][0])
        raise ValueError(
            f"col must be strictly increasing within each row (row {i} is unsorted or has duplicates)"
        )


def _csr_from_sorted_flat(flat: torch.Tensor, n_pre: int, n_post: int) -> tuple[torch.Tensor, torch.Tensor]:
    """crow, col from sorted unique flat indices ``pre * n_post + post``."""
    rows = torch.div(flat, n_post, rounding_mode="floor")
    crow = torch.zeros(n_pre + 1, dtype=torch.int64, device=flat.device)
    crow[1:] = torch.bincount(rows, minlength=n_pre).cumsum(0)
    return crow.to(torch.int32), (flat - rows * n_post).to(torch.int32)


def _check_nnz(nnz: int) -> None:
    if nnz >= 2**31:
        raise ValueError(f"nnz must stay below 2**31 for int32 indices, got {nnz}")


def fixed_probability(
    n_pre: int,
    n_post: int,
    p: float,
    weight: Weight = 1.0,
    *,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    autapses: bool = False,
    device=None,
) -> torch.Tensor:
    """Each synapse ``(i, j)`` exists independently with probability ``p``.

    ``autapses=False`` removes the diagonal ``i == j`` when ``n_pre == n_post`` (meant for a population
    projecting onto itself; pass ``autapses=True`` between two distinct populations of equal size).
    Memory: one int64 chunk of ``2**22`` draws plus the int32/value output, so 1e8 synapses fit easily.
    """
    _check_size("n_pre", n_pre)
    _check_size("n_post", n_post)
    check_probability("p", p)
    _check_dtype(dtype)
    g = _generator(generator, seed, device)
    device = torch.device(device) if device is not None else torch.device("cpu")
    total = n_pre * n_post
    drop_diag = not autapses and n_pre == n_post
    counts = torch.zeros(n_pre, dtype=torch.int64, device=device)  # synapses per row
    cols: list[torch.Tensor] = []  # int32 column chunks, already sorted
    nnz = 0

    def emit(idx: torch.Tensor) -> None:  # idx: sorted int64 flat indices pre * n_post + post
        nonlocal nnz
        rows = torch.div(idx, n_post, rounding_mode="floor")
        post = idx - rows * n_post
        if drop_diag:
            keep = rows != post
            rows, post = rows[keep], post[keep]
        counts.add_(torch.bincount(rows, minlength=n_pre))
        cols.append(post.to(torch.int32))
        nnz += post.numel()
        _check_nnz(nnz)

    if p == 1.0:
        for r0 in range(0, n_pre, max(1, _CHUNK // n_post)):
            emit(
                torch.arange(r0 * n_post, min(total, (r0 + max(1, _CHUNK // n_post)) * n_post), device=device)
            )
    elif p > 0.0:
        log_q = math.log1p(-p)
        pos = -1  # flat index of the last synapse drawn
        while True:
            expect = (total - 1 - pos) * p
            size = int(min(_CHUNK, expect + 6 * math.sqrt(expect) + 64))
            u = torch.rand(size, dtype=torch.float64, generator=g, device=device)
            idx = (
                torch.floor_(torch.log1p_(u.neg_()).div_(log_q)).to(torch.int64).add_(1)
            )  # geometric(p) >= 1
            idx = idx.cumsum_(0).add_(pos)
            del u
            pos = int(idx[-1])
            done = pos >= total
            emit(idx[idx < total] if done else idx)
            if done:
                break
    crow = torch.zeros(n_pre + 1, dtype=torch.int64, device=device)
    crow[1:] = counts.cumsum(0)
    col = torch.cat(cols) if cols else torch.zeros(0, dtype=torch.int32, device=device)
    return make_csr(crow.to(torch.int32), col, _weights(weight, nnz, dtype, g, device), n_pre, n_post)


def _distinct_per_row(n_rows: int, k: int, n: int, g, device) -> torch.Tensor:
    """(n_rows, k) int64: ``k`` distinct values of ``[0, n)`` per row, uniformly over k-subsets, sorted."""
    if 2 * k > n:  # dense regime: top-k of uniform keys
        keys = torch.rand(n_rows, n, generator=g, device=device)
        return keys.topk(k, dim=1).indices.sort(dim=1).values
    x = torch.randint(0, n, (n_rows, k), generator=g, device=device).sort(dim=1).values
    while True:  # redraw duplicates until every row holds k distinct values (few rounds for k << n)
        dup = torch.zeros_like(x, dtype=torch.bool)
        dup[:, 1:] = x[:, 1:] == x[:, :-1]
        n_dup = int(dup.sum())
        if n_dup == 0:
            return x
        x[dup] = torch.randint(0, n, (n_dup,), generator=g, device=device)
        x = x.sort(dim=1).values


def fixed_indegree(
    n_pre: int,
    n_post: int,
    k: int,
    weight: Weight = 1.0,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    autapses: bool = False,
) -> torch.Tensor:
    """Every postsynaptic neuron receives exactly ``k`` synapses from distinct presynaptic neurons.

    ``autapses=False`` excludes ``i == j`` when ``n_pre == n_post`` (then ``k <= n_pre - 1``).
    """
    _check_size("n_pre", n_pre)
    _check_size("n_post", n_post)
    _check_dtype(dtype)
    drop_diag = not autapses and n_pre == n_post
    k_max = n_pre - 1 if drop_diag else n_pre
    if not isinstance(k, int) or isinstance(k, bool) or not 0 <= k <= k_max:
        raise ValueError(f"k must be an integer in [0, {k_max}], got {k!r}")
    _check_nnz(n_post * k)
    g = _generator(generator, seed, device)
    device = torch.device(device) if device is not None else torch.device("cpu")
    # presynaptic partners of each postsynaptic neuron, drawn in row chunks, kept as int32 (n_post * k,)
    rows_per_chunk = max(1, _CHUNK // max(k, k_max if 2 * k > k_max else 1))
    parts = []
    for r0 in range(0, n_post, rows_per_chunk):
        r1 = min(n_post, r0 + rows_per_chunk)
        pre = _distinct_per_row(r1 - r0, k, k_max, g, device)  # (rows, k) int64
        if drop_diag:
            post = torch.arange(r0, r1, device=device).unsqueeze(1)
            pre += pre >= post  # skip i == j: values >= j shift up by one
        parts.append(pre.reshape(-1).to(torch.int32))
    pre = torch.cat(parts) if len(parts) != 1 else parts[0]  # entry e belongs to post neuron e // k
    del parts
    # a stable sort by pre keeps the post-major order, so columns come out sorted within each row
    order = torch.sort(pre, stable=True).indices
    crow = torch.zeros(n_pre + 1, dtype=torch.int64, device=device)
    crow[1:] = torch.bincount(pre, minlength=n_pre).cumsum(0)
    del pre
    col = torch.div(order, max(k, 1), rounding_mode="floor").to(torch.int32)
    del order
    return make_csr(crow.to(torch.int32), col, _weights(weight, col.numel(), dtype, g, device), n_pre, n_post)


def from_edges(
    pre: torch.Tensor,
    post: torch.Tensor,
    weight: Weight,
    n_pre: int,
    n_post: int,
    dtype: torch.dtype = torch.float32,
    *,
    device=None,
) -> torch.Tensor:
    """CSR from an edge list ``pre[e] -> post[e]`` with ``weight`` (scalar or per-edge tensor, in edge order).

    Edges are sorted by (pre, post); a duplicate edge raises ``ValueError``.
    """
    _check_size("n_pre", n_pre)
    _check_size("n_post", n_post)
    _check_dtype(dtype)
    pre, post = torch.as_tensor(pre), torch.as_tensor(post)
    for name, t in (("pre", pre), ("post", post)):
        if t.ndim != 1 or t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(
                f"{name} must be a 1-d integer tensor, got dtype {t.dtype} shape {tuple(t.shape)}"
            )
    if pre.numel() != post.numel():
        raise ValueError(f"pre and post must have the same length, got {pre.numel()} and {post.numel()}")
    device = torch.device(device) if device is not None else pre.device
    pre, post = pre.to(device, torch.int64), post.to(device, torch.int64)
    nnz = pre.numel()
    _check_nnz(nnz)
    if nnz and (int(pre.min()) < 0 or int(pre.max()) >= n_pre):
        raise ValueError(f"pre indices must lie in [0, {n_pre}), got [{int(pre.min())}, {int(pre.max())}]")
    if nnz and (int(post.min()) < 0 or int(post.max()) >= n_post):
        raise ValueError(
            f"post indices must lie in [0, {n_post}), got [{int(post.min())}, {int(post.max())}]"
        )
    w = _weights(weight, nnz, dtype, None, device)
    flat, order = (pre * n_post + post).sort(stable=True)
    dup = flat[1:] == flat[:-1]
    if bool(dup.any()):
        f = int(flat[1:][dup][0])
        raise ValueError(f"duplicate edge in pre/post: ({f // n_post}, {f % n_post}) appears more than once")
    crow, col = _csr_from_sorted_flat(flat, n_pre, n_post)
    return make_csr(crow, col, w[order].contiguous(), n_pre, n_post)


def csr_parts(csr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The CSR's own ``crow``, ``col`` and ``values`` tensors (they alias its storage)."""
    if not isinstance(csr, torch.Tensor) or csr.layout != torch.sparse_csr or csr.ndim != 2:
        raise ValueError(
            f"csr must be a 2-d torch.sparse_csr_tensor, got {getattr(csr, 'layout', type(csr))}"
        )
    return csr.crow_indices(), csr.col_indices(), csr.values()


def out_degree(csr: torch.Tensor) -> torch.Tensor:
    """(n_pre,) int64 number of outgoing synapses per presynaptic neuron."""
    crow = csr_parts(csr)[0].to(torch.int64)
    return crow[1:] - crow[:-1]


def bytes_per_synapse(csr: torch.Tensor) -> float:
    """(value bytes + column-index bytes + row-pointer bytes) / nnz of a CSR tensor."""
    crow, col, val = csr_parts(csr)
    nnz = col.numel()
    if nnz == 0:
        raise ValueError("csr has no synapses (nnz = 0); bytes per synapse is undefined")
    total = val.numel() * val.element_size() + nnz * col.element_size() + crow.numel() * crow.element_size()
    return total / nnz


def transpose_csr(csr: torch.Tensor) -> torch.Tensor:
    """The CSR of ``W^T`` (n_post, n_pre) with int32 indices: one stable sort of the column indices.

    Rows of ``W`` are already sorted, so a stable sort by column keeps the presynaptic indices ascending
    within each new row.
    """
    crow, col, val = csr_parts(csr)
    n_pre, n_post = csr.shape
    counts = crow[1:].to(torch.int64) - crow[:-1]
    rows = torch.repeat_interleave(torch.arange(n_pre, device=col.device, dtype=torch.int32), counts)
    order = torch.sort(col, stable=True).indices
    crow_t = torch.zeros(n_post + 1, dtype=torch.int64, device=col.device)
    crow_t[1:] = torch.bincount(col, minlength=n_post).cumsum(0)
    return make_csr(crow_t.to(torch.int32), rows[order], val[order], n_post, n_pre)
