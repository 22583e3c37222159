"""LightningDataModules: tiny Shakespeare, SST-2 and the scikit-learn digits (MIT-BIH: ``training.ecg``).

Every module reads the project's data directory (``data_dir`` argument, else ``EVOSPIKENET_DATA_DIR``,
else ``../shared/data``, else a ``FileNotFoundError`` that says what to do; see
``evospikenet.data.paths``); SST-2 can also come from the Hugging Face hub (``source="hub"``). Loaders are
``ResumableDataLoader``s, so a checkpoint holds the position inside the epoch.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch.utils.data import Dataset, TensorDataset

from evospikenet.data.paths import dataset_path
from evospikenet.data.sst2 import read_sst2_tsv

from .loaders import TrainValLoaders, make_loader

__all__ = [
    "TinyShakespeareDataModule",
    "SST2DataModule",
    "DigitsDataModule",
    "WindowDataset",
]


def _limit(n: int, limit: int | None, name: str) -> int:
    if limit is None:
        return n
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
        raise ValueError(f"{name} must be a positive integer or null, got {limit!r}")
    return min(n, limit)


class WindowDataset(Dataset):
    """Non-overlapping windows of ``seq_len`` tokens of a 1-D id tensor; items are LM examples."""

    def __init__(self, ids: torch.Tensor, seq_len: int, limit: int | None = None):
        if seq_len < 2 or ids.numel() < seq_len:
            raise ValueError(f"seq_len must be in [2, {ids.numel()}], got {seq_len!r}")
        self.ids, self.seq_len = ids, seq_len
        self.n = _limit(ids.numel() // seq_len, limit, "limit")

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        x = self.ids[i * self.seq_len : (i + 1) * self.seq_len]  # (L,)
        return {"input_ids": x, "labels": x.clone()}  # the model shifts labels itself


class TinyShakespeareDataModule(TrainValLoaders, pl.LightningDataModule):
    """Causal-LM windows of tiny Shakespeare (90 % train / 10 % validation by characters)."""

    def __init__(
        self,
        data_dir: str | None = None,  # data directory (None: the project rule)
        tokenizer: str = "byte",  # "byte" (257 ids) or "gpt2" (BPE from ``tokenizers/gpt2`` in the data directory)
        seq_len: int = 128,  # tokens per window
        batch_size: int = 16,  # windows per batch (per process)
        max_train_windows: int | None = None,  # cap on training windows (None: all), for debug runs
        max_val_windows: int | None = None,  # cap on validation windows (None: all)
        seed: int = 0,  # seed of the shuffling order (with the epoch)
        num_workers: int = 0,  # DataLoader worker processes
    ):
        super().__init__()
        self.save_hyperparameters()
        self.tokenizer = None

    def prepare_data(self) -> None:
        dataset_path("tinyshakespeare", self.hparams.data_dir)  # fail early with the data-directory message

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is not None:
            return
        from evospikenet.data.text import load_tiny_shakespeare, load_tokenizer

        h = self.hparams
        self.tokenizer = load_tokenizer(h.tokenizer, h.data_dir)
        train, val = load_tiny_shakespeare(self.tokenizer, h.data_dir)
        self.train_set = WindowDataset(train, h.seq_len, h.max_train_windows)
        self.val_set = WindowDataset(val, h.seq_len, h.max_val_windows)


class _Encoded(Dataset):
    def __init__(self, enc: dict, labels: list[int]):
        self.ids = torch.tensor(enc["input_ids"], dtype=torch.long)  # (N, L)
        self.mask = torch.tensor(enc["attention_mask"], dtype=torch.long)  # (N, L)
        self.labels = torch.tensor(labels, dtype=torch.long)  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"input_ids": self.ids[i], "attention_mask": self.mask[i], "labels": self.labels[i]}


class SST2DataModule(TrainValLoaders, pl.LightningDataModule):
    """GLUE SST-2 sentiment: train.tsv / dev.tsv (validation and test) / test.tsv (predict, no labels)."""

    def __init__(
        self,
        data_dir: str | None = None,  # data directory (None: the project rule)
        source: str = "auto",  # "local" (TSVs in ``<data>/sst2``), "hub" (``datasets.load_dataset("glue", "sst2")``), or "auto" (local if present, else hub)
        tokenizer: str = "byte",  # "byte" or "gpt2"
        max_len: int = 64,  # tokens per sentence (right-padded / truncated)
        batch_size: int = 32,  # sentences per batch (per process)
        max_train_samples: int | None = None,  # cap on training sentences (None: all), for debug runs
        max_val_samples: int | None = None,  # cap on dev sentences (None: all 872)
        seed: int = 0,  # shuffling seed
        num_workers: int = 0,  # DataLoader worker processes
    ):
        super().__init__()
        if source not in ("auto", "local", "hub"):
            raise ValueError(f"source must be one of ('auto', 'local', 'hub'), got {source!r}")
        self.save_hyperparameters()
        self.tokenizer = None

    def _splits(self) -> dict[str, tuple[list[str], list[int]]]:
        h = self.hparams
        local = None
        if h.source in ("auto", "local"):
            try:
                local = dataset_path("sst2", h.data_dir)
            except FileNotFoundError:
                if h.source == "local":
                    raise
        if local is not None:
            return {
                "train": read_sst2_tsv(local / "train.tsv", h.max_train_samples),
                "val": read_sst2_tsv(local / "dev.tsv", h.max_val_samples),
                "predict": read_sst2_tsv(local / "test.tsv", h.max_val_samples),
            }
        import datasets

        ds = datasets.load_dataset("glue", "sst2")
        out = {}
        for key, split, lim in (
            ("train", "train", h.max_train_samples),
            ("val", "validation", h.max_val_samples),
            ("predict", "test", h.max_val_samples),
        ):
            part = ds[split] if lim is None else ds[split].select(range(min(lim, len(ds[split]))))
            out[key] = (list(part["sentence"]), list(part["label"]))
        return out

    def setup(self, stage: str | None = None) -> None:
        if self.tokenizer is not None:
            return
        from evospikenet.data.text import load_tokenizer

        h = self.hparams
        self.tokenizer = load_tokenizer(h.tokenizer, h.data_dir)
        enc = {}
        for key, (texts, labels) in self._splits().items():
            e = self.tokenizer(texts, max_length=h.max_len, truncation=True, padding="max_length")
            enc[key] = _Encoded(e, labels)
        self.train_set, self.val_set, self.predict_set = enc["train"], enc["val"], enc["predict"]

    def predict_dataloader(self):
        h = self.hparams
        return make_loader(self.predict_set, h.batch_size, False, h.seed, h.num_workers)


class DigitsDataModule(TrainValLoaders, pl.LightningDataModule):
    """The 8x8 handwritten digits of scikit-learn (1,797 images), intensities scaled to [0, 1].

    Args:
        batch_size: images per batch (per process).
        val_fraction: held-out fraction (stratified, fixed by ``split_seed``).
        split_seed: seed of the train/held-out split.
        seed: shuffling seed.
    """

    def __init__(self, batch_size: int = 32, val_fraction: float = 0.3, split_seed: int = 0, seed: int = 0):
        super().__init__()
        if not 0.0 < val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in (0, 1), got {val_fraction!r}")
        self.save_hyperparameters()
        self.train_set = None

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is not None:
            return
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        x, y = load_digits(return_X_y=True)
        xtr, xte, ytr, yte = train_test_split(
            x / 16.0, y, test_size=self.hparams.val_fraction, random_state=self.hparams.split_seed, stratify=y
        )
        f32 = torch.float32
        self.train_set = TensorDataset(torch.tensor(xtr, dtype=f32), torch.tensor(ytr))
        self.val_set = TensorDataset(torch.tensor(xte, dtype=f32), torch.tensor(yte))
