"""SST-2 in its GLUE TSV form: ``sentence<TAB>label``, header first (``test.tsv``: ``index<TAB>sentence``).

``read_sst2_tsv`` returns the sentences and labels (``-1`` where the file has none); ``load_sst2`` gives
the ``train`` / ``dev`` splits of the project data directory as ``datasets.Dataset`` objects.
``validation_split`` holds a seeded slice of the training sentences out of training, for making choices
without looking at dev; ``tuning_splits`` reads ``train.tsv`` and returns (train less the slice, the slice).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from .paths import dataset_path

__all__ = [
    "read_sst2_tsv",
    "load_sst2",
    "validation_split",
    "tuning_splits",
    "ValidationSplit",
    "SPLITS",
    "VAL_FRACTION",
    "VAL_SEED",
]

SPLITS = ("train", "dev", "test")
VAL_FRACTION = 0.1  # share of the training sentences held out for choices (about 690 sentences)
VAL_SEED = 0  # seed of the held-out slice


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


@dataclass(frozen=True)
class ValidationSplit:
    """Row indices into ``train.tsv``: ``train`` (kept for training), ``validation`` (the held-out
    sentences, one row each) and ``dropped`` (phrases that occur only inside held-out sentences)."""

    train: list[int]
    validation: list[int]
    dropped: list[int]


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _spans(words: tuple[str, ...], known: dict[str, int]) -> list[str]:
    """Every contiguous word span of ``words`` (the whole included) that is a phrase in ``known``."""
    n = len(words)
    return [s for i in range(n) for j in range(i + 1, n + 1) if (s := " ".join(words[i:j])) in known]


def _held_out(text: str, fraction: float, seed: int) -> bool:
    h = hashlib.blake2b(f"{seed}\t{text}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") < fraction * 2**64


def validation_split(
    texts: list[str], fraction: float = VAL_FRACTION, seed: int = VAL_SEED
) -> ValidationSplit:
    r"""Hold a seeded share of the training *sentences* out of training, with every phrase only they contain.

    SST-2's ``train.tsv`` holds every labelled phrase of each training sentence's parse tree, so a random
    share of its rows would leave most of a held-out phrase's parts (and the sentence around it) in
    training. GLUE's dev holds whole sentences whose trees training never saw; the slice is built the same
    way. With words compared after whitespace normalisation and :math:`p \sqsubseteq q` meaning that phrase
    :math:`p` is a contiguous word span of phrase :math:`q`:

    .. math::

        M = \{q : \nexists\, q' \ne q,\ q \sqsubseteq q'\}, \quad
        S = \{q \in M : h(\mathrm{seed}, q) < f\}, \quad
        \mathrm{train} = \{p : \exists\, q \in M \setminus S,\ p \sqsubseteq q\}

    ``M`` are the maximal phrases (the sentences; a phrase whose sentence is not in the file counts as one),
    ``h`` is BLAKE2b of the seed and the text mapped to [0, 1), ``S`` the held-out sentences (the
    validation rows, one per text). A phrase that is also part of a kept sentence (``"the film"``) stays in
    training, as it would for a dev sentence; a phrase found only inside held-out sentences is dropped.
    Membership depends on the seed and the sentence's own text only: the same on every run and machine,
    whatever the row order.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"fraction must be in (0, 1), got {fraction!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    first: dict[str, int] = {}
    norm = [" ".join(t.split()) for t in texts]
    for i, t in enumerate(norm):
        first.setdefault(t, i)
    # Longest first: a phrase inside another is reached after its container, and so is already covered.
    covered: set[str] = set()
    parts: dict[str, list[str]] = {}  # maximal phrase -> the phrases among its spans
    for t in sorted(first, key=lambda t: (-len(_words(t)), t)):
        if t in covered:
            continue
        parts[t] = _spans(_words(t), first)
        covered.update(parts[t])
    held = {t for t in parts if _held_out(t, fraction, seed)}
    kept = {p for t, ps in parts.items() if t not in held for p in ps}
    validation = sorted(first[t] for t in held)
    val_rows = set(validation)
    train = [i for i, t in enumerate(norm) if t in kept]
    dropped = [i for i, t in enumerate(norm) if t not in kept and i not in val_rows]
    return ValidationSplit(train, validation, dropped)


def tuning_splits(
    path: str | os.PathLike, fraction: float = VAL_FRACTION, seed: int = VAL_SEED
) -> tuple[tuple[list[str], list[int]], tuple[list[str], list[int]]]:
    """``(train less the slice, the slice)`` of the SST-2 ``train.tsv`` at ``path``, each as
    ``(texts, labels)`` (:func:`validation_split`); dev is not read."""
    texts, labels = read_sst2_tsv(path)
    split = validation_split(texts, fraction, seed)
    return (
        ([texts[i] for i in split.train], [labels[i] for i in split.train]),
        ([texts[i] for i in split.validation], [labels[i] for i in split.validation]),
    )
