r"""Fused spiking layer for training: ``Linear(N_in, N_out)`` + LIF over a whole ``(T, B, N_in)`` sequence.

.. math::

    Y = X W + b \quad (X: (T B, N_{in}) \text{ all steps as one matrix}), \qquad
    H_t = V_{rest} + \beta (V_{t-1} - V_{rest}) + (1 - \beta) R\, Y_t, \quad S_t = \Theta(H_t - V_{th})

with the reset of :mod:`evospikenet.functional.lif` and the BPTT recursion of its fused kernel
(``dL/dH_t = g_{S_t} \sigma'(H_t - V_th) + g_{V_t} dV_t/dH_t``, ``g_{V_{t-1}} = \beta dL/dH_t``,
``dL/dY_t = (1 - \beta) R dL/dH_t``), then ``dL/dW = X^T dL/dY`` and ``dL/db = \sum dL/dY``.

Speed comes from three things:

* **one matmul over all T*B rows** (no per-step ``Linear``);
* **binary sparse input**: when ``X`` holds only 0/1 and at most ``sparse_threshold`` of it is 1, ``X W`` is
  a gather-sum of the rows of ``W`` named by each row's spikes, and ``X^T dL/dY`` a gather-sum of the rows of
  ``dL/dY`` named by each input neuron's spike times (the CSR of ``X^T``): ``p`` times the work of the dense
  product, done by a C++ kernel that tiles the output columns so a tile of ``W`` stays in cache; dense
  BLAS otherwise;
* **the LIF time loop in C++**: forward and BPTT each one pass over ``(T, B*N)``, parallel over neurons.

The weight is stored as ``(N_in, N_out)`` (the transpose of ``nn.Linear.weight``) so every gathered row is
contiguous. Without a C++ compiler the layer falls back to dense ``torch.mm`` and ``lif_multistep``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn

from .._validate import check_positive, check_tensor
from .lif import LIFParams, LIFState, lif_multistep, lif_params

__all__ = ["SpikingLinearLIF", "spiking_linear_lif", "fused_available"]

_CPP = r"""
#define TILE_W 16
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <atomic>
#include <algorithm>
using torch::Tensor;

// CSR of the 1s of a binary (R, K) matrix and of its transpose; empty if a value is not 0/1 or too dense.
std::vector<Tensor> binary_csr(Tensor x, double max_density) {
    const int64_t R = x.size(0), K = x.size(1);
    const float* p = x.data_ptr<float>();
    std::vector<int64_t> cnt(R + 1, 0);
    std::atomic<bool> bad{false};
    at::parallel_for(0, R, 8, [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r) {
            int64_t c = 0; bool nb = false;
            for (int64_t k = 0; k < K; ++k) {
                float v = p[r * K + k];
                c += (v != 0.f); nb |= (v != 0.f && v != 1.f);
            }
            cnt[r + 1] = c; if (nb) bad = true;
        }
    });
    for (int64_t r = 0; r < R; ++r) cnt[r + 1] += cnt[r];
    if (bad || (double)cnt[R] > max_density * (double)R * (double)K || cnt[R] >= INT32_MAX) return {};
    auto crow = torch::empty({R + 1}, torch::kInt32), col = torch::empty({cnt[R]}, torch::kInt32);
    int32_t *cr = crow.data_ptr<int32_t>(), *cl = col.data_ptr<int32_t>();
    for (int64_t r = 0; r <= R; ++r) cr[r] = (int32_t)cnt[r];
    at::parallel_for(0, R, 8, [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r) {
            int32_t pos = cr[r];
            for (int64_t k = 0; k < K; ++k) if (p[r * K + k] != 0.f) cl[pos++] = (int32_t)k;
        }
    });
    auto crowT = torch::zeros({K + 1}, torch::kInt32), colT = torch::empty({cnt[R]}, torch::kInt32);
    int32_t *ct = crowT.data_ptr<int32_t>(), *clt = colT.data_ptr<int32_t>();
    for (int64_t e = 0; e < cnt[R]; ++e) ct[cl[e] + 1]++;
    for (int64_t k = 0; k < K; ++k) ct[k + 1] += ct[k];
    std::vector<int32_t> fill(ct, ct + K);
    for (int64_t r = 0; r < R; ++r)
        for (int32_t e = cr[r]; e < cr[r + 1]; ++e) clt[fill[cl[e]]++] = (int32_t)r;
    return {crow, col, crowT, colT};
}

// out[a, :] = sum over e in row a of M[col[e], :]. M comes tile-major, Mp (ntiles, S, TW) with C <= ntiles*TW
// columns, so each tile is one contiguous block that stays in cache (no stride conflicts); acc stays in
// registers.
Tensor gather_sum(Tensor crow, Tensor col, Tensor Mp, int64_t C) {
    constexpr int64_t TW = TILE_W;
    const int64_t A = crow.numel() - 1, S = Mp.size(1), ntiles = Mp.size(0);
    TORCH_CHECK(Mp.size(2) == TW && ntiles * TW >= C, "gather_sum: bad tile layout");
    auto out = torch::empty({A, C}, Mp.options());
    const int32_t* __restrict__ cr = crow.data_ptr<int32_t>();
    const int32_t* __restrict__ cl = col.data_ptr<int32_t>();
    const float* __restrict__ m = Mp.data_ptr<float>();
    float* __restrict__ o = out.data_ptr<float>();
    at::parallel_for(0, ntiles, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t tile = t0; tile < t1; ++tile) {
            const int64_t c0 = tile * TW, w = std::min(TW, C - c0);
            const float* __restrict__ mt = m + tile * S * TW;
            for (int64_t a = 0; a < A; ++a) {
                float acc[TW] = {0.f};
                for (int32_t e = cr[a]; e < cr[a + 1]; ++e) {
                    const float* __restrict__ row = mt + (int64_t)cl[e] * TW;
                    for (int64_t i = 0; i < TW; ++i) acc[i] += row[i];
                }
                std::copy(acc, acc + w, o + a * C + c0);
            }
        }
    });
    return out;
}

// LIF over T steps of y (T, E) (+ bias[e % N]); returns spikes, pre-reset potentials H and the last V.
std::vector<Tensor> lif_fwd(Tensor y, Tensor bias, Tensor v0, double beta_, double gain_, double vth_,
                            double vreset_, double vrest_, int64_t reset) {
    const int64_t T = y.size(0), E = y.size(1), N = bias.numel();
    const float beta = beta_, gain = gain_, vth = vth_, vreset = vreset_, vrest = vrest_;
    auto s = torch::empty_like(y), hs = torch::empty_like(y), v = v0.clone();
    const float* __restrict__ yp = y.data_ptr<float>();
    const float* __restrict__ bp = N ? bias.data_ptr<float>() : nullptr;
    float* __restrict__ sp = s.data_ptr<float>();
    float* __restrict__ hp = hs.data_ptr<float>();
    float* __restrict__ vp = v.data_ptr<float>();
    at::parallel_for(0, E, 1024, [&](int64_t a, int64_t b) {
        for (int64_t t = 0; t < T; ++t) {
            const int64_t o = t * E;
            for (int64_t e = a; e < b; ++e) {
                float x = bp ? yp[o + e] + bp[e % N] : yp[o + e];
                float h = vrest + beta * (vp[e] - vrest) + gain * x;
                float sp_ = h >= vth ? 1.f : 0.f;
                hp[o + e] = h; sp[o + e] = sp_;
                vp[e] = reset == 0 ? h - sp_ * vth : (reset == 1 ? (sp_ > 0.f ? vreset : h) : h);
            }
        }
    });
    return {s, hs, v};
}

// BPTT: gs = dL/dS, sg = surrogate'(H - V_th), s = spikes, gv = dL/dV_T; returns dL/dY (T, E) and dL/dV_0.
std::vector<Tensor> lif_bwd(Tensor gs, Tensor sg, Tensor s, Tensor gv, double beta_, double gain_,
                            int64_t reset) {
    const int64_t T = gs.size(0), E = gs.size(1);
    const float beta = beta_, gain = gain_;
    auto gy = torch::empty_like(gs), g = gv.clone();
    const float* __restrict__ gsp = gs.data_ptr<float>();
    const float* __restrict__ sgp = sg.data_ptr<float>();
    const float* __restrict__ spp = s.data_ptr<float>();
    float* __restrict__ gyp = gy.data_ptr<float>();
    float* __restrict__ gp = g.data_ptr<float>();
    at::parallel_for(0, E, 1024, [&](int64_t a, int64_t b) {
        for (int64_t t = T - 1; t >= 0; --t) {
            const int64_t o = t * E;
            for (int64_t e = a; e < b; ++e) {
                float carry = reset == 1 ? gp[e] * (1.f - spp[o + e]) : gp[e];
                float gh = gsp[o + e] * sgp[o + e] + carry;
                gyp[o + e] = gain * gh;
                gp[e] = beta * gh;
            }
        }
    });
    return {gy, g};
}
"""


@functools.cache
def _ext():
    """Compile once (cached under ~/.cache/torch_extensions) or return None when no compiler works."""
    try:
        from .._native_build import build_inline

        return build_inline("evospikenet_fused_v3", _CPP, ["binary_csr", "gather_sum", "lif_fwd", "lif_bwd"])
    except Exception:  # no compiler or headers: the torch fallback runs instead
        return None


def fused_available() -> bool:
    """True if the C++ kernels build here (else the layer runs its dense torch fallback)."""
    return _ext() is not None


_RESETS = {"subtract": 0, "zero": 1, "none": 2}
_TW = 16  # column tile width of the C++ gather kernel


def _tiles(m: torch.Tensor) -> torch.Tensor:
    """(S, C) -> tile-major (ceil(C / TW), S, TW), zero-padded: each column tile one contiguous block."""
    S, C = m.shape
    pad = (-C) % _TW
    if pad:
        m = torch.nn.functional.pad(m, (0, pad))
    return m.view(S, -1, _TW).transpose(0, 1).contiguous()


def _gather(ext, crow: torch.Tensor, col: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``out[a] = sum_{e in row a} m[col[e]]`` (a binary-sparse times dense product) -> (len(crow) - 1, C)."""
    return ext.gather_sum(crow, col, _tiles(m), m.shape[1])


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
        y = _gather(ext, csr[0], csr[1], w) if csr else torch.mm(x2, w)  # (T*B, N)
        if bias is not None:
            y.add_(bias.detach())
        beta = p.beta
        s, hs, v = ext.lif_fwd(
            y.view(T, B * N), torch.empty(0), v0.detach().reshape(B * N).contiguous(), beta,
            (1.0 - beta) * p.r,
            p.v_th, p.v_reset, p.v_rest, _RESETS[p.reset],
        )  # fmt: skip
        ctx.save_for_backward(x2, hs, s, *csr)
        ctx.meta = (
            p,
            T,
            B,
            K,
            N,
            bias is not None,
            weight.requires_grad or (bias is not None and bias.requires_grad),
        )
        ctx.x_grad = x.requires_grad
        return s.view(T, B, N), v.view(B, N)

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        ext = _ext()
        x2, hs, s, *csr = ctx.saved_tensors
        p, T, B, K, N, has_bias, need_w = ctx.meta
        beta = p.beta
        sg = p.surrogate.grad(hs - p.v_th)  # (T, B*N)
        gs = grad_s.reshape(T, B * N).contiguous() if grad_s is not None else torch.zeros_like(hs)
        gv = grad_v.reshape(B * N).contiguous() if grad_v is not None else torch.zeros_like(hs[0])
        gy, gv0 = ext.lif_bwd(gs, sg, s, gv, beta, (1.0 - beta) * p.r, _RESETS[p.reset])
        gy = gy.view(T * B, N)  # (T*B, N) = dL/dY
        gw = gb = gx = None
        if need_w:
            gw = _gather(ext, csr[2], csr[3], gy) if csr else torch.mm(x2.t(), gy)  # (K, N)
            gb = gy.sum(0) if has_bias else None
        if ctx.x_grad:
            raise NotImplementedError("input gradients are not supported by the fused layer")
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

    The fused C++ path needs float32 CPU tensors, no refractory period and an input that does not require
    grad; otherwise it runs dense ``torch`` ops with ``lif_multistep`` (same values, same gradients).
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
        and not x.requires_grad
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
