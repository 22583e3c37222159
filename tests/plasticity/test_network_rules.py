"""Every rule inside a real ``evospikenet.core.Network`` (float and integer populations)."""

import math

import pytest
import torch

from evospikenet.core import (
    Network,
    PoissonInput,
    Population,
    Projection,
    Rule,
    fixed_probability,
    validate_structure,
)
from evospikenet.plasticity import RULES, STDP, Homeostasis, MetaSTDP, StructuralPlasticity


def test_registry_classes_implement_the_core_protocol():
    args = {"stdp": ("p",), "homeostasis": ("a",), "structural": ("p",), "aeg": (), "synchrony": ("a",)}
    for name, cls in RULES.items():
        rule = MetaSTDP(STDP("p")) if name == "meta_stdp" else cls(*args[name])
        assert isinstance(rule, Rule), name


def pair_sum(pre_times, post_times, a_plus, a_minus, tau_plus, tau_minus, dt):
    """Closed-form all-to-all STDP change for one synapse from its spike times (steps)."""
    total = 0.0
    for tp in pre_times:
        for tq in post_times:
            d = (tq - tp) * dt
            if d > 0:
                total += a_plus * math.exp(-d / tau_plus)
            elif d < 0:
                total -= a_minus * math.exp(d / tau_minus)
    return total


def two_pop_net(neuron, rules, steps, seed=0):
    integer = neuron == "int"
    params = {"v_th": 64, "leak_shift": 3} if integer else {"tau_mem": 10e-3}
    pre, post = Population("pre", 6, neuron, params), Population("post", 5, neuron, params)
    w = fixed_probability(
        6, 5, 0.6, 20 if integer else 3.0, dtype=torch.int8 if integer else torch.float32, seed=seed
    )
    g = torch.Generator().manual_seed(seed)
    inputs = [PoissonInput(pre, 60.0, 80 if integer else 12.0, generator=g),
              PoissonInput(post, 40.0, 80 if integer else 12.0, generator=g)]  # fmt: skip
    net = Network([pre, post], [Projection("pp", pre, post, w)], inputs, rules=rules, dt=1e-3)
    w0 = net.projections["pp"].values.clone()
    rasters = {"pre": [], "post": []}
    for _ in range(steps):
        s = net.step()
        for k in rasters:
            rasters[k].append(s[k][0].clone())
    return net, w0, {k: torch.stack(v) for k, v in rasters.items()}


def expected_changes(net, rasters, fn):
    proj = net.projections["pp"]
    rows = torch.repeat_interleave(torch.arange(6), (proj.crow[1:] - proj.crow[:-1]).long())
    out = []
    for i, j in zip(rows.tolist(), proj.col.tolist()):
        pre_t = rasters["pre"][:, i].nonzero().squeeze(1).tolist()
        post_t = rasters["post"][:, j].nonzero().squeeze(1).tolist()
        out.append(fn(pre_t, post_t))
    return torch.tensor(out, dtype=torch.float64)


def test_float_stdp_in_network_matches_closed_form_on_emitted_spikes():
    kw = {"a_plus": 0.01, "a_minus": 0.012, "tau_plus": 15e-3, "tau_minus": 25e-3}
    rule = STDP("pp", w_min=-10.0, w_max=10.0, **kw)
    net, w0, rasters = two_pop_net("lif", [rule], 250)
    assert rasters["pre"].sum() > 20 and rasters["post"].sum() > 20
    want = expected_changes(net, rasters, lambda a, b: pair_sum(a, b, dt=1e-3, **kw))
    got = (net.projections["pp"].values - w0).double()
    assert want.abs().max() > 0.01
    assert torch.allclose(got, want, atol=1e-5)


def test_int_stdp_in_network_within_quantisation():
    kw = {"a_plus": 1.0, "a_minus": 1.0, "tau_plus": 15e-3, "tau_minus": 25e-3}
    rule = STDP("pp", **kw)
    net, w0, rasters = two_pop_net("int", [rule], 250)
    assert rule.integer and net.projections["pp"].values.dtype == torch.int8
    want = 256 * expected_changes(net, rasters, lambda a, b: pair_sum(a, b, dt=1e-3, **kw))
    got = rule.state.shadow.double() - (w0.double() * 256 + 128)
    # each weight update event (a post spike, or a pre spike) rounds once (<= 0.5) and reads a trace whose
    # accumulated rounding stays below 0.53 tau / dt trace units: <= 0.5 + A_q 0.53 * 25 / 4096 < 1 unit
    events = expected_changes(net, rasters, lambda a, b: len(a) + len(b))
    assert want.abs().max() > 64
    assert bool(((got - want).abs() <= events).all()), (got - want).abs().max()
    assert torch.equal(net.projections["pp"].values, (rule.state.shadow >> 8).clamp(-128, 127).to(torch.int8))


@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_homeostasis_in_network_brings_rates_into_band(neuron):
    integer = neuron == "int"

    def net_with(rules):
        pop = Population("a", 20, neuron, {"v_th": 16, "leak_shift": 3} if integer else {"v_th": 0.3})
        inp = PoissonInput(pop, 300.0, 10 if integer else 2.0, generator=torch.Generator().manual_seed(0))
        return Network([pop], [], [inp], rules=rules, dt=1e-3), pop

    net, _ = net_with([])
    free = net.run(400)["rates_hz"]["a"]
    net, pop = net_with([Homeostasis("a", eta=0.02 if integer else 1e-4, tau_rate=0.05)])
    net.run(600)
    held = net.run(400)["rates_hz"]["a"]
    assert free > 40 and abs(held - 10.0) <= 3.0, (free, held)
    assert float(pop.v_th.float().mean()) > (16 if integer else 0.3)
    assert pop.v_th.dtype == (torch.int16 if integer else torch.float32)


def test_structural_and_int_stdp_in_network_keep_csr_valid():
    stdp = STDP("pp", a_plus=1.0, a_minus=1.0)
    sp = StructuralPlasticity("pp", every=40, prune_below=15, grow=10, w_init=20, seed=0)
    net, w0, rasters = two_pop_net("int", [stdp, sp], 200)
    proj = net.projections["pp"]
    validate_structure(proj.crow, proj.col, proj.values, 6, 5)
    assert sp.stats["applies"] == 5 and sp.stats["added"] > 0
    assert stdp.state.shadow.shape == proj.values.shape
    assert torch.equal(proj.values, (stdp.state.shadow >> 8).clamp(-128, 127).to(torch.int8))


def test_meta_stdp_in_network_reward_from_activity():
    stdp = STDP("pp", a_plus=0.01, a_minus=0.012, w_min=-5.0, w_max=5.0)
    counts = []

    def reward(net, t, spikes):  # reward rises over the run: more post spikes so far
        counts.append(float(spikes["post"].sum()))
        return sum(counts) / 10.0

    meta = MetaSTDP(stdp, eta=1e-3, alpha=0.05, lo=1e-3, hi=0.1, reward_fn=reward, every=1)
    two_pop_net("lif", [meta], 100)
    assert meta.value > 20e-3 and stdp.params.tau_plus == meta.value


def test_reset_rebinds_rules_with_fresh_traces_and_keeps_learned_weights():
    """After ``reset()`` a run from rest matches the formula from its own spikes only: the STDP traces of
    the previous run are gone (carried-over traces would add pairs across the reset), the weights stay."""
    kw = {"a_plus": 0.01, "a_minus": 0.012, "tau_plus": 15e-3, "tau_minus": 25e-3}
    net, _, _ = two_pop_net("lif", [STDP("pp", w_min=-10.0, w_max=10.0, **kw)], 120)
    learned = net.projections["pp"].values.clone()
    net.reset()
    assert torch.equal(net.projections["pp"].values, learned)
    rasters = {"pre": [], "post": []}
    for _ in range(120):
        s = net.step()
        for k in rasters:
            rasters[k].append(s[k][0].clone())
    rasters = {k: torch.stack(v) for k, v in rasters.items()}
    want = expected_changes(net, rasters, lambda a, b: pair_sum(a, b, dt=1e-3, **kw))
    got = (net.projections["pp"].values - learned).double()
    assert want.abs().max() > 0.005
    assert torch.allclose(got, want, atol=1e-5)
