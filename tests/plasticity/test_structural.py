"""Structural plasticity: buffered edits invisible until apply, one batched rebuild, CSR valid after it."""

import pytest
import torch
from plasticity_helpers import FakeNet, FakePop, FakeProj, assert_valid_csr, make_csr

from evospikenet.plasticity import STDP, EditBuffer, StructuralPlasticity, apply_edits, remap_entries


def edges_of(proj):
    rows = torch.repeat_interleave(torch.arange(proj.pre.n), (proj.crow[1:] - proj.crow[:-1]).long())
    return {(int(i), int(j)): float(w) for i, j, w in zip(rows, proj.col, proj.values)}


def setup(dtype=torch.float32, every=10, **kwargs):
    a, b = FakePop("a", 4), FakePop("b", 5)
    crow, col, vals = make_csr(
        [(0, 1), (0, 3), (2, 0), (3, 4)], 4, 5, 1 if dtype == torch.int8 else 0.5, dtype
    )
    proj = FakeProj(a, b, crow, col, vals)
    rule = StructuralPlasticity("ab", every=every, **kwargs)
    net = FakeNet([a, b], {"ab": proj}, [rule])
    return net, proj, rule


def quiet(net, t):
    return net.step(t, {"a": torch.zeros(1, 4), "b": torch.zeros(1, 5)})


def test_edits_invisible_until_apply_and_applied_every_n_steps():
    net, proj, rule = setup(every=10)
    before = edges_of(proj)
    rule.request_add([1, 0], [2, 0], [0.7, 0.8])
    rule.request_remove(0, 3)
    for t in range(1, 10):
        quiet(net, t)
        assert edges_of(proj) == before  # buffered, not applied
    quiet(net, 10)  # t % every == 0: apply
    assert edges_of(proj) == {
        (0, 0): pytest.approx(0.8),
        (0, 1): 0.5,
        (1, 2): pytest.approx(0.7),
        (2, 0): 0.5,
        (3, 4): 0.5,
    }
    assert len(rule.buffer) == 0 and rule.stats["added"] == 2 and rule.stats["removed"] == 1
    assert_valid_csr(proj.crow, proj.col, 4, 5)


def test_conflict_semantics():
    net, proj, rule = setup()
    rule.request_remove(0, 1)
    rule.request_add(0, 1, 0.9)  # remove-then-add: present with the new weight
    rule.request_add(2, 2, 0.3)
    rule.request_remove(2, 2)  # add-then-remove: absent
    rule.request_add(3, 4, 0.25)  # add of an existing edge: weight updated (upsert)
    rule.request_remove(1, 1)  # remove of a missing edge: ignored, counted
    stats = rule.apply()
    e = edges_of(proj)
    assert e[(0, 1)] == pytest.approx(0.9) and (2, 2) not in e and e[(3, 4)] == pytest.approx(0.25)
    assert set(e) == {(0, 1), (0, 3), (2, 0), (3, 4)}
    assert stats == {"added": 0, "updated": 2, "removed": 0, "remove_missing": 2}
    assert_valid_csr(proj.crow, proj.col, 4, 5)


def test_prune_and_growth_int8():
    net, proj, rule = setup(torch.int8, prune_below=2, grow=200, w_init=3, seed=0)
    proj.values[0] = 5  # (0, 1) is strong; the others (w = 1) are weak
    rule.request_add(2, 0, 4)  # an explicit request wins over pruning of the same synapse
    rule.apply()
    e = edges_of(proj)
    assert e[(0, 1)] == 5 and e[(2, 0)] == 4  # strong synapse kept; explicit request beat pruning
    assert (0, 3) not in e and (
        3,
        4,
    ) not in e  # pruned (growth only proposes synapses missing before the apply)
    assert proj.values.dtype == torch.int8 and proj.crow.dtype == torch.int32
    assert len(e) == 2 + 16 and all(
        w == 3 for k, w in e.items() if k not in ((0, 1), (2, 0))
    )  # grown at w_init
    assert_valid_csr(proj.crow, proj.col, 4, 5)


def test_no_autapses_on_self_projection():
    a = FakePop("a", 6)
    crow, col, vals = make_csr([(0, 1)], 6, 6, 0.5)
    rule = StructuralPlasticity("aa", every=1, grow=500, w_init=0.1, seed=1)
    net = FakeNet([a], {"aa": FakeProj(a, a, crow, col, vals)}, [rule])
    rule.apply()
    e = edges_of(net.projections["aa"])
    assert len(e) == 30 and all(i != j for i, j in e)  # every off-diagonal pair grown, none on the diagonal


def test_apply_edits_random_against_reference(device):
    g = torch.Generator().manual_seed(0)
    n_pre, n_post = 30, 40
    ref = {}
    for _ in range(200):
        ref[(int(torch.randint(n_pre, (1,), generator=g)), int(torch.randint(n_post, (1,), generator=g)))] = (
            1.0
        )
    crow, col, vals = (x.to(device) for x in make_csr(list(ref), n_pre, n_post, 1.0))
    buf = EditBuffer(n_pre, n_post, device=device)
    for _ in range(300):
        i, j = int(torch.randint(n_pre, (1,), generator=g)), int(torch.randint(n_post, (1,), generator=g))
        if torch.rand(1, generator=g) < 0.5:
            w = float(torch.rand(1, generator=g))
            buf.request_add(i, j, w)
            ref[(i, j)] = w
        else:
            buf.request_remove(i, j)
            ref.pop((i, j), None)
    crow, col, vals, _ = apply_edits(crow, col, vals, n_post, buf.resolve())
    assert crow.device == col.device == vals.device == device
    crow, col, vals = crow.cpu(), col.cpu(), vals.cpu()
    assert_valid_csr(crow, col, n_pre, n_post)
    rows = torch.repeat_interleave(torch.arange(n_pre), (crow[1:] - crow[:-1]).long())
    got = {(int(i), int(j)): float(w) for i, j, w in zip(rows, col, vals)}
    assert got.keys() == ref.keys() and all(got[k] == pytest.approx(ref[k]) for k in ref)


def test_remap_entries_keeps_survivors():
    c0, k0, _ = make_csr([(0, 1), (1, 0), (1, 2)], 2, 3, 0.0)
    c1, k1, _ = make_csr([(0, 0), (1, 0), (1, 2)], 2, 3, 0.0)
    out = remap_entries(c0, k0, torch.tensor([10, 20, 30]), c1, k1, torch.full((3,), -1))
    assert out.tolist() == [-1, 20, 30]


def test_stdp_shadow_survives_a_rebuild():
    a = FakePop("a", 3)
    crow, col, vals = make_csr([(0, 1), (0, 2), (2, 1)], 3, 3, 10, dtype=torch.int8)
    proj = FakeProj(a, a, crow, col, vals)
    stdp = STDP("aa", a_plus=0.5, a_minus=0.0)
    sp = StructuralPlasticity("aa", every=5)
    net = FakeNet([a], {"aa": proj}, [stdp, sp])
    for t in range(1, 5):  # pre 0 at t=1, post 1 at t=2: (0, 1) gains ~0.5 * e^{-1/20} units in its shadow
        net.step(t, {"a": torch.tensor([[int(t == 1), int(t == 2), 0]], dtype=torch.int8)})
    gained = int(stdp.state.shadow[0]) - (10 * 256 + 128)
    assert gained > 100
    sp.request_remove(0, 2)
    sp.request_add(1, 0, 7)
    net.step(5, {"a": torch.zeros(1, 3, dtype=torch.int8)})  # rebuild, then STDP remaps its shadow
    net.step(6, {"a": torch.zeros(1, 3, dtype=torch.int8)})
    e = edges_of(proj)
    assert set(e) == {(0, 1), (1, 0), (2, 1)}
    assert int(stdp.state.shadow[0]) - (10 * 256 + 128) == gained  # (0, 1) kept its sub-LSB progress
    assert int(stdp.state.shadow[1]) == 7 * 256 + 128  # the new synapse starts mid-bin


def test_bad_arguments():
    with pytest.raises(ValueError, match="every"):
        StructuralPlasticity("p", every=0)
    with pytest.raises(ValueError, match="grow"):
        StructuralPlasticity("p", grow=-1)
    with pytest.raises(ValueError, match="prune_below"):
        StructuralPlasticity("p", prune_below=-0.1)
    buf = EditBuffer(3, 4, torch.int8)
    with pytest.raises(ValueError, match="post"):
        buf.request_add(0, 4, 1)
    with pytest.raises(ValueError, match="pre"):
        buf.request_remove(-1, 0)
    with pytest.raises(ValueError, match="w"):
        buf.request_add(0, 0, 300)
    with pytest.raises(ValueError, match="w"):
        buf.request_add(0, 0, 0.5)
    with pytest.raises(ValueError, match="n_post"):
        EditBuffer(3, 0)
    with pytest.raises(ValueError, match="not bound"):
        StructuralPlasticity("p").request_add(0, 0, 1.0)
