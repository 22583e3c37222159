"""Soft labels: a teacher's logits on a text set, cached on disk as Parquet shards read by ``datasets``.

Layout under ``cache_dir``::

    <teacher name, sanitised>/<revision>/<digest of the texts>/
        meta.json               teacher name, revision, number of texts, number of classes
        shard_00000.parquet     columns: index, text, teacher_logits (list of C floats)
        ...

Each shard is written to a temporary name and renamed, so an interrupted run leaves only whole shards; the
next call skips them (resume) and a finished set is never recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

__all__ = ["soft_label_dir", "label_texts", "load_soft_labels", "texts_digest"]


def texts_digest(texts: list[str]) -> str:
    """SHA-256 (16 hex digits) of the texts in order: a different text set gets a different cache entry."""
    h = hashlib.sha256()
    for t in texts:
        h.update(t.encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()[:16]


def _safe(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_")[-80:] or "teacher"


def soft_label_dir(cache_dir: str | os.PathLike, teacher_name: str, revision: str, texts: list[str]) -> Path:
    """Cache folder of one (teacher name, revision, text set)."""
    return Path(cache_dir) / _safe(teacher_name) / _safe(revision) / texts_digest(texts)


def _shards(d: Path) -> list[Path]:
    return sorted(d.glob("shard_*.parquet"))


def load_soft_labels(directory: str | os.PathLike):
    """The cached shards of one folder as a ``datasets.Dataset`` (index, text, teacher_logits), in order."""
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    d = Path(directory)
    files = _shards(d)
    if not files:
        raise ValueError(f"directory {str(d)!r} holds no soft-label shards")
    table = pa.concat_tables([pq.read_table(f) for f in files])
    return datasets.Dataset(table.sort_by("index"))


def label_texts(
    teacher,
    texts: list[str],
    cache_dir: str | os.PathLike,
    shard_size: int = 2048,
    progress: bool = True,
    max_shards: int | None = None,
):
    """Teacher logits for ``texts``, computed once and cached (see the module docstring).

    Args:
        teacher: a ``Teacher`` (``identity``-bearing object with ``name``, ``revision``, ``logits(texts)``,
            ``batch_size``).
        texts: the text set, in order (row ``i`` of the result is ``texts[i]``).
        cache_dir: root of the cache.
        shard_size: texts per Parquet shard (the unit of resumption).
        progress: show a ``tqdm`` bar over the batches still to compute.
        max_shards: stop after computing this many new shards (simulates an interruption; None: all).

    Returns:
        ``datasets.Dataset`` with columns ``index``, ``text``, ``teacher_logits``; ``None`` if ``max_shards``
        stopped the run before every shard existed.
    """
    import datasets
    from tqdm.auto import tqdm

    if not texts:
        raise ValueError("texts must hold at least one text, got an empty list")
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size!r}")
    d = soft_label_dir(cache_dir, teacher.name, teacher.revision, texts)
    d.mkdir(parents=True, exist_ok=True)
    meta = {
        "teacher": teacher.name,
        "revision": teacher.revision,
        "n_texts": len(texts),
        "shard_size": shard_size,
    }
    meta_path = d / "meta.json"
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if old.get("shard_size") != shard_size:
            raise ValueError(f"shard_size must match the cached {old.get('shard_size')}, got {shard_size}")
    else:
        meta_path.write_text(json.dumps(meta, indent=1))
    starts = list(range(0, len(texts), shard_size))
    todo = [s for s in starts if not (d / f"shard_{s // shard_size:05d}.parquet").is_file()]
    n_batches = sum(-(-min(shard_size, len(texts) - s) // teacher.batch_size) for s in todo)
    bar = tqdm(total=n_batches, desc=f"soft labels {_safe(teacher.name)}", disable=not progress or not todo)
    for k, s in enumerate(todo):
        if max_shards is not None and k >= max_shards:
            bar.close()
            return None
        chunk = texts[s : s + shard_size]
        # Batches of similar length pad little: label in order of length, store in the original order.
        order = sorted(range(len(chunk)), key=lambda i: len(chunk[i]))
        rows: list = [None] * len(chunk)
        for b in range(0, len(chunk), teacher.batch_size):
            idx = order[b : b + teacher.batch_size]
            for i, z in zip(idx, teacher.logits([chunk[i] for i in idx]).tolist()):
                rows[i] = z
            bar.update(1)
        part = datasets.Dataset.from_dict(
            {"index": list(range(s, s + len(chunk))), "text": chunk, "teacher_logits": rows}
        )
        final = d / f"shard_{s // shard_size:05d}.parquet"
        tmp = final.with_suffix(".tmp")
        part.to_parquet(str(tmp))
        os.replace(tmp, final)
    bar.close()
    return load_soft_labels(d)
