"""Text data for the language models: tiny Shakespeare and the tokenizers (GPT-2 BPE or byte-level).

* ``load_tokenizer("gpt2")``: the GPT-2 byte-level BPE from the data directory (``tokenizers/gpt2``) through
  ``GPT2TokenizerFast``; ``load_tokenizer("byte")``: a 257-token byte-level tokenizer (ids 0..255 are the
  bytes, 256 is ``<|endoftext|>``) built with ``tokenizers`` as a ``PreTrainedTokenizerFast``;
  ``load_tokenizer("bpe1024")``: a byte-level BPE of 1,024 tokens (``<|endoftext|>`` = 0) trained with
  ``tokenizers`` on the training part of tiny Shakespeare (a few seconds, deterministic): words and word pieces
  of the play, at 2.4 characters per token. All save beside a model's weights and reload with
  ``AutoTokenizer``.
* ``load_tiny_shakespeare(tokenizer)``: token ids of ``tinyshakespeare/input.txt``, split at 90 % of the
  *characters* into train and validation (the last 10 % is validation).
  ``load_tiny_shakespeare(tokenizer, fractions=LM_SPLIT)``: the same text cut by position into consecutive
  parts of the given fractions, here train / validation / test = 80 / 10 / 10 % (``benchmarks/lm.py``).
* ``position_split(n, fractions)``: the boundaries of those parts over ``n`` characters.
* ``random_batches``: random (B, L) windows of a 1-D id tensor for language-model training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch

from .paths import dataset_path

__all__ = [
    "TOKENIZERS",
    "LM_SPLIT",
    "load_tokenizer",
    "byte_tokenizer",
    "shakespeare_bpe",
    "load_tiny_shakespeare",
    "position_split",
    "random_batches",
]

TOKENIZERS = ("byte", "gpt2", "bpe1024")
LM_SPLIT = (0.8, 0.1, 0.1)  # train / validation / test fractions of the language-model benchmark
EOT = "<|endoftext|>"


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from the 256 bytes to printable unicode symbols."""
    bs = (
        list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def byte_tokenizer():
    """A byte-level tokenizer: id = byte value, plus ``<|endoftext|>`` = 256 (``PreTrainedTokenizerFast``)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {ch: b for b, ch in _bytes_to_unicode().items()}  # byte-level symbol -> byte value
    vocab[EOT] = 256
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=10**9,
    )
    return fast


def shakespeare_bpe(data_dir: str | os.PathLike | None = None, vocab_size: int = 1024, train_fraction=0.9):
    """A byte-level BPE of ``vocab_size`` tokens trained on the first ``train_fraction`` of tiny Shakespeare."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = (dataset_path("tinyshakespeare", data_dir) / "input.txt").read_text(encoding="utf-8")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOT],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(
        text[: int(len(text) * train_fraction)].splitlines(keepends=True), trainer=trainer
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=EOT,
        eos_token=EOT,
        unk_token=EOT,
        pad_token=EOT,
        model_max_length=10**9,
    )


def load_tokenizer(kind: str = "gpt2", data_dir: str | os.PathLike | None = None):
    """``"gpt2"``: GPT-2 BPE from ``<data>/tokenizers/gpt2``; ``"byte"``: ``byte_tokenizer()``; ``"bpe1024"``:
    ``shakespeare_bpe()``."""
    if kind == "byte":
        return byte_tokenizer()
    if kind == "bpe1024":
        return shakespeare_bpe(data_dir)
    if kind != "gpt2":
        raise ValueError(f"kind must be one of {TOKENIZERS}, got {kind!r}")
    from transformers import GPT2TokenizerFast

    tok = GPT2TokenizerFast.from_pretrained(str(dataset_path("tokenizers/gpt2", data_dir)))
    tok.model_max_length = 10**9  # the model checks its own context length
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def position_split(n: int, fractions: Sequence[float]) -> list[tuple[int, int]]:
    """Consecutive ``[start, end)`` ranges over ``range(n)``, part ``i`` of length about ``n f_i``.

    The boundaries are ``c_i = floor(n (f_1 + ... + f_i))`` with ``c_0 = 0`` and the last set to ``n``, so the
    parts are disjoint, in order and cover all ``n`` positions. Every fraction must be positive and they must
    sum to 1.
    """
    fracs = [float(f) for f in fractions]
    if len(fracs) < 2 or any(not f > 0.0 for f in fracs) or abs(sum(fracs) - 1.0) > 1e-9:
        raise ValueError(
            f"fractions must be two or more positive numbers summing to 1, got {tuple(fractions)!r}"
        )
    cuts, acc = [0], 0.0
    for f in fracs[:-1]:
        acc += f
        cuts.append(int(n * acc))
    cuts.append(n)
    parts = list(zip(cuts[:-1], cuts[1:]))
    if any(end <= start for start, end in parts):
        raise ValueError(
            f"{n} positions are too few to split into fractions {tuple(fracs)!r}: a part is empty"
        )
    return parts


def load_tiny_shakespeare(
    tokenizer,
    data_dir: str | os.PathLike | None = None,
    train_fraction: float = 0.9,
    *,
    fractions: Sequence[float] | None = None,
) -> tuple[torch.Tensor, ...]:
    """Token ids (int64, 1-D) of tiny Shakespeare, cut by character position.

    Without ``fractions``: ``(train, validation)``, the first ``train_fraction`` of the text and the rest.
    With ``fractions`` (e.g. ``LM_SPLIT`` = 80 / 10 / 10 %): one tensor per fraction, consecutive parts of the
    text in order (``position_split``), each tokenized on its own; ``train_fraction`` is then ignored.
    """
    if fractions is None:
        if not 0.0 < train_fraction < 1.0:
            raise ValueError(f"train_fraction must lie in (0, 1), got {train_fraction!r}")
        fractions = (train_fraction, 1.0 - train_fraction)
    text = (dataset_path("tinyshakespeare", data_dir) / "input.txt").read_text(encoding="utf-8")

    def enc(s: str) -> torch.Tensor:
        return torch.tensor(tokenizer(s, add_special_tokens=False)["input_ids"], dtype=torch.long)

    return tuple(enc(text[start:end]) for start, end in position_split(len(text), fractions))


def random_batches(ids: torch.Tensor, batch_size: int, length: int, generator: torch.Generator | None = None):
    """One random batch of windows ``(batch_size, length)`` from the 1-D ``ids``."""
    if ids.ndim != 1 or ids.numel() < length + 1:
        raise ValueError(
            f"ids must be 1-D with more than length={length} tokens, got shape {tuple(ids.shape)}"
        )
    start = torch.randint(0, ids.numel() - length, (batch_size,), generator=generator)
    return torch.stack([ids[s : s + length] for s in start.tolist()])
