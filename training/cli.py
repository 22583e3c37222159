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
"""

from __future__ import annotations

import torch.distributed as dist
from lightning.pytorch.cli import LightningCLI

from .checkpointing import ResumeStateCallback

__all__ = ["main", "run_cli", "EvoSpikeNetCLI"]

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
        args=args,
        run=run,
    )
    _finish_distributed()
    return cli


def main(args: list[str] | None = None) -> int:
    """Entry point of ``evospikenet-train``: 0 after the subcommand finished.

    Failures leave as exceptions (a traceback and exit status 1) or as jsonargparse's ``SystemExit(2)``
    for a bad recipe, so a shell, a scheduler or ``torchrun`` sees them.
    """
    run_cli(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
