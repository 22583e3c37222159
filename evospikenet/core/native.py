r"""Native (C++) simulation loop: all ``n_steps`` of a flattened network in one call, event-driven.

Per-step dispatch overhead of tensor ops (80-170 us) dominates small-network simulation, so this backend runs
the whole time loop in C++ over the CSR arrays of :class:`FlatNetwork` (row = presynaptic neuron). Each step

.. math::

    I_g &\leftarrow d_g I_g + W_g^T s_{t - D_g}                      \quad (d_g = 0: \text{delta synapse})\\
    H &= V_{rest} + \beta (V - V_{rest}) + \text{gain} \, (b + \textstyle\sum_g I_g)\\
    S &= [H \ge V_{th}], \qquad
    V = H - S V_{th} \;(\text{subtract}),\; V_{reset} \;(\text{zero}),\; H \;(\text{none})

and a refractory neuron is held at ``V_reset`` without firing. ``W^T s`` is computed event-driven: only the
CSR rows of neurons that spiked are read (a spike of ``j`` adds row ``j`` into the currents). The integer
path follows :mod:`evospikenet.functional.integer_lif` (int16 membrane, leak ``V - (V >> k)``, int32
currents with shift decay ``I - (I >> s)`` or delta when ``s = -1``, saturation to int16, int8 weights), with
the rounded leaks of :mod:`evospikenet.core.flat` (``V - ((V + 2^(k-1)) >> k)`` or ``(V m + 2^(b-1)) >> b``).
Spikes match ``flat.run_flat_reference`` exactly (same summation order).

The extension is built lazily on first use with ``torch.utils.cpp_extension.load_inline`` (``-O3``, cached
under ``~/.cache/torch_extensions``). Without a working compiler ``native_available()`` is False and
``run_flat`` raises ``RuntimeError``.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["native_available", "load_native", "run_flat", "propagate_events"]

_CPP = r"""
#include <torch/extension.h>
#include <vector>
#include <cstdint>
#include <algorithm>

using torch::Tensor;

// Spikes emitted so far: ids[off[t] : off[t + 1]] fired at step t.
struct History { std::vector<int64_t> ids; std::vector<int64_t> off{0}; };

template <typename V, typename A>
static inline void scatter_rows(const int32_t* crow, const int32_t* col, const V* val,
                                const History& h, int64_t t, int64_t delay, A* cur) {
    int64_t src = t - delay;
    if (src < 0) return;
    for (int64_t k = h.off[src]; k < h.off[src + 1]; ++k) {
        int64_t j = h.ids[k];
        for (int32_t e = crow[j]; e < crow[j + 1]; ++e) cur[col[e]] += (A)val[e];
    }
}

static std::tuple<Tensor, Tensor> pack(const History& h) {
    int64_t m = (int64_t)h.ids.size(), T = (int64_t)h.off.size() - 1;
    auto steps = torch::empty({m}, torch::kInt64), ids = torch::empty({m}, torch::kInt64);
    int64_t* s = steps.data_ptr<int64_t>();
    for (int64_t t = 0; t < T; ++t) for (int64_t k = h.off[t]; k < h.off[t + 1]; ++k) s[k] = t;
    std::copy(h.ids.begin(), h.ids.end(), ids.data_ptr<int64_t>());
    return {steps, ids};
}

// Per step: scatter the events, then three branch-free passes the compiler vectorises (currents, membrane,
// spike collection).
std::vector<Tensor> run_float(int64_t n_steps, Tensor beta, Tensor gain, Tensor v_th, Tensor v_reset,
                              Tensor v_rest, Tensor refr, Tensor bias, Tensor v0, int64_t reset,
                              std::vector<Tensor> crows, std::vector<Tensor> cols, std::vector<Tensor> vals,
                              std::vector<double> decays, std::vector<int64_t> delays) {
    const int64_t n = v0.numel(), G = (int64_t)crows.size();
    Tensor v = v0.clone();
    float* __restrict__ V = v.data_ptr<float>();
    const float* __restrict__ B = beta.data_ptr<float>();
    const float* __restrict__ Gn = gain.data_ptr<float>();
    const float* __restrict__ TH = v_th.data_ptr<float>();
    const float* __restrict__ VR = v_reset.data_ptr<float>();
    const float* __restrict__ VL = v_rest.data_ptr<float>();
    const float* __restrict__ b = bias.data_ptr<float>();
    const int32_t* __restrict__ R = refr.data_ptr<int32_t>();
    std::vector<int32_t> rcv(n, 0);
    std::vector<uint8_t> firedv(n, 0);
    std::vector<float> Iv(n);
    std::vector<std::vector<float>> cur(G, std::vector<float>(n, 0.f)), arr(G, std::vector<float>(n, 0.f));
    int32_t* __restrict__ rc = rcv.data();
    uint8_t* __restrict__ fired = firedv.data();
    float* __restrict__ I = Iv.data();
    History h;
    for (int64_t t = 0; t < n_steps; ++t) {
        for (int64_t g = 0; g < G; ++g)
            scatter_rows(crows[g].data_ptr<int32_t>(), cols[g].data_ptr<int32_t>(), vals[g].data_ptr<float>(),
                         h, t, delays[g], arr[g].data());
        std::copy(b, b + n, I);
        for (int64_t g = 0; g < G; ++g) {  // I_g = decay I_g + (W^T s); I = bias + sum_g I_g, as the reference
            float* __restrict__ c = cur[g].data();
            float* __restrict__ a = arr[g].data();
            const float d = (float)decays[g];
            for (int64_t i = 0; i < n; ++i) { float x = c[i] * d + a[i]; c[i] = x; a[i] = 0.f; I[i] += x; }
        }
        for (int64_t i = 0; i < n; ++i) {
            const bool act = rc[i] <= 0;
            float hh = VL[i] + B[i] * (V[i] - VL[i]) + Gn[i] * I[i];
            hh = act ? hh : VR[i];
            const bool f = act && hh >= TH[i];
            const float vn = reset == 0 ? hh - TH[i] : (reset == 1 ? VR[i] : hh);
            V[i] = f ? vn : hh;
            rc[i] = f ? R[i] : (rc[i] > 0 ? rc[i] - 1 : 0);
            fired[i] = f;
        }
        for (int64_t i = 0; i < n; ++i) if (fired[i]) h.ids.push_back(i);
        h.off.push_back((int64_t)h.ids.size());
    }
    auto [s, ids] = pack(h);
    return {s, ids, v};
}

static inline int32_t sat16(int32_t x) { return x < -32768 ? -32768 : (x > 32767 ? 32767 : x); }

std::vector<Tensor> run_int(int64_t n_steps, Tensor leak_shift, Tensor leak_mul, int64_t leak_bits,
                            Tensor v_th, Tensor v_reset, Tensor refr, Tensor bias, Tensor v0, int64_t reset,
                            int64_t i_shift, std::vector<Tensor> crows, std::vector<Tensor> cols,
                            std::vector<Tensor> vals, std::vector<int64_t> shifts, std::vector<int64_t> muls,
                            std::vector<int64_t> w_shifts, std::vector<int64_t> delays) {
    const int64_t n = v0.numel(), G = (int64_t)crows.size();
    const int32_t* __restrict__ K = leak_shift.data_ptr<int32_t>();
    const int32_t* __restrict__ M = leak_mul.data_ptr<int32_t>();
    const int32_t* __restrict__ TH = v_th.data_ptr<int32_t>();
    const int32_t* __restrict__ VR = v_reset.data_ptr<int32_t>();
    const int32_t* __restrict__ R = refr.data_ptr<int32_t>();
    const int32_t* __restrict__ b = bias.data_ptr<int32_t>();
    Tensor v = v0.to(torch::kInt32);
    int32_t* __restrict__ V = v.data_ptr<int32_t>();
    std::vector<int32_t> rcv(n, 0), Iv(n), halfv(n);
    std::vector<uint8_t> firedv(n, 0);
    int32_t* __restrict__ rc = rcv.data();
    int32_t* __restrict__ I = Iv.data();
    int32_t* __restrict__ half = halfv.data();
    uint8_t* __restrict__ fired = firedv.data();
    for (int64_t i = 0; i < n; ++i) half[i] = K[i] > 0 ? 1 << (K[i] - 1) : 0;
    const int64_t mhalf = leak_bits > 0 ? (1LL << (leak_bits - 1)) : 0;
    std::vector<std::vector<int32_t>> cur(G, std::vector<int32_t>(n, 0)), arr(G, std::vector<int32_t>(n, 0));
    std::vector<std::vector<int32_t>> wv(G);
    for (int64_t g = 0; g < G; ++g) {  // int8 weights widened once, with the optional left shift
        const int8_t* w = vals[g].data_ptr<int8_t>();
        wv[g].resize(vals[g].numel());
        for (int64_t e = 0; e < vals[g].numel(); ++e) wv[g][e] = (int32_t)w[e] * (1 << w_shifts[g]);
    }
    History h;
    for (int64_t t = 0; t < n_steps; ++t) {
        for (int64_t g = 0; g < G; ++g)
            scatter_rows(crows[g].data_ptr<int32_t>(), cols[g].data_ptr<int32_t>(), wv[g].data(),
                         h, t, delays[g], arr[g].data());
        std::fill(I, I + n, 0);
        for (int64_t g = 0; g < G; ++g) {  // decay (shift, rounded multiply or delta), add the events
            int32_t* __restrict__ c = cur[g].data();
            int32_t* __restrict__ a = arr[g].data();
            const int64_t m = muls[g], sh = shifts[g];
            if (m >= 0) {
                for (int64_t i = 0; i < n; ++i) {
                    int32_t x = (int32_t)(((int64_t)c[i] * m + 32768) >> 16) + a[i];
                    c[i] = x; a[i] = 0; I[i] += x;
                }
            } else if (sh >= 0) {
                for (int64_t i = 0; i < n; ++i) {
                    int32_t x = c[i] - (c[i] >> sh) + a[i];
                    c[i] = x; a[i] = 0; I[i] += x;
                }
            } else {
                for (int64_t i = 0; i < n; ++i) { int32_t x = a[i]; c[i] = x; a[i] = 0; I[i] += x; }
            }
        }
        for (int64_t i = 0; i < n; ++i) {
            const bool act = rc[i] <= 0;
            // rounded leak: V - ((V + 2^(k-1)) >> k), or (V m + 2^(b-1)) >> b
            const int32_t lv = leak_bits > 0 ? (int32_t)(((int64_t)V[i] * M[i] + mhalf) >> leak_bits)
                                             : V[i] - ((V[i] + half[i]) >> K[i]);
            int32_t hh = sat16(lv + sat16(b[i] + (I[i] >> i_shift)));
            hh = act ? hh : VR[i];
            const bool f = act && hh >= TH[i];
            const int32_t vn = reset == 0 ? hh - TH[i] : VR[i];
            V[i] = f ? vn : hh;
            rc[i] = f ? R[i] : (rc[i] > 0 ? rc[i] - 1 : 0);
            fired[i] = f;
        }
        for (int64_t i = 0; i < n; ++i) if (fired[i]) h.ids.push_back(i);
        h.off.push_back((int64_t)h.ids.size());
    }
    auto [s, ids] = pack(h);
    return {s, ids, v.to(torch::kInt16)};
}

// One event-driven propagation: out[col] += val for every synapse in the rows of the spiking neurons.
void propagate(Tensor crow, Tensor col, Tensor val, Tensor ids, Tensor out) {
    const int32_t *cr = crow.data_ptr<int32_t>(), *c = col.data_ptr<int32_t>();
    const int64_t* s = ids.data_ptr<int64_t>();
    const int64_t m = ids.numel();
    if (val.scalar_type() == torch::kInt8) {
        const int8_t* w = val.data_ptr<int8_t>();
        int32_t* o = out.data_ptr<int32_t>();
        for (int64_t k = 0; k < m; ++k)
            for (int32_t e = cr[s[k]]; e < cr[s[k] + 1]; ++e) o[c[e]] += w[e];
    } else {
        const float* w = val.data_ptr<float>();
        float* o = out.data_ptr<float>();
        for (int64_t k = 0; k < m; ++k)
            for (int32_t e = cr[s[k]]; e < cr[s[k] + 1]; ++e) o[c[e]] += w[e];
    }
}
"""


@functools.cache
def load_native():
    """Compile (once, cached on disk) and return the extension module; raises RuntimeError if impossible."""
    try:
        from .._native_build import build_inline

        return build_inline("evospikenet_native_v4", _CPP, ["run_float", "run_int", "propagate"])
    except Exception as exc:  # compiler missing, headers missing, build error
        raise RuntimeError(
            "the native backend needs a working C++ compiler (g++/clang and ninja) to build its extension: "
            f"{exc}"
        ) from exc


def native_available() -> bool:
    """True if the C++ extension builds (or is already built) on this machine."""
    try:
        load_native()
    except RuntimeError:
        return False
    return True


_RESETS = {"subtract": 0, "zero": 1, "none": 2}


def _vec(x, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Per-neuron (n,) contiguous CPU tensor of ``dtype`` from a scalar or tensor."""
    t = torch.as_tensor(x).detach().to("cpu")
    if t.is_floating_point() and not dtype.is_floating_point:
        t = t.round()
    return t.to(dtype).expand(n).contiguous() if t.numel() == 1 else t.to(dtype).reshape(n).contiguous()


def run_flat(flat, n_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Simulate a ``FlatNetwork`` for ``n_steps`` in one native call.

    Returns ``(spike_steps, spike_ids, v_final)``: int64 (M,) step and neuron of every spike, in time order
    (neurons ascending within a step), and the final membrane (n,) (float32, or int16 on the integer path),
    on the device of ``flat.v0``. Raises ``RuntimeError`` if the extension cannot be built.
    """
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    if flat.reset not in _RESETS:
        raise ValueError(f"reset must be one of {tuple(_RESETS)}, got {flat.reset!r}")
    if flat.kind not in ("float", "int16"):
        raise ValueError(f"kind must be 'float' or 'int16', got {flat.kind!r}")
    ext = load_native()
    n, device = int(flat.n), flat.v0.device
    groups = list(flat.synapses)
    for g in groups:
        if int(g.delay) < 1:
            raise ValueError(f"delay must be at least 1 step, got {g.delay!r}")
    crows = [g.crow.detach().to("cpu", torch.int32).contiguous() for g in groups]
    cols = [g.col.detach().to("cpu", torch.int32).contiguous() for g in groups]
    delays = [int(g.delay) for g in groups]
    refr = _vec(flat.refractory_steps, n, torch.int32)
    if flat.kind == "float":
        f32 = torch.float32
        vals = [g.values.detach().to("cpu", f32).contiguous() for g in groups]
        s, ids, v = ext.run_float(
            n_steps, _vec(flat.beta, n, f32), _vec(flat.gain, n, f32), _vec(flat.v_th, n, f32),
            _vec(flat.v_reset, n, f32), _vec(flat.v_rest, n, f32), refr, _vec(flat.bias, n, f32),
            _vec(flat.v0, n, f32), _RESETS[flat.reset], crows, cols, vals, [float(g.decay) for g in groups],
            delays,
        )  # fmt: skip
    else:
        if flat.reset == "none":
            raise ValueError("reset must be 'subtract' or 'zero' on the integer path, got 'none'")
        i32 = torch.int32
        vals = [g.values.detach().to("cpu", torch.int8).contiguous() for g in groups]
        # Optional fixed-point refinements (absent from a plain FlatNetwork; defaults give the contract):
        # multiply leak (V * leak_mul) >> leak_bits, synaptic decay (I * syn_mul) >> 16, weights << w_shift
        # into the current, and the summed current >> i_shift into the membrane.
        leak_mul, leak_bits = getattr(flat, "leak_mul", None), int(getattr(flat, "leak_bits", 0) or 0)
        leak_mul = _vec(0 if leak_mul is None else leak_mul, n, i32)
        muls = [int(getattr(g, "syn_mul", -1)) for g in groups]
        w_shifts = [int(getattr(g, "w_shift", 0)) for g in groups]
        s, ids, v = ext.run_int(
            n_steps, _vec(0 if flat.leak_shift is None else flat.leak_shift, n, i32), leak_mul, leak_bits,
            _vec(flat.v_th, n, i32), _vec(flat.v_reset, n, i32), refr, _vec(flat.bias, n, i32),
            _vec(flat.v0, n, torch.int16),
            _RESETS[flat.reset], int(getattr(flat, "i_shift", 0)), crows, cols, vals,
            [int(g.syn_shift) for g in groups], muls, w_shifts, delays,
        )  # fmt: skip
    return s.to(device), ids.to(device), v.to(device)


def propagate_events(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, spike_ids: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """Add the CSR rows of ``spike_ids`` into ``out`` in place (``out[col] += value``) and return ``out``.

    ``crow``/``col`` int32 CPU, ``values`` float32 (``out`` float32) or int8 (``out`` int32).
    """
    if values.dtype not in (torch.float32, torch.int8):
        raise ValueError(f"values must be float32 or int8, got {values.dtype}")
    want = torch.float32 if values.dtype == torch.float32 else torch.int32
    if out.dtype != want or not out.is_contiguous() or out.device.type != "cpu":
        raise ValueError(f"out must be a contiguous CPU {want} tensor, got {out.dtype} on {out.device}")
    for name, t in (("crow", crow), ("col", col)):
        if t.dtype != torch.int32 or t.device.type != "cpu":
            raise ValueError(f"{name} must be an int32 CPU tensor, got {t.dtype} on {t.device}")
    load_native().propagate(
        crow.contiguous(), col.contiguous(), values.contiguous(), spike_ids.to(torch.int64), out
    )
    return out
