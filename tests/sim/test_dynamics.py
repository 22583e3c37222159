"""Neuron and synapse dynamics against closed forms; ranks, accumulators and procedural mode against each other."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from simutil import single

from evospikenet.sim import PD14Config, pd14_spec
from evospikenet.sim.engine import NativeEngine
from evospikenet.sim.pd14 import psc_over_psp
from evospikenet.sim.spec import Generator, NetworkSpec, Population


def _engine(spec, seed=1, **kw):
    e = NativeEngine(spec, seed, **kw)
    e.build()
    return e


def test_membrane_relaxes_exactly(popnet):
    """Subthreshold DC: V(t) = E_L + (V0 - E_L) e^{-t/tau} + I tau/C (1 - e^{-t/tau}), step by step."""
    spec = single(i_e=200.0, v0_mean=-70.0)
    e = _engine(spec)
    for n in range(1, 301):
        e.run(1)
        t = n * 0.1
        want = -65.0 + (-70.0 + 65.0) * math.exp(-t / 10) + 200.0 * 10 / 250 * (1 - math.exp(-t / 10))
        assert float(e.state()["v"][0]) == pytest.approx(want, abs=1e-9)


def test_regular_firing_has_the_closed_form_period(popnet):
    """Suprathreshold DC from rest: first spike when V crosses V_th, then every t_ref + the same rise."""
    spec = single(i_e=500.0, v0_mean=-65.0)
    e = _engine(spec)
    e.set_recording(True)
    e.run(1000)
    steps = e.drain()[0].tolist()
    rise = math.ceil(10 * math.log(20 / 5) / 0.1)  # steps to go from -65 to -50 with I R = 20 mV
    assert steps[:4] == [rise - 1 + k * (rise + 20) for k in range(4)]


@pytest.mark.parametrize("exact", [False, True])
def test_psp_of_one_synapse(popnet, exact):
    """A single spike through a synapse of weight J and delay d: V(t) = J/C (e^{-t/tau_m} - e^{-t/tau_s}) /
    (1/tau_s - 1/tau_m), starting d steps after the source's spike step, peaking at 0.15 mV for 87.81 pA."""
    j = 0.15 * psc_over_psp(250.0, 10.0, 0.5)
    src = Population("src", 1, True, i_e=1000.0, v0_mean=-65.0, v0_sd=0.0, t_ref=1000.0)
    tgt = Population("tgt", 1, True, v0_mean=-65.0, v0_sd=0.0)
    spec = NetworkSpec(
        populations=[src, tgt],
        n_synapses=[[0, 0], [1, 0]],
        weight_mean=[[0.0, 0.0], [j, 0.0]],
        delay_mean=[[1.0, 1.0], [1.0, 1.0]],
        weight_rel_sd=0.0,
        delay_rel_sd=0.0,
    )
    e = _engine(spec, exact=exact)
    e.set_recording(True)
    trace, spike = [], None
    for _ in range(400):
        e.run(1)
        steps, gids = e.drain()
        if spike is None and len(gids):
            spike = int(steps[0])
        trace.append(float(e.state()["v"][1]) + 65.0)
    assert spike is not None
    onset = spike + 10  # the current enters in step spike + d; V moves from the next step on
    assert max(abs(v) for v in trace[: onset + 1]) == 0.0
    tol = 1e-6 if exact else 1e-5
    for m in range(1, 300 - onset):
        t = m * 0.1
        want = j / 250.0 * (math.exp(-t / 10) - math.exp(-t / 0.5)) / (1 / 0.5 - 1 / 10)
        assert trace[onset + m] == pytest.approx(want, rel=tol, abs=1e-12)
    assert max(trace) == pytest.approx(0.15, rel=2e-4)


def _spikes_of_ranks(spec, seed, ranks, steps, exact):
    """Several ranks in one process, exchanging spikes by hand as SpikeExchange does."""
    engines = [NativeEngine(spec, seed, r, ranks, exact=exact) for r in range(ranks)]
    for e in engines:
        e.build()
        e.set_recording(True)
    cap = max(e.info()["n_local"] for e in engines)
    bufs = [torch.zeros(cap + 1, dtype=torch.int32) for _ in engines]
    for _ in range(steps):
        for e, b in zip(engines, bufs):
            e.update_pack(b)
        gathered = torch.cat(bufs)
        for r, e in enumerate(engines):
            e.deliver_local()
            e.deliver_gathered(gathered, ranks, r)
            e.end_step()
    parts = [e.drain() for e in engines]
    s = torch.cat([p[0] for p in parts]).numpy()
    g = torch.cat([p[1] for p in parts]).numpy()
    order = np.lexsort((g, s))
    return s[order], g[order]


@pytest.fixture(scope="module")
def small():
    return pd14_spec(PD14Config(scale=0.02, drive="poisson", thalamic=True))


def _single(spec, seed, steps, **kw):
    e = _engine(spec, seed, **kw)
    e.set_recording(True)
    e.run(steps)
    s, g = (x.numpy() for x in e.drain())
    order = np.lexsort((g, s))
    return s[order], g[order]


@pytest.mark.parametrize("ranks", [2, 3])
def test_exact_mode_is_identical_on_any_number_of_ranks(popnet, small, ranks):
    ref = _single(small, 5, 3000, exact=True)  # 300 ms, the thalamic pulse excluded
    got = _spikes_of_ranks(small, 5, ranks, 3000, exact=True)
    assert len(ref[0]) > 100
    assert np.array_equal(ref[0], got[0]) and np.array_equal(ref[1], got[1])


def test_thalamic_pulse_reaches_layer4(popnet, small):
    s, g = _single(small, 5, 7500)
    first = small.first_ids()
    l4e = (g >= first[2]) & (g < first[3])
    during = ((s >= 7000) & (s < 7150) & l4e).sum() / 15.0
    before = ((s >= 6000) & (s < 7000) & l4e).sum() / 100.0
    assert during > 3 * before  # the pulse raises L4E's spike count per ms several fold


def test_float_mode_matches_exact_mode_statistically(popnet, small):
    a = _single(small, 5, 5000, exact=True)
    b = _spikes_of_ranks(small, 5, 2, 5000, exact=False)
    assert abs(len(a[0]) - len(b[0])) < 0.05 * len(a[0])


def test_procedural_mode_gives_the_stored_mode_spikes(popnet, small):
    """Exact mode: the same spikes (float mode adds in another order: statistically the same)."""
    a = _single(small, 9, 7200, exact=True)
    b = _single(small, 9, 7200, exact=True, procedural=True)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    c = _single(small, 9, 7200, procedural=True)
    assert abs(len(c[0]) - len(a[0])) < 0.05 * len(a[0])
    e = _engine(small, 9, procedural=True)
    assert e.info()["n_synapses_local"] == 0


def test_generator_only_network(popnet):
    """A generator drives a silent population through its synapses only."""
    spec = NetworkSpec(
        populations=[Population("A", 50, True, v0_mean=-65.0, v0_sd=0.0)],
        n_synapses=[[0]],
        weight_mean=[[0.0]],
        delay_mean=[[1.0]],
        generators=[Generator("G", 20, 2000.0, 10.0, 60.0, [2000], 300.0, 1.0)],
    )
    s, g = _single(spec, 1, 1000)
    assert len(s) > 0 and s.min() >= 100 and s.max() < 600 + 40


def test_bad_inputs_are_named(popnet, small):
    with pytest.raises(ValueError, match="rank 2 is outside"):
        NativeEngine(small, 1, rank=2, ranks=2)
    spec = single()
    spec.weight_rel_sd = 0.5
    with pytest.raises(ValueError, match="weight_rel_sd"):
        NativeEngine(spec, 1)
    with pytest.raises(ValueError, match="n_synapses must be 1 x 1"):
        NetworkSpec(
            populations=spec.populations, n_synapses=[[0, 0]], weight_mean=[[0.0]], delay_mean=[[1.0]]
        )


@pytest.mark.parametrize("exact", [True, False])
def test_torch_engine_matches_the_native_engine(popnet, small, device, exact):
    """The tensor implementation (any device) draws the same network and, in exact mode, the same spikes."""
    from evospikenet.sim.torch_engine import TorchEngine

    ref = _single(small, 5, 7200, exact=True)  # through the thalamic pulse at 700 ms
    e = TorchEngine(NativeEngine(small, 5, exact=exact), device)
    e.build()
    e.set_recording(True)
    e.run(7200)
    s, g = (x.numpy() for x in e.drain())
    order = np.lexsort((g, s))
    if exact:
        assert np.array_equal(ref[0], s[order]) and np.array_equal(ref[1], g[order])
    else:
        assert abs(len(s) - len(ref[0])) < 0.05 * len(ref[0])
