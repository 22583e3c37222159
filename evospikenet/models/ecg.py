r"""ECG beat classifiers: a spiking 1D-conv network, its float twin, and the ResNet-18-1D baseline.

Every model takes a beat window ``x`` (B, L) in mV and the raw RR features ``rr`` (B, 6)
(``evospikenet.data.mitdb``) and returns logits (B, 5) over the AAMI classes. The RR features are
standardised inside the model with the training-set ``rr_mean`` / ``rr_std`` that the config stores, together
with the beat window, so a saved directory is all an evaluator needs.

**Spiking network** (``ECGSpikingNet``). A learned encoder (conv + BN, float MACs, computed once per beat)
drives LIF neurons for ``T`` steps; two spiking conv + BN layers, a spiking hidden layer fed by the flattened
spikes and by the RR features (a static current), and a non-spiking readout averaged over time:

.. math::

    H_t = \beta V_{t-1} + I_t, \quad S_t = \Theta(H_t - V_{th}), \quad V_t = H_t - S_t V_{th}, \qquad
    \mathrm{logits} = \tfrac{1}{T}\textstyle\sum_t (W_o S^{fc}_t + b_o)

(``lif_multistep`` with ``r = 1 / (1 - beta)``, so ``(1 - beta) r = 1``). With ``beta = 1 - 2^-k`` the same
network runs on the integer core (``evospikenet.models.ecg_integer``): BN folded into the weights, INT8
weights and input, INT16 membranes in units of each layer's weight LSB (no multiplier at run time),
``int_lif_step`` with ``leak_shift = k``, integer readout.

**Float twin** (``ECGFloatTwin``): the same layers and widths with ``ReLU`` in place of every LIF population
(the input is static, so the ``T`` steps collapse into one pass), trained with the same recipe: the
like-for-like ANN the spiking net's energy is compared with. **ResNet-18-1D** (``ECGResNet18``,
``evospikenet.models.ecg_resnet``) is the larger conventional baseline.

Energy accounting (``counter=OpCounter()`` in ``forward``): spiking layers add SOPs (every input spike times
the number of output neurons it reaches) and one state update per neuron and step; float layers (the
encoder, the RR projection, every layer of the twin and the ResNet) add MACs. BN folds into the weights and is
not counted, nor are the twin's ReLUs and bias adds (in the twin's favour).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..energy import OpCounter, conv_macs
from ..functional.lif import lif_multistep, lif_params
from .ecg_base import ECGConfigBase, ECGModelBase
from .ecg_resnet import ECGResNet18, ECGResNetConfig

__all__ = [
    "ECGSpikingConfig",
    "ECGTwinConfig",
    "ECGResNetConfig",
    "ECGSpikingNet",
    "ECGFloatTwin",
    "ECGResNet18",
    "count_spiking_ops",
    "load_ecg_model",
]


class ECGSpikingConfig(ECGConfigBase):
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
    baseline_energy_per_beat_j: float | None = None  # ResNet-18-1D compute energy per beat (set by training)
    baseline_energy_per_beat_mem_j: float | None = None  # ResNet-18-1D memory-inclusive energy per beat
    twin_energy_per_beat_j: float | None = None  # the float twin's compute energy per beat (set by training)

    @property
    def beta(self) -> float:
        """Membrane decay per step ``1 - 2^-leak_shift``."""
        return 1.0 - 2.0 ** (-self.leak_shift)


def _conv_out(n: int, k: int, s: int) -> int:
    return (n + 2 * (k // 2) - k) // s + 1


def _conv_sops(spikes: torch.Tensor, conv: nn.Conv1d) -> torch.Tensor:
    """Exact SOPs of a conv driven by spikes (N, C, L): a spike reaches out_channels x its positions."""
    k, s, p = conv.kernel_size[0], conv.stride[0], conv.padding[0]
    ones = torch.ones(1, 1, k, dtype=spikes.dtype, device=spikes.device)
    per_pos = F.conv1d(spikes.detach().sum(1, keepdim=True), ones, stride=s, padding=p)
    return per_pos.sum() * conv.out_channels


def count_spiking_ops(counter: OpCounter, model, enc_positions: int, spikes: list, B: int) -> None:
    """Ops of one spiking forward pass: encoder and RR MACs; SOPs and state updates of every population.

    ``spikes``: the (T, B, C, L) spikes of the encoder and the two spiking convs, and the (T, B, H) hidden
    spikes; every count comes from these, so the float and the integer run each count their own spikes."""
    cfg = model.config
    T = cfg.time_steps
    conv0 = model.convs[0]
    counter.add_macs("enc", conv_macs(enc_positions * B, 1, conv0.out_channels, conv0.kernel_size[0]))
    for i, name in ((1, "conv2"), (2, "conv3")):
        s = spikes[i - 1]
        counter.add_sops(name, _conv_sops(s.reshape(T * B, *s.shape[2:]).float(), model.convs[i]))
    counter.add_sops("fc", spikes[2].detach().ne(0).sum() * cfg.hidden)
    counter.add_macs("rr", B * cfg.n_rr * cfg.hidden)
    counter.add_sops("readout", spikes[3].detach().ne(0).sum() * cfg.n_classes)
    for name, sp in zip(("enc", "conv2", "conv3", "fc"), spikes):
        counter.add_updates(name, sp.numel())
    counter.add_updates("readout", T * B * cfg.n_classes)


class ECGSpikingNet(ECGModelBase):
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
        s, _ = lif_multistep(cur.unsqueeze(0).expand(T, *cur.shape).contiguous(), None, self.lif)
        spikes = [s]  # (T, B, C1, L1)
        for i in (1, 2):
            cur = self.bns[i](self.convs[i](s.reshape(T * B, *s.shape[2:])))  # (T*B, C, L)
            s, _ = lif_multistep(cur.reshape(T, B, *cur.shape[1:]), None, self.lif)
            spikes.append(s)
        flat = self.drop(s.reshape(T, B, self.flat))  # (T, B, C3*L3)
        cur = self.fc(flat) + self.rr_proj(self.standardise_rr(rr)).unsqueeze(0)  # (T, B, H)
        h, _ = lif_multistep(cur, None, self.lif)
        spikes.append(h)
        logits = self.out(h).mean(0)  # (B, n_classes)
        if counter is not None:
            count_spiking_ops(counter, self, spikes[0].shape[-1], spikes, B)
        return (logits, spikes) if return_spikes else logits

    def folded(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Conv weights with their (eval-mode) BN folded in: ``[(w (C_out, C_in, k), b (C_out,)), ...]``."""
        out = []
        for conv, bn in zip(self.convs, self.bns):
            g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            out.append((conv.weight * g[:, None, None], bn.bias - bn.running_mean * g))
        return out


class ECGTwinConfig(ECGSpikingConfig):
    """The float twin of ``ECGSpikingConfig``: the same fields (``time_steps`` and the LIF fields unused)."""

    model_type = "evospikenet_ecg_twin"


class ECGFloatTwin(ECGSpikingNet):
    r"""``ECGSpikingNet`` with ``ReLU`` for every LIF population: one float pass, dense MACs everywhere.

    .. math::

        a_1 = \mathrm{ReLU}(\mathrm{BN}(W_1 * x)), \ a_{2,3} = \mathrm{ReLU}(\mathrm{BN}(W_{2,3} * a_{1,2})),
        \ h = \mathrm{ReLU}(W_{fc} a_3 + W_{rr} z + b), \ \mathrm{logits} = W_o h + b_o
    """

    config_class = ECGTwinConfig

    def forward(self, x: torch.Tensor, rr: torch.Tensor, counter: OpCounter | None = None):
        """Logits (B, n_classes) of beats ``x`` (B, L) with RR features ``rr`` (B, n_rr)."""
        self._check(x, rr)
        cfg, B = self.config, x.shape[0]
        a = x.unsqueeze(1)  # (B, 1, L)
        for i, name in enumerate(("enc", "conv2", "conv3")):
            conv = self.convs[i]
            a = F.relu(self.bns[i](conv(a)))  # (B, C_i, L_i)
            if counter is not None:
                counter.add_macs(
                    name, conv_macs(a.shape[-1] * B, conv.in_channels, conv.out_channels, conv.kernel_size[0])
                )
        h = F.relu(self.fc(self.drop(a.flatten(1))) + self.rr_proj(self.standardise_rr(rr)))  # (B, H)
        if counter is not None:
            counter.add_macs("fc", B * self.flat * cfg.hidden)
            counter.add_macs("rr", B * cfg.n_rr * cfg.hidden)
            counter.add_macs("readout", B * cfg.hidden * cfg.n_classes)
        return self.out(h)


def load_ecg_model(path) -> ECGModelBase:
    """Load a saved ECG model directory (any of the three kinds), dispatching on ``model_type`` in its config."""
    import json
    from pathlib import Path

    cfg_file = Path(path) / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"model directory {str(path)!r} has no config.json")
    kind = json.loads(cfg_file.read_text()).get("model_type")
    classes = {
        ECGSpikingConfig.model_type: ECGSpikingNet,
        ECGTwinConfig.model_type: ECGFloatTwin,
        ECGResNetConfig.model_type: ECGResNet18,
    }
    if kind not in classes:
        raise ValueError(f"model_type in {str(cfg_file)!r} must be one of {sorted(classes)}, got {kind!r}")
    return classes[kind].from_pretrained(str(path), use_safetensors=True).eval()
