r"""The ``train_step`` workload in each framework: the same layers, weights, input and loss everywhere.

Every peer runs ``L`` layers of ``Linear`` then LIF (``L`` = 1 or 2) with the same weights (``make_layers``),
the same binary input ``x`` (T, B, N) and the loss ``spikes.sum()`` of the last layer; ``step()`` is the
forward over all T and the backward (gradients of every weight and bias, through the hidden layer when
``L = 2``). The neuron is configured to compute, per step,

.. math::

    H_t = \beta V_{t-1} + I_t, \qquad S_t = \Theta(H_t - 1), \qquad V_t = H_t - S_t
    \qquad (\beta = e^{-dt/\tau} = e^{-0.1}, \text{reset by subtraction, detached})

in each framework, as follows (``tests/benchmarks/test_peers.py`` checks that every installed peer emits
the same spikes as EvoSpikeNet on the same input):

* **EvoSpikeNet**: ``SpikingLinearLIF`` with ``R = 1 / (1 - beta)`` (so ``(1 - beta) R I = I``).
* **snnTorch**: ``snn.Leaky(beta, threshold=1, reset_mechanism="subtract", reset_delay=False)``; its
  default ``reset_delay=True`` would subtract the threshold one step later, without the decay. Two forms:
  the tutorial idiom (``Linear`` inside the time loop) and the ``Linear`` hoisted over all T steps.
  Differences: its spike is ``H > 1``, and it tests the spike on ``H`` less the previous step's reset when
  the potential left after a reset is still above threshold (``H >= 2``), so the layers agree while
  ``H < 2`` (the test's inputs; at ``p = 0.5`` some potentials exceed 2). The work per step is the same.
* **SpikingJelly 2.0**: ``LIFNode(tau=1 / (1 - beta), decay_input=False, v_reset=None, detach_reset=True)``
  in multi-step mode, which computes ``H = V - V / tau + X``: the same update, rounded differently.
* **Norse 1.1**: ``LIFBoxCell`` (Euler, ``V + dt / tau (I - V)``) with ``dt / tau = 1 - beta`` and the
  input scaled by ``1 / (1 - beta)`` (folded into the weights, no cost at run time), and
  ``reset_method=reset_subtract``; one ``Linear`` over the whole sequence per layer. Differences: its spike is
  ``H > 1``, its surrogate is SuperSpike (no arc-tangent in Norse) and its reset is not detached.
* **Spyx 1.0** (JAX): Spyx's ``LIF`` fires from the potential *before* the step's input and subtracts an
  undecayed threshold, so the peer is a neuron written to Spyx's ``StatefulLayer`` contract (an
  ``nnx.Module`` with ``initial_state``) with the update above and Spyx's arc-tangent surrogate
  (``spyx.axn.custom``), run by ``spyx.nn.run`` (``jax.lax.scan``); the ``Linear`` is hoisted over all T
  (one ``jnp`` matmul per layer, as Spyx's examples do), and the whole step is one ``jax.jit``-compiled
  gradient. It runs on one CPU thread (``XLA_FLAGS`` set before JAX is imported).

A builder raises ImportError when its framework is not installed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

__all__ = ["BUILDERS", "TAU", "DT", "BETA", "Peer", "make_layers", "XLA_ONE_THREAD"]

TAU, DT = 10e-3, 1e-3  # membrane time constant and step (s)
BETA = math.exp(-DT / TAU)
XLA_ONE_THREAD = "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1"


class Peer(NamedTuple):
    step: Callable[[], None]  # forward over all T + backward
    spikes: Callable[[], torch.Tensor]  # forward only: the last layer's spikes (T, B, N), float32


def make_layers(sizes: list[int], seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(W (K, N), b (N))`` per layer for widths ``sizes`` (``[K, N]`` one layer, ``[K, H, N]`` two),
    drawn as ``nn.Linear`` initialises them (uniform in ``+-1/sqrt(K)``)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for k, n in zip(sizes[:-1], sizes[1:]):
        bound = 1.0 / math.sqrt(k)
        w = (torch.rand(k, n, generator=g) * 2 - 1) * bound
        out.append((w, (torch.rand(n, generator=g) * 2 - 1) * bound))
    return out


def _linear(w: torch.Tensor, b: torch.Tensor, scale: float = 1.0) -> nn.Linear:
    fc = nn.Linear(w.shape[0], w.shape[1])
    with torch.no_grad():
        fc.weight.copy_(w.t() * scale)
        fc.bias.copy_(b * scale)
    return fc


def _torch_peer(params: list[nn.Parameter], forward: Callable[[], torch.Tensor]) -> Peer:
    def step():
        for p in params:
            p.grad = None
        forward().sum().backward()

    def spikes():
        with torch.no_grad():
            return forward().detach().float()

    return Peer(step, spikes)


def evospikenet(x: torch.Tensor, layers) -> Peer:
    """EvoSpikeNet's fused layers (one matmul or gather-sum over T*B rows, C++ LIF time loop)."""
    from evospikenet.functional.fused import SpikingLinearLIF
    from evospikenet.functional.lif import lif_params

    mods = []
    for w, b in layers:
        m = SpikingLinearLIF(w.shape[0], w.shape[1], lif_params(tau_mem=TAU, dt=DT, r=1.0 / (1.0 - BETA)))
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(b)
        mods.append(m)

    def forward():
        h = x
        for m in mods:
            h, _ = m(h)
        return h

    return _torch_peer([p for m in mods for p in m.parameters()], forward)


def _leaky():
    import snntorch as snn

    return snn.Leaky(beta=BETA, threshold=1.0, reset_mechanism="subtract", reset_delay=False)


def snntorch(x: torch.Tensor, layers) -> Peer:
    """snnTorch's tutorial idiom: each ``Linear`` then ``snn.Leaky`` inside the time loop."""
    fcs = [_linear(w, b) for w, b in layers]
    lifs = [_leaky() for _ in layers]

    def forward():
        mems = [lif.reset_mem() for lif in lifs]
        rec = []
        for t in range(x.shape[0]):
            h = x[t]
            for i, (fc, lif) in enumerate(zip(fcs, lifs)):
                h, mems[i] = lif(fc(h), mems[i])
            rec.append(h)
        return torch.stack(rec)

    return _torch_peer([p for fc in fcs for p in fc.parameters()], forward)


def snntorch_hoisted(x: torch.Tensor, layers) -> Peer:
    """snnTorch with each ``Linear`` applied once to all T steps, then the ``snn.Leaky`` time loop."""
    fcs = [_linear(w, b) for w, b in layers]
    lifs = [_leaky() for _ in layers]

    def forward():
        h = x
        for fc, lif in zip(fcs, lifs):
            mem, rec = lif.reset_mem(), []
            # unbind, not cur[t]: the backward of T selections would write T full-size zero tensors
            for cur in fc(h).unbind(0):  # fc(h) (T, B, N)
                spk, mem = lif(cur, mem)
                rec.append(spk)
            h = torch.stack(rec)
        return h

    return _torch_peer([p for fc in fcs for p in fc.parameters()], forward)


def spikingjelly(x: torch.Tensor, layers) -> Peer:
    """SpikingJelly 2.0, multi-step mode (``step_mode='m'``, torch backend on the CPU)."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    mods = []
    for w, b in layers:
        fc = layer.Linear(w.shape[0], w.shape[1])
        with torch.no_grad():
            fc.weight.copy_(w.t())
            fc.bias.copy_(b)
        mods += [fc, neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=1.0, v_reset=None,
                                    surrogate_function=surrogate.ATan(), detach_reset=True)]  # fmt: skip
    net = nn.Sequential(*mods)
    functional.set_step_mode(net, "m")

    def forward():
        functional.reset_net(net)
        return net(x)

    return _torch_peer(list(net.parameters()), forward)


def norse(x: torch.Tensor, layers) -> Peer:
    """Norse: one ``Linear`` over the whole sequence per layer, then a ``LIFBoxCell`` loop over ``unbind(0)``."""
    from norse.torch import LIFBoxCell, LIFBoxParameters
    from norse.torch.functional.reset import reset_subtract

    fcs = [_linear(w, b, scale=1.0 / (1.0 - BETA)) for w, b in layers]
    par = LIFBoxParameters(tau_mem_inv=torch.tensor((1.0 - BETA) / DT), v_th=torch.tensor(1.0),
                           v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0),
                           reset_method=reset_subtract)  # fmt: skip
    cells = [LIFBoxCell(par, dt=DT) for _ in layers]

    def forward():
        h = x
        for fc, cell in zip(fcs, cells):
            state, rec = None, []
            for cur in fc(h).unbind(0):
                z, state = cell(cur, state)
                rec.append(z)
            h = torch.stack(rec)
        return h

    return _torch_peer([p for fc in fcs for p in fc.parameters()], forward)


def spyx(x: torch.Tensor, layers) -> Peer:
    """Spyx (JAX): the neuron of the module docstring under ``spyx.nn.run``, the step one jitted gradient."""
    os.environ.setdefault("XLA_FLAGS", XLA_ONE_THREAD)  # read when JAX's CPU backend starts
    import jax
    import jax.numpy as jnp
    import numpy as np
    import spyx as sx
    from flax import nnx

    def atan_grad(v, alpha=2.0):  # the surrogate of EvoSpikeNet's ATan (alpha = 2)
        return (alpha / 2.0) / (1.0 + (math.pi / 2.0 * alpha * v) ** 2)

    spike = sx.axn.custom(bwd=atan_grad, fwd=lambda v: (v >= 0).astype(v.dtype))

    class LIF(nnx.Module):
        """Spyx's stateful-layer contract: ``(x_t, V) -> (S_t, V_t)`` and ``initial_state(batch)``."""

        def __init__(self, n: int):
            self.n = n

        def __call__(self, cur, v):
            h = BETA * v + cur
            s = spike(h - 1.0)
            return s, h - jax.lax.stop_gradient(s)

        def initial_state(self, batch_size):
            return jnp.zeros((batch_size, self.n), jnp.float32)

    lifs = [LIF(w.shape[1]) for w, _ in layers]
    params = [(jnp.asarray(w.numpy()), jnp.asarray(b.numpy())) for w, b in layers]
    xj = jnp.asarray(x.numpy())

    def forward(params, h):
        for (w, b), lif in zip(params, lifs):
            h, _ = sx.nn.run(lif, h @ w + b)  # (T, B, N): the Linear over all steps, then the scan
        return h

    grad = jax.jit(jax.grad(lambda p, h: forward(p, h).sum()))
    fwd = jax.jit(forward)

    def step():
        jax.block_until_ready(grad(params, xj))

    def spikes():
        return torch.from_numpy(np.array(fwd(params, xj))).float()  # a writable copy

    return Peer(step, spikes)


BUILDERS = {
    "evospikenet": evospikenet,
    "snntorch": snntorch,
    "snntorch_hoisted": snntorch_hoisted,
    "spikingjelly": spikingjelly,
    "norse": norse,
    "spyx": spyx,
}
