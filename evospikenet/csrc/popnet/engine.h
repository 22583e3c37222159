// The engine's per-rank state and step functions (engine.cpp: dynamics; io.cpp: state I/O and binding).
//
// One step s of a rank:
//   update(s):   every local neuron in NEST's iaf_psc_exp order: V (unless refractory) from I_syn, then
//                I_syn = P11 I_syn + ring[s] + Poisson input, then threshold and reset. Emits the spikes.
//   deliver(s):  every spiking source (this rank's, the other ranks', the generators') adds each of its
//                synapses onto this rank's neurons to ring[s + delay].
// The ring has D >= max delay slots of n_local currents; slot s mod D is read and cleared in update(s).
//
// Two accumulators: float32 (fast), or exact 64-bit fixed point in units of 2^-e pA (deterministic: integer
// sums do not depend on the order of the additions, so spikes are bit-identical whatever the number of
// ranks and however deliveries interleave with communication).
#pragma once

#include <map>
#include <string>

#include "popnet.h"

namespace popnet {

using torch::Tensor;

enum Field { kFirst, kSize, kP11, kP21, kP22, kDrive, kEL, kVth, kVreset, kRef, kV0m, kV0s, kLambda, kWext,
             kOnBegin, kOnEnd, kFields };

class Engine {
   public:
    Engine(Tensor groups, int64_t n_pop, Tensor K, Tensor wmean, Tensor dmean, double w_rel, double d_rel, double dt,
           int64_t seed, int64_t rank, int64_t ranks, bool procedural, bool exact);

    // engine.cpp
    void build();
    int64_t update_pack(Tensor buf);  // step s; writes [count, ids...] (up to buf's capacity) into buf
    void deliver_local();             // this rank's spikes of step s and the generators' spikes
    // The other ranks' packed spikes ([count, ids...] per rank; at most cap ids each); returns the largest count.
    int64_t deliver_gathered(Tensor gathered, int64_t world, int64_t self);
    void deliver_gids(Tensor gids);   // any spike list (overflow of a packed exchange)
    void end_step() { ++step_; }
    void run(int64_t n);              // single rank: n whole steps in C++

    // io.cpp
    std::map<std::string, Tensor> state();
    void set_state(std::map<std::string, Tensor> s);
    std::map<std::string, int64_t> info() const;
    std::vector<Tensor> drain();      // recorded (steps, gids) since the last drain
    void set_recording(bool on) { recording_ = on; }
    Tensor last_spikes() const;
    Tensor counts() const;
    Tensor out_degree(int64_t a, int64_t b) const;
    std::vector<Tensor> synapses() const;

   private:
    int64_t gid(int64_t local) const { return local * net_.ranks + net_.rank; }
    void update_into();
    void refill_poisson(int64_t block);
    template <bool kExact>
    void deliver_one(int64_t j, int times);
    void deliver_list(const int32_t* gids, int64_t n);
    void deliver_generators();

    Net net_;
    bool exact_ = false, recording_ = false;
    int scale_bits_ = 0;                      // exact accumulator: 1 unit = 2^-scale_bits_ pA
    std::vector<int64_t> wmu0_i_, wstep_i_;   // weight decoding in those units, per (source group, target pop)
    int64_t D_ = 1, step_ = 0, pblock_ = -1, events_ = 0;
    std::vector<double> V_, I_;
    std::vector<int32_t> refr_, spikes_, rec_steps_, rec_gids_;
    std::vector<float> ring_f_;
    std::vector<int64_t> ring_i_;
    std::vector<uint16_t> pcount_;
    std::vector<int64_t> counts_;
};

}  // namespace popnet
