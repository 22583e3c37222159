"""Event-driven propagation against dense matmul, on both paths; torch SpMV parity; error paths."""

import pytest
import torch

from evospikenet.core import fixed_probability, out_degree, propagate_events, propagate_spmv, transpose_csr


def _int8_csr(device, n_pre=120, n_post=90):
    w = lambda n, g: torch.randint(-128, 128, (n,), generator=g)  # noqa: E731
    return fixed_probability(n_pre, n_post, 0.3, w, dtype=torch.int8, seed=5, device=device)


@pytest.mark.parametrize("spike_dtype", [torch.bool, torch.int8, torch.float32])
def test_int_events_match_dense(device, spike_dtype):
    csr = _int8_csr(device)
    spikes = torch.rand(4, 120, device=device) < 0.3
    out = propagate_events(csr, spikes.to(spike_dtype))
    ref = spikes.long() @ csr.to_dense().long()  # exact integer reference
    assert out.dtype == torch.int32 and out.shape == (4, 90)
    assert torch.equal(out.long(), ref)


def test_float_events_match_dense_and_spmv(device):
    w = lambda n, g: torch.randn(n, generator=g)  # noqa: E731
    csr = fixed_probability(200, 150, 0.1, w, seed=3, device=device)
    spikes = (torch.rand(3, 200, device=device) < 0.2).float()
    out = propagate_events(csr, spikes)
    ref = spikes.double() @ csr.to_dense().double()
    assert out.dtype == torch.float32
    torch.testing.assert_close(out.double(), ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(propagate_spmv(csr, spikes), out, atol=1e-5, rtol=1e-5)
    csr_t = transpose_csr(csr)
    assert torch.equal(csr_t.to_dense(), csr.to_dense().T) and csr_t.col_indices().dtype == torch.int32
    torch.testing.assert_close(propagate_spmv(csr, spikes, csr_t), out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(propagate_events(csr, spikes[1]), out[1])  # (n_pre,) -> (n_post,)


def test_sop_count_is_sum_of_out_degrees(device):
    csr = _int8_csr(device)
    spikes = torch.rand(2, 120, device=device) < 0.25
    _, sops = propagate_events(csr, spikes, return_sops=True)
    assert sops == int((spikes.long() * out_degree(csr)).sum())


def test_no_spikes_gives_zeros(device):
    out, sops = propagate_events(_int8_csr(device), torch.zeros(2, 120, device=device), return_sops=True)
    assert sops == 0 and out.dtype == torch.int32 and not bool(out.any())


def test_int8_works_although_torch_sparse_mm_refuses_it():
    csr = _int8_csr("cpu")
    spikes = torch.zeros(1, 120, dtype=torch.int8)
    spikes[0, 3] = 1
    with pytest.raises(RuntimeError, match="not implemented for 'Char'"):
        torch.mm(spikes, csr)
    with pytest.raises(ValueError, match="csr values must be floating.*int8"):
        propagate_spmv(csr, spikes)
    assert torch.equal(propagate_events(csr, spikes)[0].long(), csr.to_dense()[3].long())


def test_propagate_errors():
    csr = _int8_csr("cpu")
    with pytest.raises(ValueError, match="spikes must have shape .*n_pre=120.*\\(2, 7\\)"):
        propagate_events(csr, torch.zeros(2, 7))
    with pytest.raises(ValueError, match="spikes must have shape"):
        propagate_events(csr, torch.zeros(1, 2, 120))
    with pytest.raises(ValueError, match="spikes must be a torch.Tensor"):
        propagate_events(csr, [0] * 120)
    with pytest.raises(ValueError, match="spikes must be bool"):
        propagate_events(csr, torch.zeros(120, dtype=torch.complex64))
    with pytest.raises(ValueError, match="csr must be"):
        propagate_events(csr.to_dense(), torch.zeros(120))
