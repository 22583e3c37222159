// Counter-based random numbers for the population-network engine.
//
// Every random quantity of a network (a synapse's target, weight and delay, a neuron's initial membrane
// potential, a background input count, a generator spike) is a pure function of (seed, stream tag, counter):
// Philox4x32-10 (Salmon, Moraes, Dror & Shaw, SC 2011) maps a 128-bit counter and a 64-bit key to four
// independent 32-bit words. Nothing depends on how neurons are spread over ranks or threads, or on the order
// in which they are visited, so a network and its activity are the same on 1, 2 or 3 ranks.
#pragma once

#include <cmath>
#include <cstdint>

namespace popnet {

// Stream tags (the key's second word): one per kind of random quantity.
enum Tag : uint32_t { kV0 = 1, kTree = 2, kSynapse = 3, kPoisson = 4, kGenerator = 5 };

struct U4 {
    uint32_t v[4];
};

inline U4 philox(uint32_t k0, uint32_t k1, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
    const uint64_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u;
    for (int round = 0; round < 10; ++round) {
        const uint64_t p0 = M0 * c0, p1 = M1 * c2;
        const uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n1 = (uint32_t)p1;
        const uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1, n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;  // Weyl key schedule
        k1 += 0xBB67AE85u;
    }
    return {{c0, c1, c2, c3}};
}

// (0, 1), never 0 or 1: safe under log.
inline double open01(uint32_t x) { return ((double)x + 0.5) * (1.0 / 4294967296.0); }

// [0, n) by multiply-shift (bias below n / 2^32, 5e-6 for the largest PD14 population).
inline uint32_t below(uint32_t x, uint32_t n) { return (uint32_t)(((uint64_t)x * n) >> 32); }

// Two independent standard normals from two words (Box-Muller).
inline void normal_pair(uint32_t a, uint32_t b, double& z0, double& z1) {
    const double r = std::sqrt(-2.0 * std::log(open01(a))), th = 6.283185307179586 * open01(b);
    z0 = r * std::cos(th);
    z1 = r * std::sin(th);
}

// The key's first word from a 64-bit seed.
inline uint32_t seed_key(uint64_t seed) { return (uint32_t)seed ^ (uint32_t)(seed >> 32) * 0x85EBCA6Bu; }

// A sequence of uniforms from one counter prefix (c0, c1, c2): block i is philox(..., i), four words each.
struct Stream {
    uint32_t k0, k1, c0, c1, c2, block = 0;
    U4 buf{};
    int lane = 4;
    Stream(uint32_t key, Tag tag, uint32_t a, uint32_t b, uint32_t c) : k0(key), k1((uint32_t)tag), c0(a), c1(b), c2(c) {}
    uint32_t word() {
        if (lane == 4) {
            buf = philox(k0, k1, c0, c1, c2, block++);
            lane = 0;
        }
        return buf.v[lane++];
    }
    double uniform() { return open01(word()); }
};

// Binomial(n, p). Inversion (BINV, Kachitvichyanukul & Schmeiser 1988) when n min(p, 1-p) < 14, else the
// transformed rejection BTRS (Hoermann 1993).
inline int64_t binomial(int64_t n, double p, Stream& s) {
    if (n <= 0 || p <= 0.0) return 0;
    if (p >= 1.0) return n;
    if (p > 0.5) return n - binomial(n, 1.0 - p, s);
    const double q = 1.0 - p;
    if ((double)n * p < 14.0) {
        const double ratio = p / q, a = (double)(n + 1) * ratio;
        for (;;) {
            double r = std::pow(q, (double)n), u = s.uniform();
            int64_t x = 0;
            while (u > r) {
                u -= r;
                ++x;
                if (x > n) break;  // rounding left u above the total mass: draw again
                r *= a / (double)x - ratio;
            }
            if (x <= n) return x;
        }
    }
    const double spq = std::sqrt((double)n * p * q), b = 1.15 + 2.53 * spq, a = -0.0873 + 0.0248 * b + 0.01 * p;
    const double c = (double)n * p + 0.5, alpha = (2.83 + 5.1 / b) * spq, vr = 0.92 - 4.2 / b;
    const double lpq = std::log(p / q), m = std::floor((double)(n + 1) * p);
    const double h = std::lgamma(m + 1.0) + std::lgamma((double)n - m + 1.0);
    for (;;) {
        const double u = s.uniform() - 0.5, v0 = s.uniform(), us = 0.5 - std::fabs(u);
        const double k = std::floor((2.0 * a / us + b) * u + c);
        if (k < 0.0 || k > (double)n) continue;
        if (us >= 0.07 && v0 <= vr) return (int64_t)k;
        const double v = std::log(v0 * alpha / (a / (us * us) + b));
        if (v <= h - std::lgamma(k + 1.0) - std::lgamma((double)n - k + 1.0) + (k - m) * lpq) return (int64_t)k;
    }
}

// Poisson(lambda) by inversion from one uniform; exp_neg = exp(-lambda) (lambda <= ~100).
inline uint32_t poisson(double lambda, double exp_neg, double u) {
    uint32_t k = 0;
    double p = exp_neg, f = p;
    while (u > f && k < 1000) {
        ++k;
        p *= lambda / (double)k;
        f += p;
    }
    return k;
}

}  // namespace popnet
