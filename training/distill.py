r"""Lightning wiring of the distillation: a classification module with the soft-label loss, and SST-2 data
with cached teacher logits.

``DistillSequenceClassificationModule`` extends ``training.modules.SequenceClassificationModule``: training
batches that carry ``teacher_logits`` (B, C) are scored with

.. math::

    L = \alpha \tau^2 \mathrm{KL}(\mathrm{softmax}(z_t/\tau) \| \mathrm{softmax}(z_s/\tau))
        + (1-\alpha) \mathrm{CE}(z_s, y) \; [+ \text{AEG penalty}]

(``evospikenet.distill.distillation_loss``); validation keeps plain cross-entropy and accuracy. With
``init_embeddings`` (a teacher directory) the student's token embeddings start from the teacher's, projected
to ``d_model`` by PCA: its input embedding table (``init_embeddings_kind="input"``) or its output for each
token alone (``"static"``, ``evospikenet.distill.static_token_embeddings``). With ``init_blocks`` (a
BERT-style teacher directory of the student's width) the blocks and embeddings start from the teacher's
layers instead (``evospikenet.distill.init_blocks_from_bert``).

``SST2DistillDataModule`` reads the SST-2 TSVs, tokenises them with any Hugging Face tokenizer (``"minilm"``:
the teacher's), and, given a ``teacher``, attaches its cached soft labels to every training phrase
(``evospikenet.distill.label_texts``: computed once, resumable).
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import Dataset, default_collate

from evospikenet._validate import check_positive, check_probability
from evospikenet.distill import (
    EMBEDDING_KINDS,
    DistillParams,
    distillation_loss,
    init_blocks_from_bert,
    load_teacher_embeddings,
    project_embeddings,
    resolve_tokenizer_dir,
)

from .loaders import TrainValLoaders, make_loader
from .modules import SequenceClassificationModule

__all__ = ["DistillSequenceClassificationModule", "SST2DistillDataModule", "LengthBuckets", "trim_padding"]


class DistillSequenceClassificationModule(SequenceClassificationModule):
    """Sequence classification trained on soft teacher labels mixed with the hard ones.

    Args (``**kwargs`` are those of ``HFModelModule``: ``model``, ``model_config``, ``lr``, ...):
        temperature: distillation temperature tau (> 0).
        alpha: weight of the soft term (0: hard labels only, the from-scratch control).
        init_embeddings: teacher directory (or "minilm") whose token embeddings initialise the student's.
        init_embeddings_kind: "input" (the teacher's input table) or "static" (its output per token).
        init_blocks: BERT-style teacher directory (or "minilm") whose layers and embeddings initialise the
            student's blocks and embeddings (same width, heads and MLP size; excludes ``init_embeddings``).
        init_blocks_layers: the teacher layer for each student block (default: the first ``n_layers``).
        feature_teacher: ``transformers`` encoder directory (or "minilm") whose per-token hidden states the
            student's blocks learn to carry (``evospikenet.distill.hidden_state_loss``; the teacher runs on
            every training batch, frozen, and is not saved with the student). The student reads the
            teacher's token ids; its layers are the spiking LM's blocks or a float model's layers.
        feature_layers: the teacher's hidden-state index for each student block (0: its embedding output;
            default: ``default_layer_map``, evenly spaced and ending at its last layer).
        feature_weight: weight ``beta`` of the feature term: ``L + beta L_feat``.
    """

    def __init__(
        self,
        temperature: float = 2.0,
        alpha: float = 0.5,
        init_embeddings: str | None = None,
        init_embeddings_kind: str = "input",
        init_blocks: str | None = None,
        init_blocks_layers: list[int] | None = None,
        feature_teacher: str | None = None,
        feature_layers: list[int] | None = None,
        feature_weight: float = 1.0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        check_probability("alpha", alpha)
        check_positive("temperature", temperature)
        check_positive("feature_weight", feature_weight)
        if init_embeddings_kind not in EMBEDDING_KINDS:
            raise ValueError(
                f"init_embeddings_kind must be one of {EMBEDDING_KINDS}, got {init_embeddings_kind!r}"
            )
        if init_blocks and init_embeddings:
            raise ValueError(
                "init_blocks sets the embeddings too: give init_blocks or init_embeddings, not both"
            )
        self.distill_params = DistillParams(temperature=temperature, alpha=alpha)
        if init_blocks:
            from transformers import AutoModel

            teacher = AutoModel.from_pretrained(resolve_tokenizer_dir(init_blocks))
            init_blocks_from_bert(self.model, teacher, init_blocks_layers)
        if init_embeddings:
            emb = self.model.get_input_embeddings()
            w = load_teacher_embeddings(init_embeddings, init_embeddings_kind)  # (V, E)
            if w.shape[0] != emb.weight.shape[0]:
                raise ValueError(
                    f"init_embeddings vocabulary ({w.shape[0]}) must equal the student's vocab_size "
                    f"({emb.weight.shape[0]})"
                )
            std = float(getattr(self.model.config, "embed_init_std", 1.0))
            with torch.no_grad():
                emb.weight.copy_(project_embeddings(w, emb.weight.shape[1], std))
        self._features = None
        if feature_teacher:
            from .distill_features import FeatureTeacher

            self._features = FeatureTeacher(self, feature_teacher, feature_layers)

    def _step(self, batch: dict, stage: str):
        teacher = batch.get("teacher_logits")
        inputs = {k: v for k, v in batch.items() if k != "teacher_logits"}
        if teacher is None or stage != "train":
            return super()._step(inputs, stage)
        feats = self._features
        out = self.model(
            input_ids=inputs["input_ids"],
            attention_mask=inputs.get("attention_mask"),
            **(feats.forward_kwargs if feats is not None else {}),
        )
        loss = distillation_loss(
            out.logits, teacher.to(out.logits.dtype), inputs.get("labels"), self.distill_params
        )
        if feats is not None:
            feat = feats.loss(out, inputs["input_ids"], inputs.get("attention_mask"))
            self.log("train_feature_loss", feat, batch_size=inputs["input_ids"].shape[0])
            loss = loss + self.hparams.feature_weight * feat
        cfg = self.model.config
        rate = getattr(out, "spike_rate", None)  # None for a float student (a registered gpt2, say)
        if getattr(cfg, "aeg_weight", 0) > 0 and rate is not None:
            loss = loss + cfg.aeg_weight * torch.relu(rate - cfg.aeg_target_rate)
        out.loss = loss
        bs = inputs["input_ids"].shape[0]
        acc = (out.logits.argmax(-1) == inputs["labels"]).float().mean()
        self.log("train_loss", loss, prog_bar=True, batch_size=bs)
        self.log("train_acc", acc, prog_bar=True, batch_size=bs)
        stats = getattr(out, "spike_stats", None)
        if stats is not None:
            self.log("train_spike_rate", float(stats.mean_rate().detach()), batch_size=bs)
            self._last_stats = stats
        return out


class _Rows(Dataset):
    def __init__(self, enc: dict, labels: list[int], teacher: torch.Tensor | None):
        self.ids = torch.tensor(enc["input_ids"], dtype=torch.long)  # (N, L)
        self.mask = torch.tensor(enc["attention_mask"], dtype=torch.long)  # (N, L)
        self.labels = torch.tensor(labels, dtype=torch.long)  # (N,)
        self.teacher = teacher  # (N, C) or None

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        row = {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}
        if self.teacher is not None:
            row["teacher_logits"] = self.teacher[i]
        return row


def trim_padding(batch: dict) -> dict:
    """Cut the right-padding columns that no row of the batch uses (exact: padding is on the right)."""
    n = int(batch["attention_mask"].sum(1).max())
    return {k: (v[:, :n] if k in ("input_ids", "attention_mask") else v) for k, v in batch.items()}


class LengthBuckets(Dataset):
    """Whole batches of rows of similar length (item i is batch i, already collated and trimmed).

    The rows are shuffled once with ``seed``, cut into chunks of ``50 * batch_size``, sorted by length
    inside each chunk and cut into batches, so a batch pads to about its own length instead of ``max_len``
    (SST-2 phrases average 13 WordPiece tokens). The loader's seeded sampler then shuffles the batches every
    epoch, which keeps the order a function of ``(seed, epoch)`` and the position resumable.
    """

    def __init__(self, rows: Dataset, batch_size: int, seed: int):
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(len(rows), generator=g)
        lengths = rows.mask.sum(1)  # (N,)
        chunk = 50 * batch_size
        self.batches = []
        for c in range(0, len(order), chunk):
            idx = order[c : c + chunk]
            idx = idx[torch.argsort(lengths[idx], stable=True)]
            for b in range(0, len(idx), batch_size):
                self.batches.append(idx[b : b + batch_size])
        self.rows = rows

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> dict:
        r, idx = self.rows, self.batches[i]
        batch = {"input_ids": r.ids[idx], "attention_mask": r.mask[idx], "labels": r.labels[idx]}
        if r.teacher is not None:
            batch["teacher_logits"] = r.teacher[idx]
        return trim_padding(batch)


def _first(items: list):
    return items[0]


class SST2DistillDataModule(TrainValLoaders, pl.LightningDataModule):
    """SST-2 train/dev with a Hugging Face tokenizer and, optionally, cached teacher soft labels."""

    def __init__(
        self,
        data_dir: str | None = None,  # data directory (None: the project rule, ``evospikenet.data.paths``)
        tokenizer: str = "minilm",  # tokenizer directory or repo id, or "minilm" (the teacher's WordPiece)
        max_len: int = 48,  # tokens per sentence (right-padded / truncated)
        batch_size: int = 64,  # sentences per batch
        max_train_samples: int | None = None,  # cap on training phrases (None: all)
        max_val_samples: int | None = None,  # cap on dev sentences (None: all 872)
        teacher: str
        | None = None,  # classifier directory whose logits become soft labels (None: hard labels only).
        soft_label_cache: str = "artifacts/sst2/soft_labels",  # root of the soft-label cache
        teacher_batch_size: int = 128,  # texts per teacher forward call
        seed: int = 0,  # shuffling seed
        num_workers: int = 0,  # DataLoader worker processes
        bucket: bool = True,  # train on length-bucketed batches (``LengthBuckets``), each padded only to its longest row
        augment_copies: int = 0,  # perturbed variants of every training phrase of at least ``augment_min_words`` words, labelled by the teacher (``evospikenet.distill.augment_texts``; 0: none; needs ``teacher``). Their hard label is the teacher's argmax: the perturbation may have changed the sentiment
        augment_min_words: int = 10,  # shortest phrase that is augmented (words)
        augment_p_mask: float = 0.1,  # per-word probability of the tokenizer's mask token in a variant
        augment_p_replace: float = 0.1,  # per-word probability of a random corpus word in a variant
        tuning: bool = False,  # train on train.tsv less a held-out slice of its sentences and validate on the slice, not dev (``evospikenet.data.sst2.tuning_splits``)
    ):
        super().__init__()
        from evospikenet.distill import AugmentConfig

        self.augment = AugmentConfig(
            augment_copies, augment_min_words, augment_p_mask, augment_p_replace, seed=seed
        )  # checks the values now, not after the teacher has run
        if augment_copies and not teacher:
            raise ValueError("augment_copies > 0 needs a teacher to label the variants (data.teacher)")
        self.save_hyperparameters()
        self.tokenizer = None

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is not None:
            return
        from transformers import AutoTokenizer

        from evospikenet.data.paths import dataset_path
        from evospikenet.data.sst2 import read_sst2_tsv, tuning_splits

        h = self.hparams
        root = dataset_path("sst2", h.data_dir)
        self.tokenizer = AutoTokenizer.from_pretrained(resolve_tokenizer_dir(h.tokenizer))
        if h.tuning:
            train, dev = tuning_splits(root / "train.tsv")
            train, dev = (
                tuple(c[: h.max_train_samples] for c in train),
                tuple(c[: h.max_val_samples] for c in dev),
            )
        else:
            train = read_sst2_tsv(root / "train.tsv", h.max_train_samples)
            dev = read_sst2_tsv(root / "dev.tsv", h.max_val_samples)
        soft = None
        if h.teacher:
            from evospikenet.distill import Teacher, label_texts

            teacher = Teacher(
                resolve_tokenizer_dir(h.teacher), kind="classifier", batch_size=h.teacher_batch_size
            )
            ds = label_texts(teacher, train[0], h.soft_label_cache)
            soft = torch.tensor(ds["teacher_logits"], dtype=torch.float32)  # (N, C)
            if h.augment_copies:
                from dataclasses import replace

                from evospikenet.distill import augment_texts

                cfg = replace(self.augment, mask_token=self.tokenizer.mask_token or self.augment.mask_token)
                variants, _ = augment_texts(train[0], cfg)
                extra = label_texts(teacher, variants, h.soft_label_cache)
                z = torch.tensor(extra["teacher_logits"], dtype=torch.float32)  # (M, C)
                train = (train[0] + variants, train[1] + z.argmax(-1).tolist())
                soft = torch.cat([soft, z])

        def enc(texts):
            return self.tokenizer(texts, max_length=h.max_len, truncation=True, padding="max_length")

        self.train_set = _Rows(enc(train[0]), train[1], soft)
        self.val_set = _Rows(enc(dev[0]), dev[1], None)

    def train_dataloader(self):
        h = self.hparams
        if not h.bucket:
            return super().train_dataloader()
        batches = LengthBuckets(self.train_set, h.batch_size, h.seed)
        return make_loader(batches, 1, True, h.seed, h.num_workers, collate_fn=_first)

    def val_dataloader(self):
        h = self.hparams
        return make_loader(self.val_set, h.batch_size, False, h.seed, h.num_workers, collate_fn=_collate_trim)


def _collate_trim(rows: list[dict]) -> dict:
    return trim_padding(default_collate(rows))
