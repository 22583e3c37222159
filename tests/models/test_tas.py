import torch

from evospikenet.models.spiking_lm import TASEncoder, TASParams, tas_encode, tas_probability


def _params(alpha=2.0, beta=2.0, tau=1.0, shape=(1, 1, 1)):
    return TASParams(torch.tensor(alpha), torch.tensor(beta), torch.full(shape, tau))


def test_probability_formula():
    e = torch.tensor([[[-1.5, 0.0, 0.5]]])
    p = tas_probability(e, _params(2.0, 1.0, 0.5))
    expected = torch.sigmoid(2.0 * e.abs() / 0.5 - 1.0)
    assert torch.allclose(p, expected)


def test_spike_density_rises_with_magnitude():
    torch.manual_seed(0)
    mags = torch.linspace(0.25, 3.0, 7)  # |e| > 0: sign(0) = 0 emits nothing
    e = mags.view(1, 1, -1).expand(4000, 1, -1).contiguous()  # 4000 draws per magnitude
    s, _ = tas_encode(e, _params(), time_steps=4, stochastic=True)
    density = s.abs().mean(dim=(0, 1, 2))  # (7,)
    assert torch.all(density[1:] > density[:-1])
    assert torch.allclose(density, torch.sigmoid(2.0 * mags - 2.0), atol=0.02)


def test_shorter_window_fires_more():
    e = torch.full((1, 2, 8), 0.7)
    p = tas_probability(e, TASParams(torch.tensor(2.0), torch.tensor(2.0), torch.tensor([[[0.5], [2.0]]])))
    assert (p[0, 0] > p[0, 1]).all()


def test_deterministic_mode_is_fixed_and_emits_round_tp_spikes():
    e = torch.randn(3, 5, 16)
    params = _params(shape=(3, 5, 1))
    s1, p = tas_encode(e, params, time_steps=8, stochastic=False)
    s2, _ = tas_encode(e, params, time_steps=8, stochastic=False)
    assert torch.equal(s1, s2)
    assert torch.equal(s1.abs().sum(0), torch.floor(8 * p + 0.5))


def test_signed_spikes_and_straight_through_gradient():
    e = torch.randn(2, 3, 16, requires_grad=True)
    enc = TASEncoder(16, 2.0, 2.0, 1.0)
    s, p = enc(e, 4, stochastic=True)
    assert set(s.unique().tolist()) <= {-1.0, 0.0, 1.0}
    nz = s != 0
    assert torch.equal(torch.sign(s[nz]), torch.sign(e.detach().expand_as(s)[nz]))
    s.abs().sum().backward()
    assert e.grad is not None and e.grad.abs().sum() > 0
    assert enc.raw_alpha.grad is not None and enc.beta.grad is not None and enc.tau_proj.bias.grad is not None
