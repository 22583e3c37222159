// Dynamics of the population-network engine (see engine.h for a step's structure and
// evospikenet/sim/engine.py for the equations).
#include "engine.h"

#include <xmmintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>

namespace popnet {

// Currents decay towards zero through subnormal numbers, which x86 handles ~100x slower: flush them to zero
// while the engine computes (FTZ | DAZ), and give the caller its floating-point mode back afterwards.
struct FlushDenormals {
    unsigned int saved = _mm_getcsr();
    FlushDenormals() { _mm_setcsr(saved | 0x8040u); }
    ~FlushDenormals() { _mm_setcsr(saved); }
};

static void require(bool ok, const std::string& message) {
    if (!ok) throw std::invalid_argument(message);
}

Engine::Engine(const std::vector<double>& groups, int64_t n_pop, const std::vector<int64_t>& K,
               const std::vector<double>& wmean, const std::vector<double>& dmean, double w_rel, double d_rel,
               double dt, int64_t seed, int64_t rank, int64_t ranks, bool procedural, bool exact) {
    require(groups.size() % kFields == 0 && !groups.empty(), "groups must be (n_groups, 16)");
    require(ranks >= 1 && rank >= 0 && rank < ranks,
            "rank " + std::to_string(rank) + " is outside 0.." + std::to_string(ranks - 1));
    require(w_rel >= 0 && w_rel <= 1.0 / 6.0,
            "weight_rel_sd must be in [0, 1/6] (weights are stored as deviates within +-6 SD, so a larger spread "
            "could flip signs), got " + std::to_string(w_rel));
    net_.key = seed_key((uint64_t)seed);
    net_.rank = (int)rank;
    net_.ranks = (int)ranks;
    net_.n_pop = (int)n_pop;
    net_.n_src = (int)(groups.size() / kFields);
    net_.w_rel = w_rel;
    net_.d_rel = d_rel;
    net_.dt = dt;
    net_.procedural = procedural;
    exact_ = exact;
    const double* g = groups.data();
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
        require(p.lambda <= 100.0, "Poisson drive of " + std::to_string(p.lambda) +
                                       " inputs per step: use DC drive or a smaller dt");
        net_.src.push_back(p);
    }
    require((int64_t)K.size() == n_pop * net_.n_src && wmean.size() == K.size() && dmean.size() == K.size(),
            "K, wmean and dmean must be (n_pop, n_groups)");
    net_.K = K;
    net_.wmean = wmean;
    net_.dmean = dmean;
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

void Engine::build(int threads) {
    out_degrees(net_, threads);
    build_synapses(net_, threads);
    int d = 1;
    while (d < (net_.procedural ? kMaxDelay : net_.max_delay)) d <<= 1;
    D_ = d;
    bins_f_.assign(exact_ ? 0 : D_, {});
    bins_i_.assign(exact_ ? D_ : 0, {});
    cur_f_.assign(exact_ ? 0 : net_.n_local, 0.f);
    cur_i_.assign(exact_ ? net_.n_local : 0, 0);
    V_.assign(net_.n_local, 0.0);
    I_.assign(net_.n_local, 0.0);
    refr_.assign(net_.n_local, 0);
    pcount_.assign((size_t)4 * net_.n_local, 0);
    flags_.assign(net_.n_local + 8, 0);
    poisson_cdf_.assign(net_.n_pop, {});
    for (int a = 0; a < net_.n_pop; ++a) {  // P(count <= k) while it is below 1 - 1e-15
        const Pop& p = net_.src[a];
        double term = p.exp_neg, cum = term;
        for (int k = 0; p.lambda > 0 && cum < 1.0 - 1e-15 && k < 200; ++k) {
            poisson_cdf_[a].push_back(cum);
            term *= p.lambda / (k + 1);
            cum += term;
        }
        poisson_cdf_[a].push_back(1.0);
    }
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
        const std::vector<double>& cdf = poisson_cdf_[a];
        const int top = (int)cdf.size() - 1;
        for (int64_t l = p.lbegin; l < p.lbegin + p.lsize; ++l) {
            const U4 x = philox(net_.key, kPoisson, (uint32_t)gid(l), (uint32_t)block, 0, 0);
            for (int lane = 0; lane < 4; ++lane) {  // inversion against the tabulated CDF
                const double u = open01(x.v[lane]);
                int k = 0;
                while (k < top && u > cdf[k]) ++k;
                pcount_[(size_t)lane * net_.n_local + l] = (uint16_t)(k < top ? k : poisson(p.lambda, p.exp_neg, u));
            }
        }
    }
}

// One population's dynamics for this step, in two passes: a branch-free pass over all its neurons (the
// compiler vectorises it), then a scan of the spike flags, which are rare.
template <typename Acc>
static void update_population(const Pop& p, double* __restrict__ V, double* __restrict__ I, int32_t* __restrict__ R,
                              Acc* __restrict__ ring, const uint16_t* __restrict__ pc, uint8_t* __restrict__ flag,
                              double unit, int64_t n) {
    const double e_l = p.e_l, p22 = p.p22, p21 = p.p21, p11 = p.p11, drive = p.drive, v_th = p.v_th;
    const double v_reset = p.v_reset, w_ext = p.w_ext;
    const int32_t ref = p.ref_steps;
    for (int64_t l = 0; l < n; ++l) {
        const int32_t r = R[l];
        const double v_free = e_l + (V[l] - e_l) * p22 + I[l] * p21 + drive;
        const double v = r == 0 ? v_free : V[l];
        const double in = (double)ring[l] * unit;
        ring[l] = 0;
        I[l] = I[l] * p11 + in + (double)pc[l] * w_ext;
        const bool f = v >= v_th;
        V[l] = f ? v_reset : v;
        R[l] = f ? ref : (r > 0 ? r - 1 : 0);
        flag[l] = f;
    }
}

template <typename Acc>
Acc* Engine::scatter_slot() {
    auto& bin = bins<Acc>()[(size_t)(step_ & (D_ - 1))];
    Acc* __restrict__ cur;
    if constexpr (std::is_same_v<Acc, float>) cur = cur_f_.data();
    else cur = cur_i_.data();
    for (size_t k = 0; k < bin.n; ++k) cur[bin.ev[k].target] += bin.ev[k].w;
    bin.n = 0;
    return cur;
}

template <typename Acc>
std::vector<Acc> Engine::dense_ring() const {
    const auto& b = bins<Acc>();
    std::vector<Acc> ring((size_t)D_ * net_.n_local, Acc(0));
    for (size_t slot = 0; slot < b.size(); ++slot)
        for (size_t k = 0; k < b[slot].n; ++k) ring[slot * net_.n_local + b[slot].ev[k].target] += b[slot].ev[k].w;
    return ring;
}

template <typename Acc>
void Engine::load_ring(const Acc* ring) {
    auto& b = bins<Acc>();
    for (size_t slot = 0; slot < b.size(); ++slot) {
        b[slot].n = 0;
        for (int64_t l = 0; l < net_.n_local; ++l)
            if (ring[slot * net_.n_local + l] != Acc(0)) b[slot].push((int32_t)l, ring[slot * net_.n_local + l]);
    }
}

template std::vector<float> Engine::dense_ring<float>() const;
template std::vector<int64_t> Engine::dense_ring<int64_t>() const;
template void Engine::load_ring<float>(const float*);
template void Engine::load_ring<int64_t>(const int64_t*);

void Engine::update_into() {
    if ((step_ >> 2) != pblock_) refill_poisson(step_ >> 2);
    const uint16_t* pc = pcount_.data() + (size_t)(step_ & 3) * net_.n_local;
    float* cur_f = exact_ ? nullptr : scatter_slot<float>();
    int64_t* cur_i = exact_ ? scatter_slot<int64_t>() : nullptr;
    spikes_.clear();
    for (int a = 0; a < net_.n_pop; ++a) {
        const Pop& p = net_.src[a];
        const int64_t l0 = p.lbegin, n = p.lsize;
        if (exact_)
            update_population(p, &V_[l0], &I_[l0], &refr_[l0], cur_i + l0, pc + l0, &flags_[l0],
                              std::ldexp(1.0, -scale_bits_), n);
        else
            update_population(p, &V_[l0], &I_[l0], &refr_[l0], cur_f + l0, pc + l0, &flags_[l0], 1.0, n);
        const int64_t before = (int64_t)spikes_.size();
        int64_t l = 0;
        for (; l + 8 <= n; l += 8) {  // eight flags per load: most words are zero
            uint64_t word;
            std::memcpy(&word, &flags_[l0 + l], 8);
            if (!word) continue;
            for (int k = 0; k < 8; ++k)
                if (flags_[l0 + l + k]) spikes_.push_back((int32_t)gid(l0 + l + k));
        }
        for (; l < n; ++l)
            if (flags_[l0 + l]) spikes_.push_back((int32_t)gid(l0 + l));
        counts_[a] += (int64_t)spikes_.size() - before;
    }
    if (recording_) {
        rec_steps_.insert(rec_steps_.end(), spikes_.size(), (int32_t)step_);
        rec_gids_.insert(rec_gids_.end(), spikes_.begin(), spikes_.end());
    }
}

// Procedural delivery of source gid j: its synapses regenerated from their streams, in draw order, each
// appended to the bin of its slot (queued and appended in bursts of kBurst).
template <bool kExact>
void Engine::deliver_procedural(int64_t j, int times) {
    using Acc = std::conditional_t<kExact, int64_t, float>;
    constexpr int kBurst = 256;
    const int b = net_.src_group(j);
    const size_t wb = (size_t)b * net_.n_pop;
    const int64_t mask = D_ - 1, s = step_;
    auto& bins = this->bins<Acc>();
    int64_t slot[kBurst];
    int32_t at[kBurst];
    Acc add[kBurst];
    int m = 0;
    auto flush = [&] {
        for (int i = 0; i < m; ++i) bins[slot[i]].push(at[i], add[i]);
        m = 0;
    };
    bool too_long = false;
    for (int rep = 0; rep < times; ++rep)
        for_each_target(net_, j, [&](int a, uint32_t k, const U4& x, int64_t seg, int64_t off) {
            const uint32_t w = make_synapse(net_, a, b, j, k, x, off, &too_long);
            slot[m] = (s + ((w >> kOffsetBits) & kMaxDelay)) & mask;
            at[m] = (int32_t)(net_.seg_begin[seg] + off);
            if constexpr (kExact) add[m] = wmu0_i_[wb + a] + wstep_i_[wb + a] * (int64_t)(w >> 22);
            else add[m] = net_.wmu0[wb + a] + net_.wstep[wb + a] * (float)(w >> 22);
            if (++m == kBurst) flush();
            ++events_;
        });
    flush();
    if (too_long) throw std::runtime_error("a synaptic delay exceeds 127 steps");
}

// Stored delivery of a batch of sources spiking in step s (`times` spikes each). Each source's row is read
// once, in order (the hardware prefetcher streams it); its synapses are sorted by delay, so the row is a
// sequence of runs of one delay d, each appended to the bin of slot s + d in one go.
template <bool kExact>
void Engine::deliver_batch(const int32_t* gids, const int32_t* times, int64_t count) {
    using Acc = std::conditional_t<kExact, int64_t, float>;
    auto& bins = this->bins<Acc>();
    const int64_t mask = D_ - 1, s = step_;
    const uint32_t* syn = net_.syn.data();
    for (int64_t i = 0; i < count; ++i) {
        const int64_t j = gids[i];
        const int reps = times ? times[i] : 1;
        const size_t wb = (size_t)net_.src_group(j) * net_.n_pop;
        const int64_t* ptr = net_.ptr.data() + j * net_.n_seg;
        if (i + 1 < count) __builtin_prefetch(syn + net_.ptr[(size_t)gids[i + 1] * net_.n_seg]);
        for (int64_t seg = 0; seg < net_.n_seg; ++seg) {
            const uint32_t* p = syn + ptr[seg];
            const uint32_t* const end = syn + ptr[seg + 1];
            if (p == end) continue;
            const int a = net_.seg_pop[seg];
            const int32_t base = (int32_t)net_.seg_begin[seg];
            Acc w0, ws;
            if constexpr (kExact) w0 = wmu0_i_[wb + a], ws = wstep_i_[wb + a];
            else w0 = net_.wmu0[wb + a], ws = net_.wstep[wb + a];
            events_ += (end - p) * reps;
            while (p < end) {
                const uint32_t d = (*p >> kOffsetBits) & kMaxDelay;
                auto& bin = bins[(s + d) & mask];
                auto* out = bin.room((size_t)(end - p) * (size_t)reps);  // the run fits in the rest of the row
                auto* const first = out;
                if (reps == 1) {
                    for (; p < end && ((*p >> kOffsetBits) & kMaxDelay) == d; ++p)
                        *out++ = {base + (int32_t)(*p & (kSegment - 1)), w0 + ws * (Acc)(*p >> 22)};
                } else {  // a generator source with several spikes in this step: one event per spike
                    for (; p < end && ((*p >> kOffsetBits) & kMaxDelay) == d; ++p)
                        for (int rep = 0; rep < reps; ++rep)
                            *out++ = {base + (int32_t)(*p & (kSegment - 1)), w0 + ws * (Acc)(*p >> 22)};
                }
                bin.n += (size_t)(out - first);
            }
        }
    }
}

void Engine::deliver_list(const int32_t* gids, int64_t n) {
    for (int64_t i = 0; i < n; ++i)
        if (gids[i] < 0 || gids[i] >= net_.n_sources)
            throw std::out_of_range("spike of unknown neuron " + std::to_string(gids[i]));
    if (net_.procedural) {
        for (int64_t i = 0; i < n; ++i) exact_ ? deliver_procedural<true>(gids[i], 1) : deliver_procedural<false>(gids[i], 1);
        return;
    }
    exact_ ? deliver_batch<true>(gids, nullptr, n) : deliver_batch<false>(gids, nullptr, n);
}

void Engine::deliver_generators() {
    gen_gids_.clear();
    gen_times_.clear();
    for (int b = net_.n_pop; b < net_.n_src; ++b) {
        const Pop& g = net_.src[b];
        if (step_ < g.on_begin || step_ >= g.on_end) continue;
        for (int64_t i = 0; i < g.size; ++i) {
            const U4 x = philox(net_.key, kGenerator, (uint32_t)(g.first + i), (uint32_t)step_, 0, 0);
            const int c = (int)poisson(g.lambda, g.exp_neg, open01(x.v[0]));
            if (!c) continue;
            gen_gids_.push_back((int32_t)(g.first + i));
            gen_times_.push_back(c);
        }
    }
    if (gen_gids_.empty()) return;
    const int64_t n = (int64_t)gen_gids_.size();
    if (net_.procedural) {
        for (int64_t i = 0; i < n; ++i)
            exact_ ? deliver_procedural<true>(gen_gids_[i], gen_times_[i]) : deliver_procedural<false>(gen_gids_[i], gen_times_[i]);
        return;
    }
    exact_ ? deliver_batch<true>(gen_gids_.data(), gen_times_.data(), n)
           : deliver_batch<false>(gen_gids_.data(), gen_times_.data(), n);
}

int64_t Engine::update_pack(int32_t* buf, int64_t cap) {
    {
        FlushDenormals ftz;
        update_into();
    }
    const int64_t n = (int64_t)spikes_.size();
    buf[0] = (int32_t)n;
    std::copy(spikes_.begin(), spikes_.begin() + std::min(n, cap), buf + 1);
    return n;
}

void Engine::deliver_local() {
    FlushDenormals ftz;
    deliver_list(spikes_.data(), (int64_t)spikes_.size());
    deliver_generators();
}

int64_t Engine::deliver_gathered(const int32_t* g, int64_t stride, int64_t world, int64_t self) {
    FlushDenormals ftz;
    int64_t most = 0;
    for (int64_t r = 0; r < world; ++r) {
        most = std::max<int64_t>(most, g[r * stride]);
        if (r != self) deliver_list(g + r * stride + 1, std::min<int64_t>(g[r * stride], stride - 1));
    }
    return most;
}

void Engine::deliver_gids(const int32_t* gids, int64_t n) {
    FlushDenormals ftz;
    deliver_list(gids, n);
}

void Engine::run(int64_t n) {
    require(net_.ranks == 1, "run() is the single-rank loop; with several ranks step from Python");
    FlushDenormals ftz;
    for (int64_t t = 0; t < n; ++t) {
        update_into();
        deliver_list(spikes_.data(), (int64_t)spikes_.size());
        deliver_generators();
        ++step_;
    }
}

}  // namespace popnet
