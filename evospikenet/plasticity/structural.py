r"""Structural plasticity: buffered synapse creation and deletion, applied to the CSR in one batch.

Rebuilding a ``torch.sparse_csr_tensor`` costs ``O(nnz)``, so edits are never applied one by one.
``request_add(pre, post, w)`` and ``request_remove(pre, post)`` only append to a buffer; nothing is
visible in the projection until ``apply()``, which resolves the buffer and rebuilds ``crow``/``col``/
``values`` in a single vectorised pass (sort of the merged keys ``pre * n_post + post``, ``bincount`` for
the row pointers). The rule ``StructuralPlasticity`` calls it in ``after_step`` when ``t % every == 0``.

Buffer semantics (per synapse ``(pre, post)``, requests resolved in the order they were made, the LAST
request of an apply window wins):

* add of a missing synapse creates it with weight ``w``;
* add of an existing synapse sets its weight to ``w`` (an upsert; the count ``updated`` records it);
* remove of an existing synapse deletes it;
* remove of a missing synapse does nothing (counted as ``remove_missing``, no error);
* remove-then-add leaves the synapse present with the new ``w``; add-then-remove leaves it absent.

Optional automatic edits at each apply: pruning queues the removal of every synapse with
``|w| < prune_below`` and growth queues up to ``grow`` new synapses drawn uniformly among the missing
``(pre, post)`` pairs (no autapses on a projection of a population onto itself unless allowed) with
weight ``w_init``. They are queued AHEAD of the explicit requests of the window, so an explicit request
on the same synapse wins. After ``apply`` the CSR is valid: int32 ``crow`` non-decreasing from 0 to nnz,
int32 ``col`` strictly increasing within each row.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from .._validate import check_non_negative
from ._common import csr_rows, get_projection

__all__ = ["EditBuffer", "ResolvedEdits", "apply_edits", "remap_entries", "StructuralPlasticity"]


class ResolvedEdits(NamedTuple):
    """The net effect of a buffer: disjoint sets of synapses to set and to delete (sorted keys)."""

    set_keys: torch.Tensor  # (n_set,) int64 sorted unique keys pre * n_post + post to create or update
    set_w: torch.Tensor  # (n_set,) weights for set_keys, in the projection's value dtype
    del_keys: torch.Tensor  # (n_del,) int64 sorted unique keys to delete


class EditBuffer:
    """Pending synapse edits of one ``(n_pre, n_post)`` projection with values of ``dtype``."""

    def __init__(self, n_pre: int, n_post: int, dtype: torch.dtype = torch.float32, device=None):
        for name, v in (("n_pre", n_pre), ("n_post", n_post)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        self.n_pre, self.n_post, self.dtype = n_pre, n_post, dtype
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self._ops: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (keys, w, is_add)

    def __len__(self) -> int:
        """Number of pending requests (one per synapse named, before resolution)."""
        return sum(k.numel() for k, _, _ in self._ops)

    def _keys(self, pre, post) -> torch.Tensor:
        pre = torch.as_tensor(pre, device=self.device).reshape(-1)
        post = torch.as_tensor(post, device=self.device).reshape(-1)
        if pre.is_floating_point() or post.is_floating_point():
            raise ValueError(f"pre and post must be integer indices, got {pre.dtype} and {post.dtype}")
        if pre.shape != post.shape:
            raise ValueError(f"pre and post must have the same length, got {pre.numel()} and {post.numel()}")
        pre, post = pre.to(torch.int64), post.to(torch.int64)
        for name, idx, n in (("pre", pre, self.n_pre), ("post", post, self.n_post)):
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= n):
                raise ValueError(
                    f"{name} indices must lie in [0, {n}), got [{int(idx.min())}, {int(idx.max())}]"
                )
        return pre * self.n_post + post

    def _weights(self, w, n: int) -> torch.Tensor:
        w = torch.as_tensor(w, device=self.device)
        if w.numel() == 1:
            w = w.reshape(1).expand(n)
        if w.shape != (n,):
            raise ValueError(f"w must be a scalar or have one value per synapse ({n},), got {tuple(w.shape)}")
        if self.dtype == torch.int8:
            if w.is_floating_point() and not bool((w == w.round()).all()):
                raise ValueError(f"w must hold integers for an int8 projection, got {w.tolist()[:4]}")
            if n and (int(w.min()) < -128 or int(w.max()) > 127):
                raise ValueError(
                    f"w must lie in [-128, 127] for an int8 projection, got [{w.min()}, {w.max()}]"
                )
        elif n and not bool(torch.isfinite(w.to(torch.float64)).all()):
            raise ValueError("w must be finite")
        return w.to(self.dtype)

    def request_add(self, pre, post, w) -> None:
        """Queue the creation (or weight update) of synapses ``pre[k] -> post[k]`` with weights ``w``."""
        keys = self._keys(pre, post)
        self._ops.append((keys, self._weights(w, keys.numel()), torch.ones_like(keys, dtype=torch.bool)))

    def request_remove(self, pre, post) -> None:
        """Queue the deletion of synapses ``pre[k] -> post[k]`` (missing ones are ignored at apply)."""
        keys = self._keys(pre, post)
        w = torch.zeros(keys.numel(), dtype=self.dtype, device=self.device)
        self._ops.append((keys, w, torch.zeros_like(keys, dtype=torch.bool)))

    def prepend(self, other: EditBuffer) -> None:
        """Put ``other``'s requests ahead of this buffer's (they lose to this buffer's on conflicts)."""
        self._ops = other._ops + self._ops

    def clear(self) -> None:
        """Drop every pending request."""
        self._ops = []

    def resolve(self) -> ResolvedEdits:
        """Net effect of the pending requests, the last request per synapse winning."""
        dev = self.device
        if not self._ops:
            empty = torch.zeros(0, dtype=torch.int64, device=dev)
            return ResolvedEdits(empty, torch.zeros(0, dtype=self.dtype, device=dev), empty)
        keys = torch.cat([k for k, _, _ in self._ops])  # (R,) in request order
        w = torch.cat([v for _, v, _ in self._ops])
        is_add = torch.cat([a for _, _, a in self._ops])
        sorted_keys, order = torch.sort(keys, stable=True)  # equal keys keep request order
        uniq, counts = torch.unique_consecutive(sorted_keys, return_counts=True)
        last = order[counts.cumsum(0) - 1]  # index of the last request of each synapse
        add = is_add[last]
        return ResolvedEdits(uniq[add], w[last][add], uniq[~add])


def apply_edits(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, n_post: int, edits: ResolvedEdits
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, int]]:
    """Rebuild CSR arrays with ``edits`` applied, in one batched pass; returns ``crow, col, values, stats``.

    ``crow``/``col`` must describe a valid CSR (sorted, unique columns per row). The result has int32
    indices, values of the input dtype, and ``stats`` counts ``added``, ``updated``, ``removed``,
    ``remove_missing``.
    """
    n_pre = crow.numel() - 1
    keys = csr_rows(crow) * n_post + col.to(torch.int64)  # (nnz,) ascending for a valid CSR
    set_keys, set_w, del_keys = edits.set_keys, edits.set_w.to(values.dtype), edits.del_keys
    deleted = torch.isin(keys, del_keys)
    updated = torch.isin(keys, set_keys)
    vals = values.clone()
    if bool(updated.any()):
        vals[updated] = set_w[torch.searchsorted(set_keys, keys[updated])]
    new = ~torch.isin(set_keys, keys)
    all_keys = torch.cat([keys[~deleted], set_keys[new]])
    all_vals = torch.cat([vals[~deleted], set_w[new]])
    all_keys, order = torch.sort(all_keys)
    all_vals = all_vals[order]
    rows = torch.div(all_keys, n_post, rounding_mode="floor")
    new_crow = torch.zeros(n_pre + 1, dtype=torch.int64, device=crow.device)
    new_crow[1:] = torch.bincount(rows, minlength=n_pre).cumsum(0)
    n_removed = int(deleted.sum())
    stats = {
        "added": int(new.sum()),
        "updated": int(updated.sum()),
        "removed": n_removed,
        "remove_missing": del_keys.numel() - n_removed,
    }
    return new_crow.to(torch.int32), (all_keys - rows * n_post).to(torch.int32), all_vals, stats


def remap_entries(
    old_crow: torch.Tensor,
    old_col: torch.Tensor,
    old_data: torch.Tensor,
    new_crow: torch.Tensor,
    new_col: torch.Tensor,
    fill: torch.Tensor,
) -> torch.Tensor:
    """Carry per-synapse data (nnz_old,) over to a new CSR structure: surviving synapses keep ``old_data``,
    new ones take ``fill`` (nnz_new,)."""
    old_keys = (csr_rows(old_crow) << 32) | old_col.to(torch.int64)  # (nnz_old,) ascending
    new_keys = (csr_rows(new_crow) << 32) | new_col.to(torch.int64)  # (nnz_new,)
    out = fill.clone()
    if old_keys.numel() == 0 or new_keys.numel() == 0:
        return out
    pos = torch.searchsorted(old_keys, new_keys).clamp_(max=old_keys.numel() - 1)
    hit = old_keys[pos] == new_keys
    out[hit] = old_data[pos[hit]].to(out.dtype)
    return out


class StructuralPlasticity:
    """Buffered structural plasticity on one projection, applied every ``every`` steps.

    Arguments: ``projection`` name; ``every`` steps between rebuilds (``t % every == 0``);
    ``prune_below`` weight magnitude under which synapses are pruned (None: no pruning); ``grow`` number
    of random new synapses proposed per rebuild; ``w_init`` their weight; ``autapses`` whether growth may
    create ``i -> i`` on a projection of a population onto itself; ``seed`` for the growth draws.
    """

    def __init__(
        self,
        projection: str,
        every: int = 100,
        prune_below: float | None = None,
        grow: int = 0,
        w_init: float = 0.0,
        autapses: bool = False,
        seed: int | None = None,
    ):
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        if not isinstance(grow, int) or isinstance(grow, bool) or grow < 0:
            raise ValueError(f"grow must be a non-negative integer, got {grow!r}")
        if prune_below is not None:
            check_non_negative("prune_below", prune_below)
        self.projection, self.every, self.prune_below, self.grow = projection, every, prune_below, grow
        self.w_init, self.autapses, self.seed = w_init, autapses, seed
        self.buffer: EditBuffer | None = None
        self.stats = {"added": 0, "updated": 0, "removed": 0, "remove_missing": 0, "applies": 0}
        self._gen: torch.Generator | None = None
        self._proj = None

    def bind(self, net) -> None:
        """Create the edit buffer for the projection."""
        proj = get_projection(net, self.projection)
        self._proj, self._self_proj = proj, proj.pre is proj.post
        self.buffer = EditBuffer(proj.pre.n, proj.post.n, proj.values.dtype, proj.values.device)
        self.buffer._weights(self.w_init, 1)  # validates w_init against the value dtype
        self._gen = torch.Generator(device=proj.values.device)
        self._gen.manual_seed(self.seed if self.seed is not None else int(torch.initial_seed()) % 2**63)

    def request_add(self, pre, post, w) -> None:
        """Queue synapses to create (or update); invisible until the next apply."""
        self._need_bound().request_add(pre, post, w)

    def request_remove(self, pre, post) -> None:
        """Queue synapses to delete; invisible until the next apply."""
        self._need_bound().request_remove(pre, post)

    def _need_bound(self) -> EditBuffer:
        if self.buffer is None:
            raise ValueError(
                f"rule for projection {self.projection!r} is not bound to a network yet (call bind)"
            )
        return self.buffer

    def _automatic(self, proj) -> EditBuffer:
        auto = EditBuffer(proj.pre.n, proj.post.n, proj.values.dtype, proj.values.device)
        if self.prune_below is not None and proj.values.numel():
            weak = proj.values.abs() < self.prune_below  # (nnz,)
            if bool(weak.any()):
                auto.request_remove(csr_rows(proj.crow)[weak], proj.col[weak])
        if self.grow > 0:
            n_pre, n_post, dev = proj.pre.n, proj.post.n, proj.values.device
            pre = torch.randint(n_pre, (self.grow,), generator=self._gen, device=dev)
            post = torch.randint(n_post, (self.grow,), generator=self._gen, device=dev)
            keys = torch.unique(pre * n_post + post)
            existing = csr_rows(proj.crow) * n_post + proj.col.to(torch.int64)
            keep = ~torch.isin(keys, existing)
            if self._self_proj and not self.autapses:
                keep &= keys // n_post != keys % n_post
            keys = keys[keep]
            if keys.numel():
                auto.request_add(keys // n_post, keys % n_post, self.w_init)
        return auto

    def apply(self) -> dict[str, int]:
        """Resolve the buffer (plus pruning and growth) and rebuild the projection's CSR once."""
        buf, proj = self._need_bound(), self._proj
        buf.prepend(self._automatic(proj))
        crow, col, values, stats = apply_edits(proj.crow, proj.col, proj.values, proj.post.n, buf.resolve())
        buf.clear()
        proj.replace_structure(crow, col, values)
        for k, v in stats.items():
            self.stats[k] += v
        self.stats["applies"] += 1
        return stats

    def before_step(self, net, t, currents) -> None:
        """Nothing to do before the neuron step."""

    def after_step(self, net, t, spikes) -> None:
        """Apply the buffered edits when ``t % every == 0``."""
        if t % self.every == 0:
            self.apply()
