// Population-network engine: shared declarations (see evospikenet/sim/engine.py for the model).
//
// Global ids: the neurons of population 0, 1, ... in order, then the sources of each generator. Rank r of R
// owns the neurons with gid % R == r (round robin, which balances every population); its local index is
// gid / R, so each population's local neurons form one contiguous local range.
//
// Connectivity on a rank: only the synapses onto its own neurons, grouped by (source gid, segment) in CSR
// form. A segment is a run of at most 32768 local neurons of one population, so a synapse packs into 32 bits:
//   bits  0-14  target offset inside the segment
//   bits 15-21  delay in steps (1..127)
//   bits 22-31  weight code q (0..1023): w = mu + mu * rel_sd * (q - 512) * 12/1024, i.e. the normal deviate
//               quantised to 1/85 of a standard deviation over +-6 SD (0.06 % of the mean weight for PD14)
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <thread>
#include <vector>

#include "rng.h"

namespace popnet {

constexpr int kOffsetBits = 15, kDelayBits = 7, kMaxDelay = (1 << kDelayBits) - 1;
constexpr int64_t kSegment = int64_t(1) << kOffsetBits;
constexpr double kQStep = 12.0 / 1024.0;  // normal deviate per weight code

struct Pop {  // a population of neurons, or a generator (then only first/size/rates matter)
    int64_t first = 0, size = 0;      // global ids [first, first + size)
    int64_t lbegin = 0, lsize = 0;    // its neurons on this rank: local indices [lbegin, lbegin + lsize)
    double p11 = 0, p21 = 0, p22 = 0;  // exact propagators of I_syn -> I_syn, I_syn -> V, V -> V
    double drive = 0;                  // P20 * I_e (mV per step)
    double e_l = 0, v_th = 0, v_reset = 0, v0_mean = 0, v0_sd = 0;
    int32_t ref_steps = 0;
    double lambda = 0, exp_neg = 1, w_ext = 0;  // Poisson inputs per step and their current (pA)
    int64_t on_begin = 0, on_end = 0;           // generators: active steps [on_begin, on_end)
};

struct Net {
    uint32_t key = 0;
    int rank = 0, ranks = 1;
    int n_pop = 0, n_src = 0;  // neuron populations; all source groups (populations, then generators)
    int64_t n_local = 0, n_sources = 0;
    std::vector<Pop> src;  // n_src entries: populations first
    std::vector<int64_t> K;           // [a * n_src + b] synapse totals, target a, source group b
    std::vector<double> wmean, dmean;  // same layout: mean weight (pA), mean delay (ms)
    double w_rel = 0.1, d_rel = 0.5, dt = 0.1;
    // Segments on this rank.
    std::vector<int32_t> seg_pop;
    std::vector<int64_t> seg_begin, seg_first;  // local start of each segment; first segment of each population
    int64_t n_seg = 0;
    // Out-degrees: deg[a * n_src + b][j] synapses from source j of group b onto population a.
    std::vector<std::vector<int32_t>> deg;
    // Weight decoding per (source group b, target population a): w = mu0 + step * q.
    std::vector<float> wmu0, wstep;
    // Stored connectivity (empty in procedural mode): row (source gid, segment) = syn[ptr[row] : ptr[row+1]].
    std::vector<int64_t> ptr;
    std::vector<uint32_t> syn;
    bool procedural = false;
    int max_delay = 1;

    int src_group(int64_t gid) const;      // which source group a global id belongs to
    int64_t segment_of(int a, int64_t local) const;  // segment holding a local neuron of population a
};

// fn(lo, hi) over [0, n) in chunks of `grain`, on `threads` threads taking chunks in turn; the first
// exception is rethrown in the caller. Work items must be independent (then the result is too).
template <typename F>
void parallel_for(int64_t n, int64_t grain, int threads, F&& fn) {
    std::atomic<int64_t> next{0};
    std::exception_ptr error;
    std::atomic<bool> failed{false};
    auto work = [&] {
        try {
            for (int64_t lo; !failed && (lo = next.fetch_add(grain)) < n;) fn(lo, std::min(n, lo + grain));
        } catch (...) {
            if (!failed.exchange(true)) error = std::current_exception();
        }
    };
    std::vector<std::thread> pool;
    for (int t = 1; t < threads; ++t) pool.emplace_back(work);
    work();
    for (auto& t : pool) t.join();
    if (error) std::rethrow_exception(error);
}

// build.cpp
void layout(Net& net);                        // local ranges and segments
void out_degrees(Net& net, int threads);      // the multinomial trees
void build_synapses(Net& net, int threads);   // the two passes (count, fill); no-op when procedural
// The packed synapse k of source j (group b) onto population a; `first` is its counter's attempt-0 block.
// Sets *too_long when its delay exceeds kMaxDelay steps (then clipped).
uint32_t make_synapse(const Net& net, int a, int b, int64_t j, uint32_t k, const U4& first, int64_t offset,
                      bool* too_long);

// Calls f(a, k, x, segment, offset) for every synapse of source gid j onto this rank, in the canonical order
// (target population a, then draw index k): the order of stored rows and of procedural delivery alike. x is
// the synapse's attempt-0 random block (its target came from x.v[0]).
template <typename F>
inline void for_each_target(const Net& net, int64_t j, F&& f) {
    const int b = net.src_group(j);
    const int64_t jj = j - net.src[b].first;
    for (int a = 0; a < net.n_pop; ++a) {
        const auto& d = net.deg[(size_t)a * net.n_src + b];
        if (d.empty()) continue;
        const uint32_t n = (uint32_t)d[jj], size = (uint32_t)net.src[a].size;
        for (uint32_t k = 0; k < n; ++k) {
            const U4 x = philox(net.key, kSynapse, (uint32_t)j, (uint32_t)a, k, 0);
            const int64_t t = net.src[a].first + below(x.v[0], size);
            if (t % net.ranks != net.rank) continue;
            const int64_t local = t / net.ranks, seg = net.segment_of(a, local);
            f(a, k, x, seg, local - net.seg_begin[seg]);
        }
    }
}

}  // namespace popnet
