// Native simulation loop of evospikenet.core.native: all n_steps of a flattened network in one call,
// event-driven, for the float (float32) and integer (int16 membrane, int32 currents, int8 weights) paths.
// Both paths run the same time loop (simulate<Model>) and threshold/reset pass (membrane<T, RESET>); a model
// supplies only what differs: the weights' type, the decay of the synaptic currents and the membrane's
// potential before the threshold test.
// Spikes match evospikenet.core.flat.run_flat_reference exactly (same operations, same summation order).
#include <torch/extension.h>

#include <algorithm>
#include <cstdint>
#include <vector>
#ifdef __AVX2__
#include <immintrin.h>
#endif

using torch::Tensor;

namespace {

// One synaptic-current group for one step: c <- decay(c) + a (the arrivals), a <- 0, I += c. The decay is
// a lambda so that each path keeps one vectorisable loop.
template <typename T, typename Decay>
static inline void decay_group(T* __restrict__ c, T* __restrict__ a, T* __restrict__ I, int64_t n, Decay decay) {
    for (int64_t i = 0; i < n; ++i) {
        const T x = decay(c[i]) + a[i];
        c[i] = x;
        a[i] = T(0);
        I[i] += x;
    }
}

// Spikes emitted so far: ids[off[t] : off[t + 1]] fired at step t.
struct History {
    std::vector<int64_t> ids;
    std::vector<int64_t> off{0};
};

// cur[col] += val for every synapse in the CSR rows of the neurons that fired at step t - delay.
template <typename W, typename A>
inline void scatter_rows(const int32_t* crow, const int32_t* col, const W* val, const History& h, int64_t t,
                         int64_t delay, A* cur) {
    const int64_t src = t - delay;
    if (src < 0) return;
    for (int64_t k = h.off[src]; k < h.off[src + 1]; ++k) {
        const int64_t j = h.ids[k];
        for (int32_t e = crow[j]; e < crow[j + 1]; ++e) cur[col[e]] += (A)val[e];
    }
}

std::tuple<Tensor, Tensor> pack(const History& h) {
    const int64_t m = (int64_t)h.ids.size(), T = (int64_t)h.off.size() - 1;
    auto steps = torch::empty({m}, torch::kInt64), ids = torch::empty({m}, torch::kInt64);
    int64_t* s = steps.data_ptr<int64_t>();
    for (int64_t t = 0; t < T; ++t)
        for (int64_t k = h.off[t]; k < h.off[t + 1]; ++k) s[k] = t;
    std::copy(h.ids.begin(), h.ids.end(), ids.data_ptr<int64_t>());
    return {steps, ids};
}

inline int32_t sat16(int32_t x) { return x < -32768 ? -32768 : (x > 32767 ? 32767 : x); }

// Float path: I = bias + sum_g I_g with I_g = d_g I_g + (W_g^T s); H = V_rest + beta (V - V_rest) + gain I.
struct FloatModel {
    using T = float;  // membrane, currents and weights
    const float *beta, *gain, *v_rest, *bias;
    std::vector<float> decays;
    std::vector<const float*> weights;

    void start(float* __restrict__ I, int64_t n) const { std::copy(bias, bias + n, I); }

    void decay(int64_t g, float* __restrict__ c, float* __restrict__ a, float* __restrict__ I, int64_t n) const {
        const float d = decays[g];
        decay_group(c, a, I, n, [d](float v) { return v * d; });
    }

    void potentials(int64_t n, const float* __restrict__ V, const float* __restrict__ I,
                    float* __restrict__ H) const {
        const float* __restrict__ vr = v_rest;
        const float* __restrict__ b = beta;
        const float* __restrict__ g = gain;
        for (int64_t i = 0; i < n; ++i) H[i] = vr[i] + b[i] * (V[i] - vr[i]) + g[i] * I[i];
    }
};

// Integer path: I_g decays by a rounded multiply ((I m + 2^15) >> 16), a shift (I - (I >> s)) or is a delta;
// H = sat16(leak(V) + sat16(bias + (I >> i_shift))) with the rounded leak V - ((V + 2^(k-1)) >> k) or
// (V m + 2^(b-1)) >> b.
struct IntModel {
    using T = int32_t;
    const int32_t *leak_shift, *leak_mul, *half, *bias;
    int64_t leak_bits, mhalf, i_shift;
    std::vector<int64_t> shifts, muls;
    std::vector<const int32_t*> weights;

    void start(int32_t* __restrict__ I, int64_t n) const { std::fill(I, I + n, 0); }

    void decay(int64_t g, int32_t* __restrict__ c, int32_t* __restrict__ a, int32_t* __restrict__ I,
               int64_t n) const {
        const int64_t m = muls[g], sh = shifts[g];
        if (m >= 0)
            decay_group(c, a, I, n, [m](int32_t v) { return (int32_t)(((int64_t)v * m + 32768) >> 16); });
        else if (sh >= 0)
            decay_group(c, a, I, n, [sh](int32_t v) { return v - (v >> sh); });
        else
            decay_group(c, a, I, n, [](int32_t) { return (int32_t)0; });
    }

    void potentials(int64_t n, const int32_t* __restrict__ V, const int32_t* __restrict__ I,
                    int32_t* __restrict__ H) const {
        const int32_t* __restrict__ k = leak_shift;
        const int32_t* __restrict__ lm = leak_mul;
        const int32_t* __restrict__ hf = half;
        const int32_t* __restrict__ b = bias;
        if (leak_bits > 0) {
            for (int64_t i = 0; i < n; ++i)
                H[i] = sat16((int32_t)(((int64_t)V[i] * lm[i] + mhalf) >> leak_bits) + sat16(b[i] + (I[i] >> i_shift)));
        } else {
            for (int64_t i = 0; i < n; ++i)
                H[i] = sat16(V[i] - ((V[i] + hf[i]) >> k[i]) + sat16(b[i] + (I[i] >> i_shift)));
        }
    }
};

// Threshold, reset and refractory count of every neuron from its potential H: a refractory neuron is held at
// V_reset without firing; reset 0 subtracts V_th, 1 sets V_reset, 2 keeps H. Branch-free, so it vectorises.
template <typename T, int RESET>
void membrane(int64_t n, T* __restrict__ V, const T* __restrict__ H, const T* __restrict__ TH,
              const T* __restrict__ VR, const int32_t* __restrict__ R, int32_t* __restrict__ rc,
              int32_t* __restrict__ fired) {
    for (int64_t i = 0; i < n; ++i) {
        const bool act = rc[i] <= 0;
        const T hh = act ? H[i] : VR[i];
        const bool f = act && hh >= TH[i];
        const T vn = RESET == 0 ? hh - TH[i] : (RESET == 1 ? VR[i] : hh);
        V[i] = f ? vn : hh;
        rc[i] = f ? R[i] : (rc[i] > 0 ? rc[i] - 1 : 0);
        fired[i] = f;
    }
}

// Append the indices of the neurons that fired (fired[i] is 0 or 1), ascending: eight per test with AVX2.
void collect(const int32_t* __restrict__ fired, int64_t n, std::vector<int64_t>& ids) {
    int64_t i = 0;
#ifdef __AVX2__
    for (; i + 8 <= n; i += 8) {
        const __m256i v = _mm256_slli_epi32(_mm256_loadu_si256((const __m256i*)(fired + i)), 31);
        unsigned m = (unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(v));
        for (; m; m &= m - 1) ids.push_back(i + __builtin_ctz(m));
    }
#endif
    for (; i < n; ++i)
        if (fired[i]) ids.push_back(i);
}

// The time loop shared by both paths; V (n) is updated in place. Per step: scatter the events of each
// group's delay, decay the currents and add the events, the potentials, then threshold and reset.
template <typename Model>
History simulate(const Model& m, int64_t n, int64_t n_steps, typename Model::T* __restrict__ V,
                 const typename Model::T* __restrict__ TH, const typename Model::T* __restrict__ VR,
                 const int32_t* __restrict__ R, int64_t reset, const std::vector<Tensor>& crows,
                 const std::vector<Tensor>& cols, const std::vector<int64_t>& delays) {
    using T = typename Model::T;
    const int64_t G = (int64_t)crows.size();
    std::vector<int32_t> rcv(n, 0), firedv(n, 0);
    std::vector<T> Iv(n), Hv(n);
    std::vector<std::vector<T>> cur(G, std::vector<T>(n, T(0))), arr(G, std::vector<T>(n, T(0)));
    int32_t* __restrict__ rc = rcv.data();
    int32_t* __restrict__ fired = firedv.data();
    T* __restrict__ I = Iv.data();
    T* __restrict__ H = Hv.data();
    History h;
    for (int64_t t = 0; t < n_steps; ++t) {
        for (int64_t g = 0; g < G; ++g)
            scatter_rows(crows[g].data_ptr<int32_t>(), cols[g].data_ptr<int32_t>(), m.weights[g], h, t,
                         delays[g], arr[g].data());
        m.start(I, n);
        for (int64_t g = 0; g < G; ++g) m.decay(g, cur[g].data(), arr[g].data(), I, n);
        m.potentials(n, V, I, H);
        if (reset == 0) membrane<T, 0>(n, V, H, TH, VR, R, rc, fired);
        else if (reset == 1) membrane<T, 1>(n, V, H, TH, VR, R, rc, fired);
        else membrane<T, 2>(n, V, H, TH, VR, R, rc, fired);
        collect(fired, n, h.ids);
        h.off.push_back((int64_t)h.ids.size());
    }
    return h;
}

std::vector<Tensor> run_float(int64_t n_steps, Tensor beta, Tensor gain, Tensor v_th, Tensor v_reset,
                              Tensor v_rest, Tensor refr, Tensor bias, Tensor v0, int64_t reset,
                              std::vector<Tensor> crows, std::vector<Tensor> cols, std::vector<Tensor> vals,
                              std::vector<double> decays, std::vector<int64_t> delays) {
    FloatModel m;
    m.beta = beta.data_ptr<float>();
    m.gain = gain.data_ptr<float>();
    m.v_rest = v_rest.data_ptr<float>();
    m.bias = bias.data_ptr<float>();
    for (size_t g = 0; g < vals.size(); ++g) {
        m.decays.push_back((float)decays[g]);
        m.weights.push_back(vals[g].data_ptr<float>());
    }
    Tensor v = v0.clone();
    History h = simulate(m, v0.numel(), n_steps, v.data_ptr<float>(), v_th.data_ptr<float>(),
                         v_reset.data_ptr<float>(), refr.data_ptr<int32_t>(), reset, crows, cols, delays);
    auto [s, ids] = pack(h);
    return {s, ids, v};
}

std::vector<Tensor> run_int(int64_t n_steps, Tensor leak_shift, Tensor leak_mul, int64_t leak_bits,
                            Tensor v_th, Tensor v_reset, Tensor refr, Tensor bias, Tensor v0, int64_t reset,
                            int64_t i_shift, std::vector<Tensor> crows, std::vector<Tensor> cols,
                            std::vector<Tensor> vals, std::vector<int64_t> shifts, std::vector<int64_t> muls,
                            std::vector<int64_t> w_shifts, std::vector<int64_t> delays) {
    const int64_t n = v0.numel();
    IntModel m;
    m.leak_shift = leak_shift.data_ptr<int32_t>();
    m.leak_mul = leak_mul.data_ptr<int32_t>();
    m.bias = bias.data_ptr<int32_t>();
    m.leak_bits = leak_bits;
    m.mhalf = leak_bits > 0 ? (1LL << (leak_bits - 1)) : 0;
    m.i_shift = i_shift;
    m.shifts = shifts;
    m.muls = muls;
    std::vector<int32_t> half(n);
    for (int64_t i = 0; i < n; ++i) half[i] = m.leak_shift[i] > 0 ? 1 << (m.leak_shift[i] - 1) : 0;
    m.half = half.data();
    std::vector<std::vector<int32_t>> wide(vals.size());
    for (size_t g = 0; g < vals.size(); ++g) {  // int8 weights widened once, with the optional left shift
        const int8_t* w = vals[g].data_ptr<int8_t>();
        wide[g].resize(vals[g].numel());
        for (int64_t e = 0; e < vals[g].numel(); ++e) wide[g][e] = (int32_t)w[e] * (1 << w_shifts[g]);
        m.weights.push_back(wide[g].data());
    }
    Tensor v = v0.to(torch::kInt32);
    History h = simulate(m, n, n_steps, v.data_ptr<int32_t>(), v_th.data_ptr<int32_t>(),
                         v_reset.data_ptr<int32_t>(), refr.data_ptr<int32_t>(), reset, crows, cols, delays);
    auto [s, ids] = pack(h);
    return {s, ids, v.to(torch::kInt16)};
}

template <typename W, typename A>
void propagate_rows(const int32_t* cr, const int32_t* c, const W* w, const int64_t* s, int64_t m, A* o) {
    for (int64_t k = 0; k < m; ++k)
        for (int32_t e = cr[s[k]]; e < cr[s[k] + 1]; ++e) o[c[e]] += (A)w[e];
}

// One event-driven propagation: out[col] += val for every synapse in the rows of the spiking neurons ids;
// float32 values into float32, int8 values into int32.
void propagate(Tensor crow, Tensor col, Tensor val, Tensor ids, Tensor out) {
    const int32_t* cr = crow.data_ptr<int32_t>();
    const int32_t* c = col.data_ptr<int32_t>();
    const int64_t* s = ids.data_ptr<int64_t>();
    if (val.scalar_type() == torch::kInt8)
        propagate_rows(cr, c, val.data_ptr<int8_t>(), s, ids.numel(), out.data_ptr<int32_t>());
    else
        propagate_rows(cr, c, val.data_ptr<float>(), s, ids.numel(), out.data_ptr<float>());
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.def("run_float", &run_float);
    m.def("run_int", &run_int);
    m.def("propagate", &propagate);
}
