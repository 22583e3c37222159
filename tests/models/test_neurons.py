import pytest
import snntorch as snn
import torch

from evospikenet.models.spiking_lm import LIFPopulation

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_backends_agree_on_spikes_membrane_and_gradients(device):
    torch.manual_seed(0)
    a = LIFPopulation(0.6, 1.0, "snntorch").to(device)
    b = LIFPopulation(0.6, 1.0, "evospikenet").to(device)
    x = (torch.randn(6, 3, 50, device=device) * 1.5).requires_grad_()  # includes inputs above 2 V_th
    s1, m1 = a(x)
    s2, m2 = b(x)
    assert torch.equal(s1, s2)
    assert torch.allclose(m1, m2, atol=1e-6)
    (g1,) = torch.autograd.grad((s1 * torch.arange(6.0, device=device)[:, None, None]).sum() + m1.sum(), x)
    (g2,) = torch.autograd.grad((s2 * torch.arange(6.0, device=device)[:, None, None]).sum() + m2.sum(), x)
    assert torch.allclose(g1, g2, atol=1e-6)


@pytest.mark.parametrize("backend", ["snntorch", "evospikenet"])
def test_closed_form_constant_input(backend):
    # H_t = beta V_{t-1} + I, reset by subtraction: with I = 0.6, beta = 0.5, V_th = 1:
    # H = 0.6, 0.9, 1.05 (spike, V = 0.05), 0.625, 0.9125, 1.05625 (spike)
    lif = LIFPopulation(0.5, 1.0, backend)
    s, v = lif(torch.full((6, 1), 0.6))
    assert s.flatten().tolist() == [0, 0, 1, 0, 0, 1]
    assert v.item() == pytest.approx(0.05625, abs=1e-6)


def test_membrane_is_explicit_and_no_global_state():
    lif = LIFPopulation(0.5, 1.0, "snntorch")
    assert lif.state_dict() == {} and LIFPopulation(0.5, 1.0, "evospikenet").state_dict() == {}
    assert all(inst is not lif._leaky for inst in snn.SpikingNeuron.instances)
    x = torch.full((2, 1), 0.6)
    s_a, v_a = lif(x)
    s_b, _ = lif(x, torch.full((1,), 0.9))  # an explicit membrane changes the result; no carry-over
    s_c, v_c = lif(x)
    assert torch.equal(s_a, s_c) and torch.equal(v_a, v_c)
    assert s_b[0].item() == 1 and s_a[0].item() == 0


def test_bad_arguments():
    with pytest.raises(ValueError, match="backend"):
        LIFPopulation(0.5, 1.0, "spikingjelly")
    with pytest.raises(ValueError, match="beta"):
        LIFPopulation(1.5, 1.0, "snntorch")
