// Event-driven inference kernels of evospikenet.functional.event_ops (its docstring says what each computes):
// the spike-input linear layer, the multi-step LIF in one pass, and LayerNorm followed by LIF in one pass.
// The float LIF step has one definition (lif_step1 / lif_step8, templated on the reset) used by both LIF
// kernels, one neuron at a time or eight (AVX2) with the same operations in the same order.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <vector>
#include <algorithm>
#include <cmath>
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
        // each panel wt[:, j0:j0+w] is first copied into a contiguous (K, w) buffer: rows of wt a power of
        // two apart would otherwise fall into a few cache sets and evict each other
        std::vector<float> panel(K * P);
        for (int64_t j0 = 0; j0 < M; j0 += P) {
            const int64_t w = std::min(P, M - j0);
            for (int64_t k = 0; k < K; ++k) std::copy(W + k * M + j0, W + k * M + j0 + w, panel.data() + k * w);
            for (int64_t n = b; n < e; ++n)
                accumulate_row(idx.data() + off[n], val.data() + off[n], off[n + 1] - off[n], bin[n], panel.data(),
                               w, w, O + n * M + j0);
        }
    });
    return out;
}

// One LIF step from the current y: h = (y g + o) + b V, s = [h >= th], then the reset (RESET 0 subtract,
// 1 zero, 2 none); 8 neurons (AVX2) or one, with the same operations in the same order.
#ifdef __AVX2__
template <int RESET>
static inline void lif_step8(__m256 y, float* st, float* V, __m256 B, __m256 G, __m256 O, __m256 TH, __m256 VR) {
    const __m256 h = _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(y, G), O), _mm256_mul_ps(B, _mm256_loadu_ps(V)));
    const __m256 fired = _mm256_cmp_ps(h, TH, _CMP_GE_OQ);
    _mm256_storeu_ps(st, _mm256_and_ps(fired, _mm256_set1_ps(1.f)));
    __m256 v = h;
    if (RESET == 0) v = _mm256_sub_ps(h, _mm256_and_ps(fired, TH));
    if (RESET == 1) v = _mm256_blendv_ps(h, VR, fired);
    _mm256_storeu_ps(V, v);
}
#endif

template <int RESET>
static inline void lif_step1(float y, float* st, float* V, float b, float g, float o, float th, float vr) {
    const float h = (y * g + o) + b * *V;
    const bool f = h >= th;
    *st = f ? 1.f : 0.f;
    *V = RESET == 0 ? (f ? h - th : h) : (RESET == 1 ? (f ? vr : h) : h);
}

// One step over neurons [lo, hi): 8 at a time with AVX2, then one by one (RESET 0 subtract, 1 zero, 2 none).
template <int RESET>
static void lif_span(const float* __restrict__ xt, float* __restrict__ st, float* __restrict__ V, int64_t lo,
                     int64_t hi, float b, float g, float o, float th, float vr) {
    int64_t i = lo;
#ifdef __AVX2__
    const __m256 B = _mm256_set1_ps(b), G = _mm256_set1_ps(g), O = _mm256_set1_ps(o);
    const __m256 TH = _mm256_set1_ps(th), VR = _mm256_set1_ps(vr);
    for (; i + 8 <= hi; i += 8) lif_step8<RESET>(_mm256_loadu_ps(xt + i), st + i, V + i, B, G, O, TH, VR);
#endif
    for (; i < hi; ++i) lif_step1<RESET>(xt[i], st + i, V + i, b, g, o, th, vr);
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

#ifdef __AVX2__
static inline double hsum(__m256 a) {
    float t[8];
    _mm256_storeu_ps(t, a);
    return (((double)t[0] + t[1]) + ((double)t[2] + t[3])) + (((double)t[4] + t[5]) + ((double)t[6] + t[7]));
}
#endif

// Mean and 1/sqrt(var + eps) of r[0:D] (two passes, eight float partial sums, combined in double).
static void moments(const float* r, int64_t D, double eps, float* mean, float* rstd) {
    double s = 0.0, q = 0.0;
    int64_t d = 0;
#ifdef __AVX2__
    __m256 a = _mm256_setzero_ps();
    for (; d + 8 <= D; d += 8) a = _mm256_add_ps(a, _mm256_loadu_ps(r + d));
    s = hsum(a);
#endif
    for (; d < D; ++d) s += r[d];
    const float m = (float)(s / (double)D);
    d = 0;
#ifdef __AVX2__
    const __m256 M = _mm256_set1_ps(m);
    __m256 b = _mm256_setzero_ps();
    for (; d + 8 <= D; d += 8) {
        const __m256 c = _mm256_sub_ps(_mm256_loadu_ps(r + d), M);
        b = _mm256_add_ps(b, _mm256_mul_ps(c, c));
    }
    q = hsum(b);
#endif
    for (; d < D; ++d) q += (double)(r[d] - m) * (r[d] - m);
    *mean = m;
    *rstd = (float)(1.0 / std::sqrt(q / (double)D + eps));
}

// One row: y = (x - m) * rs * w + b (LayerNorm; w, b may be null), then the LIF step of lif_span on y.
template <int RESET>
static void norm_lif_row(const float* __restrict__ r, const float* __restrict__ w, const float* __restrict__ bs,
                         float m, float rs, float* __restrict__ st, float* __restrict__ V, int64_t D, float b,
                         float g, float o, float th, float vr) {
    int64_t d = 0;
#ifdef __AVX2__
    const __m256 M = _mm256_set1_ps(m), RS = _mm256_set1_ps(rs);
    const __m256 B = _mm256_set1_ps(b), G = _mm256_set1_ps(g), O = _mm256_set1_ps(o);
    const __m256 TH = _mm256_set1_ps(th), VR = _mm256_set1_ps(vr);
    for (; d + 8 <= D; d += 8) {
        __m256 y = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(r + d), M), RS);
        if (w) y = _mm256_mul_ps(y, _mm256_loadu_ps(w + d));
        if (bs) y = _mm256_add_ps(y, _mm256_loadu_ps(bs + d));
        lif_step8<RESET>(y, st + d, V + d, B, G, O, TH, VR);
    }
#endif
    for (; d < D; ++d) {
        float y = (r[d] - m) * rs;
        if (w) y = y * w[d];
        if (bs) y = y + bs[d];
        lif_step1<RESET>(y, st + d, V + d, b, g, o, th, vr);
    }
}

// x (T, N, D) with unit stride over D (any strides over T and N), weight/bias (D) or empty, starting at rest:
// per step and row the LayerNorm of the row, then the LIF step of lif_forward on it, in registers: one read
// of x and one write of the spikes.
std::vector<Tensor> ln_lif_forward(Tensor x, Tensor w, Tensor bias, double eps, double beta, double gain,
                                   double offset, double v_th, double v_reset, int64_t reset) {
    const int64_t T = x.size(0), N = x.size(1), D = x.size(2), st = x.stride(0), sn = x.stride(1);
    auto spikes = torch::empty({T, N, D}, x.options());
    auto v = torch::zeros({N, D}, x.options());
    const float* X = x.data_ptr<float>();
    const float* W = w.numel() ? w.data_ptr<float>() : nullptr;
    const float* Bs = bias.numel() ? bias.data_ptr<float>() : nullptr;
    float* S = spikes.data_ptr<float>();
    float* V = v.data_ptr<float>();
    const float b = (float)beta, g = (float)gain, o = (float)offset, th = (float)v_th, vr = (float)v_reset;
    at::parallel_for(0, N, 8, [&](int64_t lo, int64_t hi) {
        for (int64_t n = lo; n < hi; ++n) {
            for (int64_t t = 0; t < T; ++t) {
                const float* r = X + t * st + n * sn;
                float m, rs;
                moments(r, D, eps, &m, &rs);
                float* sr = S + (t * N + n) * D;
                if (reset == 0) norm_lif_row<0>(r, W, Bs, m, rs, sr, V + n * D, D, b, g, o, th, vr);
                else if (reset == 1) norm_lif_row<1>(r, W, Bs, m, rs, sr, V + n * D, D, b, g, o, th, vr);
                else norm_lif_row<2>(r, W, Bs, m, rs, sr, V + n * D, D, b, g, o, th, vr);
            }
        }
    });
    return {spikes, v};
}

// The kernels touch no Python object: they run without the GIL, so a server's other threads keep going.
PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    namespace py = pybind11;
    m.def("spike_linear", &spike_linear, py::call_guard<py::gil_scoped_release>());
    m.def("lif_forward", &lif_forward, py::call_guard<py::gil_scoped_release>());
    m.def("ln_lif_forward", &ln_lif_forward, py::call_guard<py::gil_scoped_release>());
}
