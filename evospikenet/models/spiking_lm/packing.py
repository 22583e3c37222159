"""Packed sequences: several texts in one row, told apart by ``position_ids`` that restart at 0.

The convention is the one of ``transformers``' ``DataCollatorWithFlattening``: a row ``[a0 a1 a2 b0 b1 pad]``
carries ``position_ids = [0 1 2 0 1 0]`` and ``attention_mask = [1 1 1 1 1 0]``. Each packed text gets the
positions it would have alone, attends only to its own earlier tokens, and (for classification) is pooled on
its own, so a packed batch gives the same outputs as the padded one while it computes no padding: serving
packs short texts into rows of ``context_length`` tokens (``pack_sequences``).
"""

from __future__ import annotations

import torch

__all__ = ["check_position_ids", "segment_ids", "pool_segments", "pack_sequences"]


def check_position_ids(
    position_ids: torch.Tensor, input_ids: torch.Tensor, mask, context_length: int
) -> None:
    """Raise ``ValueError`` unless ``position_ids`` (B, L) restart at 0 and count up by one inside a text."""
    if not isinstance(position_ids, torch.Tensor) or position_ids.shape != input_ids.shape:
        got = (
            tuple(position_ids.shape)
            if isinstance(position_ids, torch.Tensor)
            else type(position_ids).__name__
        )
        raise ValueError(f"position_ids must have the shape of input_ids {tuple(input_ids.shape)}, got {got}")
    p = position_ids.long()
    real = torch.ones_like(p, dtype=torch.bool) if mask is None else mask.bool()
    if bool(((p < 0) | (p >= context_length))[real].any()):
        raise ValueError(f"position_ids must lie in [0, {context_length}) (the context length)")
    if bool((real[:, 0] & (p[:, 0] != 0)).any()):
        raise ValueError("position_ids must start every row at 0: a packed text cannot span two rows")
    step = (p[:, 1:] == 0) | (p[:, 1:] == p[:, :-1] + 1)  # a new text, or the next position of this one
    if bool((~step & real[:, 1:]).any()):
        raise ValueError(
            "position_ids must count up by one inside a packed text and restart at 0 for the next"
        )


def segment_ids(position_ids: torch.Tensor, mask) -> tuple[torch.Tensor, int]:
    """Global text index of every token (B, L), numbered row by row, and the number of texts.

    A padding token (``mask`` 0) keeps the index of the text before it; the key mask and the pooling skip it.
    """
    real = torch.ones_like(position_ids, dtype=torch.bool) if mask is None else mask.bool()
    start = (position_ids == 0) & real  # (B, L) first token of a text
    seg = start.flatten().long().cumsum(0).view_as(position_ids) - 1  # (B, L)
    return seg.clamp_min(0), int(start.sum())


def pool_segments(r: torch.Tensor, seg: torch.Tensor, n: int, mask, how: str) -> torch.Tensor:
    """(B, L, D) readout -> (n, D): per packed text the mean over its tokens, or its last token (``how``)."""
    B, L, D = r.shape
    real = (torch.ones(B, L, dtype=torch.bool, device=r.device) if mask is None else mask.bool()).flatten()
    flat, idx = r.reshape(B * L, D)[real], seg.flatten()[real]  # (N, D), (N,)
    if how == "mean":
        total = r.new_zeros(n, D).index_add_(0, idx, flat)
        count = r.new_zeros(n).index_add_(0, idx, torch.ones_like(idx, dtype=r.dtype))
        return total / count.clamp_min(1.0)[:, None]
    last = torch.ones_like(idx, dtype=torch.bool)
    last[:-1] = idx[1:] != idx[:-1]  # the token before the next text starts
    return flat[last]


def pack_sequences(seqs: list[list[int]], row_length: int, pad_id: int = 0):
    """First-fit-decreasing packing of token lists into rows of ``row_length``.

    Returns ``input_ids``, ``position_ids``, ``attention_mask`` (R, W), W the longest filled row (at most
    ``row_length``), and ``order``: the index in ``seqs`` of each packed text, in the order the model outputs
    them (row by row).
    """
    if any(len(s) == 0 or len(s) > row_length for s in seqs):
        raise ValueError(f"every sequence must hold 1 to {row_length} tokens")
    rows: list[list[int]] = []  # indices of seqs per row
    room: list[int] = []
    for i in sorted(range(len(seqs)), key=lambda i: -len(seqs[i])):
        for r, free in enumerate(room):
            if len(seqs[i]) <= free:
                rows[r].append(i)
                room[r] -= len(seqs[i])
                break
        else:
            rows.append([i])
            room.append(row_length - len(seqs[i]))
    width = max(row_length - free for free in room)  # no column that every row pads
    ids, pos, mask = [], [], []  # built as lists, one tensor each: a few us per text instead of tens
    for members in rows:
        r_ids = [t for i in members for t in seqs[i]]
        r_pos = [p for i in members for p in range(len(seqs[i]))]
        pad = width - len(r_ids)
        ids.append(r_ids + [pad_id] * pad)
        pos.append(r_pos + [0] * pad)
        mask.append([1] * len(r_ids) + [0] * pad)
    ids, pos, mask = (torch.tensor(t, dtype=torch.long) for t in (ids, pos, mask))  # (R, width) each
    return ids, pos, mask, [i for members in rows for i in members]
