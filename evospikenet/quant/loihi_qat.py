r"""Quantisation-aware fine-tuning of an ``ECGSpikingNet`` for its Loihi form (pure torch).

Plain rounding (:func:`evospikenet.quant.loihi.quantize_ecg`) keeps the float network's weights; the Loihi
form then differs from it mainly by the reset (Loihi's LIF resets the voltage to 0, the float net subtracts
the threshold), which costs about a point of accuracy on MIT-BIH. :func:`finetune_loihi` trains the
BN-folded weights through a float twin of the Loihi form:

.. math::

    H_t = \beta V_{t-1} + \hat W x_t + \hat b, \qquad S_t = [H_t > 1], \qquad V_t = (1 - S_t) H_t

where ``\hat W`` and ``\hat b`` are the weights and biases rounded exactly as the quantiser rounds them
(per-layer threshold and exponent from the current maximum, 8-bit weights, 13-bit bias mantissas) with a
straight-through gradient, ``x_t`` the int8-rounded beat and RR inputs, and ``S_t`` the Heaviside step with
the ATan surrogate derivative. The twin leaves out the voltage decay's truncation (below one voltage LSB,
``1 / (64 vth)`` of a threshold, per step). The result is an ``ECGSpikingNet`` whose BatchNorms are the
identity and whose convolutions hold the folded weights, so ``quantize_ecg`` reads it as any other.

Training uses the beats given (the caller passes training beats only), drawn with probability
``~ n_c^{-0.4}`` per beat (class ``c`` in all ``~ n_c^{0.6}``) as the ECG recipe does, Adam with a cosine schedule, fixed seed.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..functional.surrogate import ATan
from .loihi import VTH_MIN

__all__ = ["LoihiTwin", "finetune_loihi"]

_SPIKE = ATan(2.0)


def _ste(x: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """``q`` forward, identity gradient to ``x``."""
    return x + (q - x).detach()


def _fake_weight(w: torch.Tensor, in_scale: float) -> tuple[torch.Tensor, float]:
    """Rounded ``w`` as the quantiser does (threshold ``vth`` from the layer's max) and that ``vth``."""
    wmax = float(w.detach().abs().max()) * in_scale
    e = math.ceil(math.log2(VTH_MIN * wmax / 127.0))
    while math.floor(127.0 * 2.0**e / wmax) < VTH_MIN:
        e += 1
    vth = math.floor(127.0 * 2.0**e / wmax)
    step = 2.0**e / (vth * in_scale)  # one weight LSB in float units
    return _ste(w, torch.round(w / step).clamp(-127, 127) * step), float(vth)


def _fake_bias(b: torch.Tensor, vth: float) -> torch.Tensor:
    lsb = 1.0 / (vth * 64.0)
    big = float(b.detach().abs().max()) / lsb
    be = 0
    while big / 2.0**be > 4095 and be < 7:
        be += 1
    step = lsb * 2.0**be
    return _ste(b, torch.round(b / step) * step)


class LoihiTwin(nn.Module):
    """Float twin of the Loihi form of an ``ECGSpikingNet`` (trainable folded weights)."""

    def __init__(self, model) -> None:
        super().__init__()
        cfg = model.config
        self.cfg = cfg
        folded = model.folded()
        self.w = nn.ParameterList([nn.Parameter(w.detach().clone()) for w, _ in folded])
        self.b = nn.ParameterList([nn.Parameter(b.detach().clone()) for _, b in folded])
        self.geom = [(c.stride[0], c.padding[0]) for c in model.convs]
        self.fc_w = nn.Parameter(model.fc.weight.detach().clone())
        self.fc_b = nn.Parameter(model.fc.bias.detach().clone())
        self.rr_w = nn.Parameter(model.rr_proj.weight.detach().clone())
        self.out_w = nn.Parameter(model.out.weight.detach().clone())
        self.out_b = nn.Parameter(model.out.bias.detach().clone())
        self.register_buffer("rr_mean", model.rr_mean.detach().clone())
        self.register_buffer("rr_std", model.rr_std.detach().clone())

    def _lif(self, currents: list[torch.Tensor]) -> torch.Tensor:
        beta, v, out = self.cfg.beta, torch.zeros_like(currents[0]), []
        for c in currents:
            h = beta * v + c
            s = _SPIKE(h - 1.0) * (h != 1.0)  # fires at h > 1 (Loihi's strict comparison)
            v = h * (1.0 - s)
            out.append(s)
        return torch.stack(out)

    def forward(self, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
        """Logits (B, n_classes) of beats ``x`` (B, L) and raw RR features ``rr`` (B, n_rr)."""
        cfg, T, B = self.cfg, self.cfg.time_steps, x.shape[0]
        xs = cfg.input_scale
        xq = torch.round(x / xs).clamp(-127, 127) * xs  # (B, L) int8 grid
        w0, vth = _fake_weight(self.w[0], xs)
        s0, p0 = self.geom[0]
        cur = F.conv1d(xq.unsqueeze(1), w0, stride=s0, padding=p0) + _fake_bias(self.b[0], vth)[:, None]
        s = self._lif([cur] * T)  # (T, B, C, L)
        for i in (1, 2):
            wi, vth = _fake_weight(self.w[i], 1.0)
            st, pd = self.geom[i]
            c = F.conv1d(s.reshape(T * B, *s.shape[2:]), wi, stride=st, padding=pd)
            c = c + _fake_bias(self.b[i], vth)[:, None]
            s = self._lif(list(c.reshape(T, B, *c.shape[1:])))
        fc_w, vth = _fake_weight(self.fc_w, 1.0)
        zs = 8.0 / 127.0
        z = torch.round((rr - self.rr_mean) / self.rr_std / zs).clamp(-127, 127) * zs
        w_rr = self.rr_w * vth * zs
        e = math.ceil(math.log2(max(float(w_rr.detach().abs().max()), 1e-30) / 127.0))
        rr_w = _ste(self.rr_w, torch.round(w_rr / 2.0**e).clamp(-127, 127) * 2.0**e / (vth * zs))
        static = z @ rr_w.T + _fake_bias(self.fc_b, vth)  # (B, H)
        flat = s.reshape(T, B, -1)
        h = self._lif([flat[t] @ fc_w.T + static for t in range(T)])
        unit = 127.0 / float(self.out_w.detach().abs().max())
        out_w = _ste(self.out_w, torch.round(self.out_w * unit) / unit)
        return h.mean(0) @ out_w.T + self.out_b

    @torch.no_grad()
    def to_model(self, like):
        """An ``ECGSpikingNet`` (copy of ``like``) holding these weights, BNs set to the identity."""
        m = copy.deepcopy(like).eval()
        for conv, bn, w, b in zip(m.convs, m.bns, self.w, self.b):
            conv.weight.copy_(w)
            bn.weight.fill_(1.0)
            bn.bias.copy_(b)
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
        m.fc.weight.copy_(self.fc_w)
        m.fc.bias.copy_(self.fc_b)
        m.rr_proj.weight.copy_(self.rr_w)
        m.out.weight.copy_(self.out_w)
        m.out.bias.copy_(self.out_b)
        return m


def finetune_loihi(
    model,
    x: np.ndarray,
    rr: np.ndarray,
    y: np.ndarray,
    epochs: int = 3,
    epoch_beats: int = 6000,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    log=None,
):
    """Fine-tune ``model``'s folded weights through :class:`LoihiTwin` on beats ``x`` (N, L), ``rr`` (N, 6),
    labels ``y`` (N,); returns the fine-tuned ``ECGSpikingNet`` (``model`` itself is left unchanged)."""
    if epochs < 0 or epoch_beats < 1 or batch_size < 1:
        raise ValueError(
            f"epochs >= 0, epoch_beats >= 1 and batch_size >= 1 needed, got {epochs}, {epoch_beats}, {batch_size}"
        )
    twin = LoihiTwin(model.eval())
    if epochs == 0:
        return twin.to_model(model)
    g = torch.Generator().manual_seed(seed)
    xt, rt, yt = torch.as_tensor(x), torch.as_tensor(rr), torch.as_tensor(y)
    counts = torch.bincount(yt, minlength=int(yt.max()) + 1).double().clamp_min(1)
    weight = counts[yt] ** -0.4  # per beat, as the ECG recipe draws them (class c: ~ n_c^0.6)
    opt = torch.optim.Adam(twin.parameters(), lr=lr)
    steps = epochs * math.ceil(epoch_beats / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    twin.train()
    for ep in range(epochs):
        idx = torch.multinomial(weight, epoch_beats, replacement=True, generator=g)
        total = 0.0
        for i in range(0, epoch_beats, batch_size):
            j = idx[i : i + batch_size]
            xb = xt[j] * torch.empty(len(j), 1).uniform_(0.9, 1.1, generator=g)  # the recipe's augmentation
            xb = xb + 0.02 * torch.randn(xb.shape, generator=g)
            loss = F.cross_entropy(twin(xb, rt[j]), yt[j])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(j)
        if log is not None:
            log(f"loihi fine-tune epoch {ep + 1}/{epochs}: loss {total / epoch_beats:.4f}")
    return twin.eval().to_model(model)
