"""Network stepping: delays, synapse decay, inputs, monitors, rules, integer purity, batching, errors."""

import math

import pytest
import torch
from dispatch_helpers import DtypeRecorder

from evospikenet.core import (
    CurrentInput,
    Network,
    PoissonInput,
    Population,
    Projection,
    Rule,
    SpikeMonitor,
    StateMonitor,
    fixed_probability,
    from_edges,
    out_degree,
)
from evospikenet.functional import int_lif_params, lif_params


class Recorder:
    """A rule that records the currents and spikes of one population (and the call order)."""

    def __init__(self, pop: str, zero_currents: bool = False):
        self.pop, self.zero = pop, zero_currents
        self.currents, self.spikes, self.calls = [], [], []

    def bind(self, net):
        self.calls.append("bind")

    def before_step(self, net, t, currents):
        self.calls.append(("before", t))
        if self.zero:
            for c in currents.values():
                c.zero_()
        self.currents.append(currents[self.pop].clone())

    def after_step(self, net, t, spikes):
        self.calls.append(("after", t))
        self.spikes.append(spikes[self.pop].clone())


def _pulse_pair(integer: bool, delay: int, weight, tau_syn=None, syn_shift=None, t0=2, T=12):
    """One presynaptic neuron that fires exactly once at t0, one silent postsynaptic neuron."""
    if integer:
        pre = Population("pre", 1, "int", int_lif_params(v_th=64, reset="zero"))
        post = Population("post", 1, "int", int_lif_params(v_th=32767))
        drive = torch.zeros(T, 1, 1, dtype=torch.int32)
        drive[t0] = 100
        w = from_edges(torch.tensor([0]), torch.tensor([0]), weight, 1, 1, torch.int8)
    else:
        pre = Population("pre", 1, "lif", lif_params(tau_mem=1e-3, v_th=1.0, reset="zero"))
        post = Population("post", 1, "lif", lif_params(v_th=1e9))
        drive = torch.zeros(T, 1, 1)
        drive[t0] = 5.0
        w = from_edges(torch.tensor([0]), torch.tensor([0]), weight, 1, 1)
    proj = Projection("p", pre, post, w, delay=delay, tau_syn=tau_syn, syn_shift=syn_shift)
    rec_pre, rec = Recorder("pre"), Recorder("post")
    return pre, post, proj, [CurrentInput(pre, drive)], [rec_pre, rec]


@pytest.mark.parametrize("integer", [False, True])
@pytest.mark.parametrize("delay", [1, 3, 5])
def test_spike_arrives_exactly_delay_steps_later(device, integer, delay):
    pre, post, proj, inputs, (rec_pre, rec) = _pulse_pair(integer, delay, 7)
    net = Network([pre, post], [proj], inputs, rules=[rec_pre, rec], device=device)
    net.run(12)
    pre_spikes = torch.stack(rec_pre.spikes)[:, 0, 0]
    assert pre_spikes.nonzero().flatten().tolist() == [2]
    cur = torch.stack(rec.currents)[:, 0, 0].cpu()
    expected = torch.zeros(12, dtype=cur.dtype)
    expected[2 + delay] = 7
    assert torch.equal(cur, expected)
    assert net.energy().sops == 1  # one synaptic event, delivered once


def test_exponential_synapse_decays(device):
    pre, post, proj, inputs, (_, rec) = _pulse_pair(False, 2, 7.0, tau_syn=5e-3, T=15)
    Network([pre, post], [proj], inputs, rules=[rec], dt=1e-3, device=device).run(15)
    cur = torch.stack(rec.currents)[:, 0, 0].cpu().double()
    k = torch.arange(15) - 4
    expected = torch.where(k >= 0, 7.0 * math.exp(-1e-3 / 5e-3) ** k.clamp(min=0).double(), 0.0).double()
    torch.testing.assert_close(cur, expected, rtol=1e-5, atol=1e-6)


def test_integer_synapse_decays_by_shift(device):
    pre, post, proj, inputs, (_, rec) = _pulse_pair(True, 1, 100, syn_shift=2, T=12)
    Network([pre, post], [proj], inputs, rules=[rec], device=device).run(12)
    cur = torch.stack(rec.currents)[:, 0, 0].cpu().tolist()
    i, expected = 0, []
    for t in range(12):
        i = i - (i >> 2) + (100 if t == 3 else 0)
        expected.append(i)
    assert cur == expected and expected[4] == 75 and expected[5] == 57


def test_integer_tau_syn_maps_to_shift():
    pre, post, proj, _, _ = _pulse_pair(True, 1, 1, tau_syn=8e-3)
    Network([pre, post], [proj], dt=1e-3)
    assert proj.decay_shift == 3 and proj.decay == 0.0


@pytest.mark.parametrize(("neuron", "n_sources"), [("lif", 1), ("int", 1), ("lif", 10)])
def test_poisson_rate(device, neuron, n_sources):
    params = lif_params(v_th=1e9) if neuron == "lif" else int_lif_params(v_th=32767)
    pop = Population("x", 1000, neuron, params)
    rec = Recorder("x")
    net = Network([pop], inputs=[PoissonInput(pop, 50.0, 1, n_sources=n_sources)], rules=[rec],
                  dt=1e-3, batch=2, device=device)  # fmt: skip
    net.run(200)
    events = float(torch.stack(rec.currents).double().sum())
    p, trials = 50.0 * 1e-3, 2 * 1000 * 200 * n_sources
    assert abs(events - p * trials) < 5 * math.sqrt(trials * p * (1 - p))


def _driven(neuron="lif", n=50, batch=2, monitors_fn=None, rules=(), device="cpu"):
    if neuron == "lif":
        pop = Population("x", n, neuron, lif_params(tau_mem=1e-3, v_th=1.0))
        drive = PoissonInput(pop, 200.0, 2.0)
    else:
        pop = Population("x", n, neuron, int_lif_params(v_th=64, reset="zero"))
        drive = PoissonInput(pop, 200.0, 100)
    mons = monitors_fn(pop) if monitors_fn else []
    return Network([pop], inputs=[drive], monitors=mons, rules=list(rules), batch=batch, device=device), mons


def test_spike_monitor_events_and_counts(device):
    rec = Recorder("x")
    net, (mon, quiet) = _driven(monitors_fn=lambda p: [SpikeMonitor(p), SpikeMonitor(p, record=False)],
                                rules=[rec], device=device)  # fmt: skip
    summary = net.run(60)
    dense = torch.stack(rec.spikes)  # (T, B, n)
    ev = dense.nonzero()  # rows (t, b, i) in time order
    assert ev.shape[0] > 100
    assert torch.equal(mon.events, ev)
    assert torch.equal(mon.t, ev[:, 0]) and torch.equal(mon.i, ev[:, 2])
    assert mon.nbytes() == 24 * ev.shape[0]  # three int64 per spike, nothing per silent step
    assert torch.equal(mon.counts, dense.sum(0).long()) and torch.equal(quiet.counts, mon.counts)
    assert quiet.events.shape == (0, 3) and quiet.nbytes() == 0
    assert summary["spike_counts"]["x"] == ev.shape[0]
    assert summary["rates_hz"]["x"] == pytest.approx(ev.shape[0] / (2 * 50 * 60 * 1e-3))


def test_state_monitor_samples_every_k(device):
    idx = [0, 5, 7]

    class VRecorder(Recorder):
        def after_step(self, net, t, spikes):
            self.spikes.append(net.populations["x"].state.v[:, idx].clone())

    rec = VRecorder("x")
    net, (sm,) = _driven(
        monitors_fn=lambda p: [StateMonitor(p, "v", idx, every=3)], rules=[rec], device=device
    )
    net.run(20)
    assert sm.steps == list(range(0, 20, 3))
    assert sm.values.shape == (7, 2, 3)
    assert torch.equal(sm.values, torch.stack(rec.spikes)[::3])


def test_rules_protocol_order_and_current_edits():
    rec = Recorder("x", zero_currents=True)
    assert isinstance(rec, Rule)
    net, (mon,) = _driven(monitors_fn=lambda p: [SpikeMonitor(p)], rules=[rec])
    net.run(30)
    assert rec.calls[0] == "bind" and rec.calls.count("bind") == 1
    assert rec.calls[1:7] == [
        ("before", 0),
        ("after", 0),
        ("before", 1),
        ("after", 1),
        ("before", 2),
        ("after", 2),
    ]
    assert mon.num_spikes == 0  # before_step zeroed every current


def test_per_neuron_thresholds_can_change(device):
    prm = int_lif_params(v_th=20, reset="zero", leak_shift=15)  # no leak at these potentials
    pop = Population("x", 4, "int", prm, v_th=torch.tensor([20, 40, 32767, 20]))

    class RaiseThreshold:
        def bind(self, net):
            pass

        def before_step(self, net, t, currents):
            pass

        def after_step(self, net, t, spikes):
            if t == 9:
                net.populations["x"].v_th[3] = 32767  # homeostasis-style per-neuron change

    mon = SpikeMonitor(pop)
    net = Network([pop], inputs=[CurrentInput(pop, torch.tensor(10, dtype=torch.int32))], monitors=[mon],
                  rules=[RaiseThreshold()], device=device)  # fmt: skip
    net.run(40)
    counts = mon.counts[0].tolist()
    assert counts[0] == 20 and counts[1] == 10 and counts[2] == 0  # every 2nd, every 4th step, never
    assert counts[3] == 5 and int(mon.events[mon.i == 3, 0].max()) <= 9


def test_replace_structure_and_in_place_values():
    pre = Population("a", 3, "int", int_lif_params(v_th=1))
    post = Population("b", 2, "int", int_lif_params(v_th=32767))
    proj = Projection(
        "ab", pre, post, from_edges(torch.tensor([0, 2]), torch.tensor([1, 0]), 5, 3, 2, torch.int8)
    )
    rec = Recorder("b")
    net = Network(
        [pre, post], [proj], [CurrentInput(pre, torch.tensor([1, 0, 1], dtype=torch.int32))], rules=[rec]
    )
    net.run(2)
    assert rec.currents[1][0].tolist() == [5, 5]
    proj.values.mul_(2)  # rules edit weights in place
    net.step()
    assert rec.currents[2][0].tolist() == [10, 10]
    i32 = lambda *v: torch.tensor(v, dtype=torch.int32)  # noqa: E731
    proj.replace_structure(i32(0, 2, 2, 2), i32(0, 1), torch.tensor([3, 4], dtype=torch.int8))
    net.step()
    assert rec.currents[3][0].tolist() == [3, 4] and proj.col.tolist() == [0, 1]
    with pytest.raises(ValueError, match="strictly increasing"):
        proj.replace_structure(i32(0, 2, 2, 2), i32(1, 0), torch.tensor([3, 4], dtype=torch.int8))
    with pytest.raises(ValueError, match="values must have dtype"):
        proj.replace_structure(i32(0, 2, 2, 2), i32(0, 1), torch.tensor([3.0, 4.0]))


def _recurrent(neuron, batch=1, drive=None, device="cpu", seed=0):
    n_e, n_i = 80, 20
    if neuron == "lif":
        prm = lif_params(tau_mem=10e-3, v_th=1.0, refractory=2e-3)
        w_e, w_i, dtype = 0.3, -0.6, torch.float32
    else:
        prm = int_lif_params(v_th=64, leak_shift=3, refractory=2)
        w_e, w_i, dtype = 20, -40, torch.int8
    e, i = Population("e", n_e, neuron, prm), Population("i", n_i, neuron, prm)
    projs = []
    for a, b in ((e, e), (e, i), (i, e), (i, i)):
        w = fixed_probability(
            a.n, b.n, 0.1, w_e if a is e else w_i, dtype=dtype, seed=seed, autapses=a is not b
        )
        tau = dict(tau_syn=5e-3) if neuron == "lif" else dict(syn_shift=2)
        projs.append(Projection(a.name + b.name, a, b, w, delay=1 + (a is i), **tau))
    inputs = [drive(e)] if drive else [PoissonInput(e, 300.0, 3.0 if neuron == "lif" else 70)]
    mons = [SpikeMonitor(e), SpikeMonitor(i)]
    return Network([e, i], projs, inputs, mons, batch=batch, device=device), mons


@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_recurrent_network_runs_and_counts_sops(device, neuron):
    net, (me, mi) = _recurrent(neuron, device=device)
    s = net.run(100)
    assert 1 < s["rates_hz"]["e"] < 500 and s["rates_hz"]["i"] > 1
    # SOPs = out-degree of every spike that has been delivered (delay 1 from e, 2 from i) by the end
    expected = 0
    for mon, delay in ((me, 1), (mi, 2)):
        ev = mon.events[mon.t + delay <= 99]
        for proj in net.projections.values():
            if proj.pre is mon.pop:
                expected += int(out_degree(proj.weights)[ev[:, 2]].sum())
    rep = net.energy()
    assert rep.sops == expected > 0
    counter = net.op_counter()
    assert counter.updates["e"] == 100 * 80
    n_updates = 100 * sum(p.n for p in net.populations.values())
    assert rep.updates == counter.total_updates == n_updates
    # E = SOPs E_AC + updates E_UPDATE (Horowitz 45 nm: 0.9 pJ per add, 6.4 pJ per LIF update)
    assert rep.with_memory_j > rep.compute_j == pytest.approx(expected * 0.9e-12 + n_updates * 6.4e-12)


@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_batch_rows_are_independent(device, neuron):
    if neuron == "lif" and device.type == "cuda":
        pytest.skip("float atomics on CUDA sum in any order; the integer path checks batching there")
    T, B = 40, 3
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(T, B, 80, generator=gen) < 0.3).to(torch.int32) * (3 if neuron == "lif" else 70)
    x = x.float() if neuron == "lif" else x
    net, (me, _) = _recurrent(neuron, batch=B, drive=lambda e: CurrentInput(e, x), device=device)
    net.run(T)
    for b in range(B):
        single, (m1, _) = _recurrent(
            neuron, drive=lambda e, b=b: CurrentInput(e, x[:, b : b + 1]), device=device
        )
        single.run(T)
        ev = me.events[me.events[:, 1] == b]
        assert torch.equal(ev[:, [0, 2]], m1.events[:, [0, 2]])


def test_integer_step_has_no_floating_point_op(device):
    net, _ = _recurrent("int", batch=2, device=device)
    e = net.populations["e"]
    net.monitors.append(StateMonitor(e, "v", [0, 1], every=2))
    net.monitors[-1].reset(2, net.device)
    net.run(5)  # warm up: spikes in flight through both delays
    with DtypeRecorder() as rec:
        for _ in range(10):
            net.step()
    dtypes = {d for _, d in rec.seen}
    assert {torch.int8, torch.int16, torch.int32} <= dtypes  # the mode saw the integer step
    floats = sorted({f for f, d in rec.seen if d.is_floating_point or d.is_complex})
    assert not floats, f"floating-point ops in an integer step: {floats}"
    assert sum(int(m.counts.sum()) for m in net.monitors[:2]) > 0


def test_progress_and_summary():
    net, _ = _driven()
    s = net.run(5, progress=True)
    assert s["steps"] == 5 and s["t"] == 5 and s["backend"] == "torch" and set(s["rates_hz"]) == {"x"}


def test_network_errors():
    a = Population("a", 3)
    b = Population("b", 2, "int")
    w_f = fixed_probability(3, 2, 1.0, 1.0, autapses=True)
    cases = [
        (lambda: Population("x", 0), "n must be .*0"),
        (lambda: Population("x", 3, "izhikevich"), "neuron must be .*izhikevich"),
        (lambda: Population("", 3), "name"),
        (lambda: Population("x", 3, "int", params=lif_params()), "params must be a IntLIFParams"),
        (lambda: Population("x", 3, v_th=torch.ones(4)), "v_th must be .*\\(3,\\)"),
        (lambda: Projection("p", a, b, w_f), "weights must have dtype torch.int8"),
        (lambda: Projection("p", b, a, w_f), "weights must have shape"),
        (lambda: Projection("p", a, a, fixed_probability(3, 3, 0.5), delay=0), "delay must be .*0"),
        (lambda: Projection("p", a, a, fixed_probability(3, 3, 0.5), tau_syn=-1e-3), "tau_syn .*-0.001"),
        (lambda: Projection("p", a, a, fixed_probability(3, 3, 0.5).to_dense()), "csr must be"),
        (lambda: Network([a], dt=-1e-3), "dt .*-0.001"),
        (lambda: Network([a], batch=0), "batch .*0"),
        (lambda: Network([]), "populations"),
        (lambda: Network([a, Population("a", 2)]), "unique.*'a'"),
        (lambda: Network([a], [Projection("p", a, Population("c", 3), fixed_probability(3, 3, 0.5))]), "'c'"),
        (lambda: Network([a], rules=[object()]), "rules must implement"),
        (lambda: PoissonInput(a, -5.0, 1.0), "rate_hz .*-5.0"),
        (lambda: Network([a], inputs=[PoissonInput(a, 2000.0, 1.0)]), "rate_hz \\* dt"),
        (lambda: PoissonInput(b, 5.0, 1.5), "weight .*1.5"),
        (lambda: CurrentInput(b, torch.ones(2)), "integer tensor .*float32"),
        (lambda: CurrentInput(a, torch.ones(4)), "last dimension 3"),
        (lambda: StateMonitor(a, "w"), "var must be .*'w'"),
        (lambda: StateMonitor(a, "v", [5]), "indices"),
        (lambda: StateMonitor(a, "v", every=0), "every .*0"),
        (lambda: Network([a]).run(-1), "n_steps .*-1"),
        (lambda: Network([a]).run(1, backend="gpu"), "backend .*'gpu'"),
        (lambda: Network([a], inputs=[PoissonInput(a, 5.0, 1.0)]).run(1, backend="native"), "Poisson"),
        (lambda: SpikeMonitor("a"), "pop must be"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_threshold_assignment_keeps_dtype_and_shape():
    pop = Population("x", 3, "int")
    pop.v_th = torch.tensor([10, 20, 30])  # int64 in, int16 kept
    assert pop.v_th.dtype == torch.int16 and pop.v_th.tolist() == [10, 20, 30]
    with pytest.raises(ValueError, match="v_th must be an integer tensor .*float32"):
        pop.v_th = torch.ones(3)
    with pytest.raises(ValueError, match="v_th must be a scalar or have shape \\(3,\\)"):
        pop.v_th = torch.ones(2, dtype=torch.int16)
    f = Population("f", 3, v_th=2.0)
    f.v_th[0] = 5.0  # a scalar threshold is expanded into an independent per-neuron copy
    assert f.v_th.tolist() == [5.0, 2.0, 2.0] and f.v_th.dtype == torch.float32


def test_loihi_population_uses_per_neuron_mantissa(device):
    pop = Population("l", 2, "loihi", v_th=torch.tensor([10, 1000]))
    mon = SpikeMonitor(pop)
    net = Network([pop], inputs=[CurrentInput(pop, torch.tensor(20, dtype=torch.int32))], monitors=[mon],
                  device=device)  # fmt: skip
    net.run(20)
    # neuron 0: u = 20 << 6 = 1280 > 10 << 6 every step; neuron 1's v saturates near 1280 * 16 < 1000 << 6
    assert mon.counts[0].tolist() == [20, 0]
    assert pop.step_params().vth is pop.v_th and pop.v_th.dtype == torch.int32
