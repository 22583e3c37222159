r"""Lightning wiring for MIT-BIH beat classification: ``MITBIHDataModule`` and ``ECGLitModule``.

The data module cuts beats once (``evospikenet.data.mitdb.load_beats``) and splits **within each record by
time** (the R peak's position ``f`` as a fraction of the record), three ways:

* test: ``f >= train_fraction`` (the last 20 % of every record by default), never seen while training or
  choosing; read only through ``test_dataloader`` / ``test_set``;
* validation: ``train_fraction - val_fraction <= f < train_fraction``, where choices are made;
* training: ``f < train_fraction - val_fraction`` with ``tuning=True`` (the runs that make choices), or
  ``f < train_fraction`` (validation included) for the final model.

The training-set RR statistics are copied into the model's config at ``setup``, so a saved model
standardises its inputs alone. The loss is class-weighted cross-entropy with weights
``w_c = (n / (K n_c))^p`` (``class_weight_power`` p; 0 gives plain cross-entropy), optimised by AdamW under a
one-cycle schedule over the whole run. Validation and test log ``{stage}_loss``, ``{stage}_acc``,
``{stage}_macro_f1`` and ``{stage}_weighted_f1`` from torchmetrics (synchronised across processes).
"""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassF1Score

from evospikenet.data.mitdb import AAMI_CLASSES, BeatSet, BeatWindow, load_beats
from evospikenet.models.ecg import (
    ECGFloatTwin,
    ECGResNet18,
    ECGResNetConfig,
    ECGSpikingConfig,
    ECGSpikingNet,
    ECGTwinConfig,
)

__all__ = ["MITBIHDataModule", "ECGLitModule", "build_model", "ARCHS"]

ARCHS = {
    "spiking": (ECGSpikingConfig, ECGSpikingNet),
    "twin": (ECGTwinConfig, ECGFloatTwin),
    "resnet18": (ECGResNetConfig, ECGResNet18),
}
K = len(AAMI_CLASSES)


def _metrics(prefix: str) -> MetricCollection:
    return MetricCollection(
        {
            "acc": MulticlassAccuracy(K, average="micro"),
            "macro_f1": MulticlassF1Score(K, average="macro"),
            "weighted_f1": MulticlassF1Score(K, average="weighted"),
        },
        prefix=prefix,
    )


def build_model(arch: str, model_config: dict | None = None):
    """A fresh ``ECGSpikingNet`` (``arch="spiking"``), ``ECGFloatTwin`` (``"twin"``) or ``ECGResNet18``."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    cfg_cls, model_cls = ARCHS[arch]
    return model_cls(cfg_cls(**(model_config or {})))


def _tensors(b: BeatSet) -> TensorDataset:
    return TensorDataset(torch.from_numpy(b.x), torch.from_numpy(b.rr), torch.from_numpy(b.y))


class MITBIHDataModule(pl.LightningDataModule):
    """MIT-BIH beats split within each record by time into training, validation and test (module docstring)."""

    def __init__(
        self,
        data_dir: str | None = None,  # WFDB directory (None: the shared data's mitdb/)
        records: list[str] | None = None,  # record names to use (None: every *.hea in data_dir)
        train_fraction: float = 0.8,  # the first 80 % of each record trains and validates; the rest is the test
        val_fraction: float = 0.15,  # the validation slice: the last 15 % of the record before the test part
        tuning: bool = False,  # True: train before the validation slice (to make choices); False: up to the test
        beat_before: int = 90,  # window samples before the R peak
        beat_after: int = 166,  # window samples from the R peak on
        downsample: int = 2,  # keep every d-th sample of the window
        batch_size: int = 128,  # beats per training batch
        eval_batch_size: int = 512,  # beats per validation / test batch
        max_train_beats: int | None = None,  # keep at most this many training beats (evenly spaced; debug)
        epoch_beats: int | None = None,  # beats drawn per epoch by class-balanced sampling (None: each once)
        sampling_power: float = 0.5,  # draw beat of class c with probability ~ n_c^-power (epoch_beats set)
        seed: int = 0,  # seed of the epoch sampler
        num_workers: int = 0,  # DataLoader workers
    ) -> None:
        super().__init__()
        if not 0.0 < val_fraction < train_fraction < 1.0:
            raise ValueError(
                f"fractions must satisfy 0 < val_fraction < train_fraction < 1, got {val_fraction!r}, "
                f"{train_fraction!r}"
            )
        self.save_hyperparameters()
        self.window = BeatWindow(beat_before, beat_after, downsample)
        self.train_set: BeatSet | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        beats = load_beats(hp.data_dir, hp.records, self.window)
        self.errors = beats.errors
        val_start = hp.train_fraction - hp.val_fraction
        train = beats.subset(beats.frac < (val_start if hp.tuning else hp.train_fraction))
        self.val_set = beats.subset((beats.frac >= val_start) & (beats.frac < hp.train_fraction))
        self.test_set = beats.subset(beats.frac >= hp.train_fraction)
        if hp.max_train_beats is not None and len(train) > hp.max_train_beats:
            keep = np.zeros(len(train), dtype=bool)
            keep[np.linspace(0, len(train) - 1, hp.max_train_beats).astype(int)] = True
            train = train.subset(keep)
        self.train_set = train
        self.rr_mean = train.rr.mean(0)
        self.rr_std = train.rr.std(0) + 1e-6
        # 99.9th percentile of |x| maps to 127 on the integer core's INT8 input.
        self.input_scale = float(np.percentile(np.abs(train.x), 99.9)) / 127.0

    def class_counts(self) -> np.ndarray:
        """Training beats per AAMI class (5,)."""
        return np.bincount(self.train_set.y, minlength=K)

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        sampler, n = None, len(self.train_set)
        if hp.epoch_beats is not None:
            counts = self.class_counts().astype(np.float64)
            w = np.maximum(counts[self.train_set.y], 1.0) ** (-hp.sampling_power)  # (n,)
            gen = torch.Generator().manual_seed(hp.seed)
            sampler = WeightedRandomSampler(
                torch.from_numpy(w), hp.epoch_beats, replacement=True, generator=gen
            )
            n = hp.epoch_beats
        return DataLoader(
            _tensors(self.train_set),
            batch_size=hp.batch_size,
            shuffle=sampler is None,
            sampler=sampler,
            drop_last=n > hp.batch_size,
            num_workers=hp.num_workers,
        )

    def _eval_loader(self, beats: BeatSet) -> DataLoader:
        return DataLoader(
            _tensors(beats), batch_size=self.hparams.eval_batch_size, num_workers=self.hparams.num_workers
        )

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set)

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)


class ECGLitModule(pl.LightningModule):
    """Trains any ECG model with class-weighted cross-entropy; logs accuracy and F1 on validation and test."""

    def __init__(
        self,
        arch: str = "spiking",  # "spiking" (ECGSpikingNet), "twin" (ECGFloatTwin) or "resnet18" (ECGResNet18)
        model_config: dict | None = None,  # fields of the model's config (beat window fields come from data)
        lr: float = 3e-3,  # peak learning rate of the one-cycle schedule
        weight_decay: float = 1e-4,  # AdamW weight decay
        class_weight_power: float = 0.5,  # p in w_c = (n / (K n_c))^p; 0: unweighted
        label_smoothing: float = 0.0,  # cross-entropy label smoothing
        augment: bool = True,  # random amplitude scaling (x0.9-1.1) and 0.02 mV noise during training
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_model(arch, model_config)
        self.register_buffer("class_weights", torch.ones(K))
        self.val_metrics, self.test_metrics = _metrics("val_"), _metrics("test_")

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage != "fit" or dm is None:
            return
        dm.setup(stage)
        cfg = self.model.config
        for name in ("beat_before", "beat_after", "downsample"):
            if getattr(cfg, name) != getattr(dm.hparams, name):
                raise ValueError(
                    f"model_config {name}={getattr(cfg, name)!r} differs from the data module's "
                    f"{getattr(dm.hparams, name)!r}; set both to the same value"
                )
        self.model.set_rr_stats(dm.rr_mean, dm.rr_std)
        if hasattr(cfg, "input_scale"):
            cfg.input_scale = dm.input_scale
        counts = dm.class_counts().astype(np.float64)
        w = np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0)
        w = np.where(counts > 0, w**self.hparams.class_weight_power, 0.0)
        self.class_weights.copy_(torch.tensor(w, dtype=torch.float32))

    def forward(self, x, rr):
        return self.model(x, rr)

    def training_step(self, batch, batch_idx):
        x, rr, y = batch
        if self.hparams.augment:
            gain = torch.empty(x.shape[0], 1, device=x.device).uniform_(0.9, 1.1)
            x = x * gain + 0.02 * torch.randn_like(x)
        loss = F.cross_entropy(
            self.model(x, rr), y, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing
        )
        self.log("train_loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def _eval(self, batch, stage: str, metrics: MetricCollection) -> None:
        x, rr, y = batch
        logits = self.model(x, rr)
        self.log(f"{stage}_loss", F.cross_entropy(logits, y), batch_size=len(y), sync_dist=True)
        metrics.update(logits.argmax(1), y)
        self.log_dict(metrics, prog_bar=stage == "val", batch_size=len(y))

    def validation_step(self, batch, batch_idx):
        self._eval(batch, "val", self.val_metrics)

    def test_step(self, batch, batch_idx):
        self._eval(batch, "test", self.test_metrics)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=steps, pct_start=0.2
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
