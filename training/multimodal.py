r"""Lightning wiring of the multimodal spiking LM: ``MultiModalDataModule`` and ``MultiModalLitModule``.

The data module pairs the sklearn digits (fixed seeded stratified 20 % held out,
``evospikenet.data.multimodal.digits_split``) and, optionally, MIT-BIH beats (split within each patient by
time, ``split_by_time``) with questions and captions drawn afresh every batch from the templates of
``evospikenet.data.multimodal`` (varied wording). Every batch holds one modality (the encoders differ);
digit and beat batches are shuffled together. Validation uses fixed (seeded) wordings.

The loss is the model's: answer-token cross-entropy + ``aux_weight`` x the encoders' auxiliary label loss;
AdamW under a one-cycle schedule. Validation logs ``val_loss`` and, per modality,
``val_{digits,mitdb}_aux_acc``
(the auxiliary readout); answer accuracy is measured by ``training.eval_multimodal`` after training.
"""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from evospikenet.data.mitdb import BeatWindow, load_beats, split_by_time
from evospikenet.data.multimodal import beat_caption, digit_caption, digits_split
from evospikenet.models.multimodal import (
    MultiModalEvoSpikeNetConfig,
    MultiModalEvoSpikeNetForCausalLM,
    WordTokenizer,
)

from .registry import register_model

__all__ = ["MultiModalDataModule", "MultiModalLitModule", "build_multimodal", "shift_images"]


@register_model("multimodal_lm", "spiking_multimodal")
def build_multimodal(**cfg) -> MultiModalEvoSpikeNetForCausalLM:
    """A fresh ``MultiModalEvoSpikeNetForCausalLM`` with ``MultiModalEvoSpikeNetConfig(**cfg)``."""
    return MultiModalEvoSpikeNetForCausalLM(MultiModalEvoSpikeNetConfig(**cfg))


def shift_images(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Translate every image (B, C, H, W) by up to ``max_shift`` pixels in x and y, zero-filled."""
    if max_shift <= 0:
        return x
    B, _, H, W = x.shape
    pad = torch.nn.functional.pad(x, (max_shift,) * 4)
    d = torch.randint(0, 2 * max_shift + 1, (B, 2), generator=gen)
    return torch.stack([pad[i, :, d[i, 0] : d[i, 0] + H, d[i, 1] : d[i, 1] + W] for i in range(B)])


class _Pairs(Dataset):
    """Items ``(modality, index)``; the collate function builds the tensors and the text."""

    def __init__(self, items: list[tuple[str, int]]) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class _ModalityBatches(torch.utils.data.Sampler):
    """Batches of one modality each, shuffled per epoch (seed + epoch) when ``shuffle``."""

    def __init__(self, items, batch_size: int, shuffle: bool, seed: int, weights: dict | None = None) -> None:
        self.by_mod: dict[str, list[int]] = {}
        for i, (m, _) in enumerate(items):
            self.by_mod.setdefault(m, []).append(i)
        self.batch_size, self.shuffle, self.seed, self.epoch = batch_size, shuffle, seed, 0
        self.weights = weights or {}

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng(self.seed + self.epoch)
        out = []
        for m, idx in self.by_mod.items():
            idx = np.asarray(idx)
            n = self.weights.get(m)  # items drawn per epoch (None: each once)
            if self.shuffle:
                idx = rng.choice(idx, n, replace=True) if n else rng.permutation(idx)
            out += [idx[i : i + self.batch_size].tolist() for i in range(0, len(idx), self.batch_size)]
        if self.shuffle:
            out = [out[i] for i in rng.permutation(len(out))]
            self.epoch += 1
        return out

    def __iter__(self):
        return iter(self._batches())

    def __len__(self) -> int:
        return sum(-(-(self.weights.get(m) or len(v)) // self.batch_size) for m, v in self.by_mod.items())


class MultiModalDataModule(pl.LightningDataModule):
    """Digits (+ MIT-BIH beats) with captions; see the module docstring."""

    def __init__(
        self,
        digits: bool = True,  # use the sklearn digits
        mitdb: bool = False,  # use MIT-BIH beats
        seed: int = 0,  # seed of the digits split and of the caption / shuffle draws
        test_fraction: float = 0.2,  # held-out fraction of the digits (0.2: 360 images)
        max_train_digits: int | None = None,  # keep at most this many training digits (debug)
        shift: int = 1,  # random translation of training digits by up to this many pixels
        data_dir: str | None = None,  # WFDB directory (None: the shared data's mitdb/)
        records: list[str] | None = None,  # record names (None: every *.hea in data_dir)
        train_fraction: float = 0.8,  # beats in this leading fraction of each record train
        beat_before: int = 90,  # window samples before the R peak
        beat_after: int = 166,  # window samples from the R peak on
        downsample: int = 3,  # keep every d-th sample of the window
        max_train_beats: int | None = None,  # keep at most this many training beats (evenly spaced; debug)
        max_val_beats: int | None = None,  # keep at most this many validation beats (evenly spaced; debug)
        epoch_beats: int | None = None,  # beats drawn per epoch, class-balanced (None: each once)
        sampling_power: float = 0.5,  # draw a beat of class c with probability ~ n_c^-power
        batch_size: int = 64,  # items per training batch
        eval_batch_size: int = 256,  # items per validation batch
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        if not (digits or mitdb):
            raise ValueError("digits and mitdb are both False; enable at least one modality")
        self.window = BeatWindow(beat_before, beat_after, downsample)
        self.tokenizer: WordTokenizer | None = None
        self.ready = False

    def setup(self, stage: str | None = None) -> None:
        if self.ready:
            return
        hp = self.hparams
        self.gen = torch.Generator().manual_seed(hp.seed)
        self.rng = np.random.default_rng(hp.seed)
        self.train_items, self.val_items = [], []
        if hp.digits:
            sp = digits_split(hp.seed, hp.test_fraction)
            xtr, ytr = sp["train"]
            if hp.max_train_digits is not None:
                xtr, ytr = xtr[: hp.max_train_digits], ytr[: hp.max_train_digits]
            self.digits = {
                "train": (torch.from_numpy(xtr), torch.from_numpy(ytr)),
                "val": tuple(map(torch.from_numpy, sp["test"])),
            }
            self.train_items += [("digits", i) for i in range(len(ytr))]
            self.val_items += [("digits", i) for i in range(len(sp["test"][1]))]
        if hp.mitdb:
            train, val = split_by_time(load_beats(hp.data_dir, hp.records, self.window), hp.train_fraction)
            train, val = _cap(train, hp.max_train_beats), _cap(val, hp.max_val_beats)
            self.beats = {"train": train, "val": val}
            self.rr_mean, self.rr_std = train.rr.mean(0), train.rr.std(0) + 1e-6
            self.train_items += [("mitdb", i) for i in range(len(train))]
            self.val_items += [("mitdb", i) for i in range(len(val))]
            counts = np.bincount(train.y, minlength=5).astype(np.float64)
            self.beat_weights = np.maximum(counts[train.y], 1.0) ** (-hp.sampling_power)
        self.ready = True

    def collate(self, items, split: str, rng: np.random.Generator) -> dict:
        mod = items[0][0]
        idx = [i for _, i in items]
        if mod == "digits":
            x, y = self.digits[split]
            x, y = x[idx], y[idx]
            if split == "train":
                x = shift_images(x, self.hparams.shift, self.gen)
            pairs = [digit_caption(int(v), rng) for v in y]
            extra = {"images": x, "image_labels": y}
        else:
            b = self.beats[split]
            y = torch.from_numpy(b.y[idx])
            pairs = [beat_caption(int(v), rng) for v in y]
            extra = {
                "signals": torch.from_numpy(b.x[idx]),
                "rr": torch.from_numpy(b.rr[idx]),
                "signal_labels": y,
            }
        ids, mask, labels = self.tokenizer.batch(pairs)
        return {"input_ids": ids, "attention_mask": mask, "labels": labels, **extra}

    def _loader(self, split: str, items, batch_size: int, shuffle: bool) -> DataLoader:
        weights = None
        if shuffle and self.hparams.mitdb and self.hparams.epoch_beats:
            weights = {"mitdb": self.hparams.epoch_beats}
        sampler = _ModalityBatches(items, batch_size, shuffle, self.hparams.seed, weights)
        if weights:  # class-balanced beat draws: replace the uniform choice by the weighted one
            sampler.by_mod["mitdb"] = _weighted(sampler.by_mod["mitdb"], self.beat_weights, self.hparams)
        rng = self.rng if shuffle else np.random.default_rng(self.hparams.seed + 1)
        return DataLoader(
            _Pairs(items), batch_sampler=sampler, collate_fn=lambda b: self.collate(b, split, rng)
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.train_items, self.hparams.batch_size, True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.val_items, self.hparams.eval_batch_size, False)


def _cap(b, n):
    if n is None or len(b) <= n:
        return b
    keep = np.zeros(len(b), dtype=bool)
    keep[np.linspace(0, len(b) - 1, n).astype(int)] = True
    return b.subset(keep)


def _weighted(idx: list[int], w: np.ndarray, hp) -> list[int]:
    """Item indices repeated in proportion to the class-balancing weights (the sampled pool)."""
    rng = np.random.default_rng(hp.seed)
    p = w / w.sum()
    pick = rng.choice(len(w), size=max(hp.epoch_beats * 4, len(w)), replace=True, p=p)
    return [idx[i] for i in pick]


class MultiModalLitModule(pl.LightningModule):
    """Trains ``MultiModalEvoSpikeNetForCausalLM`` on the data module's question-answer pairs."""

    def __init__(
        self,
        model_config: dict | None = None,  # fields of MultiModalEvoSpikeNetConfig
        lr: float = 3e-3,  # peak learning rate of the one-cycle schedule
        weight_decay: float = 1e-4,  # AdamW weight decay
        pct_start: float = 0.2,  # warm-up fraction of the one-cycle schedule
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build_multimodal(**(model_config or {}))

    def setup(self, stage: str) -> None:
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        if dm is None:
            return
        dm.setup(stage)
        dm.tokenizer = self.model.tokenizer
        cfg = self.model.config
        if dm.hparams.mitdb:
            if cfg.window != dm.window.length or cfg.downsample != dm.hparams.downsample:
                raise ValueError(
                    f"model_config beat window ({cfg.beat_before}, {cfg.beat_after}, {cfg.downsample}) "
                    f"differs from the data module's ({dm.hparams.beat_before}, {dm.hparams.beat_after}, "
                    f"{dm.hparams.downsample})"
                )
            if stage == "fit":
                self.model.set_rr_stats(dm.rr_mean, dm.rr_std)

    def forward(self, **batch):
        return self.model(**batch)

    def _step(self, batch, name: str):
        out = self.model(**batch)
        self.log(f"{name}_loss", out.loss, prog_bar=True, batch_size=batch["input_ids"].shape[0])
        return out

    def training_step(self, batch, batch_idx):
        return self._step(batch, "train").loss

    def validation_step(self, batch, batch_idx):
        out = self.model(**batch, output_attentions=False)
        B = batch["input_ids"].shape[0]
        self.log("val_loss", out.loss, batch_size=B)
        key, mod = ("image_labels", "digits") if "images" in batch else ("signal_labels", "mitdb")
        enc = self.model.encode(batch.get("images"), batch.get("signals"), batch.get("rr"))
        aux = next(iter(enc.values())).aux_logits.argmax(1)
        self.log(f"val_{mod}_aux_acc", (aux == batch[key]).float().mean(), batch_size=B)

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        steps = max(int(self.trainer.estimated_stepping_batches), 1)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=steps, pct_start=self.hparams.pct_start
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
