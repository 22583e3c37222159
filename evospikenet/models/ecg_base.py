"""Shared parts of the ECG beat classifiers: the config fields of the beat window and RR standardisation, and
the ``PreTrainedModel`` base that checks inputs and standardises the RR features
(``evospikenet.models.ecg`` has the models)."""

from __future__ import annotations

import torch
from transformers import PretrainedConfig, PreTrainedModel

from ..atomic import AtomicSaveMixin

__all__ = ["ECGConfigBase", "ECGModelBase"]


class ECGConfigBase(PretrainedConfig):
    """Fields of every ECG model: the beat window and RR standardisation (every field commented)."""

    model_type = "evospikenet_ecg"
    beat_before: int = 90  # samples before the R peak at the record's rate (BeatWindow.before)
    beat_after: int = 166  # samples from the R peak on (BeatWindow.after)
    downsample: int = 2  # keep every d-th sample of the window (BeatWindow.downsample)
    band: list = (0.5, 40.0)  # band-pass edges in Hz applied to the record before cutting
    fs: float = 360.0  # sampling rate in Hz of the training records; records at another rate are rejected
    n_rr: int = 6  # number of RR features (evospikenet.data.mitdb.RR_FEATURES)
    n_classes: int = 5  # AAMI classes N, S, V, F, Q
    rr_mean: list | None = None  # training-set mean of each RR feature (None: 0)
    rr_std: list | None = None  # training-set std of each RR feature (None: 1)

    @property
    def window(self) -> int:
        """Samples per beat window after downsampling."""
        return len(range(0, self.beat_before + self.beat_after, self.downsample))


class ECGModelBase(AtomicSaveMixin, PreTrainedModel):
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
