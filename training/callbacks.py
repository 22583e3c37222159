"""Training callbacks: spike rate and energy, structural plasticity, ``save_pretrained`` export, a text sample.

``RichProgressBar`` is Lightning's own (``lightning.pytorch.callbacks.RichProgressBar``); the recipes add it.
"""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.utilities import rank_zero_only

from evospikenet.energy import EnergyModel

__all__ = [
    "SpikeEnergyCallback",
    "StructuralPlasticityCallback",
    "SavePretrainedCallback",
    "SampleTextCallback",
]


def _check_every(every: int) -> int:
    if not isinstance(every, int) or isinstance(every, bool) or every < 1:
        raise ValueError(f"every_n_steps must be a positive integer, got {every!r}")
    return every


class SpikeEnergyCallback(pl.Callback):
    """Every ``every_n_steps`` training steps, log each layer's firing rate, the SOPs and the joules.

    Reads ``pl_module.spike_report() -> (rates: {layer: rate}, OpCounter)`` of the last batch and turns
    the counts into energy with ``EnergyModel`` (compute: ``SOPs * E_AC + MACs * E_MAC + updates *
    E_UPDATE``, Horowitz 45 nm by default, ``evospikenet.energy``). Logged keys: ``spike_rate/<layer>``,
    ``energy/sops``, ``energy/macs``, ``energy/updates``, ``energy/step_j`` and
    ``energy/step_with_memory_j``; ``last`` keeps the last values as a dict.

    Args:
        every_n_steps: logging period in optimiser steps.
        e_sop_pj: energy of one accumulate in pJ.
        e_mac_pj: energy of one multiply-accumulate in pJ.
        e_update_pj: energy of one neuron-state update (one neuron, one step) in pJ.
    """

    def __init__(
        self, every_n_steps: int = 10, e_sop_pj: float = 0.9, e_mac_pj: float = 4.6, e_update_pj: float = 6.4
    ):
        self.every = _check_every(every_n_steps)
        self.energy = EnergyModel(
            e_sop_j=e_sop_pj * 1e-12, e_mac_j=e_mac_pj * 1e-12, e_update_j=e_update_pj * 1e-12
        )
        self.last: dict[str, float] = {}

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step % self.every != 0 or not hasattr(pl_module, "spike_report"):
            return
        report = pl_module.spike_report()
        if report is None:
            return
        rates, counter = report
        rep = self.energy.report(counter)
        values = {f"spike_rate/{k}": float(v) for k, v in rates.items()}
        values.update(
            {
                "energy/sops": rep.sops,
                "energy/macs": rep.macs,
                "energy/updates": rep.updates,
                "energy/step_j": rep.compute_j,
                "energy/step_with_memory_j": rep.with_memory_j,
            }
        )
        self.last = values
        pl_module.log_dict(values, on_step=True, on_epoch=False)


class StructuralPlasticityCallback(pl.Callback):
    """Every ``every_n_steps`` steps, apply the buffered synapse edits of a projection in one batch.

    Wraps ``evospikenet.plasticity.StructuralPlasticity`` (pruning below ``prune_below``, ``grow`` random
    new synapses of weight ``w_init``, plus any edits queued through ``rule.request_add/remove``) on
    ``pl_module.<network_attr>.projections[projection]``; ``stats`` accumulates the counts.

    Args:
        projection: projection name in the network's ``projections``.
        every_n_steps: period in optimiser steps.
        prune_below: prune synapses with ``|w|`` under this (null: no pruning).
        grow: random synapses proposed per apply.
        w_init: weight of grown synapses.
        network_attr: attribute of the LightningModule holding the network.
        seed: seed of the growth draws.
    """

    def __init__(
        self,
        projection: str = "in_exc",
        every_n_steps: int = 50,
        prune_below: float | None = 0.01,
        grow: int = 0,
        w_init: float = 0.05,
        network_attr: str = "net",
        seed: int = 0,
    ):
        from evospikenet.plasticity import StructuralPlasticity

        self.every, self.network_attr = _check_every(every_n_steps), network_attr
        self.rule = StructuralPlasticity(
            projection, every=1, prune_below=prune_below, grow=grow, w_init=w_init, seed=seed
        )
        self.stats: dict[str, int] = {}

    def on_fit_start(self, trainer, pl_module) -> None:
        net = getattr(pl_module, self.network_attr, None)
        if net is None:
            raise ValueError(f"network_attr must name an attribute of the module, got {self.network_attr!r}")
        self.rule.bind(net)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if trainer.global_step == 0 or trainer.global_step % self.every != 0:
            return
        stats = self.rule.apply()
        self.stats = dict(self.rule.stats)
        pl_module.log_dict(
            {f"structural/{k}": float(v) for k, v in stats.items()}, on_step=True, on_epoch=False
        )


class SavePretrainedCallback(pl.Callback):
    """At the end of ``fit``, rank 0 calls ``pl_module.export(dirpath)`` (``save_pretrained`` for HF models).

    Args:
        dirpath: export directory (created).
    """

    def __init__(self, dirpath: str = "artifacts/model"):
        self.dirpath = dirpath

    @rank_zero_only
    def _export(self, pl_module) -> None:
        pl_module.export(self.dirpath)

    def on_fit_end(self, trainer, pl_module) -> None:
        if not hasattr(pl_module, "export"):
            raise ValueError(f"{type(pl_module).__name__} has no export(dir) method")
        self._export(pl_module)


class SampleTextCallback(pl.Callback):
    """At the end of ``fit``, rank 0 generates text from the trained causal LM and prints it (and keeps it in
    ``sample``): the prompt, then ``max_new_tokens`` tokens drawn with ``temperature`` and ``top_k``.

    Args:
        prompt: text the sample continues.
        max_new_tokens: tokens generated.
        temperature: sampling temperature.
        top_k: sample among the k most likely tokens.
        seed: seed of the draw.
    """

    def __init__(
        self,
        prompt: str = "ROMEO:\n",
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int = 40,
        seed: int = 0,
    ):
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.temperature, self.top_k, self.seed = temperature, top_k, seed
        self.sample: str | None = None

    @rank_zero_only
    def on_fit_end(self, trainer, pl_module) -> None:
        import torch

        tok = getattr(trainer.datamodule, "tokenizer", None)
        if tok is None or not hasattr(pl_module.model, "generate"):
            raise ValueError(
                "SampleTextCallback needs a causal LM with generate() and a data module tokenizer"
            )
        model = pl_module.model.eval()
        ids = torch.tensor([tok(self.prompt, add_special_tokens=False)["input_ids"]], device=pl_module.device)
        from transformers.utils import logging as hf_logging

        torch.manual_seed(self.seed)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # generate() crops the prefix to the context: no warning needed
        with torch.no_grad():
            out = model.generate(
                ids,
                max_new_tokens=self.max_new_tokens,
                do_sample=True,
                temperature=self.temperature,
                top_k=self.top_k,
                pad_token_id=tok.pad_token_id,
            )
        hf_logging.set_verbosity(verbosity)
        self.sample = tok.decode(out[0], skip_special_tokens=True)
        print(
            f"--- sample ({self.max_new_tokens} tokens after {self.prompt!r}) ---\n{self.sample}\n---",
            flush=True,
        )
