"""``evospikenet-eval``: score trained models; one subcommand per task, kept in a registry.

Adding a task is one ``register_evaluator(name, help, add_arguments, run, example)`` call:
``add_arguments(parser)`` declares its options, ``run(args) -> dict`` returns the metrics, printed as one JSON
line (the last line of stdout); ``example`` is the command line shown by ``--help``. Exit status: 0 after a
result, 2 for bad input (a ``ValueError`` of ``run``, printed on stderr, or bad arguments). This module needs
no Lightning.

``evospikenet-eval lm --model DIR --text FILE`` scores a text file with a causal LM saved by
``save_pretrained`` (tokenizer beside the weights): every token but the first is predicted once, in windows of
the model's context that overlap by one token, and it prints
``{"val_loss", "perplexity", "n_tokens", "spike_rate", "energy_per_token_j"}`` (the last two ``null`` for a
non-spiking model).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

__all__ = ["Evaluator", "EVALUATORS", "register_evaluator", "evaluate_lm", "main"]


class Evaluator(NamedTuple):
    """One ``evospikenet-eval`` subcommand."""

    help: str  # one-line description shown by --help
    add_arguments: Callable[[argparse.ArgumentParser], None]  # declares the subcommand's options
    run: Callable[[argparse.Namespace], dict]  # computes the metrics printed as JSON
    example: str  # one command line, shown by --help


EVALUATORS: dict[str, Evaluator] = {}


def register_evaluator(name: str, help: str, add_arguments, run, example: str = "") -> None:
    """Add a subcommand; raises ``ValueError`` if ``name`` is taken."""
    if name in EVALUATORS:
        raise ValueError(f"evaluator {name!r} is already registered")
    EVALUATORS[name] = Evaluator(help, add_arguments, run, example)


def evaluate_lm(model, tokenizer, text: str, batch_size: int = 16) -> dict:
    """Mean next-token loss of ``model`` on ``text``, with spike rate and energy per token if it spikes."""
    import torch
    import torch.nn.functional as F

    ids = torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
    if ids.numel() < 2:
        raise ValueError(f"text must hold at least 2 tokens, got {ids.numel()}")
    ctx = int(getattr(model.config, "context_length", None) or model.config.max_position_embeddings)
    starts = list(range(0, ids.numel() - 1, ctx - 1))
    windows = [ids[s : s + ctx] for s in starts]
    model.eval()
    total, n_tokens, spikes, neuron_steps, energy_j, n_fwd_tokens = 0.0, 0, 0.0, 0, 0.0, 0
    spiking = False
    with torch.no_grad():
        by_len: dict[int, list] = {}
        for w in windows:
            by_len.setdefault(w.numel(), []).append(w)
        for group in by_len.values():
            for i in range(0, len(group), batch_size):
                batch = torch.stack(group[i : i + batch_size])
                out = model(input_ids=batch)
                logits = out.logits[:, :-1].float()
                total += F.cross_entropy(
                    logits.reshape(-1, logits.shape[-1]), batch[:, 1:].reshape(-1), reduction="sum"
                ).item()
                n_tokens += batch[:, 1:].numel()
                stats = getattr(out, "spike_stats", None)
                if stats is not None:
                    spiking = True
                    spikes += sum(float(s.spikes) for s in stats.layers)
                    neuron_steps += sum(s.neuron_steps for s in stats.layers)
                    energy_j += stats.energy_per_token_j() * batch.numel()
                    n_fwd_tokens += batch.numel()
    loss = total / n_tokens
    return {
        "val_loss": loss,
        "perplexity": math.exp(min(loss, 700.0)),
        "n_tokens": n_tokens,
        "spike_rate": spikes / neuron_steps if spiking else None,
        "energy_per_token_j": energy_j / n_fwd_tokens if spiking else None,
    }


def _lm_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--model", required=True, help="directory written by save_pretrained (weights + tokenizer)"
    )
    p.add_argument("--text", required=True, help="UTF-8 text file to score")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")


def _run_lm(args: argparse.Namespace) -> dict:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    import evospikenet.models  # noqa: F401  (registers the spiking model with the Auto classes)

    if not Path(args.model).is_dir():
        raise ValueError(f"--model must be a directory written by save_pretrained, got {args.model!r}")
    text_path = Path(args.text)
    if not text_path.is_file():
        raise ValueError(f"--text must be a readable file, got {args.text!r}")
    model = AutoModelForCausalLM.from_pretrained(args.model).to(args.device)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    return evaluate_lm(model, tokenizer, text_path.read_text(encoding="utf-8"), args.batch_size)


register_evaluator(
    "lm",
    "score a text file with a causal language model (loss, perplexity, energy per token)",
    _lm_arguments,
    _run_lm,
    "evospikenet-eval lm --model artifacts/spiking_lm_debug --text ../shared/data/tinyshakespeare/input.txt",
)


def _register_task_evaluators() -> None:
    """The task evaluators live beside their training code; each registers one subcommand."""
    from .eval_ecg import add_arguments as ecg_args
    from .eval_ecg import run as run_ecg
    from .eval_multimodal import add_arguments as mm_args
    from .eval_multimodal import run as run_mm
    from .eval_sst2 import add_arguments as sst2_args
    from .eval_sst2 import run as run_sst2

    register_evaluator(
        "ecg",
        "score an ECG beat classifier (spiking, float twin or ResNet-18-1D) on WFDB records",
        ecg_args,
        run_ecg,
        "evospikenet-eval ecg --model artifacts/ecg/model --records 100 208",
    )
    register_evaluator(
        "sst2",
        "score an SST-2-format TSV with a sentiment classifier (accuracy, F1, energy per sentence)",
        sst2_args,
        run_sst2,
        "evospikenet-eval sst2 --model artifacts/sst2/student_distilled --tsv ../shared/data/sst2/dev.tsv",
    )
    register_evaluator(
        "multimodal",
        "score a multimodal LM's answers on held-out digits or MIT-BIH beats",
        mm_args,
        run_mm,
        "evospikenet-eval multimodal --model artifacts/multimodal/model --data digits",
    )


_register_task_evaluators()


def _plain(o):
    """JSON for numpy scalars (``.item()``) and anything else by its ``str``."""
    return o.item() if hasattr(o, "item") else str(o)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``evospikenet-eval``: 0 after printing the JSON result, 2 for bad input."""
    parser = argparse.ArgumentParser(
        prog="evospikenet-eval",
        description="Evaluate trained EvoSpikeNet models: one subcommand per task; the last stdout line is\n"
        "one JSON object of metrics. `evospikenet-eval TASK --help` lists a task's options.",
        epilog="examples:\n" + "\n".join(f"  {ev.example}" for ev in EVALUATORS.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="task", required=True, metavar="{" + ",".join(EVALUATORS) + "}")
    for name, ev in EVALUATORS.items():
        ev.add_arguments(
            sub.add_parser(
                name,
                help=ev.help,
                description=ev.help,
                epilog=f"example: {ev.example}",
                formatter_class=argparse.RawDescriptionHelpFormatter,
            )
        )
    args = parser.parse_args(argv)
    from evospikenet.runtime import retain_freed_memory

    retain_freed_memory()  # evaluation is many forward passes of one shape: reuse their freed tensors
    try:
        result = EVALUATORS[args.task].run(args)
    except ValueError as err:
        print(f"evospikenet-eval {args.task}: error: {err}", file=sys.stderr)
        return 2
    print(json.dumps(result, default=_plain))
    return 0


if __name__ == "__main__":
    sys.exit(main())
