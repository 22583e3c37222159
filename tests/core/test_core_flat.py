"""flatten(): field layout, parity of the executable spec with the torch network, native backend plumbing."""

import importlib

import pytest
import torch

from evospikenet.core import (
    CurrentInput,
    Network,
    PoissonInput,
    Population,
    Projection,
    SpikeMonitor,
    StateMonitor,
    fixed_probability,
    make_csr,
    run_flat_reference,
)
from evospikenet.functional import int_lif_params, lif_params


def _net(neuron: str, device="cpu", reset="subtract", delay_i=3, leak="shift"):
    """Two populations, four projections (delays 1 and ``delay_i``, delta and exponential), constant drive."""
    if neuron == "lif":
        prm = lif_params(tau_mem=10e-3, v_th=1.0, refractory=2e-3, reset=reset, v_rest=0.1)
        w_e, w_i, dtype, drive = 0.25, -0.5, torch.float32, torch.linspace(0.8, 1.6, 60)
        syn = dict(tau_syn=4e-3)
    else:
        prm = int_lif_params(v_th=64, leak=leak, leak_shift=3, refractory=2, reset=reset)
        w_e, w_i, dtype = 12, -30, torch.int8
        drive = torch.arange(60, dtype=torch.int32) % 7 + 6
        syn = dict(syn_shift=2)
    e, i = Population("e", 60, neuron, prm), Population("i", 15, neuron, prm)
    gen = torch.Generator().manual_seed(0)
    e.v_th = e.v_th + (
        torch.rand(60, generator=gen) * 0.2 if neuron == "lif" else torch.randint(0, 9, (60,), generator=gen)
    )
    projs = []
    for a, b in ((e, e), (e, i), (i, e), (i, i)):
        w = fixed_probability(
            a.n, b.n, 0.15, w_e if a is e else w_i, dtype=dtype, seed=3, autapses=a is not b
        )
        kw = syn if b is e else {}
        projs.append(Projection(a.name + b.name, a, b, w, delay=1 if a is e else delay_i, **kw))
    mons = [SpikeMonitor(e), SpikeMonitor(i)]
    return Network([e, i], projs, [CurrentInput(e, drive)], mons, device=device), mons


@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_flatten_fields(device, neuron):
    net, _ = _net(neuron, device=device)
    flat = net.flatten()
    assert flat.n == 75 and flat.populations == (("e", 0, 60), ("i", 60, 15))
    assert flat.kind == ("float" if neuron == "lif" else "int16")
    assert flat.refractory_steps.dtype == torch.int32 and bool((flat.refractory_steps == 2).all())
    assert torch.equal(flat.v_th[:60], net.populations["e"].v_th.to(flat.v_th.dtype))
    e = net.populations["e"]
    if neuron == "lif":
        assert flat.leak_shift is None and flat.beta.dtype == torch.float32
        torch.testing.assert_close(flat.gain, (1 - flat.beta) * 1.0)
        assert float(flat.beta[0]) == pytest.approx(e.params.beta) and float(flat.v_rest[0]) == pytest.approx(
            0.1
        )
    else:
        assert flat.beta is None and flat.gain is None and bool((flat.leak_shift == 3).all())
        assert flat.v_th.dtype == torch.int16 and flat.bias.dtype == torch.int32
    assert torch.equal(
        flat.bias[:60].cpu(), CurrentInput(e, net.inputs[0].constant.cpu()).constant.to(flat.bias.dtype)
    )
    assert not bool(flat.bias[60:].any())
    # every synapse group is its projection placed at (pre offset, post offset) of the global matrix
    offs = {"e": 0, "i": 60}
    for g, proj in zip(flat.synapses, net.projections.values()):
        assert g.crow.dtype == torch.int32 and g.col.dtype == torch.int32 and g.crow.numel() == 76
        dense = make_csr(g.crow, g.col, g.values, 75, 75).to_dense()
        o_pre, o_post = offs[proj.pre.name], offs[proj.post.name]
        block = dense[o_pre : o_pre + proj.pre.n, o_post : o_post + proj.post.n]
        assert torch.equal(block, proj.weights.to_dense()) and int(dense.count_nonzero()) == proj.col.numel()
        assert g.delay == proj.delay
        if neuron == "lif":
            assert g.syn_shift == -1 and g.decay == (
                pytest.approx(0.7788, abs=1e-4) if proj.post.name == "e" else 0.0
            )
        else:
            assert g.decay == 0.0 and g.syn_shift == (2 if proj.post.name == "e" else -1)


@pytest.mark.parametrize(
    ("neuron", "reset", "leak"),
    [("lif", "subtract", "shift"), ("lif", "zero", "shift"), ("int", "subtract", "shift"),
     ("int", "zero", "shift"), ("int", "subtract", "mul")],
)  # fmt: skip
def test_reference_matches_torch_network(device, neuron, reset, leak):
    if neuron == "lif" and device.type == "cuda":
        pytest.skip("float atomics on CUDA sum in any order; spike parity is checked on the CPU")
    net, (me, mi) = _net(neuron, device=device, reset=reset, leak=leak)
    flat = net.flatten()
    steps, ids, v = run_flat_reference(flat, 150)
    net.run(150)
    ev = torch.cat([torch.stack([me.t, me.i]), torch.stack([mi.t, mi.i + 60])], dim=1)
    ev = ev[:, torch.argsort(ev[0] * 1000 + ev[1])]
    assert ev.shape[1] > 200
    assert torch.equal(ev[0], steps) and torch.equal(ev[1], ids)
    v_net = torch.cat([net.populations["e"].v[0], net.populations["i"].v[0]])
    assert v.dtype == v_net.dtype
    torch.testing.assert_close(v, v_net, rtol=0, atol=1e-5)


def test_flatten_errors():
    a = Population("a", 3)
    with pytest.raises(ValueError, match="only 'lif' or only 'int'.*'int', 'lif'"):
        Network([a, Population("b", 2, "int")]).flatten()
    with pytest.raises(ValueError, match="batch=2"):
        Network([a], batch=2).flatten()
    with pytest.raises(ValueError, match="one reset mode"):
        Network([a, Population("b", 2, params=lif_params(reset="zero"))]).flatten()
    with pytest.raises(ValueError, match="loihi"):
        Network([Population("c", 2, "loihi")]).flatten()
    with pytest.raises(ValueError, match="leak mode"):
        Network([Population("c", 2, "int"), Population("d", 2, "int", int_lif_params(leak="mul"))]).flatten()


def _fake_native(monkeypatch):
    native = importlib.import_module("evospikenet.core.native")
    monkeypatch.setattr(native, "run_flat", run_flat_reference)
    monkeypatch.setattr(native, "native_available", lambda: True, raising=False)


@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_native_backend_plumbing(monkeypatch, neuron):
    """backend="native" (here the reference) gives the torch run's monitors, counts, state and SOPs."""
    _fake_native(monkeypatch)
    ref, (re_, ri) = _net(neuron)
    nat, (ne, ni) = _net(neuron)
    s_ref, s_nat = ref.run(120), nat.run(120, backend="native")
    assert s_nat["backend"] == "native" and s_ref["backend"] == "torch"
    assert s_nat["spike_counts"] == s_ref["spike_counts"] and s_nat["rates_hz"] == s_ref["rates_hz"]
    assert torch.equal(ne.events, re_.events) and torch.equal(ni.counts, ri.counts)
    torch.testing.assert_close(nat.populations["e"].v, ref.populations["e"].v, rtol=0, atol=1e-5)
    assert nat.t == 120
    # SOPs: native counts every emitted spike's fan-out; torch only those delivered before the end
    undelivered = 0
    for mon, delay in ((re_, 1), (ri, 3)):
        late = mon.events[mon.t + delay > 119][:, 2]
        for proj in ref.projections.values():
            if proj.pre is mon.pop:
                crow = proj.crow.long()
                undelivered += int((crow[late + 1] - crow[late]).sum())
    assert nat.energy().sops == ref.energy().sops + undelivered


def test_auto_backend_choice(monkeypatch):
    _fake_native(monkeypatch)
    net, _ = _net("lif")
    assert net.native_unsupported_reason() is None
    assert net.run(5, backend="auto")["backend"] == "native"
    pop = Population("p", 4)
    poisson = Network([pop], inputs=[PoissonInput(pop, 10.0, 1.0)])
    assert poisson.run(3, backend="auto")["backend"] == "torch"
    sm = Network([pop], monitors=[StateMonitor(pop)])
    assert "StateMonitor" in sm.native_unsupported_reason()
    varying = Network([pop], inputs=[CurrentInput(pop, torch.ones(5, 1, 4))])
    assert "time-varying" in varying.native_unsupported_reason()
    busy, _ = _net("lif")
    busy.run(20)  # spikes are now in flight in the delay lines
    assert "in flight" in busy.native_unsupported_reason()
    with pytest.raises(ValueError, match="backend='native' cannot run this network: .*in flight"):
        busy.run(1, backend="native")


@pytest.mark.slow
@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_real_native_backend_matches_torch(neuron):
    native = importlib.import_module("evospikenet.core.native")
    if not native.native_available():
        pytest.skip("the native extension cannot be built here")
    ref, (re_, _) = _net(neuron)
    nat, (ne, _) = _net(neuron)
    ref.run(150)
    assert nat.run(150, backend="native")["backend"] == "native"
    assert torch.equal(ne.events, re_.events)
