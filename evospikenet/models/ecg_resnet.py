r"""The float ResNet-18-1D baseline of the ECG classifier.

The standard layout with 1D convolutions: stem conv (k 7, stride 2) + BN + ReLU + max-pool (3, 2), BasicBlocks
[2, 2, 2, 2] of widths 64/128/256/512 (strides 1, 2, 2, 2, 1x1 projection shortcuts), global average pool,
and a linear head on the pooled features concatenated with the standardised RR features. With
``counter=OpCounter()`` every conv and linear adds its MACs (BN, ReLU, pooling and residual adds are not
counted: BN folds into the weights, the rest is negligible next to the MACs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..energy import OpCounter, conv_macs
from .ecg_base import ECGConfigBase, ECGModelBase

__all__ = ["ECGResNetConfig", "ECGResNet18"]


class ECGResNetConfig(ECGConfigBase):
    """The float ResNet-18-1D baseline (standard widths; every field commented)."""

    model_type = "evospikenet_ecg_resnet18"
    widths: list = (64, 128, 256, 512)  # channels of the four stages (ResNet-18)
    blocks: list = (2, 2, 2, 2)  # BasicBlocks per stage (ResNet-18)
    stem_kernel: int = 7  # kernel of the stem convolution (stride 2)


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


class ECGResNet18(ECGModelBase):
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
