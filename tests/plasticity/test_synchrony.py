"""EntangledSynchronyLayer: synchrony of the EMITTED SPIKES rises with the Kuramoto coupling K."""

import math

import pytest
import torch

from evospikenet.core import CurrentInput, Network, Population, SpikeMonitor
from evospikenet.plasticity import (
    EntangledSynchronyLayer,
    SynchronyRule,
    kuramoto_step,
    order_parameter,
    phase_drive,
    spike_synchrony,
    synchrony_params,
)


def layer_synchrony(k, n=40, steps=1500, burn_in=500):
    layer = EntangledSynchronyLayer(n, k=k, amp=1.0, lif={"tau_mem": 10e-3}, seed=0)
    s = layer(torch.full((steps, 1, n), 0.6))[burn_in:, 0]  # (T, n) spikes
    return spike_synchrony(s, bin_steps=5), float(s.mean())


def test_spike_synchrony_rises_with_coupling():
    (s0, r0), (s1, r1), (s2, r2) = (layer_synchrony(k) for k in (0.0, 30.0, 150.0))  # K_c ~ 20 rad/s
    assert s0 < 0.1 < s1 < s2 and s2 > 0.4, (s0, s1, s2)
    for r in (r0, r1, r2):  # the neurons keep firing at similar rates: the coupling moves timing, not rate
        assert 0.02 < r < 0.06


def test_spike_synchrony_measure():
    t = torch.arange(400)
    together = ((t % 50) == 0).float().unsqueeze(1).expand(400, 5)  # identical trains
    assert spike_synchrony(together, 5) == pytest.approx(1.0)
    g = torch.Generator().manual_seed(0)
    independent = (torch.rand(4000, 10, generator=g) < 0.05).float()
    assert abs(spike_synchrony(independent, 5)) < 0.05
    assert spike_synchrony(torch.zeros(100, 4)) == 0.0
    assert spike_synchrony(torch.stack([together, together], 1), 5) == pytest.approx(1.0)  # (T, B, N)


def test_kuramoto_step_matches_pairwise_sum(device):
    p = synchrony_params(k=7.0, dt=1e-3)
    g = torch.Generator().manual_seed(1)
    theta = (torch.rand(2, 6, generator=g, dtype=torch.float64) * 2 * math.pi).to(device)
    omega = torch.randn(6, generator=g, dtype=torch.float64).to(device)
    pair = (7.0 / 6) * torch.sin(theta.unsqueeze(-2) - theta.unsqueeze(-1)).sum(
        -1
    )  # (K/N) sum_j sin(th_j - th_i)
    want = torch.remainder(theta + 1e-3 * (omega + pair), 2 * math.pi)
    assert torch.allclose(kuramoto_step(theta, omega, p), want, atol=1e-12)
    assert torch.allclose(
        phase_drive(torch.tensor([0.0, math.pi]), synchrony_params(amp=2.0)), torch.tensor([2.0, 0.0])
    )


def test_zero_spread_strong_coupling_locks_phases():
    p = synchrony_params(k=50.0, omega_std=0.0, dt=1e-3)
    theta = torch.rand(1, 20, generator=torch.Generator().manual_seed(2)) * 2 * math.pi
    omega = torch.full((20,), p.omega_mean)
    r0 = float(order_parameter(theta)[0])
    for _ in range(1000):
        theta = kuramoto_step(theta, omega, p)
    assert float(order_parameter(theta)[0]) > 0.99 > r0


@pytest.mark.parametrize("neuron", ["lif", "int"])
def test_rule_in_network_synchronises_spikes(neuron):
    n, steps = 30, 700
    out = []
    for k in (0.0, 150.0):
        if neuron == "lif":
            pop = Population("g", n, "lif", {"tau_mem": 10e-3})
            bias, amp = 0.6, 1.0
        else:
            pop = Population("g", n, "int", {"v_th": 64, "leak_shift": 3})
            bias, amp = 5, 8.0  # steady state 8 * I: threshold crossed only near the drive's peak
        mon = SpikeMonitor(pop)
        rule = SynchronyRule("g", k=k, amp=amp, seed=0, record_order=True)
        net = Network([pop], [], [CurrentInput(pop, bias)], [mon], [rule], dt=1e-3)
        net.run(steps)
        raster = torch.zeros(steps, n)
        raster[mon.t.long(), mon.i.long()] = 1.0
        out.append((spike_synchrony(raster[200:], 5), rule.order[-1], float(raster.mean())))
    (s0, r0, f0), (s1, r1, f1) = out
    assert s1 > s0 + 0.2 and r1 > 0.95 and min(f0, f1) > 0.01, out


def test_bad_arguments():
    for kwargs, name in [({"k": -1.0}, "k"), ({"omega_std": -1.0}, "omega_std"), ({"amp": -0.5}, "amp"),
                         ({"dt": 0.0}, "dt"), ({"omega_mean": math.inf}, "omega_mean")]:  # fmt: skip
        with pytest.raises(ValueError, match=name):
            synchrony_params(**kwargs)
    with pytest.raises(ValueError, match="n"):
        EntangledSynchronyLayer(0)
    with pytest.raises(ValueError, match="x"):
        EntangledSynchronyLayer(4)(torch.zeros(1, 5))
    with pytest.raises(ValueError, match="bin_steps"):
        spike_synchrony(torch.zeros(10, 3), 0)
    with pytest.raises(ValueError, match="dt"):
        SynchronyRule("g", dt=1e-3)
