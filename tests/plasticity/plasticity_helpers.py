"""Helpers for the plasticity tests: CSR builders and a minimal stand-in for the core's Network.

The stand-in follows the contract of ``evospikenet.core`` (populations with ``name``, ``n``, ``v_th``;
projections with ``crow``/``col``/``values``/``replace_structure``; rules called as ``bind``,
``before_step(net, t, currents)``, ``after_step(net, t, spikes)``) so the rules can be tested alone.
"""

from __future__ import annotations

import warnings

import torch


def make_csr(edges, n_pre, n_post, values, dtype=torch.float32):
    """CSR arrays (crow int32, col int32, values) from a list of (pre, post) edges."""
    edges = sorted(edges)
    crow = torch.zeros(n_pre + 1, dtype=torch.int64)
    for i, _ in edges:
        crow[i + 1] += 1
    crow = crow.cumsum(0).to(torch.int32)
    col = torch.tensor([j for _, j in edges], dtype=torch.int32)
    vals = torch.as_tensor(values, dtype=dtype).reshape(-1).expand(len(edges)).clone()
    return crow, col, vals


def assert_valid_csr(crow, col, n_pre, n_post):
    """CSR invariants: int32, crow from 0 to nnz and monotone, cols sorted, unique and in range per row."""
    assert crow.dtype == torch.int32 and col.dtype == torch.int32
    assert crow.numel() == n_pre + 1 and int(crow[0]) == 0 and int(crow[-1]) == col.numel()
    assert bool((crow[1:] >= crow[:-1]).all())
    for i in range(n_pre):
        c = col[crow[i] : crow[i + 1]]
        assert bool((c[1:] > c[:-1]).all())
        assert c.numel() == 0 or (0 <= int(c.min()) and int(c.max()) < n_post)


class FakePop:
    def __init__(self, name, n, v_th=1.0):
        self.name, self.n = name, n
        self.v_th = v_th.clone() if isinstance(v_th, torch.Tensor) else torch.full((n,), float(v_th))


class FakeProj:
    """Like ``core.Projection``: ``crow``/``col``/``values`` are views of the CSR ``weights``."""

    def __init__(self, pre, post, crow, col, values):
        self.pre, self.post = pre, post
        self.replace_structure(crow, col, values)

    crow = property(lambda self: self.weights.crow_indices())
    col = property(lambda self: self.weights.col_indices())
    values = property(lambda self: self.weights.values())

    def replace_structure(self, crow, col, values):
        assert_valid_csr(crow, col, self.pre.n, self.post.n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.weights = torch.sparse_csr_tensor(
                crow, col, values, (self.pre.n, self.post.n), check_invariants=True
            )


class FakeNet:
    """Holds populations/projections and calls rules in the documented order (no neuron dynamics)."""

    def __init__(self, pops, projs, rules=(), dt=1e-3):
        self.populations = {p.name: p for p in pops}
        self.projections = dict(projs)
        self.rules, self.dt = list(rules), dt
        for r in self.rules:
            r.bind(self)

    def step(self, t, spikes, currents=None):
        currents = currents if currents is not None else {}
        for r in self.rules:
            r.before_step(self, t, currents)
        for r in self.rules:
            r.after_step(self, t, spikes)
        return currents
