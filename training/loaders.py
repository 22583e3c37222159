"""A resumable DataLoader: the position inside the epoch is part of the checkpoint.

Order is a pure function of ``(seed, epoch)``: the sampler is a ``DistributedSampler`` (one replica when
no process group is up), whose permutation is drawn from a generator seeded with ``seed + epoch``;
Lightning calls ``set_epoch`` at every epoch start and does not replace a sampler that is already
distributed. ``ResumableDataLoader`` is ``_Stateful`` for Lightning's fit loop: its ``state_dict`` holds
the number of batches already trained in the current epoch (written by ``ResumeStateCallback``, which
knows it exactly; the loader itself runs ahead because Lightning prefetches), and after
``load_state_dict`` the next iterator skips that many batches of indices (without loading their data).
"""

from __future__ import annotations

import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

__all__ = ["ResumableDataLoader", "make_sampler", "make_loader", "TrainValLoaders"]


class _SkipFirst:
    """Batch-index sampler that drops the first ``skip`` batches of ``base``."""

    def __init__(self, base, skip: int):
        self.base, self.skip = base, skip

    def __iter__(self):
        for i, b in enumerate(self.base):
            if i >= self.skip:
                yield b

    def __len__(self) -> int:
        return max(len(self.base) - self.skip, 0)


class ResumableDataLoader(DataLoader):
    """``DataLoader`` whose epoch position survives a checkpoint (see the module docstring)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches_done = 0  # batches of the current epoch already trained (set by ResumeStateCallback)
        self._skip = 0  # batches to skip at the next iterator (set by load_state_dict)

    @property
    def _index_sampler(self):
        base = super()._index_sampler
        return _SkipFirst(base, self._skip) if self._skip else base

    def _get_iterator(self):
        it = super()._get_iterator()
        self._skip = 0  # only the first iterator after a resume skips
        return it

    def state_dict(self) -> dict:
        """Position in the epoch (batches done) and the sampler's epoch."""
        return {"batches_done": int(self.batches_done), "epoch": int(getattr(self.sampler, "epoch", 0))}

    def load_state_dict(self, state: dict) -> None:
        """Skip the ``batches_done`` batches of the restored epoch at the next iteration."""
        self._skip = int(state.get("batches_done", 0))
        if hasattr(self.sampler, "set_epoch"):
            self.sampler.set_epoch(int(state.get("epoch", 0)))


def make_sampler(dataset: Dataset, shuffle: bool, seed: int) -> DistributedSampler:
    """A ``DistributedSampler`` over the current process group (or one replica), seeded with ``seed``."""
    if dist.is_available() and dist.is_initialized():
        replicas, rank = dist.get_world_size(), dist.get_rank()
    else:
        replicas, rank = 1, 0
    return DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=shuffle, seed=seed)


def make_loader(
    dataset: Dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0, collate_fn=None
) -> ResumableDataLoader:
    """A ``ResumableDataLoader`` with a seeded distributed sampler."""
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    return ResumableDataLoader(
        dataset,
        batch_size=batch_size,
        sampler=make_sampler(dataset, shuffle, seed),
        num_workers=num_workers,
        collate_fn=collate_fn,
        persistent_workers=num_workers > 0,
    )


class TrainValLoaders:
    """Mixin for DataModules with ``train_set`` / ``val_set`` and ``batch_size``, ``seed`` (and optionally
    ``num_workers``) hyper-parameters: resumable seeded loaders; test and predict reuse the validation set."""

    def _loader(self, dataset: Dataset, shuffle: bool) -> ResumableDataLoader:
        h = self.hparams
        return make_loader(dataset, h.batch_size, shuffle, h.seed, getattr(h, "num_workers", 0))

    def train_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.train_set, True)

    def val_dataloader(self) -> ResumableDataLoader:
        return self._loader(self.val_set, False)

    def test_dataloader(self) -> ResumableDataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> ResumableDataLoader:
        return self.val_dataloader()
