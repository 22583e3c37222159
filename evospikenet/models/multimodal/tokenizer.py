"""Word-level tokenizer of the multimodal LM; its vocabulary lives in the model config (saved with it)."""

from __future__ import annotations

import torch

from ...data.multimodal import tokenize_words
from .config import SPECIAL_TOKENS

__all__ = ["WordTokenizer"]


class WordTokenizer:
    """``prompt("what digit is this ?") -> [<bos>, what, digit, is, this, ?, <sep>]``; unknown -> <unk>."""

    def __init__(self, vocab: list[str]) -> None:
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.pad_id, self.bos_id, self.sep_id, self.eos_id, self.unk_id = range(len(SPECIAL_TOKENS))

    def __len__(self) -> int:
        return len(self.vocab)

    def words(self, text: str) -> list[int]:
        """Ids of the words of ``text`` (no special tokens)."""
        return [self.index.get(w, self.unk_id) for w in tokenize_words(text)]

    def prompt(self, question: str) -> list[int]:
        """``<bos> question <sep>``: the part a user gives; the answer follows."""
        return [self.bos_id, *self.words(question), self.sep_id]

    def example(self, question: str, answer: str) -> tuple[list[int], list[int]]:
        """Ids ``<bos> q <sep> a <eos>`` and labels (-100 except on the answer and <eos>)."""
        p, a = self.prompt(question), [*self.words(answer), self.eos_id]
        return p + a, [-100] * len(p) + a

    def batch(self, pairs: list[tuple[str, str]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Right-padded ``input_ids``, ``attention_mask``, ``labels`` (B, L_max) of (q, a) pairs."""
        rows = [self.example(q, a) for q, a in pairs]
        n = max(len(r[0]) for r in rows)
        ids = torch.full((len(rows), n), self.pad_id, dtype=torch.long)
        labels = torch.full((len(rows), n), -100, dtype=torch.long)
        mask = torch.zeros((len(rows), n), dtype=torch.long)
        for i, (x, y) in enumerate(rows):
            ids[i, : len(x)], labels[i, : len(y)], mask[i, : len(x)] = torch.tensor(x), torch.tensor(y), 1
        return ids, mask, labels

    def decode(self, ids) -> str:
        """Text of ``ids`` up to the first <eos>, special tokens dropped, no space before punctuation."""
        out = []
        for i in [int(v) for v in ids]:
            if i == self.eos_id:
                break
            if 0 <= i < len(self.vocab) and self.vocab[i] not in SPECIAL_TOKENS:
                out.append(self.vocab[i])
        text = " ".join(out)
        for p in "?.,!":
            text = text.replace(f" {p}", p)
        return text
