// Training kernels of evospikenet.functional.fused (its docstring gives the equations): the CSR of a binary
// input and of its transpose, the gather-sum that replaces a binary-sparse matrix product, and the LIF time
// loop forward (keeping the pre-reset potentials) and backward (the BPTT recursion with the surrogate
// derivative computed in place).
#include <torch/extension.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <vector>
#ifdef __AVX2__
#include <immintrin.h>
#endif

using torch::Tensor;

namespace {

// Non-zeros of x[0:n]: their count, or (with idx) their positions; clears *binary when one is not 1.
int64_t scan_row(const float* __restrict__ x, int64_t n, int32_t* __restrict__ idx, bool* binary) {
    int64_t nnz = 0, k = 0;
#ifdef __AVX2__
    const __m256 zero = _mm256_setzero_ps(), one = _mm256_set1_ps(1.f);
    for (; k + 8 <= n; k += 8) {  // 8 inputs per compare; a silent block costs one test
        const __m256 v = _mm256_loadu_ps(x + k);
        unsigned nz = (unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, zero, _CMP_NEQ_UQ));
        if (!nz) continue;
        if (nz & ~(unsigned)_mm256_movemask_ps(_mm256_cmp_ps(v, one, _CMP_EQ_OQ))) *binary = false;
        if (!idx) {
            nnz += __builtin_popcount(nz);
            continue;
        }
        while (nz) {
            idx[nnz++] = (int32_t)(k + __builtin_ctz(nz));
            nz &= nz - 1;
        }
    }
#endif
    for (; k < n; ++k) {
        if (x[k] == 0.f) continue;
        if (x[k] != 1.f) *binary = false;
        if (idx) idx[nnz] = (int32_t)k;
        ++nnz;
    }
    return nnz;
}

}  // namespace

// CSR of the 1s of a binary (R, K) matrix and of its transpose (columns ascending in each row, rows
// ascending in each column); empty when a value is not 0/1 or more than max_density of it is 1.
std::vector<Tensor> binary_csr(Tensor x, double max_density) {
    const int64_t R = x.size(0), K = x.size(1);
    const float* p = x.data_ptr<float>();
    std::vector<int64_t> cnt(R + 1, 0);
    std::atomic<bool> bad{false};
    at::parallel_for(0, R, 64, [&](int64_t a, int64_t b) {
        for (int64_t r = a; r < b; ++r) {
            bool bin = true;
            cnt[r + 1] = scan_row(p + r * K, K, nullptr, &bin);
            if (!bin) bad = true;
        }
    });
    for (int64_t r = 0; r < R; ++r) cnt[r + 1] += cnt[r];
    const int64_t nnz = cnt[R];
    if (bad || (double)nnz > max_density * (double)R * (double)K || nnz >= INT32_MAX) return {};
    auto crow = torch::empty({R + 1}, torch::kInt32), col = torch::empty({nnz}, torch::kInt32);
    int32_t* cr = crow.data_ptr<int32_t>();
    int32_t* cl = col.data_ptr<int32_t>();
    for (int64_t r = 0; r <= R; ++r) cr[r] = (int32_t)cnt[r];
    at::parallel_for(0, R, 64, [&](int64_t a, int64_t b) {
        bool bin = true;
        for (int64_t r = a; r < b; ++r) scan_row(p + r * K, K, cl + cr[r], &bin);
    });
    auto crowT = torch::zeros({K + 1}, torch::kInt32), colT = torch::empty({nnz}, torch::kInt32);
    int32_t* ct = crowT.data_ptr<int32_t>();
    int32_t* clt = colT.data_ptr<int32_t>();
    for (int64_t e = 0; e < nnz; ++e) ct[cl[e] + 1]++;
    for (int64_t k = 0; k < K; ++k) ct[k + 1] += ct[k];
    std::vector<int32_t> fill(ct, ct + K);
    for (int64_t r = 0; r < R; ++r)
        for (int32_t e = cr[r]; e < cr[r + 1]; ++e) clt[fill[cl[e]]++] = (int32_t)r;
    return {crow, col, crowT, colT};
}

namespace {

// out[a, c0:c0+w] (+ bias) = sum over e in row a of buf[col[e], 0:w], buf the packed column tile (S, TW).
// NV = TW / 8 accumulators of 8 floats stay in registers; each output is summed in CSR order.
template <int TW>
void gather_tile(const int32_t* __restrict__ cr, const int32_t* __restrict__ cl, int64_t A,
                 const float* __restrict__ buf, const float* __restrict__ bias, int64_t w, int64_t C,
                 float* __restrict__ out) {
    for (int64_t a = 0; a < A; ++a) {
        float* o = out + a * C;
#ifdef __AVX2__
        constexpr int NV = TW / 8;
        __m256 acc[NV];
        for (int q = 0; q < NV; ++q) acc[q] = _mm256_setzero_ps();
        for (int32_t e = cr[a]; e < cr[a + 1]; ++e) {
            const float* row = buf + (int64_t)cl[e] * TW;
            for (int q = 0; q < NV; ++q) acc[q] = _mm256_add_ps(acc[q], _mm256_load_ps(row + 8 * q));
        }
        if (bias)
            for (int q = 0; q < NV; ++q) acc[q] = _mm256_add_ps(acc[q], _mm256_loadu_ps(bias + 8 * q));
        if (w == TW) {
            for (int q = 0; q < NV; ++q) _mm256_storeu_ps(o + 8 * q, acc[q]);
        } else {
            alignas(32) float t[TW];
            for (int q = 0; q < NV; ++q) _mm256_store_ps(t + 8 * q, acc[q]);
            std::copy(t, t + w, o);
        }
#else
        float acc[TW] = {0.f};
        for (int32_t e = cr[a]; e < cr[a + 1]; ++e) {
            const float* row = buf + (int64_t)cl[e] * TW;
            for (int i = 0; i < TW; ++i) acc[i] += row[i];
        }
        for (int64_t i = 0; i < w; ++i) o[i] = bias ? acc[i] + bias[i] : acc[i];
#endif
    }
}

template <int TW>
void gather_all(const int32_t* cr, const int32_t* cl, int64_t A, const float* M, int64_t S, int64_t C,
                const float* bias, float* out) {
    const int64_t ntiles = (C + TW - 1) / TW;
    at::parallel_for(0, ntiles, 1, [&](int64_t t0, int64_t t1) {
        // the column tile M[:, c0:c0+TW], packed contiguously (zero-padded): it stays in L2 while every
        // output row gathers from it, free of the cache-set conflicts of rows a power of two apart
        float* buf = static_cast<float*>(std::aligned_alloc(64, (size_t)S * TW * sizeof(float)));
        for (int64_t tile = t0; tile < t1; ++tile) {
            const int64_t c0 = tile * TW, w = std::min<int64_t>(TW, C - c0);
            for (int64_t s = 0; s < S; ++s) {
                const float* src = M + s * C + c0;
                float* dst = buf + s * TW;
                std::copy(src, src + w, dst);
                std::fill(dst + w, dst + TW, 0.f);
            }
            gather_tile<TW>(cr, cl, A, buf, bias ? bias + c0 : nullptr, w, C, out + c0);
        }
        std::free(buf);
    });
}

}  // namespace

// out (A, C) = S_csr M (+ bias): out[a, :] = sum over e in row a of M[col[e], :], for M (S, C) row-major.
// The column tile is as wide as keeps it (S x TW floats) within about 1 MiB, between 16 and 64.
Tensor gather_sum(Tensor crow, Tensor col, Tensor M, Tensor bias) {
    const int64_t A = crow.numel() - 1, S = M.size(0), C = M.size(1);
    auto out = torch::empty({A, C}, M.options());
    const int32_t* cr = crow.data_ptr<int32_t>();
    const int32_t* cl = col.data_ptr<int32_t>();
    const float* m = M.data_ptr<float>();
    const float* b = bias.numel() ? bias.data_ptr<float>() : nullptr;
    float* o = out.data_ptr<float>();
    const int64_t budget = (int64_t)1 << 20;
    if (S * 64 * 4 <= budget)
        gather_all<64>(cr, cl, A, m, S, C, b, o);
    else if (S * 32 * 4 <= budget)
        gather_all<32>(cr, cl, A, m, S, C, b, o);
    else
        gather_all<16>(cr, cl, A, m, S, C, b, o);
    return out;
}

namespace {

template <int RESET>
void lif_fwd_span(float* __restrict__ y, float* __restrict__ s, float* __restrict__ v, int64_t T, int64_t E,
                  int64_t a, int64_t b, float beta, float gain, float vth, float vreset, float vrest) {
    for (int64_t t = 0; t < T; ++t) {
        float* __restrict__ yt = y + t * E;
        float* __restrict__ st = s + t * E;
        for (int64_t e = a; e < b; ++e) {
            const float h = vrest + beta * (v[e] - vrest) + gain * yt[e];
            const float sp = h >= vth ? 1.f : 0.f;
            yt[e] = h;
            st[e] = sp;
            v[e] = RESET == 0 ? h - sp * vth : (RESET == 1 ? (sp > 0.f ? vreset : h) : h);
        }
    }
}

}  // namespace

// LIF over T steps of the currents y (T, E), from v0 (E): returns the spikes and the last V, and overwrites
// y with the pre-reset potentials H (kept for the backward pass). reset 0 subtract, 1 zero, 2 none.
std::vector<Tensor> lif_fwd(Tensor y, Tensor v0, double beta_, double gain_, double vth_, double vreset_,
                            double vrest_, int64_t reset) {
    const int64_t T = y.size(0), E = y.size(1);
    const float beta = beta_, gain = gain_, vth = vth_, vreset = vreset_, vrest = vrest_;
    auto s = torch::empty_like(y);
    auto v = v0.clone();
    float* yp = y.data_ptr<float>();
    float* sp = s.data_ptr<float>();
    float* vp = v.data_ptr<float>();
    at::parallel_for(0, E, 1024, [&](int64_t a, int64_t b) {
        if (reset == 0) lif_fwd_span<0>(yp, sp, vp, T, E, a, b, beta, gain, vth, vreset, vrest);
        else if (reset == 1) lif_fwd_span<1>(yp, sp, vp, T, E, a, b, beta, gain, vth, vreset, vrest);
        else lif_fwd_span<2>(yp, sp, vp, T, E, a, b, beta, gain, vth, vreset, vrest);
    });
    return {s, v};
}

namespace {

// The surrogate derivative sigma'(x) of evospikenet.functional.surrogate, in the same operations:
// 0 fast_sigmoid 1 / (1 + k|x|)^2, 1 sigmoid k s (1 - s), 2 atan (a/2) / (1 + (pi/2 a x)^2),
// 3 triangle max(0, 1 - |x|/w) / w, 4 straight-through 1.
template <int SUR>
inline float surrogate(float x, float k) {
    if (SUR == 0) {
        const float d = 1.f + k * std::fabs(x);
        return 1.f / (d * d);
    } else if (SUR == 1) {
        const float sg = 1.f / (1.f + std::exp(-(k * x)));
        return k * sg * (1.f - sg);
    } else if (SUR == 2) {
        const float z = (float)(M_PI / 2.0 * (double)k) * x;
        return (k / 2.f) / (1.f + z * z);
    } else if (SUR == 3) {
        return std::max(1.f - std::fabs(x) / k, 0.f) / k;
    }
    return 1.f;
}

// gs_step: the stride of dL/dS between steps (0 when dL/dS is one value broadcast over (T, E)).
template <int SUR, int RESET>
void lif_bwd_span(const float* __restrict__ gs, int64_t gs_step, int64_t gs_elem, const float* __restrict__ hs,
                  const float* __restrict__ s, float* __restrict__ gy, float* __restrict__ g, int64_t T, int64_t E,
                  int64_t a, int64_t b, float beta, float gain, float vth, float k) {
    for (int64_t t = T - 1; t >= 0; --t) {
        const float* __restrict__ gst = gs + t * gs_step;
        const float* __restrict__ ht = hs + t * E;
        const float* __restrict__ st = s + t * E;
        float* __restrict__ gyt = gy + t * E;
        for (int64_t e = a; e < b; ++e) {
            const float carry = RESET == 1 ? g[e] * (1.f - st[e]) : g[e];
            const float gh = gst[e * gs_elem] * surrogate<SUR>(ht[e] - vth, k) + carry;
            gyt[e] = gain * gh;
            g[e] = beta * gh;
        }
    }
}

template <int SUR>
void lif_bwd_reset(int64_t reset, const float* gs, int64_t gs_step, int64_t gs_elem, const float* hs,
                   const float* s, float* gy, float* g, int64_t T, int64_t E, int64_t a, int64_t b, float beta,
                   float gain, float vth, float k) {
    if (reset == 1) lif_bwd_span<SUR, 1>(gs, gs_step, gs_elem, hs, s, gy, g, T, E, a, b, beta, gain, vth, k);
    else lif_bwd_span<SUR, 0>(gs, gs_step, gs_elem, hs, s, gy, g, T, E, a, b, beta, gain, vth, k);
}

}  // namespace

// BPTT from gs = dL/dS (T, E) or one value (numel 1), hs = pre-reset potentials, s = spikes, gv = dL/dV_T:
// returns dL/dY (T, E) and dL/dV_0. sur selects the surrogate (see surrogate<>), k its parameter.
std::vector<Tensor> lif_bwd(Tensor gs, Tensor hs, Tensor s, Tensor gv, double beta_, double gain_, double vth_,
                            int64_t reset, int64_t sur, double k_) {
    const int64_t T = hs.size(0), E = hs.size(1);
    const float beta = beta_, gain = gain_, vth = vth_, k = k_;
    const bool scalar = gs.numel() == 1;
    const int64_t gs_step = scalar ? 0 : E, gs_elem = scalar ? 0 : 1;
    auto gy = torch::empty_like(hs);
    auto g = gv.clone();
    const float* gsp = gs.data_ptr<float>();
    const float* hp = hs.data_ptr<float>();
    const float* spp = s.data_ptr<float>();
    float* gyp = gy.data_ptr<float>();
    float* gp = g.data_ptr<float>();
    at::parallel_for(0, E, 1024, [&](int64_t a, int64_t b) {
        switch (sur) {
            case 0: lif_bwd_reset<0>(reset, gsp, gs_step, gs_elem, hp, spp, gyp, gp, T, E, a, b, beta, gain, vth, k); break;
            case 1: lif_bwd_reset<1>(reset, gsp, gs_step, gs_elem, hp, spp, gyp, gp, T, E, a, b, beta, gain, vth, k); break;
            case 2: lif_bwd_reset<2>(reset, gsp, gs_step, gs_elem, hp, spp, gyp, gp, T, E, a, b, beta, gain, vth, k); break;
            case 3: lif_bwd_reset<3>(reset, gsp, gs_step, gs_elem, hp, spp, gyp, gp, T, E, a, b, beta, gain, vth, k); break;
            default: lif_bwd_reset<4>(reset, gsp, gs_step, gs_elem, hp, spp, gyp, gp, T, E, a, b, beta, gain, vth, k);
        }
    });
    return {gy, g};
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("binary_csr", &binary_csr);
    m.def("gather_sum", &gather_sum);
    m.def("lif_fwd", &lif_fwd);
    m.def("lif_bwd", &lif_bwd);
}
