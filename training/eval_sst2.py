r"""``evospikenet-eval sst2``: score a saved sentiment classifier on an SST-2-format TSV.

    evospikenet-eval sst2 --model artifacts/sst2/student_distilled --tsv /path/to/sst2/dev.tsv

Every row (``sentence<TAB>label``, header first) is scored once, sentences grouped by token length so nothing
is padded and every spike counts. The last stdout line is one JSON object::

    {"n", "accuracy", "f1", "spike_rate", "energy_per_sentence_j", "bert_base_energy_per_sentence_j"}

``f1`` is the F1 of the positive class (torchmetrics' ``binary_f1_score``; 0 when nothing is positive).
Energies come from ``evospikenet.energy`` (compute only), summed over each sentence's tokens: a spiking
model's synaptic operations at ``E_AC`` 0.9 pJ, its dense MACs (the TAS encoder's float work, the readout
head) at ``E_MAC`` 4.6 pJ and its LIF state updates (one per neuron and time step, fired or not) at
``E_UPDATE`` 6.4 pJ, from the ``spike_stats`` of the forward pass. BERT-base runs the same sentences at the
same token lengths ``L``, as dense MACs (12 layers, d = 768, FFN 3072):

.. math::

    \mathrm{MACs}(L) = 12\,(4 d^2 L + 2 \cdot 4 d^2 L + 2 L^2 d) + d^2 + 2d

(Q, K, V, O projections, the FFN, ``QK^T`` and ``AV``, pooler and head: about 85 M MACs per token, the
usual ~110 M-parameter model less its embedding tables). A float model scored here (the teacher, a BERT
config; the student's float twin, a GPT-2 config) is counted the same way from its own sizes
(``dense_macs``: causal attention counts the ``L (L + 1) / 2`` pairs it needs, GPT-2 has no pooler) and
reports ``null`` for ``spike_rate``; a model of any other kind reports ``null`` for the energy too.

``add_arguments(parser)`` and ``run(args) -> dict`` plug into the ``evospikenet-eval`` registry.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from evospikenet.energy import HOROWITZ_45NM, EnergyModel

__all__ = [
    "add_arguments",
    "run",
    "evaluate_sst2",
    "bert_base_macs",
    "transformer_macs",
    "dense_macs",
]


def transformer_macs(
    length: int, layers: int, d: int, ffn: int, causal: bool = False, pooler: bool = True, n_labels: int = 2
) -> int:
    """Dense MACs of a Transformer classifier over ``length`` tokens: per layer ``4 d^2 L + 2 d ffn L`` and
    ``2 d P`` for ``QK^T`` and ``AV`` over ``P = L^2`` token pairs (``L (L + 1) / 2`` when ``causal``); then
    the pooler ``d^2`` (BERT) and the head ``n_labels d`` on one token."""
    if not isinstance(length, int) or length < 1:
        raise ValueError(f"length must be a positive integer, got {length!r}")
    pairs = length * (length + 1) // 2 if causal else length * length
    per_layer = 4 * d * d * length + 2 * d * ffn * length + 2 * pairs * d
    return layers * per_layer + (d * d if pooler else 0) + n_labels * d


def bert_base_macs(length: int, layers: int = 12, d: int = 768, ffn: int = 3072) -> int:
    """Dense MACs of one BERT-base forward pass over ``length`` tokens (see the module docstring)."""
    return transformer_macs(length, layers, d, ffn)


def dense_macs(config, length: int) -> int | None:
    """MACs of a float ``transformers`` classifier from its config: BERT-style (``num_hidden_layers``,
    ``hidden_size``, ``intermediate_size``; bidirectional, pooler) or GPT-2 (``n_layer``, ``n_embd``,
    ``n_inner`` or 4 ``n_embd``; causal, no pooler); ``None`` for any other config."""
    n_labels = int(getattr(config, "num_labels", 2))
    if getattr(config, "model_type", None) == "gpt2":
        d = int(config.n_embd)
        ffn = int(config.n_inner or 4 * d)
        return transformer_macs(length, int(config.n_layer), d, ffn, True, False, n_labels)
    if all(hasattr(config, k) for k in ("num_hidden_layers", "hidden_size", "intermediate_size")):
        d = int(config.hidden_size)
        return transformer_macs(
            length, int(config.num_hidden_layers), d, int(config.intermediate_size), n_labels=n_labels
        )
    return None


@torch.no_grad()
def evaluate_sst2(
    model,
    tokenizer,
    texts: list[str],
    labels: list[int],
    batch_size: int = 64,
    max_length: int | None = None,
    energy: EnergyModel = HOROWITZ_45NM,
) -> dict:
    """Accuracy, F1, spike rate and energy per sentence of ``model`` on labelled texts (module docstring)."""
    from torchmetrics.functional.classification import binary_f1_score

    if not texts:
        raise ValueError("texts must hold at least one sentence, got none")
    if any(y not in (0, 1) for y in labels):
        raise ValueError("labels must all be 0 or 1 (a TSV without labels cannot be scored)")
    ctx = getattr(model.config, "context_length", None) or getattr(
        model.config, "max_position_embeddings", 512
    )
    max_length = min(max_length or ctx, ctx)
    ids = [tokenizer(t, truncation=True, max_length=max_length)["input_ids"] for t in texts]
    by_len: dict[int, list[int]] = {}
    for i, x in enumerate(ids):
        by_len.setdefault(len(x), []).append(i)
    model.eval()
    dev = next(model.parameters()).device
    pred = [0] * len(texts)
    spikes, steps, energy_j, spiking = 0.0, 0.0, 0.0, False
    for _, rows in sorted(by_len.items()):
        for s in range(0, len(rows), batch_size):
            chunk = rows[s : s + batch_size]
            x = torch.tensor([ids[i] for i in chunk], dtype=torch.long, device=dev)  # (B, L)
            out = model(input_ids=x, attention_mask=torch.ones_like(x))
            for i, p in zip(chunk, out.logits.argmax(-1).tolist()):
                pred[i] = int(p)
            stats = getattr(out, "spike_stats", None)
            if stats is not None:
                spiking = True
                spikes += sum(float(layer.spikes) for layer in stats.layers)
                steps += sum(layer.neuron_steps for layer in stats.layers)
                energy_j += energy.report(stats.op_counter()).compute_j
    n = len(texts)
    bert_j = sum(energy.compute_j(macs=bert_base_macs(len(x))) for x in ids) / n
    counted = spiking or dense_macs(model.config, 1) is not None
    if not spiking and counted:  # a float model: its own dense MACs at each sentence's length
        energy_j = sum(energy.compute_j(macs=dense_macs(model.config, len(x))) for x in ids)
    return {
        "n": n,
        "accuracy": sum(int(p == y) for p, y in zip(pred, labels)) / n,
        "f1": float(binary_f1_score(torch.tensor(pred), torch.tensor(labels))),
        "spike_rate": spikes / steps if spiking else None,
        "energy_per_sentence_j": energy_j / n if counted else None,
        "bert_base_energy_per_sentence_j": bert_j,
    }


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, help="directory written by save_pretrained (weights + tokenizer)"
    )
    p.add_argument("--tsv", required=True, help="SST-2-format TSV: sentence<TAB>label, header line first")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--max-length", type=int, default=None, help="token cap (default: the model's context)")
    p.add_argument("--device", default="cpu")


def run(args: argparse.Namespace) -> dict:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    import evospikenet.models  # noqa: F401  (registers the spiking model with the Auto classes)
    from evospikenet.data.sst2 import read_sst2_tsv

    if not Path(args.model).is_dir():
        raise ValueError(f"--model must be a directory written by save_pretrained, got {args.model!r}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size!r}")
    texts, labels = read_sst2_tsv(args.tsv)
    model = AutoModelForSequenceClassification.from_pretrained(args.model).to(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    return evaluate_sst2(model, tokenizer, texts, labels, args.batch_size, args.max_length)
