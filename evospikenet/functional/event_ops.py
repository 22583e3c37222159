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

The extension builds on first use (``torch.utils.cpp_extension.load_inline``, cached on disk). Without a
compiler, or with ``EVOSPIKENET_EVENT_KERNELS=0``, :func:`event_kernels_enabled` is False and callers use
their tensor code; results are the same either way (the tests compare both).
"""

from __future__ import annotations

import functools
import os
import sys

import torch

__all__ = ["event_kernels_enabled", "spike_linear", "lif_forward_native", "DENSE_ABOVE"]

DENSE_ABOVE = 0.3  # input density above which the dense BLAS product is faster (benchmarks/core.py)

_CPP = r"""
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <vector>
#include <algorithm>
#ifdef __AVX2__
#include <immintrin.h>
#endif
using torch::Tensor;

// o[0:M] = sum_p val[p] * W[idx[p], 0:M]; binary rows (all val 1) take the register-blocked AVX2 path.
static void accumulate_row(const int32_t* idx, const float* val, int64_t nnz, bool binary, const float* W,
                           int64_t ld, int64_t M, float* o) {
    int64_t j = 0;
#ifdef __AVX2__
    if (binary) {
        for (; j + 64 <= M; j += 64) {
            __m256 a[8];
            for (int q = 0; q < 8; ++q) a[q] = _mm256_setzero_ps();
            for (int64_t p = 0; p < nnz; ++p) {
                const float* w = W + (int64_t)idx[p] * ld + j;
                for (int q = 0; q < 8; ++q) a[q] = _mm256_add_ps(a[q], _mm256_loadu_ps(w + 8 * q));
            }
            for (int q = 0; q < 8; ++q) _mm256_storeu_ps(o + j + 8 * q, a[q]);
        }
        for (; j + 8 <= M; j += 8) {
            __m256 a = _mm256_setzero_ps();
            for (int64_t p = 0; p < nnz; ++p) a = _mm256_add_ps(a, _mm256_loadu_ps(W + (int64_t)idx[p] * ld + j));
            _mm256_storeu_ps(o + j, a);
        }
    }
#endif
    for (; j < M; ++j) {
        float s = 0.f;
        for (int64_t p = 0; p < nnz; ++p) s += val[p] * W[(int64_t)idx[p] * ld + j];
        o[j] = s;
    }
}

// Non-zeros of x[0:n]: their count, or (with idx) their positions and values; clears *binary if one is not 1.
static int64_t scan(const float* x, int64_t n, int32_t* idx, float* val, bool* binary) {
    int64_t nnz = 0, k = 0;
#ifdef __AVX2__
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    for (; k + 8 <= n; k += 8) {  // 8 inputs per compare; a silent block costs one test
        const __m256 v = _mm256_loadu_ps(x + k);
        unsigned nz = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
        if (!nz) continue;
        if (!idx) { nnz += __builtin_popcount(nz); continue; }
        if (nz & ~(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ))) *binary = false;
        while (nz) {
            const int b = __builtin_ctz(nz);
            idx[nnz] = (int32_t)(k + b);
            val[nnz++] = x[k + b];
            nz &= nz - 1;
        }
    }
#endif
    for (; k < n; ++k) {
        if (x[k] == 0.f) continue;
        if (idx) {
            idx[nnz] = (int32_t)k;
            val[nnz] = x[k];
            if (x[k] != 1.f) *binary = false;
        }
        ++nnz;
    }
    return nnz;
}

// x (N, K) float32, wt (K, M) float32 (the transposed weight) -> (N, M); dense product above max_density.
// The non-zeros of every row are listed first (CSR); then, per panel of columns of wt small enough for the
// L2 cache (K x P floats, about 128 KiB), every row adds the panel rows of its active inputs.
Tensor spike_linear(Tensor x, Tensor wt, double max_density) {
    const int64_t N = x.size(0), K = x.size(1), M = wt.size(1);
    const float* X = x.data_ptr<float>();
    const float* W = wt.data_ptr<float>();
    const int64_t total = scan(X, N * K, nullptr, nullptr, nullptr);
    if ((double)total > max_density * (double)(N * K)) return x.matmul(wt);
    std::vector<int64_t> off(N + 1, 0);
    std::vector<int32_t> idx(total + 8);
    std::vector<float> val(total + 8);
    std::vector<uint8_t> bin(N);
    for (int64_t n = 0; n < N; ++n) {
        bool b = true;
        off[n + 1] = off[n] + scan(X + n * K, K, idx.data() + off[n], val.data() + off[n], &b);
        bin[n] = b;
    }
    const int64_t P = std::max<int64_t>(64, (32768 / std::max<int64_t>(K, 1)) / 64 * 64);
    auto out = torch::empty({N, M}, x.options());
    float* O = out.data_ptr<float>();
    at::parallel_for(0, N, 32, [&](int64_t b, int64_t e) {
        for (int64_t j0 = 0; j0 < M; j0 += P) {
            const int64_t w = std::min(P, M - j0);
            for (int64_t n = b; n < e; ++n)
                accumulate_row(idx.data() + off[n], val.data() + off[n], off[n + 1] - off[n], bin[n], W + j0, M, w,
                               O + n * M + j0);
        }
    });
    return out;
}

// One step over neurons [lo, hi): branch-free, so the compiler vectorises it (RESET 0 subtract, 1 zero, 2 none).
template <int RESET>
static void lif_span(const float* __restrict__ xt, float* __restrict__ st, float* __restrict__ V, int64_t lo,
                     int64_t hi, float b, float g, float o, float th, float vr) {
    int64_t i = lo;
#ifdef __AVX2__
    const __m256 B = _mm256_set1_ps(b), G = _mm256_set1_ps(g), O = _mm256_set1_ps(o);
    const __m256 TH = _mm256_set1_ps(th), VR = _mm256_set1_ps(vr), ONE = _mm256_set1_ps(1.f);
    for (; i + 8 <= hi; i += 8) {  // the scalar loop below, 8 neurons at a time (same operations, same order)
        const __m256 h = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(xt + i), G), O),
                                       _mm256_mul_ps(B, _mm256_loadu_ps(V + i)));
        const __m256 fired = _mm256_cmp_ps(h, TH, _CMP_GE_OQ);
        _mm256_storeu_ps(st + i, _mm256_and_ps(fired, ONE));
        __m256 v = h;
        if (RESET == 0) v = _mm256_sub_ps(h, _mm256_and_ps(fired, TH));
        if (RESET == 1) v = _mm256_blendv_ps(h, VR, fired);
        _mm256_storeu_ps(V + i, v);
    }
#endif
    for (; i < hi; ++i) {
        const float h = (xt[i] * g + o) + b * V[i];
        const bool f = h >= th;
        st[i] = f ? 1.f : 0.f;
        V[i] = RESET == 0 ? (f ? h - th : h) : (RESET == 1 ? (f ? vr : h) : h);
    }
}

// x (T, n), v0 (n) float32 -> {spikes (T, n), v (n)}; reset 0 subtract, 1 zero, 2 none.
std::vector<Tensor> lif_forward(Tensor x, Tensor v0, double beta, double gain, double offset, double v_th,
                                double v_reset, int64_t reset) {
    const int64_t T = x.size(0), n = x.numel() / T;
    auto spikes = torch::empty_like(x);
    auto v = v0.clone();
    const float* X = x.data_ptr<float>();
    float* S = spikes.data_ptr<float>();
    float* V = v.data_ptr<float>();
    const float b = (float)beta, g = (float)gain, o = (float)offset, th = (float)v_th, vr = (float)v_reset;
    at::parallel_for(0, n, 16384, [&](int64_t lo, int64_t hi) {
        for (int64_t t = 0; t < T; ++t) {
            const float* xt = X + t * n;
            float* st = S + t * n;
            if (reset == 0) lif_span<0>(xt, st, V, lo, hi, b, g, o, th, vr);
            else if (reset == 1) lif_span<1>(xt, st, V, lo, hi, b, g, o, th, vr);
            else lif_span<2>(xt, st, V, lo, hi, b, g, o, th, vr);
        }
    });
    return {spikes, v};
}
"""


@functools.cache
def _load():
    from torch.utils.cpp_extension import load_inline

    from ..core.native import _cpu_flags

    flags = _cpu_flags()
    name = "evospikenet_event_ops_v6" + ("_avx2" if flags else "")
    if not _built(name):  # the first no-grad forward would otherwise stall silently
        print(
            "evospikenet: building the event-driven inference kernels (once per machine, about a minute; "
            "EVOSPIKENET_EVENT_KERNELS=0 skips them)",
            file=sys.stderr,
            flush=True,
        )
    return load_inline(
        name=name,
        cpp_sources=_CPP,
        functions=["spike_linear", "lif_forward"],
        extra_cflags=["-O3", "-ffp-contract=off", *flags],
        verbose=bool(os.environ.get("EVOSPIKENET_NATIVE_VERBOSE")),
    )


def _built(name: str) -> bool:
    """True if torch's extension cache already holds a build of ``name`` (or if that cannot be told)."""
    try:
        from torch.utils.cpp_extension import _get_build_directory

        d = _get_build_directory(name, False)
        return any(f.endswith(".so") for f in os.listdir(d))
    except Exception:  # a private helper of torch: if it moved, say nothing rather than something wrong
        return True


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
