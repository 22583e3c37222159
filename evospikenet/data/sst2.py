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

    Raises ``ValueError`` when the file is missing or has no ``sentence`` column, and, naming the file and
    line (``path:line``), for a row without the header's tab-separated fields or a label other than 0 or 1.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"path must be an SST-2 TSV file, got {str(path)!r}")
    if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    texts: list[str] = []
    labels: list[int] = []
    with open(p, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if header is None or "sentence" not in header:
            raise ValueError(f"path {str(path)!r} has no 'sentence' column in its header {header}")
        col_s, col_y = header.index("sentence"), header.index("label") if "label" in header else None
        for row in reader:
            if not row:  # a blank line
                continue
            where = f"{p}:{reader.line_num}"
            if len(row) != len(header):
                raise ValueError(
                    f"{where}: expected {len(header)} tab-separated fields ({', '.join(header)}), got "
                    f"{len(row)}: {chr(9).join(row)[:80]!r}"
                )
            lab = row[col_y].strip() if col_y is not None else ""
            if lab not in ("", "0", "1"):
                raise ValueError(f"{where}: label must be 0 or 1, got {row[col_y]!r}")
            texts.append(row[col_s])
            labels.append(int(lab) if lab else -1)
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
