"""AEG: a tight energy budget cuts spikes while the network still follows its input; the ledger balances."""

import pytest
import torch
from plasticity_helpers import FakeNet, FakePop, FakeProj, make_csr

from evospikenet.core import CurrentInput, Network, PoissonInput, Population, Projection, fixed_probability
from evospikenet.plasticity import AEG, aeg_gate, aeg_init_state, aeg_params, aeg_step

N, N_STIM, STEPS = 100, 50, 600
ON = [(100, 250), (400, 550)]  # input switched on in these step windows


def stim(t):
    on = any(a <= t < b for a, b in ON)
    x = torch.zeros(1, N)
    x[0, :N_STIM] = 3.0 if on else 0.0
    return x


def run(rules=()):
    pop = Population("exc", N, "lif", {"tau_mem": 10e-3, "v_th": 1.0})
    w = fixed_probability(N, N, 0.05, 0.05, seed=3)
    net = Network(
        [pop],
        [Projection("rec", pop, pop, w)],
        [CurrentInput(pop, stim), PoissonInput(pop, 5.0, 12.0, generator=torch.Generator().manual_seed(4))],
        rules=list(rules),
        dt=1e-3,
    )
    raster = torch.zeros(STEPS, N)
    for t in range(STEPS):
        raster[t] = net.step()["exc"][0]
    return raster, net


def window_rate(raster, windows, idx):
    steps = torch.cat([torch.arange(a, b) for a, b in windows])
    return float(raster[steps][:, idx].mean()) * 1e3  # Hz


def test_tight_budget_cuts_spikes_but_keeps_the_response():
    free, _ = run()
    rule = AEG(e_max=0.5, c_spike=0.1, c_syn=0.002, recovery=0.002)  # sustains ~20 Hz per neuron
    tight, net = run([rule])
    stim_idx, rest_idx = torch.arange(N_STIM), torch.arange(N_STIM, N)
    off = [(0, 100), (250, 400), (550, 600)]
    assert tight.sum() < 0.5 * free.sum()
    # still responds: stimulated neurons fire more than the others, and only while the input is on
    assert window_rate(tight, ON, stim_idx) > 3 * window_rate(tight, ON, rest_idx)
    assert window_rate(tight, ON, stim_idx) > 3 * window_rate(tight, off, stim_idx)
    assert window_rate(tight, [(400, 550)], stim_idx) > 10  # the second pulse too, after the budget drained
    led = rule.ledger()
    pop_led = led["populations"]["exc"]
    assert led["total"]["gated"] > 0 and int(pop_led["gated"][:N_STIM].sum()) > int(
        pop_led["gated"][N_STIM:].sum()
    )
    assert led["total"]["spikes"] == int(tight.sum())
    # balance: E_final = E_0 - spent + recovered + overdraft
    e_final = float(pop_led["energy"].sum())
    assert e_final == pytest.approx(
        N * 0.5 - led["total"]["spent"] + led["total"]["recovered"] + led["total"]["overdraft"], abs=1e-3
    )
    # cost per spike = c_spike + c_syn * out-degree
    deg = (net.projections["rec"].crow[1:] - net.projections["rec"].crow[:-1]).float()
    assert torch.allclose(pop_led["spent"], tight.sum(0) * (0.1 + 0.002 * deg), rtol=1e-5, atol=1e-5)


def test_gate_and_step_formulas(device):
    def T(x):
        return torch.tensor(x, device=device)

    p = aeg_params(e_max=1.0, c_spike=0.3, c_syn=0.1, recovery=0.05, e_init=0.5)
    st = aeg_init_state(1, 3, p, device=device)
    st = st._replace(energy=T([[0.5, 0.2, 1.0]]))
    cur, st = aeg_gate(T([[2.0, 2.0, 2.0]]), st, p)
    assert cur.tolist() == [[2.0, 0.0, 2.0]] and st.gated.tolist() == [0, 1, 0]
    st = aeg_step(T([[1.0, 0.0, 1.0]]), T([1, 4, 2]), st, p)
    # neuron 0: 0.5 - 0.4 + 0.05; neuron 1: 0.2 + 0.05; neuron 2: 1.0 - 0.5 + 0.05
    assert torch.allclose(st.energy, T([[0.15, 0.25, 0.55]]))
    assert torch.allclose(st.spent, T([0.4, 0.0, 0.5]))
    st = aeg_step(
        torch.zeros(1, 3, device=device), T([1, 4, 2]), st._replace(energy=T([[0.98, 1.0, 0.0]])), p
    )
    assert torch.allclose(st.energy, T([[1.0, 1.0, 0.05]]))  # capped at e_max
    assert torch.allclose(st.recovered, T([0.05 + 0.02, 0.05 + 0.0, 0.05 + 0.05]))  # cumulative


def test_integer_energy_and_fake_network():
    a = FakePop("a", 2)
    crow, col, vals = make_csr([(0, 1), (0, 0), (1, 0)], 2, 2, 1, dtype=torch.int8)
    rule = AEG("a", dtype=torch.int32, e_max=100, c_spike=30, c_syn=5, recovery=1)
    net = FakeNet([a], {"p": FakeProj(a, a, crow, col, vals)}, [rule])
    for t in range(4):
        cur = net.step(t, {"a": torch.tensor([[1, 0]], dtype=torch.int8)},
                       {"a": torch.full((1, 2), 7, dtype=torch.int32)})  # fmt: skip
    st = rule.states["a"]
    assert st.energy.dtype == torch.int32
    # neuron 0 pays 30 + 2 * 5 = 40 per spike and recovers 1: 100 -> 61 -> 22, then gated (22 < 30); the fake
    # network forces its spikes anyway, so the floor at 0 forgives 18 and then 39 (the overdraft)
    assert cur["a"].tolist() == [[0, 7]] and st.gated.tolist() == [2, 0]
    assert (
        st.spent.tolist() == [160, 0]
        and st.overdraft.tolist() == [57, 0]
        and st.energy.tolist() == [[1, 100]]
    )


@pytest.mark.parametrize(
    "kwargs, name",
    [({"e_max": 0.0}, "e_max"), ({"c_spike": -1.0}, "c_spike"), ({"c_syn": -0.1}, "c_syn"),
     ({"recovery": -1e-3}, "recovery"), ({"c_spike": 2.0, "e_max": 1.0}, "c_spike"),
     ({"e_init": 5.0}, "e_init")],
)  # fmt: skip
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        aeg_params(**kwargs)


def test_bad_dtype_and_integer_constants():
    with pytest.raises(ValueError, match="dtype"):
        AEG(dtype=torch.int8)
    with pytest.raises(ValueError, match="integers"):
        AEG(dtype=torch.int32, c_spike=0.5)
