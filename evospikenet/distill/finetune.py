r"""Teacher fine-tuning within CPU limits, and the student's start from the teacher's token embeddings.

``finetune_classifier`` turns an encoder directory (e.g. all-MiniLM-L6-v2) into a sequence classifier: the
embeddings and the lower layers stay frozen, the top ``train_layers`` layers, the pooler and a new head are
trained with AdamW for at most ``max_steps`` steps (cross-entropy), and the result is saved with its
tokenizer and ``teacher_metrics.json`` (dev accuracy). A finished directory is reused, never retrained.

``project_embeddings`` maps the teacher's (V, E) token embeddings to the student's width by PCA:

.. math::

    W' = (W - \bar W)\, V_{:, :d}\; \cdot \frac{\sigma}{\mathrm{std}((W - \bar W) V_{:, :d})}

(``V`` the right singular vectors of the centred matrix; ``sigma`` the student's ``embed_init_std``).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import torch

__all__ = ["finetune_classifier", "project_embeddings", "accuracy_of"]


def project_embeddings(weight: torch.Tensor, d_model: int, std: float = 1.0) -> torch.Tensor:
    """(V, E) -> (V, d_model): top principal components (d_model <= E), else a random projection."""
    if weight.ndim != 2:
        raise ValueError(f"weight must be a (V, E) matrix, got shape {tuple(weight.shape)}")
    if not isinstance(d_model, int) or d_model < 1:
        raise ValueError(f"d_model must be a positive integer, got {d_model!r}")
    w = weight.detach().float()
    w = w - w.mean(0, keepdim=True)  # (V, E)
    if d_model <= w.shape[1]:
        _, _, vh = torch.linalg.svd(w, full_matrices=False)  # vh: (E, E)
        out = w @ vh[:d_model].T  # (V, d)
    else:
        g = torch.Generator().manual_seed(0)
        out = w @ (torch.randn(w.shape[1], d_model, generator=g) / math.sqrt(w.shape[1]))  # (V, d)
    return out * (std / out.std().clamp_min(1e-12))


def accuracy_of(
    model, tokenizer, texts: list[str], labels: list[int], batch_size: int = 128, max_length: int = 64
):
    """Accuracy of a ``transformers`` classifier on labelled texts."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(
                texts[s : s + batch_size],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(model.device)
            pred = model(**enc).logits.argmax(-1).cpu()
            correct += int((pred == torch.tensor(labels[s : s + batch_size])).sum())
    return correct / len(texts)


def finetune_classifier(
    base_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    train: tuple[list[str], list[int]],
    dev: tuple[list[str], list[int]],
    train_layers: int = 2,
    max_steps: int = 800,
    batch_size: int = 32,
    lr: float = 1e-4,
    head_lr: float = 1e-3,
    max_length: int = 64,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    """Fine-tune the top of an encoder as a 2-class classifier; returns ``{"dev_accuracy", "steps", ...}``."""
    from tqdm.auto import tqdm
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    out = Path(out_dir)
    metrics_path = out / "teacher_metrics.json"
    if metrics_path.is_file() and (out / "config.json").is_file():
        return json.loads(metrics_path.read_text())
    if max_steps < 1 or train_layers < 0:
        raise ValueError(f"max_steps must be >= 1 and train_layers >= 0, got {max_steps!r}, {train_layers!r}")
    torch.manual_seed(seed)
    n_labels = max(max(train[1]), max(dev[1])) + 1
    # base_dir is a local directory: never ask the Hub (without touching the process environment).
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base_dir), num_labels=n_labels, local_files_only=True
    )
    tok = AutoTokenizer.from_pretrained(str(base_dir), local_files_only=True)
    base = getattr(model, model.base_model_prefix)
    layers = base.encoder.layer
    if train_layers > len(layers):
        raise ValueError(f"train_layers must be <= {len(layers)}, got {train_layers}")
    for p in model.parameters():
        p.requires_grad_(False)
    body = [p for layer in layers[len(layers) - train_layers :] for p in layer.parameters()]
    head = [p for n, p in model.named_parameters() if "pooler" in n or "classifier" in n]
    for p in body + head:
        p.requires_grad_(True)
    opt = torch.optim.AdamW([{"params": body, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / 50) * max(0.0, 1 - s / max_steps)
    )
    texts, labels = train
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(texts), generator=g)
    model.train()
    for step in tqdm(range(max_steps), desc="teacher fine-tune", disable=not progress):
        idx = order[(torch.arange(batch_size) + step * batch_size) % len(texts)].tolist()
        enc = tok(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        loss = model(**enc, labels=torch.tensor([labels[i] for i in idx])).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    acc = accuracy_of(model, tok, dev[0], dev[1], max_length=max_length)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    tok.save_pretrained(str(out))
    metrics = {
        "dev_accuracy": acc,
        "steps": max_steps,
        "train_layers": train_layers,
        "batch_size": batch_size,
        "base": str(base_dir),
    }
    metrics_path.write_text(json.dumps(metrics, indent=1))
    return metrics
