// The engine's per-rank state and step functions (engine.cpp: dynamics; io.cpp: state I/O and binding).
//
// One step s of a rank:
//   update(s):   every local neuron in NEST's iaf_psc_exp order: V (unless refractory) from I_syn, then
//                I_syn = P11 I_syn + ring[s] + Poisson input, then threshold and reset. Emits the spikes.
//   deliver(s):  every spiking source (this rank's, the other ranks', the generators') appends each of its
//                synapses, as an event (target, weight), to the event bin of slot s + delay.
// The ring has D >= max delay slots. A slot is a bin of events, not n_local currents: appending is sequential,
// whereas adding into D dense rows of n_local currents (megabytes at full scale) misses the cache on nearly
// every synapse. update(s) first scatters bin s mod D, in delivery order, into one row of n_local currents
// (which stays in the L2 cache), so every current is the same sum, in the same order, as a dense ring's.
//
// Two accumulators: float32 (fast), or exact 64-bit fixed point in units of 2^-e pA (deterministic: integer
// sums do not depend on the order of the additions, so spikes are bit-identical whatever the number of
// ranks and however deliveries interleave with communication).
#pragma once

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "popnet.h"

namespace popnet {

enum Field { kFirst, kSize, kP11, kP21, kP22, kDrive, kEL, kVth, kVreset, kRef, kV0m, kV0s, kLambda, kWext,
             kOnBegin, kOnEnd, kFields };

class Engine {
   public:
    // groups: n_groups x kFields row-major (populations, then generators); K, wmean, dmean: n_pop x n_groups.
    Engine(const std::vector<double>& groups, int64_t n_pop, const std::vector<int64_t>& K,
           const std::vector<double>& wmean, const std::vector<double>& dmean, double w_rel, double d_rel, double dt,
           int64_t seed, int64_t rank, int64_t ranks, bool procedural, bool exact);

    void build(int threads);  // connectivity and initial state; threads only speed the drawing up
    int64_t update_pack(int32_t* buf, int64_t cap);  // step s; writes [count, ids...] (at most cap ids) into buf
    void deliver_local();                           // this rank's spikes of step s and the generators' spikes
    // The other ranks' packed spikes ([count, ids...] per rank, `stride` ints each); returns the largest count.
    int64_t deliver_gathered(const int32_t* gathered, int64_t stride, int64_t world, int64_t self);
    void deliver_gids(const int32_t* gids, int64_t n);  // any spike list (overflow of a packed exchange)
    void end_step() { ++step_; }
    void run(int64_t n);  // single rank: n whole steps
    void set_recording(bool on) { recording_ = on; }

   private:
    friend struct EngineIO;  // io.cpp: state, inspection, the Python binding
    int64_t gid(int64_t local) const { return local * net_.ranks + net_.rank; }
    void update_into();
    void refill_poisson(int64_t block);
    template <bool kExact>
    void deliver_procedural(int64_t j, int times);
    template <bool kExact>
    void deliver_batch(const int32_t* gids, const int32_t* times, int64_t count);
    void deliver_list(const int32_t* gids, int64_t n);
    void deliver_generators();

    Net net_;
    bool exact_ = false, recording_ = false;
    int scale_bits_ = 0;                      // exact accumulator: 1 unit = 2^-scale_bits_ pA
    std::vector<int64_t> wmu0_i_, wstep_i_;   // weight decoding in those units, per (source group, target pop)
    int64_t D_ = 1, step_ = 0, pblock_ = -1, events_ = 0;
    std::vector<double> V_, I_;
    std::vector<int32_t> refr_, spikes_, rec_steps_, rec_gids_;
    // Events of one ring slot, in delivery order; `n` of `ev` are live (ev only grows, so appending is a store).
    template <typename Acc>
    struct Bin {
        struct Ev {
            int32_t target;  // local index
            Acc w;           // float32 pA, or fixed point
        };
        std::vector<Ev> ev;
        size_t n = 0;
        Ev* room(size_t more) {  // the end, with space for `more` events
            if (n + more > ev.size()) ev.resize(std::max(n + more, 2 * ev.size()));
            return ev.data() + n;
        }
        void push(int32_t t, Acc w) { *room(1) = {t, w}, ++n; }
    };
    std::vector<Bin<float>> bins_f_;      // D slots (float accumulation)
    std::vector<Bin<int64_t>> bins_i_;    // D slots (exact accumulation)
    std::vector<float> cur_f_;            // the current slot's summed input, n_local (zero between steps)
    std::vector<int64_t> cur_i_;
    template <typename Acc>
    std::vector<Bin<Acc>>& bins() {
        if constexpr (std::is_same_v<Acc, float>) return bins_f_;
        else return bins_i_;
    }
    template <typename Acc>
    const std::vector<Bin<Acc>>& bins() const {
        return const_cast<Engine*>(this)->bins<Acc>();
    }
    template <typename Acc>
    Acc* scatter_slot();  // sums the current slot's bin into cur_*_ and empties it; returns cur
    template <typename Acc>
    std::vector<Acc> dense_ring() const;  // the ring as D x n_local summed currents (checkpoints)
    template <typename Acc>
    void load_ring(const Acc* ring);      // the inverse: one event per non-zero current
    std::vector<uint16_t> pcount_;
    std::vector<uint8_t> flags_;                   // spike flags of the current step
    std::vector<std::vector<double>> poisson_cdf_;  // per population: P(count <= k), k = 0, 1, ...
    std::vector<int64_t> counts_;
    std::vector<int32_t> gen_gids_, gen_times_;
};

}  // namespace popnet
