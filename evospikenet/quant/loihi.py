r"""Loihi 2 fixed-point form of a trained spiking classifier, run on the core's ``loihi`` profile.

A :class:`LoihiNet` is what a Loihi 2 chip (or Lava's bit-accurate simulator) runs: graded integer inputs,
populations of Loihi CUBA LIF neurons (:func:`evospikenet.functional.loihi_lif_step`) and connections
between them, each an integer matrix with a shared exponent. Every beat (sample) is presented for ``T``
steps from zero state. A connection ``c`` from ``pre`` to ``post`` delivers, at step ``t``,

.. math::

    a^{c}_t = \big\lfloor 2^{e_c} \, W_c \, x_t \big\rfloor, \qquad
    W_c \in [-127, 127]^{n_{post} \times n_{pre}},

where ``x_t`` is the spike vector of ``pre`` at step ``t`` (0/1) or a graded input (int8 values, held for
the ``T`` steps). On Lava this is a ``Dense`` process with weights ``2 W`` and ``weight_exp = e - 1``: its
bit-accurate model drops the least significant bit of a mixed-sign matrix, so even weights survive, and the
exponent shifts the exact integer sum (``floor`` for a right shift, as numpy's and torch's ``>>``).

Each population integrates ``a_t = \sum_c a^c_t`` with the ``loihi`` profile (24-bit ``u``/``v``, 12-bit
decays, ``v > vth << 6``, reset to 0), ``d_u = 4095`` (the current lasts one step: a delta synapse) and a
per-neuron bias ``b_m << b_e``. The readout population never fires (``d_v = 0``, largest threshold): its
voltage after ``T`` steps is the integer logits.

**From a float network** (:func:`quantize_ecg` for ``ECGSpikingNet``). A float layer ``H_t = \beta V_{t-1}
+ W x_t + b``, firing at ``H \ge 1``, maps to ``d_v = 4096 (1 - \beta)`` (exact for ``beta = 1 - 2^-k``),
a threshold mantissa ``vth`` and ``W_c = \mathrm{round}(W s_x \, vth / 2^{e})`` where ``s_x`` is the
input's scale (1 for spikes): one threshold is ``vth`` current units, ``vth << 6`` voltage units. The
exponent ``e`` is the smallest with ``vth = \lfloor 127 \cdot 2^e / \max|W s_x| \rfloor \ge 256`` (weights
use the full 8 bits, the threshold has at least 8 bits). A connection into a population that already has a
threshold (the RR features into the hidden layer) takes the smallest ``e`` with ``\max|W_c| \le 127``.
Biases become ``b \cdot vth \cdot 64 = b_m 2^{b_e}`` with the smallest ``b_e`` that fits ``b_m`` in 13
bits. Convolutions become their (sparse) connection matrices; the beat and the standardised RR features
enter as int8 graded inputs (the model's calibrated ``input_scale`` and ``8 / 127``).

The Loihi form differs from the float network in three ways, all inside the quantised model that
:func:`run_loihi` and Lava both compute: weights and inputs are 8-bit, a spike resets the voltage to 0
(the float net subtracts the threshold; Loihi's LIF has no subtract reset) and a neuron fires at ``v > vth
<< 6`` (float: ``H >= 1``). :func:`finetune_loihi` trains the float weights through a float twin of these
dynamics (straight-through rounding, ATan surrogate) when plain rounding loses accuracy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from ..functional.integer_lif import LoihiLIFParams, loihi_lif_step
from .int8 import RR_INT8_SCALE, int8_pow2, to_int8

__all__ = [
    "LoihiPop",
    "LoihiConn",
    "LoihiNet",
    "conv1d_matrix",
    "quantize_ecg",
    "encode_ecg",
    "run_loihi",
    "VTH_MIN",
    "READOUT_VTH",
]

VTH_MIN = 256  # smallest threshold mantissa the quantiser aims for (8 bits of threshold resolution)
READOUT_VTH = 2**17 - 1  # the readout's threshold: the largest 17-bit mantissa, never reached (checked)
_V_MAX = 2**23 - 1  # 24-bit voltage limit
_DU_DELTA = 4095  # u decays by (4095 + 1) / 4096 = 1 each step: the input current lasts one step


@dataclass
class LoihiPop:
    """A population of Loihi CUBA LIF neurons (Lava's ``LIFReset`` parameters)."""

    name: str
    n: int
    dv: int  # voltage decay, 12 bit
    vth: int  # threshold mantissa, 17 bit (fires at v > vth << 6)
    bias_mant: torch.Tensor  # (n,) int32, 13 bit signed
    bias_exp: int  # 0..7
    du: int = _DU_DELTA  # current decay, 12 bit

    def params(self) -> LoihiLIFParams:
        return LoihiLIFParams(self.du, self.dv, self.vth, self.bias_mant.to(torch.int32), self.bias_exp)


@dataclass
class LoihiConn:
    """``post += floor(2^exp * weight @ pre)``; ``pre`` is a population or a graded input."""

    name: str
    pre: str
    post: str
    weight: torch.Tensor  # (n_post, n_pre) int32 in [-127, 127]
    exp: int  # shared exponent of the layer

    def current(self, x: torch.Tensor) -> torch.Tensor:
        """``floor(2^exp W x)`` for ``x`` (B, n_pre) ints, computed as Lava does: ``(2W) x`` then shift.

        float64 is exact here: |2W| <= 254, |x| <= 127 and fan-in <= 4096 keep every sum below 2^27.
        """
        acc = torch.round(x.to(torch.float64) @ (2 * self.weight).T.to(torch.float64)).to(torch.int64)
        s = self.exp - 1
        return acc << s if s >= 0 else acc >> -s


@dataclass
class LoihiNet:
    """Graded inputs, populations in pipeline order, connections, steps per sample and the readout."""

    inputs: dict[str, int]  # graded input name -> size
    pops: list[LoihiPop]  # in order of pipeline depth (each connection adds one step on the chip)
    conns: list[LoihiConn]
    time_steps: int
    readout: str  # population whose voltage after time_steps is the logits
    meta: dict = field(default_factory=dict)  # encoding constants and provenance (JSON-serialisable)

    def pop(self, name: str) -> LoihiPop:
        return next(p for p in self.pops if p.name == name)

    def depth(self) -> dict[str, int]:
        """Pipeline depth of every population (1 = fed by inputs only); checks the chip's pipeline rules.

        On the chip every connection delays by one step; samples stream back to back, every population
        resetting when its window starts. That lines up only when a population's inputs all come from one
        depth (a graded input is emitted at the step that makes it arrive there), so this is enforced.
        """
        depth: dict[str, int] = {}
        for p in self.pops:
            into = [c for c in self.conns if c.post == p.name]
            if not into:
                raise ValueError(f"population {p.name!r} has no incoming connection")
            ds = set()
            for c in into:
                if c.pre in self.inputs:
                    continue
                if c.pre not in depth:
                    raise ValueError(f"population {p.name!r} is fed by {c.pre!r}, not an earlier population")
                ds.add(depth[c.pre] + 1)
            if len(ds) > 1:
                raise ValueError(f"population {p.name!r} is fed from several pipeline depths {sorted(ds)}")
            depth[p.name] = ds.pop() if ds else 1
        for name in self.inputs:
            fed = {depth[c.post] for c in self.conns if c.pre == name}
            if len(fed) != 1:
                raise ValueError(
                    f"input {name!r} must feed populations of one pipeline depth, got {sorted(fed)}"
                )
        return depth

    def stats(self) -> dict:
        """Neurons, synapses (nonzero weights), fan-in and fan-out per population/connection."""
        out = {"populations": {}, "connections": {}}
        for p in self.pops:
            out["populations"][p.name] = {"neurons": p.n, "vth": p.vth, "dv": p.dv}
        for c in self.conns:
            nz = c.weight != 0
            out["connections"][c.name] = {
                "pre": c.pre,
                "post": c.post,
                "synapses": int(nz.sum()),
                "max_fan_in": int(nz.sum(1).max()),
                "max_fan_out": int(nz.sum(0).max()),
                "exp": c.exp,
            }
        return out

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """``(spec, arrays)``: a JSON-able description and the integer arrays (the Lava export's content)."""
        spec = {
            "format": "evospikenet-loihi/1",
            "time_steps": self.time_steps,
            "readout": self.readout,
            "inputs": self.inputs,
            "populations": [
                {"name": p.name, "n": p.n, "du": p.du, "dv": p.dv, "vth": p.vth, "bias_exp": p.bias_exp}
                for p in self.pops
            ],
            "connections": [{"name": c.name, "pre": c.pre, "post": c.post, "exp": c.exp} for c in self.conns],
            "meta": self.meta,
        }
        arrays = {f"bias_{p.name}": p.bias_mant.numpy().astype(np.int32) for p in self.pops}
        arrays.update({f"w_{c.name}": c.weight.numpy().astype(np.int8) for c in self.conns})
        return spec, arrays

    @classmethod
    def from_arrays(cls, spec: dict, arrays) -> LoihiNet:
        """Inverse of :meth:`to_arrays` (validates ranges, so a tampered file fails here)."""
        if spec.get("format") != "evospikenet-loihi/1":
            raise ValueError(f"not an evospikenet Loihi export (format {spec.get('format')!r})")
        pops = [
            LoihiPop(
                p["name"],
                int(p["n"]),
                int(p["dv"]),
                int(p["vth"]),
                torch.from_numpy(np.asarray(arrays[f"bias_{p['name']}"], dtype=np.int32)),
                int(p["bias_exp"]),
                int(p["du"]),
            )
            for p in spec["populations"]
        ]
        conns = [
            LoihiConn(
                c["name"],
                c["pre"],
                c["post"],
                torch.from_numpy(np.asarray(arrays[f"w_{c['name']}"], dtype=np.int32)),
                int(c["exp"]),
            )
            for c in spec["connections"]
        ]
        net = cls(
            {k: int(v) for k, v in spec["inputs"].items()},
            pops,
            conns,
            int(spec["time_steps"]),
            spec["readout"],
            dict(spec.get("meta", {})),
        )
        net.validate()
        return net

    def validate(self) -> None:
        """Check every integer against the chip's field widths and the shapes against each other."""
        sizes = dict(self.inputs) | {p.name: p.n for p in self.pops}
        for p in self.pops:
            for name, v, lo, hi in (
                ("du", p.du, 0, 4095),
                ("dv", p.dv, 0, 4095),
                ("vth", p.vth, 0, 2**17 - 1),
            ):
                if not lo <= v <= hi:
                    raise ValueError(f"population {p.name!r}: {name} = {v} outside [{lo}, {hi}]")
            if not 0 <= p.bias_exp <= 7:
                raise ValueError(f"population {p.name!r}: bias_exp = {p.bias_exp} outside [0, 7]")
            if p.bias_mant.shape != (p.n,) or _amax(p.bias_mant) > 4096:
                raise ValueError(f"population {p.name!r}: bias_mant must be ({p.n},) 13-bit signed values")
        for c in self.conns:
            if c.pre not in sizes or c.post not in {p.name for p in self.pops}:
                raise ValueError(f"connection {c.name!r} joins unknown {c.pre!r} -> {c.post!r}")
            if c.weight.shape != (sizes[c.post], sizes[c.pre]):
                raise ValueError(f"connection {c.name!r}: weight {tuple(c.weight.shape)} does not fit sizes")
            if _amax(c.weight) > 127:
                raise ValueError(f"connection {c.name!r}: weights outside [-127, 127]")
            if not -8 <= c.exp <= 8:
                raise ValueError(f"connection {c.name!r}: exponent {c.exp} outside [-8, 8]")
        self.depth()


def _amax(t: torch.Tensor) -> int:
    return int(t.abs().max()) if t.numel() else 0


def conv1d_matrix(w: torch.Tensor, stride: int, padding: int, length: int) -> torch.Tensor:
    """The (C_out L_out, C_in L_in) matrix of ``conv1d`` on a (C_in, L_in) input flattened row-major."""
    c_out, c_in, k = w.shape
    l_out = (length + 2 * padding - k) // stride + 1
    m = torch.zeros(c_out, l_out, c_in, length, dtype=w.dtype)
    for lo in range(l_out):
        for j in range(k):
            li = lo * stride - padding + j
            if 0 <= li < length:
                m[:, lo, :, li] = w[:, :, j]
    return m.reshape(c_out * l_out, c_in * length)


def _exp_for(wmax: float) -> tuple[int, int]:
    """``(e, vth)``: the smallest exponent whose threshold ``floor(127 2^e / wmax)`` is >= VTH_MIN."""
    e = math.ceil(math.log2(VTH_MIN * wmax / 127.0))
    while math.floor(127.0 * 2.0**e / wmax) < VTH_MIN:
        e += 1
    return e, min(math.floor(127.0 * 2.0**e / wmax), 2**17 - 1)


def _bias(b: torch.Tensor, volts_per_unit: float, name: str) -> tuple[torch.Tensor, int]:
    """``b`` (float, threshold units) -> 13-bit mantissas and a shared exponent in voltage LSBs."""
    target = b.double() * volts_per_unit
    for be in range(8):
        mant = torch.round(target / 2.0**be)
        if _amax(mant) <= 4095:
            return mant.to(torch.int32), be
    raise ValueError(f"{name}: bias {float(b.abs().max()):.3g} does not fit Loihi's 13-bit mantissa << 7")


def _spiking_pop(name, w_float, b, dv, in_scale=1.0, conn_name=None, pre=None):
    wmax = float((w_float * in_scale).abs().max())
    if wmax == 0.0:
        raise ValueError(f"{name}: all weights are zero")
    e, vth = _exp_for(wmax)
    wq = torch.round(w_float.double() * in_scale * vth / 2.0**e).clamp(-127, 127).to(torch.int32)
    mant, be = _bias(b, vth * 64.0, name)
    pop = LoihiPop(name, w_float.shape[0], dv, vth, mant, be)
    return pop, LoihiConn(conn_name or name, pre, name, wq, e)


def _extra_conn(name, pre, pop: LoihiPop, w_float, in_scale):
    wq, e = int8_pow2(w_float.double() * in_scale * pop.vth)
    return LoihiConn(name, pre, pop.name, wq.to(torch.int32), e)


@torch.no_grad()
def quantize_ecg(model) -> LoihiNet:
    """The Loihi form of a trained ``ECGSpikingNet`` (eval mode; see the module docstring)."""
    from ..models.ecg import ECGSpikingNet

    if not isinstance(model, ECGSpikingNet):
        raise ValueError(f"model must be an ECGSpikingNet, got {type(model).__name__}")
    cfg = model.eval().config
    dv = round(4096 * (1.0 - cfg.beta))
    if abs(dv / 4096 - (1.0 - cfg.beta)) > 1e-12:
        raise ValueError(f"beta = {cfg.beta} is not a multiple of 1/4096; Loihi's dv cannot express it")
    folded, length = model.folded(), cfg.window
    pops, conns, pre = [], [], "x"
    for i, (conv, (w, b)) in enumerate(zip(model.convs, folded)):
        m = conv1d_matrix(w.double(), conv.stride[0], conv.padding[0], length)
        length = (length + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1
        scale = cfg.input_scale if i == 0 else 1.0
        pop, conn = _spiking_pop(
            f"lif{i}", m, b.double().repeat_interleave(length), dv, scale, f"conv{i}", pre
        )
        pops.append(pop)
        conns.append(conn)
        pre = pop.name
    z_scale = RR_INT8_SCALE
    fc_pop, fc_conn = _spiking_pop(
        "lif_fc", model.fc.weight.double(), model.fc.bias.double(), dv, 1.0, "fc", pre
    )
    rr_conn = _extra_conn("rr", "rr", fc_pop, model.rr_proj.weight.double(), z_scale)
    pops.append(fc_pop)
    conns += [fc_conn, rr_conn]
    wo, bo = model.out.weight.double(), model.out.bias.double()
    unit = 127.0 / float(wo.abs().max())  # current units per float logit unit
    out_w = torch.round(wo * unit).to(torch.int32)
    mant, be = _bias(bo, unit * 64.0, "readout")
    out = LoihiPop("out", cfg.n_classes, 0, READOUT_VTH, mant, be)
    per_step = int(out_w.abs().sum(1).max()) * 64 + int((mant.abs() << be).max())
    if cfg.time_steps * per_step >= READOUT_VTH << 6:
        raise ValueError("readout: the accumulated logits could reach the readout threshold; reduce T")
    pops.append(out)
    conns.append(LoihiConn("readout", "lif_fc", "out", out_w, 0))
    net = LoihiNet(
        {"x": cfg.window, "rr": cfg.n_rr},
        pops,
        conns,
        int(cfg.time_steps),
        "out",
        {
            "model_type": cfg.model_type,
            "x_scale": float(cfg.input_scale),
            "z_scale": z_scale,
            "rr_mean": [float(v) for v in model.rr_mean],
            "rr_std": [float(v) for v in model.rr_std],
            "logit_unit": unit * 64.0,  # voltage LSBs per float logit unit (times T: summed, not averaged)
        },
    )
    net.validate()
    return net


def encode_ecg(net: LoihiNet, x: torch.Tensor, rr: torch.Tensor) -> dict[str, torch.Tensor]:
    """Graded int8 inputs of beats ``x`` (B, L) mV and raw RR features ``rr`` (B, 6), as the host sends them."""
    m = net.meta
    xq = to_int8(x, m["x_scale"]).to(torch.int32)
    z = (rr.double() - torch.tensor(m["rr_mean"], dtype=torch.float64)) / torch.tensor(
        m["rr_std"], dtype=torch.float64
    )
    zq = to_int8(z, m["z_scale"]).to(torch.int32)
    return {"x": xq, "rr": zq}


def run_loihi(net: LoihiNet, inputs: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Run ``net`` on the ``loihi`` profile: ``({pop: (T, B, n) int8 spikes}, readout voltage (B, n) int32)``.

    Every population steps within the same step as its inputs (no pipeline delay); the chip's pipeline
    (one step per connection) shifts each population's window by its depth and yields the same numbers.
    """
    missing = set(net.inputs) - set(inputs)
    if missing:
        raise ValueError(f"inputs {sorted(missing)} are missing")
    states = {p.name: None for p in net.pops}
    params = {p.name: p.params() for p in net.pops}
    into = {p.name: [c for c in net.conns if c.post == p.name] for p in net.pops}
    rec = {p.name: [] for p in net.pops}
    for _ in range(net.time_steps):
        now = {k: v for k, v in inputs.items()}
        for p in net.pops:
            a = sum(c.current(now[c.pre]) for c in into[p.name])  # (B, n) int64
            s, states[p.name] = loihi_lif_step(a.to(torch.int32), states[p.name], params[p.name])
            now[p.name] = s
            rec[p.name].append(s)
    return {k: torch.stack(v) for k, v in rec.items()}, states[net.readout].v
