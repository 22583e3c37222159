r"""Spiking modality encoders: each turns one input into ``P`` prefix-token currents for the spiking LM.

Common interface (``SpikeEncoder``): ``modality`` (the ``generate`` keyword), ``n_tokens`` (P),
``check(x, extra)`` (raises ``ValueError`` naming the argument for a wrong shape), and
``forward(x, extra) -> EncoderOutput(current (T, B, P, D), spikes [(T, B, ...)], aux_logits (B, K))``.
An audio encoder (e.g. cochleagram frames -> tokens) plugs in by implementing the same four members.

Both encoders follow the ECG classifier (``evospikenet.models.ecg``): a float conv + BN computed once per
input (MACs) drives LIF neurons for ``T`` steps, a spiking conv + BN follows, and the spikes are cut into
tokens:

.. math::

    I^{0} = \mathrm{BN}(W_0 * x), \quad S^0_t = \mathrm{LIF}(I^0)_t, \quad
    S^1_t = \mathrm{LIF}(\mathrm{BN}(W_1 * S^0_t))_t,

    c_{t,p} = W_{tok}\, \mathrm{vec}(S^1_{t}[\text{patch } p]) + e_p
    \quad (+\, W_{rr} z_{rr} \text{ for beats})

``c`` (T, B, P, D) is the current the LM's residual stream starts from at the prefix positions: a synapse
fed by spikes (accumulate-only). ``aux_logits = W_{aux} \frac{1}{T}\sum_t \mathrm{vec}(S^1_t)`` is an
auxiliary label readout used only as a training aid (``config.aux_weight``).

* **Vision** (``VisionSpikeEncoder``): images (B, C, S, S) scaled by ``1 / image_max_value``, 3x3 convs
  (padding 1), prefix tokens = non-overlapping ``patch_size`` x ``patch_size`` patches (raster order).
* **Biosignal** (``SignalSpikeEncoder``): beats (B, L) in mV, 1D convs (k 7 and 5, stride 2), the feature
  map (zero-padded to a multiple of P) cut into P consecutive segments; the standardised RR features
  ``z_rr`` (B, n_rr) enter every token as a static current (as in the ECG classifier).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from ..spiking_lm.neurons import LIFPopulation

__all__ = ["EncoderOutput", "SpikeEncoder", "VisionSpikeEncoder", "SignalSpikeEncoder"]


class EncoderOutput(NamedTuple):
    """What an encoder hands to the LM."""

    current: torch.Tensor  # (T, B, P, D) prefix-token currents
    spikes: list  # [(T, B, ...)] spikes of each population, for the UI and the spike counts
    aux_logits: torch.Tensor  # (B, K) auxiliary label readout on the rates


class SpikeEncoder(nn.Module):
    """Base class: ``modality``, ``n_tokens``, ``check`` and ``forward`` (see the module docstring)."""

    modality: str = ""
    n_tokens: int = 0

    def _lif(self, c) -> LIFPopulation:
        return LIFPopulation(c.lif_beta, c.lif_threshold, c.neuron_backend, c.surrogate_alpha)

    def check(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> None:  # pragma: no cover
        raise NotImplementedError

    def forward(
        self, x: torch.Tensor, extra: torch.Tensor | None = None
    ) -> EncoderOutput:  # pragma: no cover
        raise NotImplementedError


def _repeat(cur: torch.Tensor, time_steps: int) -> torch.Tensor:
    return cur.unsqueeze(0).expand(time_steps, *cur.shape).contiguous()  # (T, ...)


class VisionSpikeEncoder(SpikeEncoder):
    """Images (B, C, S, S) -> P = (S / patch)^2 spiking patch tokens."""

    modality = "images"

    def __init__(self, config) -> None:
        super().__init__()
        c = config
        c0, c1 = list(c.vision_channels)
        self.size, self.channels, self.patch = c.image_size, c.image_channels, c.patch_size
        self.scale = 1.0 / float(c.image_max_value)
        self.time_steps = c.time_steps
        self.n_tokens = c.n_image_tokens
        self.conv0 = nn.Conv2d(c.image_channels, c0, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(c0)
        self.conv1 = nn.Conv2d(c0, c1, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c1)
        self.lif0, self.lif1 = self._lif(c), self._lif(c)
        self.tok = nn.Linear(c1 * c.patch_size**2, c.d_model)
        self.tok._evo_skip_init = True  # keep PyTorch's fan-in initialisation
        self.pos = nn.Parameter(torch.zeros(self.n_tokens, c.d_model))
        self.aux = nn.Linear(c1 * c.image_size**2, c.n_digit_classes)

    def check(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"images must be a float tensor (B, C, H, W), got {type(x).__name__}")
        want = (self.channels, self.size, self.size)
        if x.ndim != 4 or tuple(x.shape[1:]) != want:
            raise ValueError(
                f"images must have shape (B, {want[0]}, {want[1]}, {want[2]}) (channels, height, width), "
                f"got {tuple(x.shape)}"
            )

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> EncoderOutput:
        self.check(x)
        T, B, S, p = self.time_steps, x.shape[0], self.size, self.patch
        cur0 = self.bn0(self.conv0(x * self.scale))  # (B, c0, S, S): computed once
        s0, _ = self.lif0(_repeat(cur0, T))  # (T, B, c0, S, S)
        cur1 = self.bn1(self.conv1(s0.reshape(T * B, *s0.shape[2:])))  # (T*B, c1, S, S)
        s1, _ = self.lif1(cur1.reshape(T, B, *cur1.shape[1:]))  # (T, B, c1, S, S)
        c1, g = s1.shape[2], S // p
        patches = s1.reshape(T, B, c1, g, p, g, p).permute(0, 1, 3, 5, 2, 4, 6)  # (T, B, g, g, c1, p, p)
        current = self.tok(patches.reshape(T, B, g * g, c1 * p * p)) + self.pos  # (T, B, P, D)
        aux = self.aux(s1.mean(0).reshape(B, -1))  # (B, 10)
        return EncoderOutput(current, [s0, s1], aux)


class SignalSpikeEncoder(SpikeEncoder):
    """Beats (B, L) (+ RR features (B, n_rr)) -> P spiking segment tokens."""

    modality = "signals"

    def __init__(self, config) -> None:
        super().__init__()
        c = config
        c0, c1 = list(c.signal_channels)
        self.length, self.n_rr, self.time_steps = c.signal_length, c.n_rr, c.time_steps
        self.n_tokens = c.signal_tokens
        self.conv0 = nn.Conv1d(1, c0, 7, 2, 3, bias=False)
        self.bn0 = nn.BatchNorm1d(c0)
        self.conv1 = nn.Conv1d(c0, c1, 5, 2, 2, bias=False)
        self.bn1 = nn.BatchNorm1d(c1)
        self.lif0, self.lif1 = self._lif(c), self._lif(c)
        n = (c.signal_length - 1) // 2 + 1
        self.n_out = (n - 1) // 2 + 1  # feature-map length after the two stride-2 convs
        self.seg = math.ceil(self.n_out / self.n_tokens)  # samples per token (zero-padded at the end)
        self.tok = nn.Linear(c1 * self.seg, c.d_model)
        self.tok._evo_skip_init = True
        self.pos = nn.Parameter(torch.zeros(self.n_tokens, c.d_model))
        self.rr = nn.Linear(c.n_rr, c.d_model, bias=False) if c.n_rr else None
        self.aux = nn.Linear(c1 * self.n_out + c.n_rr, c.n_signal_classes)
        mean = torch.tensor(c.rr_mean or [0.0] * c.n_rr, dtype=torch.float32)
        std = torch.tensor(c.rr_std or [1.0] * c.n_rr, dtype=torch.float32)
        self.register_buffer("rr_mean", mean)
        self.register_buffer("rr_std", std.clamp_min(1e-6))

    def check(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"signals must be a float tensor (B, {self.length}), got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.length:
            raise ValueError(
                f"signals must have shape (B, {self.length}) (beat windows of {self.length} samples), "
                f"got {tuple(x.shape)}"
            )
        if self.n_rr:
            if extra is None:
                raise ValueError(f"rr must be given with signals: RR features of shape (B, {self.n_rr})")
            if tuple(extra.shape) != (x.shape[0], self.n_rr):
                raise ValueError(f"rr must have shape ({x.shape[0]}, {self.n_rr}), got {tuple(extra.shape)}")

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> EncoderOutput:
        self.check(x, extra)
        T, B, P = self.time_steps, x.shape[0], self.n_tokens
        cur0 = self.bn0(self.conv0(x.unsqueeze(1)))  # (B, c0, L1): computed once
        s0, _ = self.lif0(_repeat(cur0, T))  # (T, B, c0, L1)
        cur1 = self.bn1(self.conv1(s0.reshape(T * B, *s0.shape[2:])))  # (T*B, c1, L2)
        s1, _ = self.lif1(cur1.reshape(T, B, *cur1.shape[1:]))  # (T, B, c1, L2)
        c1 = s1.shape[2]
        padded = nn.functional.pad(s1, (0, P * self.seg - self.n_out))  # (T, B, c1, P*seg)
        segs = padded.reshape(T, B, c1, P, self.seg).permute(0, 1, 3, 2, 4)  # (T, B, P, c1, seg)
        current = self.tok(segs.reshape(T, B, P, c1 * self.seg)) + self.pos  # (T, B, P, D)
        feats = [s1.mean(0).reshape(B, -1)]
        if self.rr is not None:
            z = (extra.float() - self.rr_mean) / self.rr_std  # (B, n_rr) standardised
            current = current + self.rr(z)[None, :, None]
            feats.append(z)
        aux = self.aux(torch.cat(feats, dim=1))  # (B, 5)
        return EncoderOutput(current, [s0, s1], aux)

    def set_rr_stats(self, mean, std) -> None:
        """Use training-set RR statistics (the model also stores them in its config)."""
        self.rr_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.rr_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))
