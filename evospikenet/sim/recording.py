"""Spike files of a simulation run, streamed to disk in chunks and read back in chunks.

A run directory holds ``run.json`` (what ran: populations with their first global id and size, ``dt_ms``,
the number of steps, the result figures) and ``spikes/rank<r>.bin``, one file per rank: little-endian int32
records ``(step, gid)`` in the order they were emitted (ascending step). A spike in step ``s`` (the update from
``s dt`` to ``(s + 1) dt``, presimulation included, step 0 starting at t = 0) has time ``(s + 1) dt``, NEST's
convention. No file is ever held whole in memory: the writer buffers ``buffer_records`` records, readers map
the files and go through them ``chunk_records`` at a time.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

__all__ = ["RECORD", "SpikeWriter", "spike_files", "iter_spikes", "load_spikes", "read_run"]

RECORD = np.dtype([("step", "<i4"), ("gid", "<i4")])


class SpikeWriter:
    """Appends ``(step, gid)`` records to one rank's file.

    ``keep_records``: when resuming, the file is first cut to that many records (what the checkpoint saw), so
    the spikes after the checkpoint are written once.
    """

    def __init__(self, path: str | Path, buffer_records: int = 1 << 16, keep_records: int | None = None):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if keep_records is None:
            self._f = open(self.path, "wb")
            self.records = 0
        else:
            have = self.path.stat().st_size // RECORD.itemsize if self.path.exists() else 0
            if have < keep_records:
                raise ValueError(f"{self.path} holds {have} spikes, the checkpoint expects {keep_records}")
            self._f = open(self.path, "r+b")
            self._f.truncate(keep_records * RECORD.itemsize)
            self._f.seek(0, os.SEEK_END)
            self.records = keep_records
        self._buf = np.empty(buffer_records, RECORD)
        self._n = 0

    def append(self, steps, gids) -> None:
        """Queue records (any int arrays of one length; torch tensors are read without copying)."""
        steps, gids = np.asarray(steps), np.asarray(gids)
        if steps.shape != gids.shape:
            raise ValueError(f"steps {steps.shape} and gids {gids.shape} differ in shape")
        at = 0
        while at < len(steps):
            take = min(len(steps) - at, len(self._buf) - self._n)
            self._buf["step"][self._n : self._n + take] = steps[at : at + take]
            self._buf["gid"][self._n : self._n + take] = gids[at : at + take]
            self._n += take
            at += take
            if self._n == len(self._buf):
                self.flush()

    def flush(self) -> int:
        """Write the buffer out; returns the number of records in the file."""
        if self._n:
            self._buf[: self._n].tofile(self._f)
            self.records += self._n
            self._n = 0
        self._f.flush()
        return self.records

    def close(self) -> int:
        n = self.flush()
        self._f.close()
        return n


def spike_files(run_dir: str | Path) -> list[Path]:
    """The rank files of a run, in rank order."""
    files = sorted((Path(run_dir) / "spikes").glob("rank*.bin"))
    if not files:
        raise FileNotFoundError(
            f"no spike files under {Path(run_dir) / 'spikes'} (was the run made with --record?)"
        )
    return files


def iter_spikes(run_dir: str | Path, chunk_records: int = 1 << 22) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(steps, gids)`` int32 arrays, ``chunk_records`` at a time, file after file (not globally sorted)."""
    for path in spike_files(run_dir):
        if path.stat().st_size % RECORD.itemsize:
            raise ValueError(
                f"{path} is cut mid-record ({path.stat().st_size} bytes): the run did not end cleanly"
            )
        if path.stat().st_size == 0:
            continue
        data = np.memmap(path, RECORD, mode="r")
        for at in range(0, len(data), chunk_records):
            part = data[at : at + chunk_records]
            yield np.array(part["step"]), np.array(part["gid"])


def load_spikes(
    run_dir: str | Path,
    step_start: int = 0,
    step_stop: int | None = None,
    gid_filter: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """All spikes with ``step_start <= step < step_stop`` (and, with ``gid_filter`` (bool per gid), of the
    chosen neurons), sorted by (step, gid)."""
    steps, gids = [], []
    for s, g in iter_spikes(run_dir):
        keep = s >= step_start
        if step_stop is not None:
            keep &= s < step_stop
        if gid_filter is not None:
            keep &= gid_filter[g]
        steps.append(s[keep])
        gids.append(g[keep])
    s = np.concatenate(steps) if steps else np.empty(0, np.int32)
    g = np.concatenate(gids) if gids else np.empty(0, np.int32)
    order = np.lexsort((g, s))
    return s[order], g[order]


def read_run(run_dir: str | Path) -> dict:
    """``run.json`` of a run directory."""
    path = Path(run_dir) / "run.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: not a run directory of evospikenet-sim")
    return json.loads(path.read_text())
