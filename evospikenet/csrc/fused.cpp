// Training kernels of evospikenet.functional.fused (its docstring gives the equations): the CSR of a binary
// input and of its transpose, the tiled gather-sum that replaces a binary-sparse matrix product, and the LIF
// time loop forward (storing the pre-reset potentials) and backward (the BPTT recursion).
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

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("binary_csr", &binary_csr);
    m.def("gather_sum", &gather_sum);
    m.def("lif_fwd", &lif_fwd);
    m.def("lif_bwd", &lif_bwd);
}
