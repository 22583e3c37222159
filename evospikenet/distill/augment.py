r"""Data augmentation for distillation: perturbed copies of the training texts, labelled by the teacher.

A small student distilled on a fixed training set learns the teacher's answers on those texts by heart
(the SST-2 student scored 91 % on long training phrases and 82 % on dev). Tang et al. (2019, "Distilling
task-specific knowledge from BERT into simple neural networks") give it more of the teacher's function to
match with cheap rule-based perturbations, which the teacher then labels: the labels follow the perturbed
text, so a replaced sentiment word changes the target instead of making it wrong.

For every text with at least ``min_words`` words, ``copies`` variants are made; each word independently is

* replaced by the mask token with probability ``p_mask`` (the teacher's ``[MASK]``), or else
* replaced by a word drawn from the corpus's unigram distribution (a uniformly random word position of the
  whole text set) with probability ``p_replace``,
* and otherwise kept.

Variants equal to an original or to an earlier variant are dropped, so the result never duplicates a row.
The draw is a function of ``seed`` alone, so the same settings give the same texts and the teacher's cached
labels (keyed by a digest of the texts) are found again.

Measured on SST-2 (docs/sst2.md): two copies of every phrase of at least 10 words (46,918 more rows) moved
the spiking student's dev accuracy from 82.45 % to 82.68 % at 2.4x the training time, so ``make sst2`` does
not use it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["AugmentConfig", "augment_texts"]


@dataclass
class AugmentConfig:
    """Settings of the rule-based augmentation."""

    copies: int = 2  # variants made of every eligible text (0: none)
    min_words: int = 10  # only texts with at least this many whitespace-separated words are perturbed
    p_mask: float = 0.1  # per-word probability of becoming the mask token
    p_replace: float = 0.1  # per-word probability of becoming a random corpus word (unigram frequency)
    mask_token: str = "[MASK]"  # the teacher tokenizer's mask token
    seed: int = 0  # seed of the draw

    def __post_init__(self):
        for name in ("copies", "min_words"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 0:
                raise ValueError(f"{name} must be an integer >= 0, got {v!r}")
        for name in ("p_mask", "p_replace"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {v!r}")
        if self.p_mask + self.p_replace > 1.0:
            raise ValueError(f"p_mask + p_replace must be <= 1, got {self.p_mask + self.p_replace!r}")
        if self.copies and self.p_mask + self.p_replace == 0.0:
            raise ValueError("p_mask + p_replace must be > 0 when copies > 0 (nothing would change)")


def augment_texts(texts: list[str], config: AugmentConfig) -> tuple[list[str], list[int]]:
    """Perturbed variants of ``texts`` (module docstring): returns ``(variants, source index of each)``."""
    rng = random.Random(config.seed)
    words = [t.split() for t in texts]
    corpus = [w for ws in words for w in ws]  # every word position: sampling it is unigram sampling
    if config.copies and not corpus:
        raise ValueError("texts hold no words to augment")
    seen = {" ".join(ws) for ws in words}  # whitespace-normalised: "a b " and "a b" are one text
    out, src = [], []
    for i, ws in enumerate(words):
        if len(ws) < config.min_words:
            continue
        for _ in range(config.copies):
            new = []
            for w in ws:
                r = rng.random()
                if r < config.p_mask:
                    new.append(config.mask_token)
                elif r < config.p_mask + config.p_replace:
                    new.append(corpus[rng.randrange(len(corpus))])
                else:
                    new.append(w)
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                out.append(text)
                src.append(i)
    return out, src
