r"""Spike propagation through a CSR connectivity matrix.

For binary spikes ``s`` (B, n_pre) and weights ``W`` (n_pre, n_post) the postsynaptic current is

.. math::

    I_{b j} = \sum_i s_{b i} W_{i j} = \sum_{i : s_{b i} \ne 0} W_{i j}

``propagate_events`` computes the right-hand side, event by event: it visits only the rows of neurons that
spiked (``nonzero``), expands their row ranges ``crow[i] .. crow[i+1]`` into synapse positions with one
``repeat_interleave`` and scatters the weights with ``index_add_``. Its cost is the number of synaptic
events (the SOPs), not ``nnz``. int8 weights accumulate into int32 currents with integer ops only; float32
weights into float32. ``propagate_spmv`` is torch's sparse matrix product (float only; torch refuses int8
values on the CPU), kept for comparison.
"""

from __future__ import annotations

import torch

from .csr import csr_parts

__all__ = ["propagate_events", "propagate_spmv", "event_positions"]

_SPIKE_DTYPES = (torch.bool, torch.int8, torch.uint8, torch.int16, torch.int32, torch.float16, torch.bfloat16,
                 torch.float32, torch.float64)  # fmt: skip


def _check_spikes(spikes, n_pre: int) -> torch.Tensor:
    if not isinstance(spikes, torch.Tensor):
        raise ValueError(f"spikes must be a torch.Tensor, got {type(spikes).__name__}")
    if spikes.ndim not in (1, 2) or spikes.shape[-1] != n_pre:
        raise ValueError(
            f"spikes must have shape (n_pre,) or (B, n_pre) with n_pre={n_pre}, got {tuple(spikes.shape)}"
        )
    if spikes.dtype not in _SPIKE_DTYPES:
        raise ValueError(f"spikes must be bool, integer or float, got dtype {spikes.dtype}")
    return spikes


def event_positions(
    crow: torch.Tensor, batch_idx: torch.Tensor, pre_idx: torch.Tensor, n_post: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Synapse positions and target offsets ``b * n_post`` of every event; int64 (n_events,) each.

    The offsets are ``None`` when every event is in batch row 0.

    ``batch_idx``/``pre_idx``: (E,) the spiking (batch, neuron) pairs. Rows are expanded without a Python
    loop: ``pos = repeat(start - first_slot, count) + arange(n_events)``.
    """
    start = crow[pre_idx].to(torch.int64)
    count = crow[pre_idx + 1].to(torch.int64) - start
    slot_end = count.cumsum(0)
    n_events = int(slot_end[-1]) if slot_end.numel() else 0
    shift = start - (slot_end - count)  # position of a row's synapse = its event slot + shift
    pos = torch.repeat_interleave(shift, count, output_size=n_events)
    pos += torch.arange(n_events, device=crow.device)
    if not bool(batch_idx.any()):  # one batch row: every target is a plain column index
        return pos, None
    base = torch.repeat_interleave(batch_idx.to(torch.int64) * n_post, count, output_size=n_events)
    return pos, base


def propagate_events(csr: torch.Tensor, spikes: torch.Tensor, *, return_sops: bool = False):
    """Event-driven ``spikes @ W``: currents (B, n_post) (or (n_post,) for 1-d spikes).

    Currents are int32 for int8 weights and float32 for float32 weights. Any nonzero spike counts as one
    spike. With ``return_sops=True`` also returns the number of synaptic events (a Python int: the sum of
    the out-degrees of the spiking neurons).
    """
    crow, col, val = csr_parts(csr)
    n_pre, n_post = csr.shape
    spikes = _check_spikes(spikes, n_pre)
    squeeze = spikes.ndim == 1
    s2 = spikes.unsqueeze(0) if squeeze else spikes  # (B, n_pre)
    acc_dtype = torch.int32 if not val.is_floating_point() else torch.float32
    out = torch.zeros(s2.shape[0] * n_post, dtype=acc_dtype, device=val.device)
    b_idx, i_idx = (s2 != 0).nonzero(as_tuple=True)
    n_events = 0
    if b_idx.numel():
        pos, base = event_positions(crow, b_idx, i_idx, n_post)
        n_events = pos.numel()
        target = col.index_select(0, pos)  # index_select: about 2x faster than col[pos] on the CPU
        if base is not None:
            target = base + target
        out.index_add_(0, target, val.index_select(0, pos).to(acc_dtype))
    out = out.view(s2.shape[0], n_post)
    out = out[0] if squeeze else out
    if return_sops:
        return out, n_events
    return out


def propagate_spmv(
    csr: torch.Tensor, spikes: torch.Tensor, csr_t: torch.Tensor | None = None
) -> torch.Tensor:
    """``spikes @ W`` by torch's sparse matrix product (float32 weights only), same shapes as above.

    With ``csr_t`` (the CSR of ``W^T``, from ``transpose_csr(csr)``) it computes ``(W^T s^T)^T``, the
    CSR-times-dense SpMV torch runs fast (MKL on the CPU, cuSPARSE on CUDA); without it
    ``torch.mm(spikes, W)``, which torch handles far more slowly on the CPU (seconds at 4e6 synapses).
    """
    _, _, val = csr_parts(csr)
    if not val.is_floating_point():
        raise ValueError(f"csr values must be floating for propagate_spmv (torch sparse mm), got {val.dtype}")
    spikes = _check_spikes(spikes, csr.shape[0])
    squeeze = spikes.ndim == 1
    s2 = (spikes.unsqueeze(0) if squeeze else spikes).to(val.dtype)  # (B, n_pre)
    if csr_t is not None:
        if tuple(csr_t.shape) != (csr.shape[1], csr.shape[0]):
            raise ValueError(
                f"csr_t must have shape {(csr.shape[1], csr.shape[0])}, got {tuple(csr_t.shape)}"
            )
        out = torch.mm(csr_t, s2.T).T  # (n_post, n_pre) CSR @ (n_pre, B) dense
    else:
        out = torch.mm(s2, csr)  # dense (B, n_pre) @ CSR (n_pre, n_post)
    return out[0] if squeeze else out
