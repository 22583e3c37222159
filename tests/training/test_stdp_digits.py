"""The STDP network earns its keep: learned features beat the same network frozen at its random start."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch

from evospikenet.models.plastic_snn import (
    PlasticDigitsSNN,
    PlasticSNNParams,
    PlasticSNNState,
    plastic_snn_step,
)
from training.callbacks import SpikeEnergyCallback, StructuralPlasticityCallback
from training.datamodules import DigitsDataModule
from training.modules import STDPDigitsModule


def test_step_is_winner_take_all_with_reset_and_threshold_adaptation():
    w = torch.tensor([[1.0, 0.2, 0.9], [0.0, 0.0, 0.3]])  # (n_in=2, n_exc=3)
    s_in = torch.tensor([[1.0, 1.0], [0.0, 0.0]])  # sample 0 drives, sample 1 is silent
    state = PlasticSNNState(torch.zeros(2, 3), torch.tensor([0.0, 0.0, 0.5]))
    p = PlasticSNNParams(beta=0.5, threshold=0.5, theta_plus=0.1)
    spikes, new = plastic_snn_step(s_in, w, state, p)
    # v = [1.0, 0.2, 1.2]; margins = v - 0.5 - theta = [0.5, -0.3, 0.2]: neuron 0 alone fires
    assert spikes.tolist() == [[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
    assert new.v[0].tolist() == [0.0, 0.0, 0.0]  # lateral inhibition resets the whole sample
    torch.testing.assert_close(new.theta, torch.tensor([0.1, 0.0, 0.5]))
    # the silent sample's membrane just decays: beta * 0 + 0
    assert new.v[1].tolist() == [0.0, 0.0, 0.0]


def test_network_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n_exc"):
        PlasticDigitsSNN(n_exc=0)
    with pytest.raises(ValueError, match="max_rate"):
        PlasticDigitsSNN(max_rate=1.5)
    with pytest.raises(ValueError, match="x must have shape"):
        PlasticDigitsSNN(n_in=64)(torch.zeros(2, 10))


def test_stdp_learns_and_normalises_and_frozen_does_not():
    x = torch.rand(16, 64)
    learner, frozen = PlasticDigitsSNN(n_exc=10, seed=1), PlasticDigitsSNN(n_exc=10, seed=1, plastic=False)
    w0 = learner.proj.values.clone()
    learner.train(), frozen.train()
    learner(x, learn=True), frozen(x, learn=True)
    assert not torch.equal(learner.proj.values, w0)
    assert torch.equal(frozen.proj.values, w0)
    col_sums = learner.proj.dense().sum(0)  # every neuron's incoming weights sum to w_sum
    torch.testing.assert_close(col_sums, torch.full((10,), learner.w_sum))


def _fit(plastic: bool, tmp_path, callbacks=()) -> float:
    pl.seed_everything(0)
    module = STDPDigitsModule(
        network_config={"n_exc": 100, "time_steps": 20, "plastic": plastic}, stdp_epochs=1
    )
    dm = DigitsDataModule(batch_size=32)
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=list(callbacks),
    )
    trainer.fit(module, dm)
    return float(trainer.validate(module, dm, verbose=False)[0]["val_acc"])


@pytest.mark.slow
def test_learned_features_beat_frozen_random_features(tmp_path):
    learned = _fit(True, tmp_path)
    frozen = _fit(False, tmp_path)
    print(f"held-out readout accuracy: STDP {learned:.3f}, frozen random {frozen:.3f}")
    assert learned > frozen + 0.1


def test_callbacks_on_the_digits_module(tmp_path):
    pl.seed_everything(0)
    module = STDPDigitsModule(network_config={"n_exc": 20, "time_steps": 5}, stdp_epochs=1)
    energy = SpikeEnergyCallback(every_n_steps=2)
    structural = StructuralPlasticityCallback(every_n_steps=3, prune_below=0.02, grow=8, w_init=0.05)
    nnz0 = module.net.proj.values.numel()
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=1,
        limit_train_batches=6,
        limit_val_batches=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=tmp_path,
        callbacks=[energy, structural],
    )
    trainer.fit(module, DigitsDataModule(batch_size=16))
    # energy = SOPs * E_AC + updates * E_UPDATE (no MACs in this network), SOPs = input spikes * fan-out
    last = energy.last
    assert last["energy/macs"] == 0 and last["energy/sops"] > 0
    assert last["energy/updates"] == 16 * 20 * 5  # batch x excitatory neurons x steps
    assert last["energy/step_j"] == pytest.approx(last["energy/sops"] * 0.9e-12 + 16 * 20 * 5 * 6.4e-12)
    assert 0 < last["spike_rate/exc"] <= 1 and 0 < last["spike_rate/input"] <= 1
    # two structural applies (steps 3 and 6); the projection's nnz changed by exactly the net edits
    s = structural.stats
    assert s["applies"] == 2
    assert module.net.proj.values.numel() == nnz0 + s["added"] - s["removed"]
    assert s["removed"] > 0
    # the edited network still checkpoints and reloads with its new number of synapses
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    back = STDPDigitsModule.load_from_checkpoint(path)
    assert torch.equal(back.net.proj.dense(), module.net.proj.dense())


def test_sops_come_from_the_spikes_drawn():
    from evospikenet.energy import OpCounter
    from evospikenet.models.plastic_snn import PlasticDigitsSNN

    net = PlasticDigitsSNN(n_in=64, n_exc=10, time_steps=6).eval()
    x = torch.rand(5, 64)
    c = OpCounter()
    net(x, generator=torch.Generator().manual_seed(3), counter=c)
    g = torch.Generator().manual_seed(3)
    drawn = sum(torch.bernoulli((x * net.max_rate).clamp(0, 1), generator=g).sum() for _ in range(6))
    assert c.sops["input->exc"] == pytest.approx(float(drawn) * 10)  # dense rows: 10 synapses each
    assert c.updates["exc"] == 5 * 10 * 6
