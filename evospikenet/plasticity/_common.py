"""Helpers shared by the plasticity rules: CSR indexing for event-driven updates, checks, network look-ups."""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._validate import check_non_negative, check_positive

__all__ = [
    "csr_rows",
    "CSRIndex",
    "csr_index",
    "pair_terms",
    "check_stdp_constants",
    "get_projection",
    "get_population",
    "check_spikes",
    "MODES",
]

MODES = ("all_to_all", "nearest")  # STDP trace modes


def csr_rows(crow: torch.Tensor) -> torch.Tensor:
    """Row (presynaptic) index of every stored entry, int64 (nnz,), from the row pointers (n_pre + 1,)."""
    counts = crow[1:].to(torch.int64) - crow[:-1].to(torch.int64)  # (n_pre,)
    return torch.repeat_interleave(torch.arange(counts.numel(), device=crow.device), counts)


def get_projection(net, name: str):
    """``net.projections[name]`` or a ``ValueError`` naming the missing projection."""
    projections = getattr(net, "projections", {})
    if name not in projections:
        raise ValueError(
            f"projection must name a projection of the network, got {name!r} (have {list(projections)})"
        )
    return projections[name]


def get_population(net, name: str):
    """``net.populations[name]`` or a ``ValueError`` naming the missing population."""
    populations = getattr(net, "populations", {})
    if name not in populations:
        raise ValueError(
            f"population must name a population of the network, got {name!r} (have {list(populations)})"
        )
    return populations[name]


def check_spikes(name: str, s: torch.Tensor, n: int) -> torch.Tensor:
    """Spikes must be a (B, n) tensor; a (n,) tensor is read as B = 1."""
    if not isinstance(s, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(s).__name__}")
    if s.ndim == 1:
        s = s.unsqueeze(0)
    if s.ndim != 2 or s.shape[1] != n:
        raise ValueError(f"{name} must have shape (B, {n}), got {tuple(s.shape)}")
    return s


class CSRIndex(NamedTuple):
    """Cached views of a CSR structure for event-driven updates (rebuild after a structure change)."""

    row: torch.Tensor  # (nnz,) int32 presynaptic index of every entry
    cptr: torch.Tensor  # (n_post + 1,) int64 column pointers of the transposed (CSC) order
    perm: torch.Tensor  # (nnz,) int32 entry positions sorted by column (CSC order)


def csr_index(crow: torch.Tensor, col: torch.Tensor, n_post: int) -> CSRIndex:
    """Row of every entry plus the column-sorted permutation, so both STDP terms touch only active entries."""
    col_l = col.to(torch.int64)
    cptr = torch.zeros(n_post + 1, dtype=torch.int64, device=col.device)
    cptr[1:] = torch.bincount(col_l, minlength=n_post).cumsum(0)
    perm = torch.sort(col, stable=True).indices.to(torch.int32)
    return CSRIndex(csr_rows(crow).to(torch.int32), cptr, perm)  # 8 bytes per synapse


def segments(ptr: torch.Tensor, seg: torch.Tensor) -> torch.Tensor:
    """Positions ``ptr[k] .. ptr[k+1]-1`` of every segment ``k`` in ``seg``, concatenated (int64)."""
    start = ptr[seg].to(torch.int64)
    count = ptr[seg + 1].to(torch.int64) - start
    ends = count.cumsum(0)
    total = int(ends[-1]) if ends.numel() else 0
    return torch.repeat_interleave(start - (ends - count), count, output_size=total) + torch.arange(
        total, device=ptr.device
    )


def pair_terms(crow, col, index: CSRIndex, pre, post, x_pre, x_post):
    """Per-entry sums over the batch of ``x_pre s_post`` (potentiation) and ``s_pre x_post`` (depression),
    computed only for the entries onto a spiking post neuron (resp. out of a spiking pre neuron), found
    through the column pointers (resp. row pointers): the cost is the number of synaptic events."""
    pot_idx = depr_idx = None
    pot = depr = None
    post_on = (post != 0).any(0).nonzero().squeeze(1)  # (k,) post neurons that fired in some sample
    if post_on.numel():
        pot_idx = index.perm[segments(index.cptr, post_on)]  # entries onto those neurons
        r, c = index.row[pot_idx], col[pot_idx]
        pot = (x_pre[:, r] * post[:, c].to(x_pre.dtype)).sum(0)
    pre_on = (pre != 0).any(0).nonzero().squeeze(1)  # (k,) pre neurons that fired
    if pre_on.numel():
        depr_idx = segments(crow, pre_on)  # entries out of those neurons (their rows)
        r, c = index.row[depr_idx], col[depr_idx]
        depr = (pre[:, r].to(x_post.dtype) * x_post[:, c]).sum(0)
    return pot_idx, pot, depr_idx, depr


def check_stdp_constants(a_plus, a_minus, tau_plus, tau_minus, dt, mode) -> None:
    """Shared argument checks of the float and integer STDP parameters."""
    check_non_negative("a_plus", a_plus)
    check_non_negative("a_minus", a_minus)
    check_positive("tau_plus", tau_plus)
    check_positive("tau_minus", tau_minus)
    check_positive("dt", dt)
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
