r"""Fused spiking layer for training: ``Linear(N_in, N_out)`` + LIF over a whole ``(T, B, N_in)`` sequence.

.. math::

    Y = X W + b \quad (X: (T B, N_{in}) \text{ all steps as one matrix}), \qquad
    H_t = V_{rest} + \beta (V_{t-1} - V_{rest}) + (1 - \beta) R\, Y_t, \quad S_t = \Theta(H_t - V_{th})

with the reset of :mod:`evospikenet.functional.lif` and the BPTT recursion of its fused kernel
(``dL/dH_t = g_{S_t} \sigma'(H_t - V_th) + g_{V_t} dV_t/dH_t``, ``g_{V_{t-1}} = \beta dL/dH_t``,
``dL/dY_t = (1 - \beta) R dL/dH_t``), then ``dL/dW = X^T dL/dY``, ``dL/db = \sum dL/dY`` and, when the
input needs a gradient (a layer stacked on another), ``dL/dX = dL/dY W^T``.

Speed comes from three things:

* **one matmul over all T*B rows** (no per-step ``Linear``);
* **binary sparse input**: when ``X`` holds only 0/1 and at most ``sparse_threshold`` of it is 1, ``X W`` is
  a gather-sum of the rows of ``W`` named by each row's spikes, and ``X^T dL/dY`` a gather-sum of the rows of
  ``dL/dY`` named by each input neuron's spike times (the CSR of ``X^T``): ``p`` times the work of the dense
  product and no multiplications, done by a C++ kernel that packs a tile of columns (up to 64) contiguously
  so it stays in cache while every row gathers from it; dense BLAS otherwise;
* **the LIF time loop in C++**: forward and BPTT each one pass over ``(T, B*N)``; the forward writes the
  pre-reset potentials over the currents (no further buffer), the backward computes the surrogate
  derivative of the built-in surrogates in the same pass.

The weight is stored as ``(N_in, N_out)`` (the transpose of ``nn.Linear.weight``) so every gathered row is
contiguous. The kernels' source is ``evospikenet/csrc/fused.cpp``, built on first use; without a C++
compiler the layer falls back to dense ``torch.mm`` and ``lif_multistep``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .._validate import check_positive, check_tensor
from .lif import LIFParams, LIFState, lif_multistep, lif_params

__all__ = ["SpikingLinearLIF", "spiking_linear_lif", "fused_available"]


@functools.cache
def _ext():
    """Compile once (cached under ~/.cache/torch_extensions) or return None when no compiler works."""
    try:
        from .._native_build import build_sources, csrc

        return build_sources("evospikenet_fused", [csrc("fused.cpp")])
    except Exception:  # no compiler or headers: the torch fallback runs instead
        return None


def fused_available() -> bool:
    """True if the C++ kernels build here (else the layer runs its dense torch fallback)."""
    return _ext() is not None


_RESETS = {"subtract": 0, "zero": 1, "none": 2}


def _surrogate_code(sur) -> tuple[int, float] | None:
    """The C++ backward's code and parameter for a built-in surrogate, None for any other."""
    from .surrogate import ATan, FastSigmoid, Sigmoid, StraightThrough, Triangle

    codes = {FastSigmoid: ("slope", 0), Sigmoid: ("slope", 1), ATan: ("alpha", 2), Triangle: ("width", 3)}
    if type(sur) in codes:
        field, code = codes[type(sur)]
        return code, float(getattr(sur, field))
    if type(sur) is StraightThrough:
        return 4, 0.0
    return None


class _SpikingLinearLIF(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, v0, p, sparse_threshold):  # x (T, B, K), weight (K, N), v0 (B, N)
        ext = _ext()
        T, B, K = x.shape
        N = weight.shape[1]
        x2 = x.detach().reshape(T * B, K).contiguous()  # (T*B, K)
        # cheap density estimate first (a binary x's mean is its spike probability); the C++ scan confirms
        sparse = sparse_threshold > 0 and float(x2.mean()) <= sparse_threshold
        csr = ext.binary_csr(x2, float(sparse_threshold)) if sparse else []
        w = weight.detach().contiguous()
        b = bias.detach().contiguous() if bias is not None else w.new_empty(0)
        if csr:
            y = ext.gather_sum(csr[0], csr[1], w, b)  # (T*B, N), the bias added
        else:
            y = torch.mm(x2, w)
            if bias is not None:
                y.add_(b)
        gain = (1.0 - p.beta) * p.r
        s, v = ext.lif_fwd(
            y.view(T, B * N), v0.detach().reshape(B * N).contiguous(), p.beta, gain, p.v_th, p.v_reset,
            p.v_rest, _RESETS[p.reset],
        )  # fmt: skip
        hs = y.view(T, B * N)  # now the pre-reset potentials H
        need_w = weight.requires_grad or (bias is not None and bias.requires_grad)
        saved_x = x2 if need_w and not csr else x2.new_empty(0)  # the dense dL/dW needs X
        ctx.save_for_backward(saved_x, hs, s, w if x.requires_grad else w.new_empty(0), *csr)
        ctx.meta = (p, T, B, K, N, bias is not None, need_w, x.requires_grad)
        return s.view(T, B, N), v.view(B, N)

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        ext = _ext()
        x2, hs, s, w, *csr = ctx.saved_tensors
        p, T, B, K, N, has_bias, need_w, x_grad = ctx.meta
        if grad_s is None:
            gs = hs.new_zeros(1)
        elif all(st == 0 for st in grad_s.stride()):  # one value broadcast (the gradient of a sum)
            gs = grad_s.as_strided((1,), (1,)).contiguous()
        else:
            gs = grad_s.reshape(T, B * N).contiguous()
        gv = grad_v.reshape(B * N).contiguous() if grad_v is not None else hs.new_zeros(B * N)
        sur = _surrogate_code(p.surrogate)
        if sur is None:  # a user-defined surrogate: its derivative from torch, folded into dL/dS
            gs = (gs.reshape(-1, 1) if gs.numel() == 1 else gs) * p.surrogate.grad(hs - p.v_th)
            sur = (4, 0.0)
        gy, gv0 = ext.lif_bwd(
            gs, hs, s, gv, p.beta, (1.0 - p.beta) * p.r, p.v_th, _RESETS[p.reset], sur[0], sur[1]
        )
        gy = gy.view(T * B, N)  # (T*B, N) = dL/dY
        gw = gb = gx = None
        if need_w:
            # (K, N): the spike times of each input gather rows of dL/dY, or the dense product
            gw = ext.gather_sum(csr[2], csr[3], gy, gy.new_empty(0)) if csr else torch.mm(x2.t(), gy)
            gb = gy.sum(0) if has_bias else None
        if x_grad:
            gx = torch.mm(gy, w.t()).view(T, B, K)
        return gx, gw, gb, gv0.view(B, N), None, None


def spiking_linear_lif(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    state: LIFState | None,
    params: LIFParams,
    sparse_threshold: float = 0.2,
) -> tuple[torch.Tensor, LIFState]:
    """Input (T, B, K) through ``Y = X W + b`` (``weight`` (K, N)) and LIF -> spikes (T, B, N) and state.

    The fused C++ path needs float32 CPU tensors and no refractory period; otherwise it runs dense ``torch``
    ops with ``lif_multistep`` (same values, same gradients).
    """
    check_tensor("x", x, ndim=3, last_dim=weight.shape[0])
    if state is None:
        state = LIFState(
            torch.full((x.shape[1], weight.shape[1]), float(params.v_rest), dtype=x.dtype, device=x.device),
            torch.zeros((x.shape[1], weight.shape[1]), dtype=torch.int32, device=x.device),
        )
    fast = (
        _ext() is not None
        and x.device.type == "cpu"
        and x.dtype == weight.dtype == torch.float32
        and params.refractory_steps == 0
    )
    if not fast:
        y = torch.matmul(x, weight)
        if bias is not None:
            y = y + bias
        return lif_multistep(y, state, params)
    s, v = _SpikingLinearLIF.apply(x, weight, bias, state.v, params, sparse_threshold)
    return s, LIFState(v, state.refrac)


class SpikingLinearLIF(nn.Module):
    """Thin shell over :func:`spiking_linear_lif`: ``weight`` is (in_features, out_features)."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        params: LIFParams | None = None,
        bias: bool = True,
        sparse_threshold: float = 0.2,  # use the sparse kernels when at most this fraction of inputs spike
    ):
        super().__init__()
        check_positive("in_features", in_features)
        check_positive("out_features", out_features)
        if not 0.0 <= sparse_threshold <= 1.0:
            raise ValueError(f"sparse_threshold must lie in [0, 1], got {sparse_threshold!r}")
        self.params = params if params is not None else lif_params()
        self.sparse_threshold = sparse_threshold
        bound = 1.0 / math.sqrt(in_features)  # nn.Linear's default initialisation
        self.weight = nn.Parameter(torch.empty(in_features, out_features).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(out_features).uniform_(-bound, bound)) if bias else None

    def forward(self, x: torch.Tensor, state: LIFState | None = None) -> tuple[torch.Tensor, LIFState]:
        """Spikes (T, B, out_features) and the final state for input ``x`` (T, B, in_features)."""
        return spiking_linear_lif(x, self.weight, self.bias, state, self.params, self.sparse_threshold)
