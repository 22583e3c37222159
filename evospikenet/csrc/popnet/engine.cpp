// Dynamics of the population-network engine (see engine.h for a step's structure and
// evospikenet/sim/engine.py for the equations).
#include "engine.h"

#include <ATen/Parallel.h>
#include <xmmintrin.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace popnet {

// Currents decay towards zero through subnormal numbers, which x86 handles ~100x slower: flush them to zero
// while the engine computes (FTZ | DAZ), and give the caller its floating-point mode back afterwards.
struct FlushDenormals {
    unsigned int saved = _mm_getcsr();
    FlushDenormals() { _mm_setcsr(saved | 0x8040u); }
    ~FlushDenormals() { _mm_setcsr(saved); }
};

Engine::Engine(Tensor groups, int64_t n_pop, Tensor K, Tensor wmean, Tensor dmean, double w_rel, double d_rel,
               double dt, int64_t seed, int64_t rank, int64_t ranks, bool procedural, bool exact) {
    groups = groups.to(torch::kFloat64).contiguous();
    TORCH_CHECK(groups.dim() == 2 && groups.size(1) == kFields, "groups must be (n_groups, ", kFields, ")");
    TORCH_CHECK(ranks >= 1 && rank >= 0 && rank < ranks, "rank ", rank, " is outside 0..", ranks - 1);
    TORCH_CHECK(w_rel >= 0 && w_rel <= 1.0 / 6.0, "weight_rel_sd must be in [0, 1/6] (weights are stored as "
                "deviates within +-6 SD, so a larger spread could flip signs), got ", w_rel);
    net_.key = seed_key((uint64_t)seed);
    net_.rank = (int)rank;
    net_.ranks = (int)ranks;
    net_.n_pop = (int)n_pop;
    net_.n_src = (int)groups.size(0);
    net_.w_rel = w_rel;
    net_.d_rel = d_rel;
    net_.dt = dt;
    net_.procedural = procedural;
    exact_ = exact;
    const double* g = groups.data_ptr<double>();
    for (int b = 0; b < net_.n_src; ++b, g += kFields) {
        Pop p;
        p.first = (int64_t)g[kFirst];
        p.size = (int64_t)g[kSize];
        p.p11 = g[kP11];
        p.p21 = g[kP21];
        p.p22 = g[kP22];
        p.drive = g[kDrive];
        p.e_l = g[kEL];
        p.v_th = g[kVth];
        p.v_reset = g[kVreset];
        p.ref_steps = (int32_t)g[kRef];
        p.v0_mean = g[kV0m];
        p.v0_sd = g[kV0s];
        p.lambda = g[kLambda];
        p.exp_neg = std::exp(-g[kLambda]);
        p.w_ext = g[kWext];
        p.on_begin = (int64_t)g[kOnBegin];
        p.on_end = (int64_t)g[kOnEnd];
        TORCH_CHECK(p.lambda <= 100.0, "Poisson drive of ", p.lambda, " inputs per step: use DC drive or a smaller dt");
        net_.src.push_back(p);
    }
    auto k = K.to(torch::kInt64).contiguous();
    auto wm = wmean.to(torch::kFloat64).contiguous(), dm = dmean.to(torch::kFloat64).contiguous();
    TORCH_CHECK(k.numel() == n_pop * net_.n_src && wm.numel() == k.numel() && dm.numel() == k.numel(),
                "K, wmean and dmean must be (n_pop, n_groups)");
    net_.K.assign(k.data_ptr<int64_t>(), k.data_ptr<int64_t>() + k.numel());
    net_.wmean.assign(wm.data_ptr<double>(), wm.data_ptr<double>() + wm.numel());
    net_.dmean.assign(dm.data_ptr<double>(), dm.data_ptr<double>() + dm.numel());
    layout(net_);
    // Fixed point: the largest weight (+6 SD) times 2^scale_bits stays below 2^40, leaving 2^23 additions of
    // it per ring cell before an int64 could overflow.
    double wmax = 1.0;
    for (double w : net_.wmean) wmax = std::max(wmax, std::fabs(w) * (1.0 + 6.0 * w_rel));
    scale_bits_ = 40 - (int)std::ceil(std::log2(wmax));
    const double unit = std::ldexp(1.0, scale_bits_);
    wmu0_i_.assign(net_.wmu0.size(), 0);
    wstep_i_.assign(net_.wstep.size(), 0);
    for (int b = 0; b < net_.n_src; ++b)
        for (int a = 0; a < net_.n_pop; ++a) {
            const double mu = net_.wmean[(size_t)a * net_.n_src + b], step = mu * w_rel * kQStep;
            wmu0_i_[(size_t)b * net_.n_pop + a] = std::llround((mu - 512.0 * step) * unit);
            wstep_i_[(size_t)b * net_.n_pop + a] = std::llround(step * unit);
        }
}

void Engine::build() {
    {
        pybind11::gil_scoped_release nogil;
        out_degrees(net_, 0);
        build_synapses(net_, 0);
    }
    int d = 1;
    while (d < (net_.procedural ? kMaxDelay : net_.max_delay)) d <<= 1;
    D_ = d;
    ring_f_.clear();
    ring_i_.clear();
    if (exact_) ring_i_.assign((size_t)D_ * net_.n_local, 0);
    else ring_f_.assign((size_t)D_ * net_.n_local, 0.f);
    V_.assign(net_.n_local, 0.0);
    I_.assign(net_.n_local, 0.0);
    refr_.assign(net_.n_local, 0);
    pcount_.assign((size_t)4 * net_.n_local, 0);
    counts_.assign(net_.n_pop, 0);
    for (int a = 0; a < net_.n_pop; ++a) {  // initial membrane potentials, one normal deviate per gid
        const Pop& p = net_.src[a];
        for (int64_t l = p.lbegin; l < p.lbegin + p.lsize; ++l) {
            const U4 x = philox(net_.key, kV0, (uint32_t)gid(l), 0, 0, 0);
            double z, spare;
            normal_pair(x.v[0], x.v[1], z, spare);
            V_[l] = p.v0_mean + p.v0_sd * z;
        }
    }
}

void Engine::refill_poisson(int64_t block) {
    pblock_ = block;
    for (int a = 0; a < net_.n_pop; ++a) {
        const Pop& p = net_.src[a];
        if (p.lambda <= 0) continue;
        for (int64_t l = p.lbegin; l < p.lbegin + p.lsize; ++l) {
            const U4 x = philox(net_.key, kPoisson, (uint32_t)gid(l), (uint32_t)block, 0, 0);
            for (int lane = 0; lane < 4; ++lane)
                pcount_[(size_t)lane * net_.n_local + l] = (uint16_t)poisson(p.lambda, p.exp_neg, open01(x.v[lane]));
        }
    }
}

void Engine::update_into() {
    const size_t row = (size_t)(step_ & (D_ - 1)) * net_.n_local;
    if ((step_ >> 2) != pblock_) refill_poisson(step_ >> 2);
    const uint16_t* pc = pcount_.data() + (size_t)(step_ & 3) * net_.n_local;
    const double unit = std::ldexp(1.0, -scale_bits_);
    float* rf = exact_ ? nullptr : ring_f_.data() + row;
    int64_t* ri = exact_ ? ring_i_.data() + row : nullptr;
    spikes_.clear();
    for (int a = 0; a < net_.n_pop; ++a) {
        const Pop& p = net_.src[a];
        const int64_t before = (int64_t)spikes_.size();
        for (int64_t l = p.lbegin; l < p.lbegin + p.lsize; ++l) {
            double v = V_[l];
            int32_t r = refr_[l];
            if (r == 0) v = p.e_l + (v - p.e_l) * p.p22 + I_[l] * p.p21 + p.drive;
            else --r;
            double in;
            if (exact_) {
                in = (double)ri[l] * unit;
                ri[l] = 0;
            } else {
                in = (double)rf[l];
                rf[l] = 0.f;
            }
            I_[l] = I_[l] * p.p11 + in + (double)pc[l] * p.w_ext;
            if (v >= p.v_th) {
                v = p.v_reset;
                r = p.ref_steps;
                spikes_.push_back((int32_t)gid(l));
            }
            V_[l] = v;
            refr_[l] = r;
        }
        counts_[a] += (int64_t)spikes_.size() - before;
    }
    if (recording_) {
        rec_steps_.insert(rec_steps_.end(), spikes_.size(), (int32_t)step_);
        rec_gids_.insert(rec_gids_.end(), spikes_.begin(), spikes_.end());
    }
}

// Adds the synapses of source gid j (spiking in step s, `times` spikes at once) into the ring.
template <bool kExact>
void Engine::deliver_one(int64_t j, int times) {
    const int b = net_.src_group(j);
    const size_t wb = (size_t)b * net_.n_pop;
    const int64_t mask = D_ - 1, n = net_.n_local, s = step_;
    auto add = [&](uint32_t w, int64_t seg) {
        const int a = net_.seg_pop[seg];
        const int64_t at = ((s + ((w >> kOffsetBits) & kMaxDelay)) & mask) * n + net_.seg_begin[seg] + (w & (kSegment - 1));
        if constexpr (kExact) ring_i_[at] += wmu0_i_[wb + a] + wstep_i_[wb + a] * (int64_t)(w >> 22);
        else ring_f_[at] += net_.wmu0[wb + a] + net_.wstep[wb + a] * (float)(w >> 22);
    };
    for (int rep = 0; rep < times; ++rep) {
        if (net_.procedural) {
            bool too_long = false;
            for_each_target(net_, j, [&](int a, uint32_t k, const U4& x, int64_t seg, int64_t off) {
                add(make_synapse(net_, a, b, j, k, x, off, &too_long), seg);
                ++events_;
            });
            if (too_long) throw std::runtime_error("a synaptic delay exceeds 127 steps");
            continue;
        }
        const int64_t* ptr = net_.ptr.data() + j * net_.n_seg;
        for (int64_t seg = 0; seg < net_.n_seg; ++seg) {
            const uint32_t* p = net_.syn.data() + ptr[seg];
            const uint32_t* e = net_.syn.data() + ptr[seg + 1];
            events_ += e - p;
            for (; p < e; ++p) add(*p, seg);
        }
    }
}

void Engine::deliver_list(const int32_t* gids, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
        TORCH_CHECK(gids[i] >= 0 && gids[i] < net_.n_sources, "spike of unknown neuron ", gids[i]);
        exact_ ? deliver_one<true>(gids[i], 1) : deliver_one<false>(gids[i], 1);
    }
}

void Engine::deliver_generators() {
    for (int b = net_.n_pop; b < net_.n_src; ++b) {
        const Pop& g = net_.src[b];
        if (step_ < g.on_begin || step_ >= g.on_end) continue;
        for (int64_t i = 0; i < g.size; ++i) {
            const U4 x = philox(net_.key, kGenerator, (uint32_t)(g.first + i), (uint32_t)step_, 0, 0);
            const int c = (int)poisson(g.lambda, g.exp_neg, open01(x.v[0]));
            if (c) exact_ ? deliver_one<true>(g.first + i, c) : deliver_one<false>(g.first + i, c);
        }
    }
}

int64_t Engine::update_pack(Tensor buf) {
    TORCH_CHECK(buf.scalar_type() == torch::kInt32 && buf.is_contiguous() && buf.numel() >= 1, "buf: int32 (cap + 1,)");
    {
        pybind11::gil_scoped_release nogil;
        FlushDenormals ftz;
        update_into();
    }
    int32_t* b = buf.data_ptr<int32_t>();
    const int64_t n = (int64_t)spikes_.size(), cap = buf.numel() - 1;
    b[0] = (int32_t)n;
    std::copy(spikes_.begin(), spikes_.begin() + std::min(n, cap), b + 1);
    return n;
}

void Engine::deliver_local() {
    pybind11::gil_scoped_release nogil;
    FlushDenormals ftz;
    deliver_list(spikes_.data(), (int64_t)spikes_.size());
    deliver_generators();
}

int64_t Engine::deliver_gathered(Tensor gathered, int64_t world, int64_t self) {
    TORCH_CHECK(gathered.scalar_type() == torch::kInt32 && gathered.is_contiguous() && gathered.numel() % world == 0,
                "gathered: int32 (world * (cap + 1),)");
    const int32_t* g = gathered.data_ptr<int32_t>();
    const int64_t stride = gathered.numel() / world;
    pybind11::gil_scoped_release nogil;
    FlushDenormals ftz;
    int64_t most = 0;
    for (int64_t r = 0; r < world; ++r) {
        most = std::max<int64_t>(most, g[r * stride]);
        if (r != self) deliver_list(g + r * stride + 1, std::min<int64_t>(g[r * stride], stride - 1));
    }
    return most;
}

void Engine::deliver_gids(Tensor gids) {
    auto g = gids.to(torch::kInt32).contiguous();
    pybind11::gil_scoped_release nogil;
    FlushDenormals ftz;
    deliver_list(g.data_ptr<int32_t>(), g.numel());
}

void Engine::run(int64_t n) {
    TORCH_CHECK(net_.ranks == 1, "run() is the single-rank loop; with several ranks step from Python");
    pybind11::gil_scoped_release nogil;
    FlushDenormals ftz;
    for (int64_t t = 0; t < n; ++t) {
        update_into();
        deliver_list(spikes_.data(), (int64_t)spikes_.size());
        deliver_generators();
        ++step_;
    }
}

}  // namespace popnet
