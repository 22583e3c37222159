"""The native multi-step loop against the executable specification (``flat.run_flat_reference``)."""

from __future__ import annotations

import pytest
import torch

from evospikenet.core import native
from evospikenet.core.flat import FlatNetwork, SynapseGroup, run_flat_reference

pytestmark = pytest.mark.skipif(
    not native.native_available(), reason="no C++ compiler for the native backend"
)


def _csr(n: int, p: float, gen: torch.Generator, int8: bool, rows: slice) -> tuple:
    mask = torch.rand(n, n, generator=gen) < p
    mask[: rows.start] = False
    mask[rows.stop :] = False
    crow = torch.zeros(n + 1, dtype=torch.int32)
    crow[1:] = mask.sum(1).cumsum(0).to(torch.int32)
    col = mask.nonzero()[:, 1].to(torch.int32)
    if int8:
        val = torch.randint(-40, 80, (col.numel(),), generator=gen).to(torch.int8)
    else:  # multiples of 1/64: sums are exact whatever the order
        val = torch.randint(-20, 40, (col.numel(),), generator=gen).float() / 64
    return crow, col, val


def _flat(kind: str, reset: str, seed: int, leak_bits: int = 0, n: int = 300) -> FlatNetwork:
    g = torch.Generator().manual_seed(seed)
    is_int = kind == "int16"
    groups = [
        SynapseGroup(
            *_csr(n, 0.05, g, is_int, slice(0, n // 2)), decay=0.0 if is_int else 0.8, syn_shift=2, delay=1
        ),
        SynapseGroup(*_csr(n, 0.05, g, is_int, slice(n // 2, n)), decay=0.0, syn_shift=-1, delay=3),
    ]
    refr = torch.randint(0, 4, (n,), generator=g).to(torch.int32)
    if is_int:
        i16 = torch.int16
        return FlatNetwork(
            kind, n, None, torch.randint(0, 6, (n,), generator=g).to(torch.int32), None,
            torch.full((n,), 400, dtype=i16), torch.full((n,), -20, dtype=i16), torch.zeros(n, dtype=i16),
            refr,
            reset, groups, torch.randint(-10, 60, (n,), generator=g).to(torch.int32),
            torch.randint(-100, 300, (n,), generator=g).to(i16),
            leak_mul=torch.randint(200, 256, (n,), generator=g).to(torch.int32) if leak_bits else None,
            leak_bits=leak_bits,
        )  # fmt: skip
    beta = torch.rand(n, generator=g) * 0.3 + 0.6
    return FlatNetwork(
        kind, n, beta, None, 1.0 - beta, torch.full((n,), 1.0), torch.full((n,), -0.25),
        torch.full((n,), 0.125),
        refr, reset, groups, torch.rand(n, generator=g) * 2.0, torch.rand(n, generator=g) - 0.5,
    )  # fmt: skip


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
def test_float_spikes_identical_to_reference(reset):
    flat = _flat("float", reset, seed=1)
    s, i, v = native.run_flat(flat, 200)
    rs, ri, rv = run_flat_reference(flat, 200)
    assert s.numel() > 500  # the network is active
    assert torch.equal(s, rs) and torch.equal(i, ri)
    torch.testing.assert_close(v, rv, rtol=0, atol=1e-6)


@pytest.mark.parametrize("reset,leak_bits", [("subtract", 0), ("zero", 0), ("subtract", 8)])
def test_int_spikes_identical_to_reference(reset, leak_bits):
    flat = _flat("int16", reset, seed=2, leak_bits=leak_bits)
    s, i, v = native.run_flat(flat, 200)
    rs, ri, rv = run_flat_reference(flat, 200)
    assert s.numel() > 500
    assert torch.equal(s, rs) and torch.equal(i, ri) and torch.equal(v, rv)
    assert v.dtype == torch.int16


def test_spike_order_and_dtypes():
    s, i, _ = native.run_flat(_flat("float", "subtract", seed=3), 50)
    assert s.dtype == i.dtype == torch.int64
    key = s * 10_000 + i
    assert torch.all(key[1:] > key[:-1])  # time order, neurons ascending within a step


def test_propagate_events_matches_dense():
    g = torch.Generator().manual_seed(4)
    for int8 in (False, True):
        crow, col, val = _csr(200, 0.1, g, int8, slice(0, 200))
        dense = torch.zeros(200, 200, dtype=torch.int32 if int8 else torch.float32)
        dense[torch.repeat_interleave(torch.arange(200), crow.diff().long()), col.long()] = val.to(
            dense.dtype
        )
        ids = torch.tensor([3, 17, 150])
        out = torch.zeros(200, dtype=dense.dtype)
        native.propagate_events(crow, col, val, ids, out)
        assert torch.equal(out, dense[ids].sum(0))


def test_bad_arguments():
    flat = _flat("float", "subtract", seed=5, n=20)
    with pytest.raises(ValueError, match="n_steps"):
        native.run_flat(flat, -1)
    bad = flat._replace(synapses=[flat.synapses[0]._replace(delay=0)])
    with pytest.raises(ValueError, match="delay"):
        native.run_flat(bad, 5)
    with pytest.raises(ValueError, match="reset"):
        native.run_flat(flat._replace(reset="bounce"), 5)
    with pytest.raises(ValueError, match="out"):
        native.propagate_events(*flat.synapses[0][:3], torch.tensor([0]), torch.zeros(20, dtype=torch.int32))


def test_missing_compiler_raises(monkeypatch):
    def broken():
        raise RuntimeError("the native backend needs a working C++ compiler")

    monkeypatch.setattr(native, "load_native", broken)
    with pytest.raises(RuntimeError, match="compiler"):
        native.run_flat(_flat("float", "subtract", seed=6, n=20), 5)
    assert not native.native_available()
