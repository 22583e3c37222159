"""Word-level tokenizer of the multimodal LM and the vocabulary it is built from.

The vocabulary is the special tokens, then every word of the question and caption templates below (the texts
``evospikenet.data.multimodal`` pairs with digits and beats), sorted: :func:`default_vocab`. A model stores its
vocabulary in its config (saved with it), so a tokenizer rebuilt from a saved model matches its embeddings.
"""

from __future__ import annotations

import re

import torch

__all__ = [
    "WordTokenizer",
    "SPECIAL_TOKENS",
    "DIGIT_WORDS",
    "DIGIT_QUESTIONS",
    "DIGIT_CAPTIONS",
    "BEAT_QUESTIONS",
    "BEAT_CAPTIONS",
    "AAMI_DESCRIPTIONS",
    "tokenize_words",
    "default_vocab",
]

SPECIAL_TOKENS = ("<pad>", "<bos>", "<sep>", "<eos>", "<unk>")  # ids 0..4 of every vocabulary
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
DIGIT_QUESTIONS = (
    "what digit is this ?",
    "which number is drawn in the picture ?",
    "describe the image .",
    "what is written in this image ?",
    "caption this picture .",
)
DIGIT_CAPTIONS = (  # {w}: the digit as a word, {n}: as a numeral
    "this is a handwritten {w} .",
    "the digit {w} .",
    "a drawing of the number {n} .",
    "it shows a {n} .",
    "the number {w} .",
    "a handwritten {n} .",
)
BEAT_QUESTIONS = (
    "what kind of beat is this ?",
    "describe this heartbeat .",
    "classify the ecg beat .",
    "what does this heart signal show ?",
)
BEAT_CAPTIONS = ("this is {d} .", "{d} .", "the ecg shows {d} .", "it looks like {d} .")
AAMI_DESCRIPTIONS = (  # index = AAMI class N, S, V, F, Q
    "a normal beat",
    "a supraventricular ectopic beat",
    "a premature ventricular contraction",
    "a fusion beat",
    "a paced or unclassifiable beat",
)
_TOKEN = re.compile(r"[a-z]+|[0-9]|[?.,!]|<[a-z]+>")


def tokenize_words(text: str) -> list[str]:
    """Lower-case words, single digits and punctuation marks of ``text``."""
    return _TOKEN.findall(text.lower())


def default_vocab() -> list[str]:
    """Special tokens, then every word of the question and caption templates (sorted, deterministic)."""
    texts = [*DIGIT_QUESTIONS, *BEAT_QUESTIONS, *AAMI_DESCRIPTIONS, *DIGIT_WORDS, *"0123456789"]
    texts += [c.format(w="", n="", d="") for c in (*DIGIT_CAPTIONS, *BEAT_CAPTIONS)]
    words = sorted({w for t in texts for w in tokenize_words(t)})
    return [*SPECIAL_TOKENS, *words]


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
