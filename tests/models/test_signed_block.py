"""Signed (ON/OFF) populations and the unnormalised value current of the spiking block."""

import pytest
import torch

from evospikenet.models import SpikingEvoSpikeNetForCausalLM
from evospikenet.models.spiking_lm.block import _fire
from evospikenet.models.spiking_lm.neurons import LIFPopulation

SIGNED = dict(signed_inputs=True, signed_qk=True, v_norm=False)


@pytest.mark.parametrize("backend", ["snntorch", "evospikenet"])
def test_on_off_pair_is_the_difference_of_two_lif_populations(backend):
    torch.manual_seed(0)
    pop = LIFPopulation(0.5, 1.0, backend)
    norm = torch.nn.LayerNorm(6)
    current = torch.randn(4, 3, 6)  # (T, N, D)
    s, raw = _fire(pop, current, norm, signed=True)
    y = norm(current)
    on, _ = LIFPopulation(0.5, 1.0, backend)(y)
    off, _ = LIFPopulation(0.5, 1.0, backend)(-y)
    assert torch.equal(s, on - off) and torch.equal(raw, torch.cat([on, off], dim=-1))
    assert set(s.unique().tolist()) == {-1.0, 0.0, 1.0}
    # a constant current of one sign drives only one neuron of the pair: +0.8 -> ON at t = 1 and 3 (closed
    # form of H_t = 0.5 V_{t-1} + 0.8 with reset by subtraction: 0.8, 1.2 -> 0.2, 0.9, 1.25), OFF silent
    const = torch.full((4, 1, 1), 0.8)
    s1, _ = _fire(LIFPopulation(0.5, 1.0, backend), const, lambda x: x, signed=True)
    assert s1.flatten().tolist() == [0.0, 1.0, 0.0, 1.0]
    s2, _ = _fire(LIFPopulation(0.5, 1.0, backend), -const, lambda x: x, signed=True)
    assert s2.flatten().tolist() == [0.0, -1.0, 0.0, -1.0]


def test_signed_block_feeds_signed_spikes_and_counts_both_neurons_of_a_pair(tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(**SIGNED)).eval()
    block = model.spiking.blocks[0]
    seen = {}
    hooks = [
        block.w_qkv.register_forward_pre_hook(lambda m, a: seen.__setitem__("x", a[0])),
        block.w_qkv.register_forward_hook(lambda m, a, o: seen.__setitem__("cur", o)),
        block.lif_v.register_forward_pre_hook(lambda m, a: seen.__setitem__("v_in", a[0])),
    ]
    ids = torch.randint(0, 257, (2, 10))
    with torch.no_grad():
        layers = {s.name: s for s in model(ids).spike_stats.layers}
    for h in hooks:
        h.remove()
    assert set(seen["x"].unique().tolist()) == {-1.0, 0.0, 1.0}  # the synapses read signed events
    T, D = model.config.time_steps, model.config.d_model
    for name in ("in", "q", "k", "mlp_in"):  # ON/OFF pairs: 2D neurons, each spike one event
        assert layers[f"block0.{name}"].neuron_steps == T * 2 * 10 * 2 * D
    assert layers["block0.v"].neuron_steps == T * 2 * 10 * D
    # without v_norm the value population receives v_gain * W_v x, no LayerNorm
    assert block.ln_v is None
    assert torch.allclose(seen["v_in"], 8.0 * seen["cur"].chunk(3, dim=-1)[2])


def test_signed_block_backends_agree_and_stay_causal(tiny_config):
    torch.manual_seed(0)
    a = SpikingEvoSpikeNetForCausalLM(tiny_config(neuron_backend="snntorch", **SIGNED)).eval()
    b = SpikingEvoSpikeNetForCausalLM(tiny_config(neuron_backend="evospikenet", **SIGNED)).eval()
    b.load_state_dict(a.state_dict())
    ids = torch.randint(0, 257, (2, 12))
    later = ids.clone()
    later[:, 8:] = (later[:, 8:] + 1) % 257
    with torch.no_grad():
        assert torch.equal(a(ids).hidden_spikes, b(ids).hidden_spikes)
        assert torch.equal(b(ids).logits[:, :8], b(later).logits[:, :8])
        assert not torch.equal(b(ids).logits[:, 8:], b(later).logits[:, 8:])


def test_signed_block_trains(tiny_config):
    torch.manual_seed(0)
    model = SpikingEvoSpikeNetForCausalLM(tiny_config(**SIGNED))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    ids = torch.randint(0, 257, (4, 16))
    first = None
    for _ in range(30):
        loss = model(ids, labels=ids).loss
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert model.spiking.blocks[0].w_qkv.weight.grad.abs().sum() > 0
    assert loss.item() < first - 0.5  # memorises the batch through the signed populations
