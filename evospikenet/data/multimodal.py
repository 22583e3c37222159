"""Image-text and beat-text pairs for the multimodal spiking LM, with the vocabulary and answer scoring.

* Digits: the 1,797 real 8x8 handwritten digits of scikit-learn (grey levels 0..16), each paired with a
  question and a caption made from its label in varied wording (``DIGIT_QUESTIONS`` x ``DIGIT_CAPTIONS``,
  the digit written as a word or a numeral). :func:`digits_split` holds out a fixed, seeded, stratified
  20 % (360 images) for evaluation.
* Beats: MIT-BIH beats (``evospikenet.data.mitdb.load_beats``) paired with a description of their AAMI class
  (``AAMI_DESCRIPTIONS``, "a premature ventricular contraction").
* User data: :func:`load_image_text_pairs` reads a folder of images with same-named ``.txt`` captions or a
  JSONL file of ``{"image": path, "text": caption}``; :func:`load_hf_image_captions` a ``datasets``
  image-caption set (online). Images are converted to grey, resized to ``size`` and scaled to 0..16.

The question and caption templates and the word vocabulary they span belong to the tokenizer
(``evospikenet.models.multimodal.tokenizer``); they are re-exported here. An answer is right when the digits (AAMI classes) it names are exactly the true one: :func:`named_digits`,
:func:`named_classes`.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from ..models.multimodal.tokenizer import (
    AAMI_DESCRIPTIONS,
    BEAT_CAPTIONS,
    BEAT_QUESTIONS,
    DIGIT_CAPTIONS,
    DIGIT_QUESTIONS,
    DIGIT_WORDS,
    default_vocab,
    tokenize_words,
)

__all__ = [
    "DIGIT_WORDS",
    "DIGIT_QUESTIONS",
    "DIGIT_CAPTIONS",
    "BEAT_QUESTIONS",
    "BEAT_CAPTIONS",
    "AAMI_DESCRIPTIONS",
    "CLASS_KEYWORDS",
    "tokenize_words",
    "default_vocab",
    "digit_caption",
    "beat_caption",
    "load_digits",
    "digits_split",
    "named_digits",
    "named_classes",
    "load_image_text_pairs",
    "load_hf_image_captions",
]

CLASS_KEYWORDS = ("normal", "supraventricular", "ventricular", "fusion", "unclassifiable")  # one per class


def digit_caption(label: int, rng: np.random.Generator) -> tuple[str, str]:
    """A random (question, caption) pair for digit ``label``."""
    q = DIGIT_QUESTIONS[rng.integers(len(DIGIT_QUESTIONS))]
    c = DIGIT_CAPTIONS[rng.integers(len(DIGIT_CAPTIONS))]
    return q, c.format(w=DIGIT_WORDS[label], n=str(label))


def beat_caption(label: int, rng: np.random.Generator) -> tuple[str, str]:
    """A random (question, description) pair for AAMI class index ``label``."""
    q = BEAT_QUESTIONS[rng.integers(len(BEAT_QUESTIONS))]
    c = BEAT_CAPTIONS[rng.integers(len(BEAT_CAPTIONS))]
    return q, c.format(d=AAMI_DESCRIPTIONS[label])


@functools.lru_cache(maxsize=1)
def _digits_cached() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits as _load

    d = _load()
    return d.images.astype(np.float32)[:, None], d.target.astype(np.int64)


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 1,797 sklearn digits: images (1797, 1, 8, 8) float32 in 0..16 and labels (1797,) int64 (copies)."""
    x, y = _digits_cached()
    return x.copy(), y.copy()


def digits_split(seed: int = 0, test_fraction: float = 0.2) -> dict:
    """Fixed, seeded, stratified split: ``{"train": (x, y), "test": (x, y)}`` (test: 360 images at 0.2)."""
    from sklearn.model_selection import train_test_split

    if not (0.0 < test_fraction < 1.0):
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction!r}")
    x, y = load_digits()
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=test_fraction, random_state=seed, stratify=y)
    return {"train": (xtr, ytr), "test": (xte, yte)}


def named_digits(text: str) -> set[int]:
    """Digits an answer names, as words or numerals."""
    out = set()
    for w in tokenize_words(text):
        if w in DIGIT_WORDS:
            out.add(DIGIT_WORDS.index(w))
        elif w.isdigit():
            out.add(int(w))
    return out


def named_classes(text: str) -> set[int]:
    """AAMI class indices an answer names (by ``CLASS_KEYWORDS``; "supraventricular" is not "ventricular")."""
    words = set(tokenize_words(text))
    return {i for i, k in enumerate(CLASS_KEYWORDS) if k in words}


def _to_grey(img, size: int) -> np.ndarray:
    from PIL import Image

    g = img.convert("L").resize((size, size), Image.BILINEAR)
    return np.asarray(g, dtype=np.float32)[None] * (16.0 / 255.0)  # (1, size, size) in 0..16


def load_image_text_pairs(path: str | Path, size: int = 8) -> tuple[np.ndarray, list[str]]:
    """Images (n, 1, size, size) in 0..16 and captions from a folder (``x.png`` + ``x.txt``) or a JSONL file.

    Raises ``FileNotFoundError`` naming the path when it, an image, or every caption is missing, and
    ``ValueError`` naming the line of a JSONL record without ``image`` / ``text``.
    """
    from PIL import Image

    p = Path(path)
    pairs: list[tuple[Path, str]] = []
    if p.is_file():
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            rec = json.loads(line)
            if not isinstance(rec, dict) or "image" not in rec or "text" not in rec:
                raise ValueError(f"{p}:{i}: each JSONL line needs 'image' and 'text', got {line[:80]!r}")
            pairs.append((p.parent / rec["image"], str(rec["text"])))
    elif p.is_dir():
        for img in sorted(p.iterdir()):
            if (
                img.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp", ".pgm")
                and img.with_suffix(".txt").is_file()
            ):
                pairs.append((img, img.with_suffix(".txt").read_text(encoding="utf-8").strip()))
    else:
        raise FileNotFoundError(f"path {str(p)!r} is neither a JSONL file nor a directory")
    if not pairs:
        raise FileNotFoundError(f"no image-caption pair found in {str(p)!r}")
    images = []
    for img, _ in pairs:
        if not img.is_file():
            raise FileNotFoundError(f"image {str(img)!r} listed in {str(p)!r} does not exist")
        with Image.open(img) as im:
            images.append(_to_grey(im, size))
    return np.stack(images), [t for _, t in pairs]


def load_hf_image_captions(
    name: str, split: str = "train", image_column: str = "image", text_column: str = "text", size: int = 8
) -> tuple[np.ndarray, list[str]]:
    """An image-caption set from the Hugging Face Hub via ``datasets`` (needs internet)."""
    from datasets import load_dataset

    ds = load_dataset(name, split=split)
    for col in (image_column, text_column):
        if col not in ds.column_names:
            raise ValueError(f"column {col!r} not in dataset {name!r} (columns: {ds.column_names})")
    return np.stack([_to_grey(r[image_column], size) for r in ds]), [str(r[text_column]) for r in ds]
