// Connectivity of the population-network engine: rank layout, out-degree trees, synapse rows.
//
// "Fixed total number" draws K_ab (source, target) pairs uniformly with replacement. Equivalently, and
// exactly: the out-degrees of the N_b sources are Multinomial(K_ab; 1/N_b each), and each source's synapses
// pick their targets uniformly from population a. The out-degrees come from a binary tree of binomial
// splits (node [lo, hi) holding n synapses sends Binomial(n, (mid - lo) / (hi - lo)) to its left half), each
// node drawing from its own stream keyed by (block, lo, hi); so every rank computes the same out-degrees,
// and a source's targets, weights and delays depend on (seed, source gid, target population, k) only.
#include <algorithm>
#include <atomic>
#include <stdexcept>

#include "popnet.h"

namespace popnet {

// Sort key of a packed synapse: delay, then target offset, then weight code.
static inline uint64_t by_delay(uint32_t w) {
    return (uint64_t)((w >> kOffsetBits) & kMaxDelay) << 32 | (uint64_t)(w & (kSegment - 1)) << 10 | (w >> 22);
}

int Net::src_group(int64_t gid) const {
    int b = n_src - 1;
    while (b > 0 && gid < src[b].first) --b;
    return b;
}

int64_t Net::segment_of(int a, int64_t local) const {
    return seg_first[a] + ((local - src[a].lbegin) >> kOffsetBits);
}

void layout(Net& net) {
    net.seg_pop.clear();
    net.seg_begin.clear();
    net.seg_first.assign(net.n_pop, 0);
    int64_t n_neurons = 0;
    for (int a = 0; a < net.n_pop; ++a) {
        Pop& p = net.src[a];
        n_neurons += p.size;
        // First gid of this population owned by this rank, and how many it owns.
        const int64_t g0 = p.first + ((net.rank - p.first) % net.ranks + net.ranks) % net.ranks;
        p.lsize = g0 < p.first + p.size ? (p.first + p.size - 1 - g0) / net.ranks + 1 : 0;
        p.lbegin = g0 / net.ranks;
        net.seg_first[a] = (int64_t)net.seg_pop.size();
        for (int64_t at = 0; at < p.lsize; at += kSegment) {
            net.seg_pop.push_back(a);
            net.seg_begin.push_back(p.lbegin + at);
        }
    }
    net.n_seg = (int64_t)net.seg_pop.size();
    net.n_local = n_neurons > net.rank ? (n_neurons - net.rank - 1) / net.ranks + 1 : 0;
    net.n_sources = 0;
    for (const Pop& p : net.src) net.n_sources = std::max(net.n_sources, p.first + p.size);
    net.wmu0.assign((size_t)net.n_src * net.n_pop, 0.f);
    net.wstep.assign((size_t)net.n_src * net.n_pop, 0.f);
    for (int b = 0; b < net.n_src; ++b)
        for (int a = 0; a < net.n_pop; ++a) {
            const double mu = net.wmean[(size_t)a * net.n_src + b], step = mu * net.w_rel * kQStep;
            net.wmu0[(size_t)b * net.n_pop + a] = (float)(mu - 512.0 * step);
            net.wstep[(size_t)b * net.n_pop + a] = (float)step;
        }
}

static void split(std::vector<int32_t>& deg, uint32_t key, uint32_t block, int64_t lo, int64_t hi, int64_t n) {
    if (hi - lo == 1) {
        deg[lo] = (int32_t)n;
        return;
    }
    const int64_t mid = lo + (hi - lo) / 2;
    int64_t left = 0;
    if (n > 0) {
        Stream s(key, kTree, block, (uint32_t)lo, (uint32_t)hi);
        left = binomial(n, (double)(mid - lo) / (double)(hi - lo), s);
    }
    split(deg, key, block, lo, mid, left);
    split(deg, key, block, mid, hi, n - left);
}

void out_degrees(Net& net, int threads) {
    const int64_t n_blocks = (int64_t)net.n_pop * net.n_src;
    net.deg.assign(n_blocks, {});
    parallel_for(n_blocks, 1, threads, [&](int64_t lo, int64_t hi) {
        for (int64_t blk = lo; blk < hi; ++blk) {
            const int64_t total = net.K[blk];
            const int64_t nb = net.src[blk % net.n_src].size;
            if (total <= 0 || nb <= 0) continue;
            net.deg[blk].assign(nb, 0);
            split(net.deg[blk], net.key, (uint32_t)blk, 0, nb, total);
        }
    });
}

uint32_t make_synapse(const Net& net, int a, int b, int64_t j, uint32_t k, const U4& first, int64_t offset,
                      bool* too_long) {
    const size_t blk = (size_t)a * net.n_src + b;
    const double dm = net.dmean[blk];
    double zw, zd, spare;
    normal_pair(first.v[1], first.v[2], zw, zd);
    // Redraws (NEST's `redraw`): the weight keeps its sign, the delay is at least dt / 2. Attempt i >= 1
    // gives the weight its cosine deviate and the delay its sine deviate, independently.
    for (uint32_t att = 1; 1.0 + net.w_rel * zw < 0.0; ++att) {
        const U4 y = philox(net.key, kSynapse, (uint32_t)j, (uint32_t)a, k, att);
        normal_pair(y.v[1], y.v[2], zw, spare);
    }
    for (uint32_t att = 1; dm * (1.0 + net.d_rel * zd) < 0.5 * net.dt; ++att) {
        const U4 y = philox(net.key, kSynapse, (uint32_t)j, (uint32_t)a, k, att);
        normal_pair(y.v[1], y.v[2], spare, zd);
    }
    const int64_t q = std::clamp<int64_t>(std::llround(zw / kQStep) + 512, 0, 1023);
    int64_t d = std::llround(dm * (1.0 + net.d_rel * zd) / net.dt);
    if (d > kMaxDelay) {
        *too_long = true;
        d = kMaxDelay;
    }
    return (uint32_t)offset | (uint32_t)d << kOffsetBits | (uint32_t)q << (kOffsetBits + kDelayBits);
}

void build_synapses(Net& net, int threads) {
    net.ptr.clear();
    net.syn.clear();
    if (net.procedural) return;
    const int64_t S = net.n_seg, rows = net.n_sources * S;
    net.ptr.assign(rows + 1, 0);
    // Pass 1: row lengths (targets only: no weights or delays drawn).
    parallel_for(net.n_sources, 256, threads, [&](int64_t lo, int64_t hi) {
        for (int64_t j = lo; j < hi; ++j)
            for_each_target(net, j, [&](int, uint32_t, const U4&, int64_t seg, int64_t) { ++net.ptr[j * S + seg + 1]; });
    });
    for (int64_t r = 0; r < rows; ++r) net.ptr[r + 1] += net.ptr[r];
    net.syn.resize(net.ptr[rows]);
    // Pass 2: the same draws again, now with weights and delays, each into its row in canonical order.
    std::atomic<bool> too_long{false};
    std::atomic<int> max_delay{1};
    parallel_for(net.n_sources, 256, threads, [&](int64_t lo, int64_t hi) {
        std::vector<int64_t> fill(S);
        bool longer = false;
        int dmax = 1;
        for (int64_t j = lo; j < hi; ++j) {
            const int b = net.src_group(j);
            std::copy(net.ptr.begin() + j * S, net.ptr.begin() + j * S + S, fill.begin());
            for_each_target(net, j, [&](int a, uint32_t k, const U4& x, int64_t seg, int64_t off) {
                const uint32_t w = make_synapse(net, a, b, j, k, x, off, &longer);
                dmax = std::max(dmax, (int)((w >> kOffsetBits) & kMaxDelay));
                net.syn[fill[seg]++] = w;
            });
            // Each row by delay (then target, weight code): delivery walks a step's rows one delay at a time.
            for (int64_t seg = 0; seg < S; ++seg)
                std::sort(net.syn.begin() + net.ptr[j * S + seg], net.syn.begin() + net.ptr[j * S + seg + 1],
                          [](uint32_t x, uint32_t y) { return by_delay(x) < by_delay(y); });
        }
        if (longer) too_long = true;
        int seen = max_delay.load();
        while (dmax > seen && !max_delay.compare_exchange_weak(seen, dmax)) {
        }
    });
    if (too_long) throw std::runtime_error("a synaptic delay exceeds 127 steps: use a larger dt or shorter delays");
    net.max_delay = max_delay;
}

}  // namespace popnet
