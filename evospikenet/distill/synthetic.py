"""Synthetic data: a causal-LM teacher writes new examples from prompts; filters keep the good ones.

Pipeline: for every prompt, sample ``num_per_prompt`` continuations (``generate`` with sampling), cut each at
its first newline, then filter

* length: ``min_words <= words <= max_words``;
* duplicates: case- and whitespace-normalised text seen before (among the samples or in ``exclude``);
* teacher confidence: with a ``labeller`` (a classifier ``Teacher``), ``max softmax(z) >= min_confidence``;
  its argmax becomes the label (else the prompt's own label, else -1).

Raw samples are appended to a JSONL file (``work_file``) as they come, so an interrupted run resumes after
the last finished prompt. The result is a ``datasets.Dataset`` whose rows carry their provenance (prompt,
generator and labeller identity, seed) and whose ``info.description`` holds the run's settings and filter
counts as JSON.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

__all__ = ["SynthConfig", "generate_synthetic", "normalise"]


@dataclass
class SynthConfig:
    """Settings of one generation run."""

    num_per_prompt: int = 4  # continuations sampled per prompt
    max_new_tokens: int = 32  # tokens generated per continuation
    temperature: float = 1.0  # sampling temperature
    top_p: float = 0.95  # nucleus sampling mass
    min_words: int = 3  # shortest kept example (words)
    max_words: int = 50  # longest kept example (words)
    min_confidence: float = 0.0  # least teacher max-probability kept (0: no confidence filter)
    seed: int = 0  # torch seed of the sampling

    def __post_init__(self):
        for name in ("num_per_prompt", "max_new_tokens", "min_words", "max_words"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.max_words < self.min_words:
            raise ValueError(f"max_words must be >= min_words ({self.min_words}), got {self.max_words!r}")
        if not 0.0 <= self.min_confidence <= 1.0:
            raise ValueError(f"min_confidence must lie in [0, 1], got {self.min_confidence!r}")
        if not self.temperature > 0 or not 0 < self.top_p <= 1:
            raise ValueError(
                f"temperature must be > 0 and top_p in (0, 1], got {self.temperature!r}, {self.top_p!r}"
            )


def normalise(text: str) -> str:
    """Key of the duplicate filter: lower case, single spaces, no surrounding blanks."""
    return re.sub(r"\s+", " ", text).strip().lower()


def _read_work(path: Path | None) -> list[dict]:
    if path is None or not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut by an interruption
            break
    return rows


@torch.no_grad()
def _sample(generator, prompt: str, cfg: SynthConfig, seed: int) -> list[str]:
    tok, model = generator.tokenizer, generator.model
    enc = tok([prompt], return_tensors="pt").to(generator.device)
    torch.manual_seed(seed)
    out = model.generate(
        **enc,
        do_sample=True,
        max_new_tokens=cfg.max_new_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        num_return_sequences=cfg.num_per_prompt,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
    )  # (num_per_prompt, L + new)
    texts = tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return [t.split("\n")[0].strip() for t in texts]


def generate_synthetic(
    generator,
    prompts: list[str],
    cfg: SynthConfig | None = None,
    prompt_labels: list[int] | None = None,
    labeller=None,
    exclude: list[str] | None = None,
    work_file: str | os.PathLike | None = None,
    progress: bool = True,
):
    """Generate, filter and label examples (see the module docstring).

    Args:
        generator: a causal-LM ``Teacher`` (or any object with ``model``, ``tokenizer``, ``device``,
            ``identity``).
        prompts: generation prompts.
        cfg: ``SynthConfig``.
        prompt_labels: the label each prompt asks for (None: unknown).
        labeller: a classifier ``Teacher`` for the confidence filter and labels (None: no confidence filter).
        exclude: texts that count as seen (e.g. the real training set), so copies of them are dropped.
        work_file: JSONL file of raw samples, for resumption (None: in memory only).
        progress: ``tqdm`` bar over the prompts.

    Returns:
        ``datasets.Dataset`` with columns text, label, confidence, prompt, prompt_index, generator, labeller,
        seed.
    """
    import datasets
    from tqdm.auto import tqdm

    cfg = cfg if cfg is not None else SynthConfig()
    if not prompts:
        raise ValueError("prompts must hold at least one prompt, got an empty list")
    if prompt_labels is not None and len(prompt_labels) != len(prompts):
        raise ValueError(
            f"prompt_labels must have one label per prompt ({len(prompts)}), got {len(prompt_labels)}"
        )
    if cfg.min_confidence > 0 and labeller is None:
        raise ValueError(f"min_confidence={cfg.min_confidence} needs a labeller, got labeller=None")
    work = Path(work_file) if work_file is not None else None
    raw = _read_work(work)
    done = {r["prompt_index"] for r in raw}
    for i in tqdm(range(len(prompts)), desc="generate", disable=not progress):
        if i in done:
            continue
        rows = [{"prompt_index": i, "text": t} for t in _sample(generator, prompts[i], cfg, cfg.seed + i)]
        raw.extend(rows)
        if work is not None:
            with open(work, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
    counts = {"generated": len(raw), "length": 0, "duplicate": 0, "confidence": 0}
    seen = {normalise(t) for t in (exclude or [])}
    kept = []
    for r in sorted(raw, key=lambda r: r["prompt_index"]):
        n_words = len(r["text"].split())
        if not cfg.min_words <= n_words <= cfg.max_words:
            counts["length"] += 1
            continue
        key = normalise(r["text"])
        if key in seen:
            counts["duplicate"] += 1
            continue
        seen.add(key)
        kept.append(r)
    labels = [prompt_labels[r["prompt_index"]] if prompt_labels is not None else -1 for r in kept]
    conf = [1.0] * len(kept)
    if labeller is not None and kept:
        probs = torch.cat(
            [
                labeller.logits([r["text"] for r in kept[s : s + 64]]).softmax(-1)
                for s in range(0, len(kept), 64)
            ]
        )  # (N, C)
        conf = probs.max(-1).values.tolist()
        labels = probs.argmax(-1).tolist()
    keep = [k for k in range(len(kept)) if conf[k] >= cfg.min_confidence]
    counts["confidence"] = len(kept) - len(keep)
    counts["kept"] = len(keep)
    lab_id = labeller.identity if labeller is not None else ""
    ds = datasets.Dataset.from_dict(
        {
            "text": [kept[k]["text"] for k in keep],
            "label": [int(labels[k]) for k in keep],
            "confidence": [float(conf[k]) for k in keep],
            "prompt": [prompts[kept[k]["prompt_index"]] for k in keep],
            "prompt_index": [kept[k]["prompt_index"] for k in keep],
            "generator": [generator.identity] * len(keep),
            "labeller": [lab_id] * len(keep),
            "seed": [cfg.seed + kept[k]["prompt_index"] for k in keep],
        }
    )
    ds.info.description = json.dumps(
        {"generator": generator.identity, "labeller": lab_id, "config": asdict(cfg), "counts": counts}
    )
    return ds
