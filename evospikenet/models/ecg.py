r"""ECG beat classifiers: a spiking 1D-conv network and the float ResNet-18-1D baseline.

Both take a beat window ``x`` (B, L) in mV and the raw RR features ``rr`` (B, 6) (``evospikenet.data.mitdb``)
and return logits (B, 5) over the AAMI classes. The RR features are standardised inside the model with the
training-set ``rr_mean`` / ``rr_std`` that the config stores, together with the beat window, so a saved
directory is all an evaluator needs.

**Spiking network** (``ECGSpikingNet``). A learned encoder (conv + BN, float MACs, computed once per beat)
drives LIF neurons for ``T`` steps; two spiking conv + BN layers, a spiking hidden layer fed by the flattened
spikes and by the RR features (a static current), and a non-spiking readout averaged over time:

.. math::

    H_t = \beta V_{t-1} + I_t, \quad S_t = \Theta(H_t - V_{th}), \quad V_t = H_t - S_t V_{th}, \qquad
    \mathrm{logits} = \tfrac{1}{T}\textstyle\sum_t (W_o S^{fc}_t + b_o)

(``lif_multistep`` with ``r = 1 / (1 - beta)``, so ``(1 - beta) r = 1``). With ``beta = 1 - 2^-k`` the same
network runs on the integer core (:func:`integer_forward`): BN folded into the weights, INT8 weights and
input, INT32 accumulation, a fixed-point requantisation ``(acc * M + 2^15) >> 16`` into membrane units of
``V_th / theta``, INT16 membranes stepped by ``int_lif_step`` with ``leak_shift = k``, integer readout.

**ResNet-18-1D** (``ECGResNet18``): the standard layout with 1D convolutions: stem conv (k 7, stride 2) + BN
+ ReLU + max-pool (3, 2), BasicBlocks [2, 2, 2, 2] of widths 64/128/256/512 (strides 1, 2, 2, 2, 1x1
projection shortcuts), global average pool, and a linear head on the pooled features concatenated with the
standardised RR features.

Energy accounting (``counter=OpCounter()`` in ``forward``): spiking layers add SOPs (every input spike times
the number of output neurons it reaches) and one state update per neuron and step; float layers (the
encoder, the RR projection, every ResNet conv and linear) add MACs. BN, ReLU, pooling and residual adds are
not counted (BN folds into the weights; the rest is negligible next to the MACs).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PretrainedConfig, PreTrainedModel

from ..atomic import AtomicSaveMixin
from ..energy import OpCounter, conv_macs
from ..functional.integer_lif import int_lif_params, int_lif_step
from ..functional.lif import lif_multistep, lif_params

__all__ = [
    "ECGSpikingConfig",
    "ECGResNetConfig",
    "ECGSpikingNet",
    "ECGResNet18",
    "integer_forward",
    "load_ecg_model",
]


class _ECGConfig(PretrainedConfig):
    """Fields shared by both ECG models: the beat window and RR standardisation (every field commented)."""

    model_type = "evospikenet_ecg"
    beat_before: int = 90  # samples before the R peak at the record's rate (BeatWindow.before)
    beat_after: int = 166  # samples from the R peak on (BeatWindow.after)
    downsample: int = 2  # keep every d-th sample of the window (BeatWindow.downsample)
    band: list = (0.5, 40.0)  # band-pass edges in Hz applied to the record before cutting
    n_rr: int = 6  # number of RR features (evospikenet.data.mitdb.RR_FEATURES)
    n_classes: int = 5  # AAMI classes N, S, V, F, Q
    rr_mean: list | None = None  # training-set mean of each RR feature (None: 0)
    rr_std: list | None = None  # training-set std of each RR feature (None: 1)

    @property
    def window(self) -> int:
        """Samples per beat window after downsampling."""
        return len(range(0, self.beat_before + self.beat_after, self.downsample))


class ECGSpikingConfig(_ECGConfig):
    """Sizes of the spiking ECG classifier (every field commented)."""

    model_type = "evospikenet_ecg_snn"
    channels: list = (16, 32, 32)  # output channels of the encoder conv and the two spiking convs
    kernels: list = (7, 5, 5)  # kernel sizes of the three convs
    strides: list = (2, 2, 2)  # strides of the three convs
    hidden: int = 64  # spiking hidden neurons before the readout
    time_steps: int = 4  # T: steps every beat is simulated for
    leak_shift: int = 2  # k: membrane decay beta = 1 - 2^-k (0.75), the integer core's shift leak
    v_th: float = 1.0  # firing threshold of every LIF neuron
    dropout: float = 0.1  # dropout on the hidden layer's input during training
    input_scale: float = 0.05  # integer core: mV per input LSB (int8 input, calibrated on training data)
    theta_int: int = 1024  # integer core: threshold in INT16 membrane units (V_th / theta per unit)
    baseline_energy_per_beat_j: float | None = None  # ResNet-18-1D compute energy per beat (set by training)
    baseline_energy_per_beat_mem_j: float | None = None  # ResNet-18-1D memory-inclusive energy per beat

    @property
    def beta(self) -> float:
        """Membrane decay per step ``1 - 2^-leak_shift``."""
        return 1.0 - 2.0 ** (-self.leak_shift)


class ECGResNetConfig(_ECGConfig):
    """The float ResNet-18-1D baseline (standard widths; every field commented)."""

    model_type = "evospikenet_ecg_resnet18"
    widths: list = (64, 128, 256, 512)  # channels of the four stages (ResNet-18)
    blocks: list = (2, 2, 2, 2)  # BasicBlocks per stage (ResNet-18)
    stem_kernel: int = 7  # kernel of the stem convolution (stride 2)


class _ECGBase(AtomicSaveMixin, PreTrainedModel):
    base_model_prefix = "ecg"
    main_input_name = "x"

    def _init_weights(self, module):  # keep PyTorch's default initialisation
        pass

    def _register_rr(self, config) -> None:
        mean = torch.tensor(config.rr_mean or [0.0] * config.n_rr, dtype=torch.float32)
        std = torch.tensor(config.rr_std or [1.0] * config.n_rr, dtype=torch.float32)
        self.register_buffer("rr_mean", mean)
        self.register_buffer("rr_std", std.clamp_min(1e-6))

    def _check(self, x: torch.Tensor, rr: torch.Tensor) -> None:
        if x.ndim != 2 or x.shape[1] != self.config.window:
            raise ValueError(f"x must have shape (B, {self.config.window}), got {tuple(x.shape)}")
        if rr.shape != (x.shape[0], self.config.n_rr):
            raise ValueError(f"rr must have shape ({x.shape[0]}, {self.config.n_rr}), got {tuple(rr.shape)}")

    def set_rr_stats(self, mean, std) -> None:
        """Store training-set RR statistics in the config (saved) and the buffers (used)."""
        self.config.rr_mean = [float(v) for v in mean]
        self.config.rr_std = [float(v) for v in std]
        self.rr_mean.copy_(torch.tensor(self.config.rr_mean))
        self.rr_std.copy_(torch.tensor(self.config.rr_std).clamp_min(1e-6))

    def standardise_rr(self, rr: torch.Tensor) -> torch.Tensor:
        """``(rr - rr_mean) / rr_std`` with the training-set statistics."""
        return (rr - self.rr_mean) / self.rr_std


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1


def _conv_sops(spikes: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Exact SOPs of a conv driven by spikes (N, C, L): a spike reaches out_channels x its positions."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    ones = torch.ones(1, 1, k, dtype=spikes.dtype, device=spikes.device)
    per_pos = F.conv1d(spikes.detach().sum(1, keepdim=True), ones, stride=s, padding=p)
    return per_pos.sum() * conv.out_channels


class ECGSpikingNet(_ECGBase):
    """Spiking 1D-conv beat classifier; see the module docstring for the equations."""

    config_class = ECGSpikingConfig

    def __init__(self, config: ECGSpikingConfig) -> None:
        super().__init__(config)
        c, k, s = list(config.channels), list(config.kernels), list(config.strides)
        if not (len(c) == len(k) == len(s) == 3):
            raise ValueError(f"channels, kernels and strides need 3 entries each, got {c}, {k}, {s}")
        ins = [1, c[0], c[1]]
        self.convs = nn.ModuleList(
            nn.Conv1d(ins[i], c[i], k[i], s[i], k[i] // 2, bias=False) for i in range(3)
        )
        self.bns = nn.ModuleList(nn.BatchNorm1d(c[i]) for i in range(3))
        n = config.window
        for i in range(3):
            n = _conv_out(n, k[i], s[i])
        self.flat = c[2] * n
        self.fc = nn.Linear(self.flat, config.hidden)
        self.rr_proj = nn.Linear(config.n_rr, config.hidden, bias=False)
        self.out = nn.Linear(config.hidden, config.n_classes)
        self.drop = nn.Dropout(config.dropout)
        b = config.beta
        self.lif = lif_params(tau_mem=-1.0 / math.log(b), dt=1.0, r=1.0 / (1.0 - b), v_th=config.v_th)
        self._register_rr(config)
        self.post_init()

    def forward(
        self, x: torch.Tensor, rr: torch.Tensor, counter: OpCounter | None = None, return_spikes: bool = False
    ):
        """Logits (B, n_classes) of beats ``x`` (B, L) with RR features ``rr`` (B, n_rr)."""
        self._check(x, rr)
        T, B = self.config.time_steps, x.shape[0]
        cur = self.bns[0](self.convs[0](x.unsqueeze(1)))  # (B, C1, L1), static: computed once
        if counter is not None:
            conv = self.convs[0]
            counter.add_macs("enc", conv_macs(cur.shape[-1] * B, 1, conv.out_channels, conv.kernel_size[0]))
        s, _ = lif_multistep(
            cur.unsqueeze(0).expand(T, *cur.shape).contiguous(), None, self.lif
        )  # (T,B,C1,L1)
        spikes = [s]
        for i, name in ((1, "conv2"), (2, "conv3")):
            flat_in = s.reshape(T * B, *s.shape[2:])  # (T*B, C, L)
            cur = self.bns[i](self.convs[i](flat_in))
            if counter is not None:
                counter.add_sops(name, _conv_sops(flat_in, self.convs[i]))
            s, _ = lif_multistep(cur.reshape(T, B, *cur.shape[1:]), None, self.lif)
            spikes.append(s)
        flat = self.drop(s.reshape(T, B, self.flat))  # (T, B, C3*L3)
        cur = self.fc(flat) + self.rr_proj(self.standardise_rr(rr)).unsqueeze(0)  # (T, B, H)
        h, _ = lif_multistep(cur, None, self.lif)
        spikes.append(h)
        logits = self.out(h).mean(0)  # (B, n_classes)
        if counter is not None:
            counter.add_sops("fc", flat.detach().gt(0).sum() * self.config.hidden)
            counter.add_macs("rr", B * self.config.n_rr * self.config.hidden)
            counter.add_sops("readout", h.detach().sum() * self.config.n_classes)
            for name, sp in zip(("enc", "conv2", "conv3", "fc"), spikes):
                counter.add_updates(name, sp[0].numel() * T)
            counter.add_updates("readout", T * B * self.config.n_classes)
        return (logits, spikes) if return_spikes else logits

    def folded(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Conv weights with their (eval-mode) BN folded in: ``[(w (C_out, C_in, k), b (C_out,)), ...]``."""
        out = []
        for conv, bn in zip(self.convs, self.bns):
            g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out.append((conv.weight * g[:, None, None], bn.bias - bn.running_mean * g))
        return out


def _q8(w: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Symmetric per-tensor INT8 quantisation: integer-valued tensor and its scale."""
    scale = max(float(w.abs().max()), 1e-12) / 127.0
    return torch.round(w / scale).clamp(-127, 127), scale


def _requant(acc: torch.Tensor, factor: float) -> torch.Tensor:
    """Fixed-point rescale of integer ``acc``: ``(acc * M + 2^15) >> 16`` with ``M = round(factor 2^16)``."""
    m = int(round(factor * 65536))
    return (acc.to(torch.int64) * m + 32768) >> 16


@torch.no_grad()
def integer_forward(model: ECGSpikingNet, x: torch.Tensor, rr: torch.Tensor) -> torch.Tensor:
    """Run the trained spiking net on the integer core; returns INT64 logits (B, n_classes) (argmax = class).

    Convolutions and products run in float64 on integer-valued tensors, which is exact for these ranges and
    stands in for INT32 accumulation; every other step is integer (``int_lif_step`` with INT16 membranes).
    """
    cfg = model.config
    model._check(x, rr)
    T, B, unit = cfg.time_steps, x.shape[0], cfg.v_th / cfg.theta_int  # unit: volts per membrane LSB
    p = int_lif_params(v_th=cfg.theta_int, leak="shift", leak_shift=cfg.leak_shift, reset="subtract")
    folded = model.folded()
    xq = torch.round(x.double() / cfg.input_scale).clamp(-127, 127).unsqueeze(1)  # (B, 1, L) int8 values

    def run_lif(cur_steps):  # cur_steps: list of T int64 tensors -> (T, ...) int8 spikes
        state, out = None, []
        for c in cur_steps:
            s, state = int_lif_step(c.clamp(-32768, 32767).to(torch.int32), state, p)
            out.append(s)
        return torch.stack(out)

    def conv_current(inp, i, in_scale):
        w, b = folded[i]
        wq, sw = _q8(w.double())
        conv = model.convs[i]
        acc = F.conv1d(inp, wq, stride=conv.stride, padding=conv.padding).round().to(torch.int64)
        bias = torch.round(b.double() / unit).to(torch.int64)[:, None]
        return _requant(acc, in_scale * sw / unit) + bias

    cur = conv_current(xq, 0, cfg.input_scale)  # (B, C1, L1), the same every step
    s = run_lif([cur] * T)
    for i in (1, 2):
        cur = conv_current(s.reshape(T * B, *s.shape[2:]).double(), i, 1.0)
        s = run_lif(list(cur.reshape(T, B, *cur.shape[1:]).unbind(0)))
    wq, sw = _q8(model.fc.weight.double())
    rq, srr = _q8(model.rr_proj.weight.double())
    z = model.standardise_rr(rr.float()).double()
    zq, sz = torch.round(z / (8 / 127)).clamp(-127, 127), 8 / 127
    static = _requant((zq @ rq.T).round().to(torch.int64), sz * srr / unit)
    static = static + torch.round(model.fc.bias.double() / unit).to(torch.int64)
    flat = s.reshape(T, B, -1).double()
    h = run_lif([_requant((flat[t] @ wq.T).round().to(torch.int64), sw / unit) + static for t in range(T)])
    oq, so = _q8(model.out.weight.double())
    acc = sum((h[t].double() @ oq.T).round().to(torch.int64) for t in range(T))
    return acc + T * torch.round(model.out.bias.double() / so).to(torch.int64)


class _BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm1d(cout)
        self.conv2 = nn.Conv1d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm1d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (x if self.down is None else self.down(x)))


class ECGResNet18(_ECGBase):
    """Float ResNet-18-1D over the beat window, RR features joined before the linear head."""

    config_class = ECGResNetConfig

    def __init__(self, config: ECGResNetConfig) -> None:
        super().__init__(config)
        w, nb = list(config.widths), list(config.blocks)
        k = config.stem_kernel
        self.stem = nn.Sequential(
            nn.Conv1d(1, w[0], k, 2, k // 2, bias=False),
            nn.BatchNorm1d(w[0]),
            nn.ReLU(),
            nn.MaxPool1d(3, 2, 1),
        )
        layers, cin = [], w[0]
        for i, (cout, n) in enumerate(zip(w, nb)):
            for j in range(n):
                layers.append(_BasicBlock(cin, cout, 2 if (i > 0 and j == 0) else 1))
                cin = cout
        self.layers = nn.Sequential(*layers)
        self.head = nn.Linear(cin + config.n_rr, config.n_classes)
        self._register_rr(config)
        self.post_init()

    def forward(self, x: torch.Tensor, rr: torch.Tensor, counter: OpCounter | None = None) -> torch.Tensor:
        """Logits (B, n_classes) of beats ``x`` (B, L) with RR features ``rr`` (B, n_rr)."""
        self._check(x, rr)
        hooks = []
        if counter is not None:

            def hook(name):
                def f(mod, inp, out):
                    if isinstance(mod, nn.Conv1d):
                        counter.add_macs(
                            name,
                            conv_macs(
                                out.shape[0] * out.shape[-1],
                                mod.in_channels,
                                mod.out_channels,
                                mod.kernel_size[0],
                                mod.groups,
                            ),
                        )
                    else:
                        counter.add_macs(name, out.shape[0] * mod.in_features * mod.out_features)

                return f

            for name, mod in self.named_modules():
                if isinstance(mod, (nn.Conv1d, nn.Linear)):
                    hooks.append(mod.register_forward_hook(hook(name)))
        try:
            feat = self.layers(self.stem(x.unsqueeze(1))).mean(-1)  # (B, 512)
            return self.head(torch.cat([feat, self.standardise_rr(rr)], dim=1))
        finally:
            for h in hooks:
                h.remove()


def load_ecg_model(path) -> _ECGBase:
    """Load a saved ECG model directory (either kind), dispatching on ``model_type`` in its config."""
    import json
    from pathlib import Path

    cfg_file = Path(path) / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"model directory {str(path)!r} has no config.json")
    kind = json.loads(cfg_file.read_text()).get("model_type")
    classes = {ECGSpikingConfig.model_type: ECGSpikingNet, ECGResNetConfig.model_type: ECGResNet18}
    if kind not in classes:
        raise ValueError(f"model_type in {str(cfg_file)!r} must be one of {sorted(classes)}, got {kind!r}")
    return classes[kind].from_pretrained(str(path), use_safetensors=True).eval()
