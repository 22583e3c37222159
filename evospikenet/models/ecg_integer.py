r"""The spiking ECG classifier on the integer core: INT8 weights and input, INT16 membranes, no multiplier.

:func:`integer_core` turns a trained ``ECGSpikingNet`` into integers once; :func:`integer_forward` runs it.
BN is folded into the conv weights (``ECGSpikingNet.folded``) and every weight matrix is quantised to INT8
with one per-tensor scale ``s`` (``w ~ s * w_q``, ``|w_q| <= 127``).

**Membranes in weight units.** Each spiking population keeps its membrane in units of its own input
weights' LSB, ``u = s`` (``u = s * input_scale`` for the encoder, whose input is the INT8 beat
``round(x / input_scale)``), or ``V_th / 2^14`` where that is coarser (tiny weights; the threshold then
keeps INT16 headroom). A sum of integer weights is then already a membrane current, so nothing is
rescaled at run time: the threshold, the reset and the bias take the scale instead,

.. math::

    \theta = \mathrm{round}(V_{th} / u), \quad b_q = \mathrm{round}(b / u), \qquad
    I_t = b_q + \textstyle\sum_j w_{q,j} S_{j,t}, \quad
    V_t = \mathrm{LIF}_k(V_{t-1}, I_t; \theta)

with ``int_lif_step`` (shift leak ``V - ((V + 2^{k-1}) >> k)``, reset by subtracting ``theta``). The
accumulator starts at ``b_q`` (plus, in the hidden layer, the static RR current), so the bias costs no add.
The RR current (computed once per beat) is brought into the hidden layer's units without a multiplier: the RR
weights are quantised to ``w_rr z_scale / (s_fc 2^e)`` and the INT32 product sum is shifted by ``e``,
rounding by starting the accumulator at ``2^{-e-1}``. The readout sums ``W_o h_t`` over the steps in its own
integer units (argmax = class).

**Accumulator width.** A spike-driven accumulator adds INT8 weights, so its magnitude never exceeds the sum
of its row's absolute integer weights and its starting value. :attr:`IntegerCore.bounds` holds that bound
per layer (the readout's summed over the ``T`` steps); when every bound is below ``2^15`` the core's
accumulators are INT16 (:attr:`IntegerCore.acc_bits`, priced by ``evospikenet.energy.INTEGER16_45NM``),
otherwise INT32 (``INTEGER_45NM``). Encoder and RR products are INT8 x INT8 MACs into INT32.

Convolutions and products run in float64 on integer-valued tensors, exact at these magnitudes (every sum is
below ``2^53``); currents enter ``int_lif_step`` saturated to INT16, as the core's adder saturates.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..energy import INTEGER16_45NM, INTEGER_45NM, EnergyModel, OpCounter
from ..functional.integer_lif import INT16_MAX, INT16_MIN, int_lif_params, int_lif_step
from ..quant.int8 import RR_INT8_SCALE, int8_pow2, int8_symmetric, to_int8
from .ecg import ECGSpikingNet, count_spiking_ops

__all__ = ["IntegerCore", "integer_core", "integer_forward"]

_THETA_MAX = 2**14  # largest threshold: membranes keep a factor of 2 of headroom below INT16


class IntegerCore(NamedTuple):
    """An ``ECGSpikingNet`` in integers (weights float64 integer-valued, biases int64).

    ``weights``: INT8 values of enc/conv2/conv3 (C_out, C_in, k), fc (H, F), rr (H, 6) and readout (5, H);
    ``bias``: per output neuron, in that layer's membrane units (the readout's in its own); ``theta``: each
    spiking population's threshold in its membrane units; ``rr_shift``: ``e``, the RR current in fc units
    being ``(accumulator + 2^(-e-1)) >> -e`` (``<< e`` when ``e >= 0``); ``bounds``: the largest
    ``|accumulator|`` any input can reach, per spike-driven layer.
    """

    weights: dict[str, torch.Tensor]
    bias: dict[str, torch.Tensor]
    theta: dict[str, int]
    rr_shift: int
    bounds: dict[str, int]

    @property
    def acc_bits(self) -> int:
        """16 when every spike-driven accumulator provably fits INT16, else 32."""
        return 16 if max(self.bounds.values()) <= INT16_MAX else 32

    @property
    def energy_model(self) -> EnergyModel:
        """The integer prices of this core's accumulator width."""
        return INTEGER16_45NM if self.acc_bits == 16 else INTEGER_45NM


def _spiking_layer(name: str, w: torch.Tensor, v_th: float, in_scale: float = 1.0):
    """INT8 weights in membrane units, the unit (volts) and the threshold of one spiking population.

    The unit is the weights' LSB ``max|w| in_scale / 127``, or ``V_th / 2^14`` when that is finer (tiny weights:
    the threshold keeps a factor of 2 of headroom below the INT16 limit, at fewer than 127 weight levels)."""
    w = w.detach().double() * in_scale
    unit = max(float(w.abs().max()) / 127.0, v_th / _THETA_MAX)
    theta = round(v_th / unit)
    if theta < 1:
        raise ValueError(
            f"layer {name!r}: threshold rounds to {v_th / unit:.3g} membrane units (V_th / weight LSB), below "
            f"1: its weights (max |w| {float(w.abs().max()) / in_scale:.3g}) are too large for v_th {v_th:g} on an "
            "INT8 core"
        )
    return to_int8(w, unit), unit, theta


def _shift(acc: torch.Tensor, e: int) -> torch.Tensor:
    """``acc * 2^e`` on integers, rounding to nearest when ``e < 0``."""
    return acc << e if e >= 0 else (acc + (1 << (-e - 1))) >> -e


@torch.no_grad()
def integer_core(model: ECGSpikingNet) -> IntegerCore:
    """Quantise ``model`` (eval-mode BN folded) for the integer core; see the module docstring."""
    cfg = model.config
    w, b, theta, bounds = {}, {}, {}, {}
    for i, (name, (wf, bf)) in enumerate(zip(("enc", "conv2", "conv3"), model.folded())):
        w[name], unit, theta[name] = _spiking_layer(name, wf, cfg.v_th, cfg.input_scale if i == 0 else 1.0)
        b[name] = torch.round(bf.detach().double() / unit).to(torch.int64)
    w["fc"], s_fc, theta["fc"] = _spiking_layer("fc", model.fc.weight, cfg.v_th)
    b["fc"] = torch.round(model.fc.bias.detach().double() / s_fc).to(torch.int64)
    w["rr"], e = int8_pow2(
        model.rr_proj.weight.detach().double() * RR_INT8_SCALE / s_fc
    )  # fc units per RR LSB
    w["readout"], s_o = int8_symmetric(model.out.weight)
    b["readout"] = torch.round(model.out.bias.detach().double() / s_o).to(torch.int64)
    for name in ("conv2", "conv3"):
        bounds[name] = int((w[name].abs().sum((1, 2)) + b[name].abs()).max())
    rr_max = _shift(w["rr"].abs().sum(1).to(torch.int64) * 127, e)
    bounds["fc"] = int((w["fc"].abs().sum(1).to(torch.int64) + b["fc"].abs() + rr_max).max())
    bounds["readout"] = cfg.time_steps * int(
        (w["readout"].abs().sum(1).to(torch.int64) + b["readout"].abs()).max()
    )
    return IntegerCore(w, b, theta, e, bounds)


@torch.no_grad()
def integer_forward(
    model: ECGSpikingNet,
    x: torch.Tensor,
    rr: torch.Tensor,
    counter: OpCounter | None = None,
    core: IntegerCore | None = None,
) -> torch.Tensor:
    """Run ``model`` on the integer core; returns INT64 logits (B, n_classes) (argmax = class).

    ``core`` is ``integer_core(model)``, built here when not given. ``counter`` receives the ops of this run,
    counted from its own spikes; price them with ``core.energy_model``.
    """
    cfg = model.config
    model._check(x, rr)
    core = core or integer_core(model)
    T, B, W = cfg.time_steps, x.shape[0], core.weights

    def lif(name, currents):  # T int64 tensors -> (T, ...) int8 spikes
        p = int_lif_params(v_th=core.theta[name], leak="shift", leak_shift=cfg.leak_shift, reset="subtract")
        state, out = None, []
        for c in currents:
            s, state = int_lif_step(c.clamp(INT16_MIN, INT16_MAX).to(torch.int32), state, p)
            out.append(s)
        return torch.stack(out)

    def conv(name, inp, i):  # integer-valued float64 (N, C, L) -> int64 currents (N, C_out, L_out)
        c = model.convs[i]
        acc = F.conv1d(inp, W[name], stride=c.stride, padding=c.padding).round().to(torch.int64)
        return acc + core.bias[name][:, None]

    xq = to_int8(x, cfg.input_scale).unsqueeze(1)  # (B, 1, L) INT8 values
    s = lif("enc", [conv("enc", xq, 0)] * T)  # the encoder's current is the same every step
    spikes = [s]
    for i, name in ((1, "conv2"), (2, "conv3")):
        cur = conv(name, s.reshape(T * B, *s.shape[2:]).double(), i)  # (T*B, C, L)
        s = lif(name, list(cur.reshape(T, B, *cur.shape[1:]).unbind(0)))
        spikes.append(s)
    z = to_int8(model.standardise_rr(rr.float()), RR_INT8_SCALE)  # (B, 6) INT8 values
    static = _shift((z @ W["rr"].T).round().to(torch.int64), core.rr_shift) + core.bias["fc"]  # (B, H)
    flat = s.reshape(T, B, -1).double()
    h = lif("fc", [(flat[t] @ W["fc"].T).round().to(torch.int64) + static for t in range(T)])
    if counter is not None:
        count_spiking_ops(counter, model, spikes[0].shape[-1], [*spikes, h], B)
    acc = sum((h[t].double() @ W["readout"].T).round().to(torch.int64) for t in range(T))
    return acc + T * core.bias["readout"]
