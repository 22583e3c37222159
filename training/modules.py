"""LightningModules that wrap the project's models (looked up in ``training.registry``, never copied).

* ``CausalLMModule``: language-model pre-training, ``loss = model(input_ids, labels=...).loss``.
* ``SequenceClassificationModule``: SST-2 and friends, logs accuracy.
* ``STDPDigitsModule``: unsupervised STDP + homeostasis on ``PlasticDigitsSNN`` and a linear readout
  trained by gradient descent on its spike counts (manual optimisation: STDP changes the network's
  buffers without gradients, the readout's optimiser steps every batch).

Each module exposes ``spike_report()`` (per-layer rates and an ``OpCounter`` of the last training batch,
read by ``SpikeEnergyCallback``) and ``export(dir)`` (read by ``SavePretrainedCallback``).
"""

from __future__ import annotations

import functools
import math
import os
from pathlib import Path

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import nn

from evospikenet.energy import OpCounter

from .registry import build_model

__all__ = [
    "CausalLMModule",
    "SequenceClassificationModule",
    "STDPDigitsModule",
    "HFModelModule",
    "lr_factor",
    "LR_SCHEDULES",
]


LR_SCHEDULES = ("constant", "cosine")


def lr_factor(step: int, warmup: int, total: int) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup`` steps, then constant (``total`` 0) or a
    cosine from 1 to 0 at step ``total``."""
    w = min(1.0, (step + 1) / warmup) if warmup else 1.0
    if total <= 0:
        return w
    return w * 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / total)))


class HFModelModule(pl.LightningModule):
    """Shared shell of the ``transformers`` models: optimiser, warm-up schedule, spike stats, export.

    Args:
        model: registry name of the model (``training.registry.available_models(task)``).
        model_config: keyword arguments of the model's config (e.g. ``SpikingEvoSpikeNetConfig``).
        lr: AdamW learning rate.
        weight_decay: AdamW weight decay.
        betas: AdamW betas.
        warmup_steps: linear warm-up steps of the learning rate (0: none).
        lr_schedule: after the warm-up, "constant", or "cosine": ``lr * (1 + cos(pi * step / total)) / 2``
            down to 0 at the trainer's last step.
    """

    task = ""

    def __init__(
        self,
        model: str = "spiking_lm",
        model_config: dict | None = None,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.95),
        warmup_steps: int = 0,
        lr_schedule: str = "constant",
    ):
        super().__init__()
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps!r}")
        if lr_schedule not in LR_SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
        self.save_hyperparameters()
        self.model = build_model(self.task, model, dict(model_config or {}))
        self._last_stats = None

    def forward(self, **batch):
        return self.model(**batch)

    def _step(self, batch: dict, stage: str):
        out = self.model(**batch)
        bs = batch["input_ids"].shape[0]
        self.log(f"{stage}_loss", out.loss, prog_bar=True, batch_size=bs, sync_dist=stage != "train")
        stats = getattr(out, "spike_stats", None)
        if stats is not None:
            self.log(
                f"{stage}_spike_rate",
                float(stats.mean_rate().detach()),
                batch_size=bs,
                sync_dist=stage != "train",
            )
            if stage == "train":
                self._last_stats = stats
        return out

    def training_step(self, batch: dict, batch_idx: int):
        return self._step(batch, "train").loss

    def validation_step(self, batch: dict, batch_idx: int):
        self._step(batch, "val")

    def test_step(self, batch: dict, batch_idx: int):
        self._step(batch, "test")

    def predict_step(self, batch: dict, batch_idx: int):
        batch = {k: v for k, v in batch.items() if k != "labels"}
        return self.model(**batch).logits.argmax(-1)

    def configure_optimizers(self):
        h = self.hparams
        decay = [p for n, p in self.named_parameters() if p.ndim >= 2]
        no_decay = [p for n, p in self.named_parameters() if p.ndim < 2]
        groups = [
            {"params": decay, "weight_decay": h.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        opt = torch.optim.AdamW(groups, lr=h.lr, betas=tuple(h.betas))
        cosine = h.get("lr_schedule", "constant") == "cosine"
        if h.warmup_steps == 0 and not cosine:
            return opt
        total = max(1, int(self.trainer.estimated_stepping_batches)) if cosine else 0
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, functools.partial(lr_factor, warmup=h.warmup_steps, total=total)
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def spike_report(self) -> tuple[dict[str, float], OpCounter] | None:
        """Per-layer firing rates and op counts of the last training batch (None for a non-spiking model)."""
        if self._last_stats is None:
            return None
        return self._last_stats.layer_rates(), self._last_stats.op_counter()

    def export(self, directory: str | os.PathLike) -> Path:
        """``save_pretrained`` of the model (and the datamodule's tokenizer, when there is one)."""
        out = Path(directory)
        self.model.save_pretrained(str(out))
        dm = getattr(self.trainer, "datamodule", None) if self._trainer is not None else None
        tok = getattr(dm, "tokenizer", None)
        if tok is not None:
            tok.save_pretrained(str(out))
        return out


class CausalLMModule(HFModelModule):
    """Causal language-model pre-training (batches ``{"input_ids", "labels"}``)."""

    task = "causal_lm"


class SequenceClassificationModule(HFModelModule):
    """Sequence classification (batches ``{"input_ids", "attention_mask", "labels"}``); logs accuracy."""

    task = "seq_cls"

    def _step(self, batch: dict, stage: str):
        out = super()._step(batch, stage)
        acc = (out.logits.argmax(-1) == batch["labels"]).float().mean()
        self.log(
            f"{stage}_acc",
            acc,
            prog_bar=True,
            batch_size=batch["labels"].shape[0],
            sync_dist=stage != "train",
        )
        return out


class STDPDigitsModule(pl.LightningModule):
    """Unsupervised STDP features plus a trained linear readout (batches ``(x, y)``, ``x`` in [0, 1]).

    For ``stdp_epochs`` epochs every training batch runs STDP (and homeostasis) on the network; the
    readout ``Linear(n_exc, n_classes)`` is trained with Adam on the detached spike counts in every epoch.
    ``network_config["plastic"] = False`` freezes the plastic weights at their random start (the control).

    Args:
        network_config: keyword arguments of ``PlasticDigitsSNN`` (``n_exc``, ``time_steps``, ``plastic``).
        n_classes: readout classes.
        stdp_epochs: epochs with STDP on (the rest train the readout only).
        lr: Adam learning rate of the readout.
        feature_scale: spike counts / T are multiplied by this before the readout.
        seed: seed of the Bernoulli input spikes.
    """

    def __init__(
        self,
        network_config: dict | None = None,
        n_classes: int = 10,
        stdp_epochs: int = 1,
        lr: float = 0.05,
        feature_scale: float = 10.0,
        seed: int = 0,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        self.net = build_model("stdp", "plastic_digits", dict(network_config or {}))
        self.readout = nn.Linear(self.net.n_exc, n_classes)
        self._last = None

    def features(
        self, x: torch.Tensor, learn: bool = False, counter: OpCounter | None = None
    ) -> torch.Tensor:
        """Spike counts / T (B, n_exc), scaled; STDP runs when ``learn``; ``counter`` gets the ops."""
        with torch.no_grad():
            return self.net(x, learn=learn, counter=counter) * self.hparams.feature_scale

    def training_step(self, batch, batch_idx: int):
        x, y = batch
        learn = self.current_epoch < self.hparams.stdp_epochs
        counter = OpCounter()
        feats = self.features(x, learn=learn, counter=counter)  # (B, n_exc)
        self._last = (x.detach(), feats.detach() / self.hparams.feature_scale, counter)
        loss = F.cross_entropy(self.readout(feats), y)
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        opt.step()
        self.log("train_loss", loss, prog_bar=True, batch_size=len(y))
        return loss

    def _eval(self, batch, stage: str):
        x, y = batch
        logits = self.readout(self.features(x))
        self.log(f"{stage}_loss", F.cross_entropy(logits, y), batch_size=len(y), sync_dist=True)
        self.log(
            f"{stage}_acc",
            (logits.argmax(-1) == y).float().mean(),
            prog_bar=True,
            batch_size=len(y),
            sync_dist=True,
        )

    def validation_step(self, batch, batch_idx: int):
        self._eval(batch, "val")

    def test_step(self, batch, batch_idx: int):
        self._eval(batch, "test")

    def predict_step(self, batch, batch_idx: int):
        return self.readout(self.features(batch[0])).argmax(-1)

    def configure_optimizers(self):
        return torch.optim.Adam(self.readout.parameters(), lr=self.hparams.lr)

    def spike_report(self) -> tuple[dict[str, float], OpCounter] | None:
        """Rates of the input (expected: ``x * max_rate``) and excitatory layers, and the ops of the last
        training batch counted from the spikes the network drew (SOPs: every input spike times the synapses
        of its CSR row; one update per excitatory neuron and step)."""
        if self._last is None:
            return None
        x, rate, counter = self._last
        in_rate = float((x * self.net.max_rate).clamp(0, 1).mean())
        return {"input": in_rate, "exc": float(rate.mean())}, counter

    def export(self, directory: str | os.PathLike) -> Path:
        """State dict (safetensors) and hyper-parameters of the network and readout."""
        import json

        from safetensors.torch import save_file

        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(out / "model.safetensors"))
        (out / "config.json").write_text(json.dumps(dict(self.hparams), indent=2, default=str))
        return out
