"""SST-2 in its GLUE TSV form: ``sentence<TAB>label``, header first (``test.tsv``: ``index<TAB>sentence``).

``read_sst2_tsv`` returns the sentences and labels (``-1`` where the file has none); ``load_sst2`` gives
the ``train`` / ``dev`` splits of the project data directory as ``datasets.Dataset`` objects.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from .paths import dataset_path

__all__ = ["read_sst2_tsv", "load_sst2", "SPLITS"]

SPLITS = ("train", "dev", "test")


def read_sst2_tsv(path: str | os.PathLike, limit: int | None = None) -> tuple[list[str], list[int]]:
    """Sentences and integer labels of an SST-2-format TSV (header first); label ``-1`` when absent.

    Raises ``ValueError`` when the file is missing, has no ``sentence`` column, or a label is not 0/1.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"path must be an SST-2 TSV file, got {str(path)!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    texts: list[str] = []
    labels: list[int] = []
    with open(p, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        if reader.fieldnames is None or "sentence" not in reader.fieldnames:
            raise ValueError(f"path {str(path)!r} has no 'sentence' column in its header {reader.fieldnames}")
        for i, row in enumerate(reader):
            lab = row.get("label")
            if lab in (None, ""):
                y = -1
            elif lab.strip() in ("0", "1"):
                y = int(lab)
            else:
                raise ValueError(f"label on data row {i + 1} of {str(path)!r} must be 0 or 1, got {lab!r}")
            texts.append(row["sentence"])
            labels.append(y)
            if limit is not None and len(texts) >= limit:
                break
    return texts, labels


def load_sst2(split: str, data_dir: str | os.PathLike | None = None, limit: int | None = None):
    """One split (``train``, ``dev`` or ``test``) as a ``datasets.Dataset`` (``sentence``, ``label``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    import datasets

    texts, labels = read_sst2_tsv(dataset_path("sst2", data_dir) / f"{split}.tsv", limit)
    return datasets.Dataset.from_dict({"sentence": texts, "label": labels})
