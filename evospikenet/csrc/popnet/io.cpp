// The Python binding of the population-network engine: tensors in and out, the GIL released while the engine
// computes, state for checkpoints, and inspection for tests. The only file of the engine that includes torch.
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#include <torch/extension.h>
#include <torch/version.h>

#include <signal.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <cerrno>
#include <chrono>
#include <thread>

#include "engine.h"

namespace popnet {

using torch::Tensor;

namespace {
template <typename T>
Tensor copy_of(const std::vector<T>& v, torch::ScalarType t) {
    auto out = torch::empty({(int64_t)v.size()}, t);
    std::copy(v.begin(), v.end(), out.data_ptr<T>());
    return out;
}
template <typename T>
std::vector<T> vec(const Tensor& t, torch::ScalarType type) {
    auto c = t.to(type).contiguous();
    return std::vector<T>(c.data_ptr<T>(), c.data_ptr<T>() + c.numel());
}
template <typename T>
void fill_from(std::vector<T>& dst, const Tensor& src, const char* what) {
    TORCH_CHECK((size_t)src.numel() == dst.size(), "checkpoint field ", what, " holds ", src.numel(),
                " values, this rank's network needs ", dst.size(), " (same network, seed and number of ranks?)");
    std::copy(src.data_ptr<T>(), src.data_ptr<T>() + src.numel(), dst.begin());
}
void check_int32(const Tensor& t, const char* what) {
    TORCH_CHECK(t.scalar_type() == torch::kInt32 && t.is_contiguous() && t.device().is_cpu(),
                what, " must be a contiguous int32 CPU tensor");
}
}  // namespace

struct EngineIO {
    using nogil = pybind11::gil_scoped_release;

    static std::unique_ptr<Engine> make(Tensor groups, int64_t n_pop, Tensor K, Tensor wmean, Tensor dmean,
                                        double w_rel, double d_rel, double dt, int64_t seed, int64_t rank, int64_t ranks,
                                        bool procedural, bool exact) {
        TORCH_CHECK(groups.dim() == 2 && groups.size(1) == kFields, "groups must be (n_groups, ", kFields, ")");
        return std::make_unique<Engine>(vec<double>(groups, torch::kFloat64), n_pop, vec<int64_t>(K, torch::kInt64),
                                        vec<double>(wmean, torch::kFloat64), vec<double>(dmean, torch::kFloat64), w_rel,
                                        d_rel, dt, seed, rank, ranks, procedural, exact);
    }
    static void build(Engine& e, int64_t threads) {
        nogil g;
        e.build((int)std::max<int64_t>(1, threads));
    }
    static int64_t update_pack(Engine& e, Tensor buf) {
        check_int32(buf, "buf");
        TORCH_CHECK(buf.numel() >= 1, "buf needs room for the count");
        nogil g;
        return e.update_pack(buf.data_ptr<int32_t>(), buf.numel() - 1);
    }
    static void deliver_local(Engine& e) {
        nogil g;
        e.deliver_local();
    }
    static int64_t deliver_gathered(Engine& e, Tensor gathered, int64_t world, int64_t self) {
        check_int32(gathered, "gathered");
        TORCH_CHECK(world >= 1 && gathered.numel() % world == 0, "gathered must hold world * (cap + 1) ints");
        nogil g;
        return e.deliver_gathered(gathered.data_ptr<int32_t>(), gathered.numel() / world, world, self);
    }
    static void deliver_gids(Engine& e, Tensor gids) {
        auto c = gids.to(torch::kInt32).contiguous();
        nogil g;
        e.deliver_gids(c.data_ptr<int32_t>(), c.numel());
    }
    static void run(Engine& e, int64_t n) {
        nogil g;
        e.run(n);
    }

    // n whole steps of a rank, exchanging spikes with the others over `pg` (torch.distributed's process
    // group, gloo) without returning to Python: per step the dynamics, an asynchronous all-gather of the
    // packed spikes ([count, ids...], `cap` ids per rank), this rank's own and the generators' deliveries
    // while it runs, then the others'. A rank with more than `cap` spikes sends the rest in a second
    // all-gather, and the capacity grows (alike on every rank: all see the same counts). Returns it.
    static int64_t run_exchanged(Engine& e, c10::intrusive_ptr<c10d::ProcessGroup> pg, int64_t n, int64_t cap) {
        const int64_t world = pg->getSize(), rank = pg->getRank();
        nogil g;
        auto alloc = [&](int64_t c) {
            return std::make_pair(torch::zeros({c + 1}, torch::kInt32), torch::zeros({world * (c + 1)}, torch::kInt32));
        };
        auto gather = [&](Tensor& out, Tensor& in) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 13)
            return pg->all_gather_single(out, in);
#else
            return pg->_allgather_base(out, in);
#endif
        };
        auto wait = [&](const c10::intrusive_ptr<c10d::Work>& work) {
            try {
                // Poll, yielding the core, rather than sleep on the work's condition variable: the exchange
                // usually completes within microseconds, and a sleeping thread takes far longer to wake on a
                // loaded machine. wait() then returns at once (or raises the failure).
                while (!work->isCompleted()) std::this_thread::yield();
                work->wait();
            } catch (const std::exception& err) {
                throw std::runtime_error("rank " + std::to_string(rank) + ": the spike exchange of step " +
                                         std::to_string(e.step_) + " failed (" + err.what() +
                                         "). Another rank has probably died or hung; the run stops.");
            }
        };
        auto [buf, out] = alloc(cap);
        for (int64_t t = 0; t < n; ++t) {
            e.update_pack(buf.data_ptr<int32_t>(), cap);
            auto work = gather(out, buf);
            e.deliver_local();
            wait(work);
            const int64_t most = e.deliver_gathered(out.data_ptr<int32_t>(), cap + 1, world, rank);
            if (most > cap) {
                auto [b2, o2] = alloc(most - cap);
                const int64_t mine = std::max<int64_t>(0, (int64_t)e.spikes_.size() - cap);
                b2.data_ptr<int32_t>()[0] = (int32_t)mine;
                std::copy(e.spikes_.begin() + cap, e.spikes_.begin() + cap + mine, b2.data_ptr<int32_t>() + 1);
                wait(gather(o2, b2));
                e.deliver_gathered(o2.data_ptr<int32_t>(), most - cap + 1, world, rank);
                while (cap < most) cap *= 2;
                std::tie(buf, out) = alloc(cap);
            }
            e.end_step();
        }
        return cap;
    }

    // n whole steps of a rank exchanging spikes with the other ranks of its node through `region`, a
    // shared-memory mapping that every rank has open (set up by evospikenet/sim/distributed.py). Layout:
    // world headers of 64 bytes ([published step, pid], one cache line per rank, so ranks never write the
    // same line), then 2 x world spike lists of cap + 1 int32 ([count, ids...]; list (parity, r) at
    // (parity * world + r) * (cap + 1)). A rank writes its list of step s into parity s & 1, publishes
    // s + 1 (release), delivers its own spikes, then waits for every other rank to publish s + 1 (acquire)
    // and delivers theirs. Two parities suffice: a rank can only write parity s & 1 again at step s + 2,
    // after every other rank has published s + 2, which each does after delivering step s.
    // cap >= the largest n_local of any rank, so a list never overflows. A peer whose process is gone, or
    // that publishes nothing for timeout_s, stops the run with an error naming it.
    static void run_shared(Engine& e, Tensor region, int64_t world, int64_t rank, int64_t cap, int64_t n,
                           double timeout_s) {
        TORCH_CHECK(region.is_contiguous() && region.scalar_type() == torch::kUInt8, "region must be uint8");
        TORCH_CHECK(rank >= 0 && rank < world && cap >= e.net_.n_local, "bad rank, world or capacity");
        TORCH_CHECK(region.numel() >= world * 64 + 2 * world * (cap + 1) * 4, "region is too small");
        uint8_t* base = region.data_ptr<uint8_t>();
        auto seq = [&](int64_t r) { return reinterpret_cast<int64_t*>(base + r * 64); };
        auto list = [&](int64_t parity, int64_t r) {
            return reinterpret_cast<int32_t*>(base + world * 64) + (parity * world + r) * (cap + 1);
        };
        nogil g;
        __atomic_store_n(seq(rank) + 1, (int64_t)getpid(), __ATOMIC_RELAXED);
        for (int64_t t = 0; t < n; ++t) {
            const int64_t step = e.step_, parity = step & 1;
            e.update_pack(list(parity, rank), cap);
            __atomic_store_n(seq(rank), step + 1, __ATOMIC_RELEASE);
            e.deliver_local();
            for (int64_t r = 0; r < world; ++r) {
                if (r == rank) continue;
                auto last = std::chrono::steady_clock::now();
                for (int64_t spin = 0; __atomic_load_n(seq(r), __ATOMIC_ACQUIRE) < step + 1; ++spin) {
                    if (spin < 2000) {
                        _mm_pause();
                        continue;
                    }
                    std::this_thread::yield();
                    if (spin % 4096) continue;
                    const pid_t pid = (pid_t)__atomic_load_n(seq(r) + 1, __ATOMIC_RELAXED);
                    const bool gone = pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
                    const double waited =
                        std::chrono::duration<double>(std::chrono::steady_clock::now() - last).count();
                    if (gone || waited > timeout_s)
                        throw std::runtime_error(
                            "rank " + std::to_string(rank) + ": the spike exchange of step " + std::to_string(step) +
                            " failed (rank " + std::to_string(r) +
                            (gone ? " has died" : " sent nothing for " + std::to_string((int)timeout_s) + " s") +
                            "). The run stops.");
                }
                const int32_t* l = list(parity, r);
                e.deliver_gids(l + 1, l[0]);
            }
            e.end_step();
        }
    }

    static std::map<std::string, Tensor> state(const Engine& e) {
        std::map<std::string, Tensor> s = {{"v", copy_of(e.V_, torch::kFloat64)},
                                           {"i_syn", copy_of(e.I_, torch::kFloat64)},
                                           {"refractory", copy_of(e.refr_, torch::kInt32)},
                                           {"counts", copy_of(e.counts_, torch::kInt64)},
                                           {"step", torch::tensor({e.step_}, torch::kInt64)},
                                           {"events", torch::tensor({e.events_}, torch::kInt64)},
                                           {"gids", torch::arange(e.net_.n_local, torch::kInt64) * e.net_.ranks + e.net_.rank}};
        if (e.exact_) s["ring_fixed"] = copy_of(e.dense_ring<int64_t>(), torch::kInt64);
        else s["ring"] = copy_of(e.dense_ring<float>(), torch::kFloat32);
        return s;
    }

    static void set_state(Engine& e, std::map<std::string, Tensor> s) {
        const char* ring = e.exact_ ? "ring_fixed" : "ring";
        TORCH_CHECK(s.count(ring), "the checkpoint has no '", ring, "': it was written in the other accumulation "
                    "mode (resume with the same --deterministic setting)");
        fill_from(e.V_, s.at("v").to(torch::kFloat64).contiguous(), "v");
        fill_from(e.I_, s.at("i_syn").to(torch::kFloat64).contiguous(), "i_syn");
        fill_from(e.refr_, s.at("refractory").to(torch::kInt32).contiguous(), "refractory");
        fill_from(e.counts_, s.at("counts").to(torch::kInt64).contiguous(), "counts");
        const int64_t cells = e.D_ * e.net_.n_local;
        if (e.exact_) {
            std::vector<int64_t> dense(cells);
            fill_from(dense, s.at(ring).to(torch::kInt64).contiguous(), ring);
            e.load_ring(dense.data());
        } else {
            std::vector<float> dense(cells);
            fill_from(dense, s.at(ring).to(torch::kFloat32).contiguous(), ring);
            e.load_ring(dense.data());
        }
        e.step_ = s.at("step").item<int64_t>();
        e.events_ = s.at("events").item<int64_t>();
        e.pblock_ = -1;
        e.rec_steps_.clear();
        e.rec_gids_.clear();
    }

    static int64_t ring_bytes(const Engine& e) {  // the bins' allocated events and the current row
        int64_t b = (int64_t)(e.cur_f_.size() * 4 + e.cur_i_.size() * 8);
        for (const auto& x : e.bins_f_) b += (int64_t)(x.ev.capacity() * sizeof(x.ev[0]));
        for (const auto& x : e.bins_i_) b += (int64_t)(x.ev.capacity() * sizeof(x.ev[0]));
        return b;
    }

    static std::map<std::string, int64_t> info(const Engine& e) {
        const Net& n = e.net_;
        return {{"n_local", n.n_local},
                {"n_segments", n.n_seg},
                {"n_synapses_local", (int64_t)n.syn.size()},
                {"synapse_bytes", (int64_t)(n.syn.size() * 4 + n.ptr.size() * 8)},
                {"ring_bytes", ring_bytes(e)},
                {"ring_slots", e.D_},
                {"max_delay", n.max_delay},
                {"fixed_point_bits", e.exact_ ? e.scale_bits_ : 0},
                {"step", e.step_},
                {"events", e.events_}};
    }

    static std::vector<Tensor> drain(Engine& e) {
        std::vector<Tensor> out = {copy_of(e.rec_steps_, torch::kInt32), copy_of(e.rec_gids_, torch::kInt32)};
        e.rec_steps_.clear();
        e.rec_gids_.clear();
        return out;
    }

    static Tensor last_spikes(const Engine& e) { return copy_of(e.spikes_, torch::kInt32); }
    static Tensor counts(const Engine& e) { return copy_of(e.counts_, torch::kInt64); }

    static Tensor out_degree(const Engine& e, int64_t a, int64_t b) {
        TORCH_CHECK(a >= 0 && a < e.net_.n_pop && b >= 0 && b < e.net_.n_src, "no block (", a, ", ", b, ")");
        return copy_of(e.net_.deg[(size_t)a * e.net_.n_src + b], torch::kInt32);
    }

    // The stored synapses decoded for a tensor implementation: each source's synapses are contiguous
    // (rows (j, 0..S-1) follow each other), so source j owns [src_ptr[j], src_ptr[j + 1]).
    static std::map<std::string, Tensor> arrays(const Engine& e) {
        const Net& n = e.net_;
        TORCH_CHECK(!n.procedural, "a procedural engine stores no synapses");
        const int64_t m = (int64_t)n.syn.size();
        auto src_ptr = torch::empty({n.n_sources + 1}, torch::kInt64);
        auto target = torch::empty({m}, torch::kInt32);
        auto delay = torch::empty({m}, torch::kInt16);
        auto wf = torch::empty({m}, torch::kFloat32);
        auto wi = torch::empty({e.exact_ ? m : 0}, torch::kInt64);
        int64_t* sp = src_ptr.data_ptr<int64_t>();
        int32_t* t = target.data_ptr<int32_t>();
        int16_t* d = delay.data_ptr<int16_t>();
        float* f = wf.data_ptr<float>();
        int64_t* w = wi.data_ptr<int64_t>();
        for (int64_t j = 0; j <= n.n_sources; ++j) sp[j] = n.ptr[std::min(j, n.n_sources) * n.n_seg];
        for (int64_t j = 0; j < n.n_sources; ++j) {
            const size_t wb = (size_t)n.src_group(j) * n.n_pop;
            for (int64_t seg = 0; seg < n.n_seg; ++seg) {
                const int a = n.seg_pop[seg];
                for (int64_t k = n.ptr[j * n.n_seg + seg]; k < n.ptr[j * n.n_seg + seg + 1]; ++k) {
                    const uint32_t x = n.syn[k];
                    t[k] = (int32_t)(n.seg_begin[seg] + (x & (kSegment - 1)));
                    d[k] = (int16_t)((x >> kOffsetBits) & kMaxDelay);
                    f[k] = n.wmu0[wb + a] + n.wstep[wb + a] * (float)(x >> 22);
                    if (e.exact_) w[k] = e.wmu0_i_[wb + a] + e.wstep_i_[wb + a] * (int64_t)(x >> 22);
                }
            }
        }
        return {{"src_ptr", src_ptr}, {"target", target}, {"delay", delay}, {"weight", wf}, {"weight_fixed", wi},
                {"ring_slots", torch::tensor({e.D_})}, {"fixed_point_bits", torch::tensor({(int64_t)e.scale_bits_})},
                {"v0", copy_of(e.V_, torch::kFloat64)}};
    }

    // This rank's stored synapses as (source gid, target gid, delay steps, weight pA), row by row.
    static std::vector<Tensor> synapses(const Engine& e) {
        const Net& n = e.net_;
        std::vector<int64_t> src, tgt, del;
        std::vector<float> w;
        for (int64_t j = 0; j < n.n_sources && !n.procedural; ++j) {
            const size_t wb = (size_t)n.src_group(j) * n.n_pop;
            for (int64_t seg = 0; seg < n.n_seg; ++seg) {
                const int a = n.seg_pop[seg];
                for (int64_t k = n.ptr[j * n.n_seg + seg]; k < n.ptr[j * n.n_seg + seg + 1]; ++k) {
                    const uint32_t x = n.syn[k];
                    src.push_back(j);
                    tgt.push_back(e.gid(n.seg_begin[seg] + (x & (kSegment - 1))));
                    del.push_back((x >> kOffsetBits) & kMaxDelay);
                    w.push_back(n.wmu0[wb + a] + n.wstep[wb + a] * (float)(x >> 22));
                }
            }
        }
        return {copy_of(src, torch::kInt64), copy_of(tgt, torch::kInt64), copy_of(del, torch::kInt64),
                copy_of(w, torch::kFloat32)};
    }
};

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
    using IO = popnet::EngineIO;
    pybind11::class_<Engine>(m, "Engine")
        .def(pybind11::init(&IO::make))
        .def("build", &IO::build)
        .def("update_pack", &IO::update_pack)
        .def("deliver_local", &IO::deliver_local)
        .def("deliver_gathered", &IO::deliver_gathered)
        .def("deliver_gids", &IO::deliver_gids)
        .def("end_step", &Engine::end_step)
        .def("run", &IO::run)
        .def("run_exchanged", &IO::run_exchanged)
        .def("run_shared", &IO::run_shared)
        .def("set_recording", &Engine::set_recording)
        .def("state", &IO::state)
        .def("set_state", &IO::set_state)
        .def("info", &IO::info)
        .def("drain", &IO::drain)
        .def("last_spikes", &IO::last_spikes)
        .def("counts", &IO::counts)
        .def("out_degree", &IO::out_degree)
        .def("synapses", &IO::synapses)
        .def("arrays", &IO::arrays);
    m.def("philox_words", &popnet::philox_words);
    m.def("binomial_draws", &popnet::binomial_draws);
}
