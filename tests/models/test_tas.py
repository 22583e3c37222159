import pytest
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


def _push_window_down(enc: TASEncoder, e: torch.Tensor) -> None:
    """Set the window predictor as Adam drove it in the knock-back: every token's window as short as it goes."""
    with torch.no_grad():
        enc.tau_proj.weight.copy_(-50.0 * e.mean(dim=(0, 1)).sign()[None])
        enc.tau_proj.bias.fill_(-50.0)


def test_the_bounded_window_stays_in_range_and_starts_at_tau_init():
    torch.manual_seed(0)
    e = torch.randn(2, 5, 16)
    enc = TASEncoder(16, 2.0, 3.0, 1.5, tau_bound=4.0)
    assert torch.allclose(enc.params(e).tau_window, torch.full((2, 5, 1), 1.5))  # zero predictor: tau_init
    for sign in (-1.0, 1.0):
        with torch.no_grad():
            enc.tau_proj.bias.fill_(50.0 * sign)
        tau = enc.params(e).tau_window
        assert torch.allclose(tau, torch.full_like(tau, 1.5 * 4.0**sign), rtol=1e-4)


def test_the_bound_keeps_the_gradient_finite_where_the_first_design_explodes():
    """The first design's window reaches 1e-3, where ``dp/dtau ~ 1/tau^2`` makes the input gradient large
    (2,143 here, against 4.8 with the bound: at least tau_init / 4 keeps it of order one)."""
    torch.manual_seed(0)
    e = (0.01 * torch.randn(2, 5, 16)).requires_grad_()  # small embeddings sit on the sigmoid's slope
    norms = {}
    for bound in (0.0, 4.0):
        enc = TASEncoder(16, 2.0, 3.0, 1.0, tau_bound=bound)
        _push_window_down(enc, e.detach())
        e.grad = None
        _, p = enc(e, 4, stochastic=False)
        p.sum().backward()
        norms[bound] = e.grad.norm().item()
    assert norms[0.0] > 1e3 and norms[4.0] < 10.0


def test_bad_bound_is_refused():
    with pytest.raises(ValueError, match="tau_bound"):
        TASEncoder(16, 2.0, 3.0, 1.0, tau_bound=0.5)
