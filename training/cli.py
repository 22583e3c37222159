"""``evospikenet-train``: LightningCLI over the project's modules and data modules, driven by YAML recipes.

    evospikenet-train fit --config recipes/lm/debug.yaml
    evospikenet-train fit --config recipes/lm/debug.yaml --ckpt_path last        # resume
    evospikenet-train validate|test|predict --config ... --ckpt_path path/to.ckpt
    evospikenet-train fit --config recipes/lm/debug.yaml --print_config          # resolved recipe

Defaults added to every run: ``AtomicCheckpointIO`` (no torn checkpoint after a kill) unless the recipe
sets ``trainer.plugins``, and ``ResumeStateCallback`` (RNG states and in-epoch data position in every
checkpoint). A wrong key or type in a recipe is rejected by jsonargparse before anything is built, with a
message naming the key. After a distributed run, every rank meets at a barrier and the process group is
destroyed.

Task pipelines (``make ecg``, ``make sst2``, ``make multimodal``) run recipes in process through
:func:`build` (``LightningCLI(run=False)``: the trainer, model and data module of one or more ``--config``
files and ``--key=value`` overrides, nothing run yet) and :func:`fit` (build, then ``trainer.fit``).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch.distributed as dist
from jsonargparse import DefaultHelpFormatter
from lightning.pytorch.cli import LightningCLI

from .checkpointing import ResumeStateCallback

__all__ = ["main", "run_cli", "build", "fit", "parse_with_overrides", "pipeline_parser", "EvoSpikeNetCLI"]

DESCRIPTION = """Train EvoSpikeNet models from YAML recipes (recipes/*/*.yaml) with Lightning.

subcommands: fit (train), validate, test, predict (the last three with --ckpt_path).
main options: --config FILE (repeatable: later files override earlier ones);
  --trainer.KEY=VALUE, --model.init_args.KEY=VALUE, --data.init_args.KEY=VALUE (one key);
  --ckpt_path PATH|last (resume or load a checkpoint); --print_config (the resolved recipe)."""
EXAMPLE = "example: evospikenet-train fit --config recipes/lm/debug.yaml --trainer.max_steps=100"
CKPT_EXAMPLE = "--config recipes/lm/debug.yaml --ckpt_path artifacts/runs/lm_debug/checkpoints/last.ckpt"


class _HelpFormatter(DefaultHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """jsonargparse's help, with the description and example kept as written."""


PARSER_KWARGS = {
    "description": DESCRIPTION,
    "epilog": EXAMPLE,
    "formatter_class": _HelpFormatter,
    **{
        sub: {
            "epilog": EXAMPLE if sub == "fit" else f"example: evospikenet-train {sub} {CKPT_EXAMPLE}",
            "formatter_class": _HelpFormatter,
        }
        for sub in ("fit", "validate", "test", "predict")
    },
}

TRAINER_DEFAULTS = {
    "plugins": [{"class_path": "training.checkpointing.AtomicCheckpointIO"}],
}


class EvoSpikeNetCLI(LightningCLI):
    """LightningCLI with the project's trainer defaults (see the module docstring)."""

    def _instantiate_trainer(self, config: dict, callbacks: list):
        callbacks = list(callbacks)
        if not any(isinstance(c, ResumeStateCallback) for c in (config.get("callbacks") or []) + callbacks):
            callbacks.append(ResumeStateCallback())
        return super()._instantiate_trainer(config, callbacks)


def _finish_distributed() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def run_cli(args: list[str] | None = None, run: bool = True) -> EvoSpikeNetCLI:
    """Build (and with ``run`` execute) the CLI; returns it so callers can read its trainer and model.

    ``args``: argv without the program name; None reads ``sys.argv``.
    """
    cli = EvoSpikeNetCLI(
        model_class=None,
        datamodule_class=None,
        subclass_mode_model=True,
        subclass_mode_data=True,
        trainer_defaults=TRAINER_DEFAULTS,
        save_config_kwargs={"overwrite": True},
        parser_kwargs=PARSER_KWARGS,
        args=args,
        run=run,
    )
    if run:
        _finish_distributed()
    return cli


def build(configs: Sequence[str | Path], *overrides: str) -> EvoSpikeNetCLI:
    """The trainer, model and data module of the recipe ``configs`` (merged in order, later files win) with
    ``overrides`` (``"--trainer.max_epochs=2"``), seeded by its ``seed_everything``; nothing is run."""
    if not configs:
        raise ValueError("configs must name at least one recipe file, got none")
    for c in configs:
        if not Path(c).is_file():
            raise FileNotFoundError(f"recipe {str(c)!r} does not exist")
    args = [a for c in configs for a in ("--config", str(c))] + list(overrides)
    with warnings.catch_warnings():  # the pipeline's own argv is not the recipe's
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python")
        return run_cli(args, run=False)


def fit(configs: Sequence[str | Path], *overrides: str, datamodule=None) -> tuple[EvoSpikeNetCLI, float]:
    """:func:`build`, then ``trainer.fit`` on the recipe's data module (or ``datamodule``, e.g. one whose
    data another run already loaded); returns the CLI and the seconds ``fit`` took."""
    cli = build(configs, *overrides)
    t0 = time.time()
    cli.trainer.fit(cli.model, datamodule=datamodule if datamodule is not None else cli.datamodule)
    return cli, time.time() - t0


def pipeline_parser(module: str, doc: str, example: str) -> argparse.ArgumentParser:
    """The argument parser of a task pipeline ``python -m <module>``: its docstring's first line, one example."""
    return argparse.ArgumentParser(
        prog=f"python -m {module}",
        description=doc.split("\n")[0],
        epilog=f"example: {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def parse_with_overrides(parser: argparse.ArgumentParser, argv: list[str] | None):
    """``parser``'s own arguments, and the ``--trainer.KEY=VALUE`` / ``--data.KEY=VALUE`` ones a pipeline
    passes through to its recipes (anything else is an error naming it)."""
    args, overrides = parser.parse_known_args(argv)
    bad = [o for o in overrides if not o.startswith(("--trainer.", "--data."))]
    if bad:
        parser.error(
            f"unrecognised arguments {bad}: only --trainer.KEY=VALUE and --data.KEY=VALUE pass through"
        )
    return args, overrides


def main(args: list[str] | None = None) -> int:
    """Entry point of ``evospikenet-train``: 0 after the subcommand finished.

    Failures leave as exceptions (a traceback and exit status 1) or as jsonargparse's ``SystemExit(2)``
    for a bad recipe, so a shell, a scheduler or ``torchrun`` sees them.
    """
    run_cli(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
