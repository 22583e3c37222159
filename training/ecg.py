r"""Lightning wiring for MIT-BIH beat classification: ``MITBIHDataModule`` and ``ECGLitModule``.

The data module cuts beats once (``evospikenet.data.mitdb.load_beats``) and splits **within each patient by
time**: beats in the first ``train_fraction`` of every record train, the rest validate. The training-set RR
statistics are copied into the model's config at ``setup`` so a saved model standardises its inputs alone.

The loss is class-weighted cross-entropy with weights ``w_c = (n / (K n_c))^p`` (``class_weight_power`` p;
0 gives plain cross-entropy), optimised by AdamW under a one-cycle schedule over the whole run. Validation
logs ``val_loss``, ``val_acc``, ``val_macro_f1`` and ``val_weighted_f1``.

Both classes are plain ``LightningModule`` / ``LightningDataModule`` subclasses with typed ``__init__``
arguments, so ``evospikenet-train fit --config recipes/ecg/debug.yaml`` (LightningCLI) builds them from the
``class_path`` / ``init_args`` entries of a recipe.
"""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from evospikenet.data.mitdb import AAMI_CLASSES, BeatSet, BeatWindow, load_beats, split_by_time
from evospikenet.models.ecg import ECGResNet18, ECGResNetConfig, ECGSpikingConfig, ECGSpikingNet

__all__ = ["MITBIHDataModule", "ECGLitModule", "classification_metrics", "build_model", "ARCHS"]

ARCHS = {"spiking": (ECGSpikingConfig, ECGSpikingNet), "resnet18": (ECGResNetConfig, ECGResNet18)}


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict:
    """Accuracy, weighted and macro F1 (over the classes present in ``y_true``) and per-class figures."""
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    labels = list(range(len(AAMI_CLASSES)))
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0)
    present = sorted(set(y_true.tolist()))
    return {
        "n_beats": int(len(y_true)),
        "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
        "weighted_f1": float(f1_score(y_true, y_pred, labels=present, average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)),
        "per_class": {
            c: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": int(s[i])}
            for i, c in enumerate(AAMI_CLASSES)
        },
    }


def build_model(arch: str, model_config: dict | None = None):
    """A fresh ``ECGSpikingNet`` (``arch="spiking"``) or ``ECGResNet18`` (``"resnet18"``)."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {sorted(ARCHS)}, got {arch!r}")
    cfg_cls, model_cls = ARCHS[arch]
    return model_cls(cfg_cls(**(model_config or {})))


def _tensors(b: BeatSet) -> TensorDataset:
    return TensorDataset(torch.from_numpy(b.x), torch.from_numpy(b.rr), torch.from_numpy(b.y))


class MITBIHDataModule(L.LightningDataModule):
    """MIT-BIH beats with the within-patient time split (earlier part trains, later part validates)."""

    def __init__(
        self,
        data_dir: str | None = None,  # WFDB directory (None: the shared data's mitdb/)
        records: list[str] | None = None,  # record names to use (None: every *.hea in data_dir)
        train_fraction: float = 0.8,  # beats in this leading fraction of each record train
        beat_before: int = 90,  # window samples before the R peak
        beat_after: int = 166,  # window samples from the R peak on
        downsample: int = 2,  # keep every d-th sample of the window
        batch_size: int = 128,  # beats per training batch
        eval_batch_size: int = 512,  # beats per validation batch
        max_train_beats: int | None = None,  # keep at most this many training beats (evenly spaced; debug)
        epoch_beats: int | None = None,  # beats drawn per epoch by class-balanced sampling (None: each once)
        sampling_power: float = 0.5,  # draw beat of class c with probability ~ n_c^-power (epoch_beats set)
        seed: int = 0,  # seed of the epoch sampler
        num_workers: int = 0,  # DataLoader workers
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.window = BeatWindow(beat_before, beat_after, downsample)
        self.train_set: BeatSet | None = None
        self.val_set: BeatSet | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        hp = self.hparams
        beats = load_beats(hp.data_dir, hp.records, self.window)
        self.errors = beats.errors
        train, val = split_by_time(beats, hp.train_fraction)
        if hp.max_train_beats is not None and len(train) > hp.max_train_beats:
            keep = np.zeros(len(train), dtype=bool)
            keep[np.linspace(0, len(train) - 1, hp.max_train_beats).astype(int)] = True
            train = train.subset(keep)
        self.train_set, self.val_set = train, val
        self.rr_mean = train.rr.mean(0)
        self.rr_std = train.rr.std(0) + 1e-6
        # 99.9th percentile of |x| maps to 127 on the integer core's INT8 input.
        self.input_scale = float(np.percentile(np.abs(train.x), 99.9)) / 127.0

    def class_counts(self) -> np.ndarray:
        """Training beats per AAMI class (5,)."""
        return np.bincount(self.train_set.y, minlength=len(AAMI_CLASSES))

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

    def val_dataloader(self) -> DataLoader:
        return DataLoader(
            _tensors(self.val_set),
            batch_size=self.hparams.eval_batch_size,
            num_workers=self.hparams.num_workers,
        )


class ECGLitModule(L.LightningModule):
    """Trains either ECG model with class-weighted cross-entropy; logs accuracy and F1 on validation."""

    def __init__(
        self,
        arch: str = "spiking",  # "spiking" (ECGSpikingNet) or "resnet18" (ECGResNet18)
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
        self.register_buffer("class_weights", torch.ones(len(AAMI_CLASSES)))
        self._val: list = []

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if stage != "fit" or dm is None or dm.train_set is None:
            return
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
            x = x * torch.empty(x.shape[0], 1, device=x.device).uniform_(0.9, 1.1) + 0.02 * torch.randn_like(
                x
            )
        logits = self.model(x, rr)
        loss = F.cross_entropy(
            logits, y, weight=self.class_weights, label_smoothing=self.hparams.label_smoothing
        )
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, rr, y = batch
        logits = self.model(x, rr)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=False)
        self._val.append((y.cpu(), logits.argmax(1).cpu()))

    def on_validation_epoch_end(self) -> None:
        if not self._val:
            return
        y = torch.cat([a for a, _ in self._val]).numpy()
        p = torch.cat([b for _, b in self._val]).numpy()
        self._val.clear()
        m = classification_metrics(y, p)
        self.log_dict(
            {"val_acc": m["accuracy"], "val_macro_f1": m["macro_f1"], "val_weighted_f1": m["weighted_f1"]},
            prog_bar=True,
        )

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=steps, pct_start=0.2
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
