// State I/O, inspection and the Python binding of the population-network engine.
#include "engine.h"

namespace popnet {

namespace {
template <typename T>
Tensor copy_of(const std::vector<T>& v, torch::ScalarType t) {
    auto out = torch::empty({(int64_t)v.size()}, t);
    std::copy(v.begin(), v.end(), out.data_ptr<T>());
    return out;
}
template <typename T>
void fill_from(std::vector<T>& dst, const Tensor& src, const char* what) {
    TORCH_CHECK((size_t)src.numel() == dst.size(), "checkpoint field ", what, " holds ", src.numel(),
                " values, this rank's network needs ", dst.size(), " (same network, seed and number of ranks?)");
    std::copy(src.data_ptr<T>(), src.data_ptr<T>() + src.numel(), dst.begin());
}
}  // namespace

std::map<std::string, Tensor> Engine::state() {
    std::map<std::string, Tensor> s = {{"v", copy_of(V_, torch::kFloat64)},
                                       {"i_syn", copy_of(I_, torch::kFloat64)},
                                       {"refractory", copy_of(refr_, torch::kInt32)},
                                       {"counts", copy_of(counts_, torch::kInt64)},
                                       {"step", torch::tensor({step_}, torch::kInt64)},
                                       {"events", torch::tensor({events_}, torch::kInt64)},
                                       {"gids", torch::arange(net_.n_local, torch::kInt64) * net_.ranks + net_.rank}};
    if (exact_) s["ring_fixed"] = copy_of(ring_i_, torch::kInt64);
    else s["ring"] = copy_of(ring_f_, torch::kFloat32);
    return s;
}

void Engine::set_state(std::map<std::string, Tensor> s) {
    const char* ring = exact_ ? "ring_fixed" : "ring";
    TORCH_CHECK(s.count(ring), "the checkpoint has no '", ring, "': it was written in the other accumulation mode "
                "(resume with the same --deterministic setting)");
    fill_from(V_, s.at("v").to(torch::kFloat64).contiguous(), "v");
    fill_from(I_, s.at("i_syn").to(torch::kFloat64).contiguous(), "i_syn");
    fill_from(refr_, s.at("refractory").to(torch::kInt32).contiguous(), "refractory");
    fill_from(counts_, s.at("counts").to(torch::kInt64).contiguous(), "counts");
    if (exact_) fill_from(ring_i_, s.at(ring).to(torch::kInt64).contiguous(), ring);
    else fill_from(ring_f_, s.at(ring).to(torch::kFloat32).contiguous(), ring);
    step_ = s.at("step").item<int64_t>();
    events_ = s.at("events").item<int64_t>();
    pblock_ = -1;
    rec_steps_.clear();
    rec_gids_.clear();
}

std::map<std::string, int64_t> Engine::info() const {
    const int64_t ring_bytes = (int64_t)(ring_f_.size() * 4 + ring_i_.size() * 8);
    return {{"n_local", net_.n_local},
            {"n_segments", net_.n_seg},
            {"n_synapses_local", (int64_t)net_.syn.size()},
            {"synapse_bytes", (int64_t)(net_.syn.size() * 4 + net_.ptr.size() * 8)},
            {"ring_bytes", ring_bytes},
            {"ring_slots", D_},
            {"max_delay", net_.max_delay},
            {"fixed_point_bits", exact_ ? scale_bits_ : 0},
            {"step", step_},
            {"events", events_}};
}

std::vector<Tensor> Engine::drain() {
    std::vector<Tensor> out = {copy_of(rec_steps_, torch::kInt32), copy_of(rec_gids_, torch::kInt32)};
    rec_steps_.clear();
    rec_gids_.clear();
    return out;
}

Tensor Engine::last_spikes() const { return copy_of(spikes_, torch::kInt32); }
Tensor Engine::counts() const { return copy_of(counts_, torch::kInt64); }

Tensor Engine::out_degree(int64_t a, int64_t b) const {
    TORCH_CHECK(a >= 0 && a < net_.n_pop && b >= 0 && b < net_.n_src, "no block (", a, ", ", b, ")");
    return copy_of(net_.deg[(size_t)a * net_.n_src + b], torch::kInt32);
}

std::vector<Tensor> Engine::synapses() const {
    std::vector<int64_t> src, tgt, del;
    std::vector<float> w;
    for (int64_t j = 0; j < net_.n_sources && !net_.procedural; ++j) {
        const size_t wb = (size_t)net_.src_group(j) * net_.n_pop;
        for (int64_t seg = 0; seg < net_.n_seg; ++seg) {
            const int a = net_.seg_pop[seg];
            for (int64_t e = net_.ptr[j * net_.n_seg + seg]; e < net_.ptr[j * net_.n_seg + seg + 1]; ++e) {
                const uint32_t x = net_.syn[e];
                src.push_back(j);
                tgt.push_back(gid(net_.seg_begin[seg] + (x & (kSegment - 1))));
                del.push_back((x >> kOffsetBits) & kMaxDelay);
                w.push_back(net_.wmu0[wb + a] + net_.wstep[wb + a] * (float)(x >> 22));
            }
        }
    }
    return {copy_of(src, torch::kInt64), copy_of(tgt, torch::kInt64), copy_of(del, torch::kInt64),
            copy_of(w, torch::kFloat32)};
}

// Philox4x32-10 words for (n, 4) counters (known-answer tests).
Tensor philox_words(int64_t k0, int64_t k1, Tensor ctr) {
    auto c = ctr.to(torch::kInt64).contiguous();
    TORCH_CHECK(c.dim() == 2 && c.size(1) == 4, "ctr must be (n, 4)");
    auto out = torch::empty({c.size(0), 4}, torch::kInt64);
    const int64_t* p = c.data_ptr<int64_t>();
    int64_t* o = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < c.size(0); ++i) {
        const U4 x = philox((uint32_t)k0, (uint32_t)k1, (uint32_t)p[4 * i], (uint32_t)p[4 * i + 1],
                            (uint32_t)p[4 * i + 2], (uint32_t)p[4 * i + 3]);
        for (int l = 0; l < 4; ++l) o[4 * i + l] = x.v[l];
    }
    return out;
}

// `count` Binomial(n, p) draws from independent streams (distribution tests).
Tensor binomial_draws(int64_t n, double p, int64_t count, int64_t seed) {
    auto out = torch::empty({count}, torch::kInt64);
    int64_t* o = out.data_ptr<int64_t>();
    for (int64_t i = 0; i < count; ++i) {
        Stream s(seed_key((uint64_t)seed), kTree, 0xFFFFFFFFu, (uint32_t)i, (uint32_t)(i >> 32));
        o[i] = binomial(n, p, s);
    }
    return out;
}

}  // namespace popnet

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    using popnet::Engine;
    pybind11::class_<Engine>(m, "Engine")
        .def(pybind11::init<torch::Tensor, int64_t, torch::Tensor, torch::Tensor, torch::Tensor, double, double, double,
                            int64_t, int64_t, int64_t, bool, bool>())
        .def("build", &Engine::build)
        .def("update_pack", &Engine::update_pack)
        .def("deliver_local", &Engine::deliver_local)
        .def("deliver_gathered", &Engine::deliver_gathered)
        .def("deliver_gids", &Engine::deliver_gids)
        .def("end_step", &Engine::end_step)
        .def("run", &Engine::run)
        .def("state", &Engine::state)
        .def("set_state", &Engine::set_state)
        .def("info", &Engine::info)
        .def("drain", &Engine::drain)
        .def("set_recording", &Engine::set_recording)
        .def("last_spikes", &Engine::last_spikes)
        .def("counts", &Engine::counts)
        .def("out_degree", &Engine::out_degree)
        .def("synapses", &Engine::synapses);
    m.def("philox_words", &popnet::philox_words);
    m.def("binomial_draws", &popnet::binomial_draws);
}
