r"""Event-driven inference kernels (C++, CPU): spike-input linear layers and the multi-step LIF in one pass.

Both serve evaluation and serving, where no gradient is needed; training keeps the autograd kernels.

**Spike linear.** For a spike matrix :math:`S \in \{0, 1\}^{N \times K}` and weights :math:`W \in
\mathbb{R}^{M \times K}`

.. math::

    (S W^T)_{n,:} = \sum_{k \,:\, S_{n,k} \neq 0} S_{n,k} \, W_{:,k}

so each row reads only the weight columns of the inputs that spiked: at firing rate :math:`r` about
:math:`r N K M` additions instead of :math:`N K M` multiply-adds. The kernel keeps a block of 64 outputs in
AVX2 registers while it adds the active rows of :math:`W^T` (cached per weight version), so it wins over
the dense BLAS product below a density of about 0.3 and falls back to it above ``DENSE_ABOVE``. Inputs need
not be binary (a non-zero value scales its row), so the result is the product for any input; it equals the
dense product up to float summation order.

**Fused LIF.** The no-grad multi-step LIF of :func:`evospikenet.functional.lif.lif_multistep` in one pass
over ``(T, n)``: per neuron and step :math:`h = g x_t + o + \beta v`, :math:`s = [h \ge V_{th}]`, then the
reset (subtract, zero or none), with the same operations in the same order as the tensor version.

**LayerNorm, then LIF.** :func:`ln_lif_forward_native` runs ``LIF(LayerNorm(x))`` from rest in one pass: per
step and token :math:`y = (x - \mu)\, \sigma^{-1} \gamma + b` over the last dimension (mean and variance
over the row, two passes), then the LIF step above on ``y``, which stays in registers: the row is read for
the statistics and once more for the step, and only the spikes are written, instead of a LayerNorm output
written out and read again. The statistics
are summed in another order than ``torch.layer_norm``, so a potential within rounding of the threshold may
fire in one and not the other (the tests bound how often).

The kernels release the GIL, so a server's other Python threads run while they compute.

The C++ source is ``evospikenet/csrc/event_ops.cpp``, built on first use by
:func:`evospikenet._native_build.build_sources` (cached on disk). Without a
compiler, or with ``EVOSPIKENET_EVENT_KERNELS=0``, :func:`event_kernels_enabled` is False and callers use
their tensor code; results are the same either way (the tests compare both).
"""

from __future__ import annotations

import functools
import os

import torch

__all__ = [
    "event_kernels_enabled",
    "spike_linear",
    "lif_forward_native",
    "ln_lif_forward_native",
    "DENSE_ABOVE",
]

DENSE_ABOVE = 0.3  # input density above which the dense BLAS product is faster (benchmarks/core.py)


@functools.cache
def _load():
    from .._native_build import build_sources, csrc

    return build_sources(
        "evospikenet_event_ops",
        [csrc("event_ops.cpp")],
        message="evospikenet: building the event-driven inference kernels (once per Python environment, about a minute; "
        "EVOSPIKENET_EVENT_KERNELS=0 skips them)",
    )


@functools.cache
def _available() -> bool:
    try:
        _load()
    except Exception:  # no compiler or headers: the tensor code runs instead
        return False
    return True


def event_kernels_enabled() -> bool:
    """True when the kernels are built (or build now) and ``EVOSPIKENET_EVENT_KERNELS`` is not ``0``."""
    return os.environ.get("EVOSPIKENET_EVENT_KERNELS", "1") != "0" and _available()


def _usable(*ts: torch.Tensor) -> bool:
    """CPU float32 tensors outside autograd and graph capture, with the kernels available."""
    if torch.is_grad_enabled() and any(t.requires_grad for t in ts):
        return False
    if torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling():
        return False
    return all(t.device.type == "cpu" and t.dtype == torch.float32 for t in ts) and event_kernels_enabled()


def _transposed(weight: torch.Tensor, cache: dict | None) -> torch.Tensor:
    """``weight.T`` contiguous, reused while the weight is unchanged (same storage and version)."""
    key = (weight.data_ptr(), weight._version, tuple(weight.shape))
    if cache is not None and cache.get("key") == key:
        return cache["wt"]
    wt = weight.detach().t().contiguous()
    if cache is not None:
        cache.update(key=key, wt=wt)
    return wt


def spike_linear(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, cache: dict | None = None
) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, event-driven on the CPU when no gradient is needed (see module doc).

    ``x`` (..., K), ``weight`` (M, K); ``cache`` (a dict owned by the caller) keeps the transposed weight.
    """
    if not _usable(x, weight) or x.shape[-1] != weight.shape[1] or x.numel() == 0:
        return torch.nn.functional.linear(x, weight, bias)
    x2 = x.reshape(-1, x.shape[-1]).contiguous()  # (N, K)
    out = _load().spike_linear(x2, _transposed(weight, cache), DENSE_ABOVE)  # (N, M)
    if bias is not None:
        out = out + bias
    return out.reshape(*x.shape[:-1], weight.shape[0])


_RESETS = {"subtract": 0, "zero": 1, "none": 2}


def lif_forward_native(
    x: torch.Tensor, v0: torch.Tensor, beta: float, gain: float, offset: float, v_th: float, v_reset: float,
    reset: str,
) -> tuple[torch.Tensor, torch.Tensor] | None:  # fmt: skip
    """Spikes (T, ...) and final membrane of the no-grad LIF, or None where the kernel cannot run."""
    if not _usable(x, v0) or reset not in _RESETS or x.shape[1:] != v0.shape or x.numel() == 0:
        return None
    s, v = _load().lif_forward(
        x.contiguous().reshape(x.shape[0], -1), v0.contiguous().reshape(-1), beta, gain, offset, v_th,
        v_reset, _RESETS[reset],
    )  # fmt: skip
    return s.reshape(x.shape), v.reshape(v0.shape)


def ln_lif_forward_native(
    x: torch.Tensor, weight: torch.Tensor | None, bias: torch.Tensor | None, eps: float, beta: float,
    gain: float, offset: float, v_th: float, v_reset: float, reset: str,
) -> tuple[torch.Tensor, torch.Tensor] | None:  # fmt: skip
    """Spikes (T, ..., D) and final membrane (..., D) of the no-grad LIF, from rest, driven by the LayerNorm
    of ``x`` over its last dimension (``weight``, ``bias`` its affine, or None); None where the kernel cannot
    run. ``x`` may be a strided view (a chunk of a wider product) as long as its last dimension is dense."""
    ts = [t for t in (x, weight, bias) if t is not None]
    if not _usable(*ts) or reset not in _RESETS or x.dim() < 2 or x.numel() == 0:
        return None
    D = x.shape[-1]
    if any(t.shape != (D,) for t in ts[1:]):
        return None
    x3 = x.reshape(x.shape[0], -1, D)  # (T, N, D): a view where the strides allow, else a copy
    if x3.stride(2) != 1:
        x3 = x3.contiguous()
    empty = x.new_empty(0)
    s, v = _load().ln_lif_forward(
        x3, empty if weight is None else weight.detach().contiguous(),
        empty if bias is None else bias.detach().contiguous(), eps, beta, gain, offset, v_th, v_reset,
        _RESETS[reset],
    )  # fmt: skip
    return s.reshape(x.shape), v.reshape(x.shape[1:])
