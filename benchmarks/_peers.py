"""The ``train_step`` workload in each framework: build once, then ``step()`` = forward over all T + backward.

Every peer gets the same layer (``Linear(N, N)`` then LIF, beta = exp(-dt/tau) = exp(-1/10) ~ 0.905, threshold
1, subtract reset), the same binary input ``x`` (T, B, N) and the same loss ``spikes.sum()``. A builder
returns ``step`` or raises ImportError when its framework is not installed.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["BUILDERS", "TAU", "DT"]

TAU, DT = 10e-3, 1e-3  # membrane time constant and step (s)
BETA = math.exp(-DT / TAU)


def evospikenet(x: torch.Tensor):
    """EvoSpikeNet's fused layer (one matmul over T*B rows, sparse when the input is, C++ LIF time loop)."""
    from evospikenet.functional.fused import SpikingLinearLIF
    from evospikenet.functional.lif import lif_params

    n = x.shape[-1]
    layer = SpikingLinearLIF(n, n, lif_params(tau_mem=TAU, dt=DT, r=1.0 / (1.0 - BETA)))

    def step():
        layer.zero_grad(set_to_none=True)
        s, _ = layer(x)
        s.sum().backward()

    return step


def snntorch(x: torch.Tensor):
    """snnTorch's tutorial idiom: ``Linear`` then ``snn.Leaky`` inside the time loop."""
    import snntorch as snn

    n = x.shape[-1]
    fc, lif = nn.Linear(n, n), snn.Leaky(beta=BETA, threshold=1.0, reset_mechanism="subtract")

    def step():
        fc.zero_grad(set_to_none=True)
        mem = lif.init_leaky()
        rec = []
        for t in range(x.shape[0]):
            cur = fc(x[t])
            spk, mem = lif(cur, mem)
            rec.append(spk)
        torch.stack(rec).sum().backward()

    return step


def spikingjelly(x: torch.Tensor):
    """SpikingJelly 2.0, multi-step mode (``step_mode='m'``, torch backend on the CPU)."""
    from spikingjelly.activation_based import functional, layer, neuron, surrogate

    n = x.shape[-1]
    net = nn.Sequential(
        layer.Linear(n, n),
        neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=True, v_threshold=1.0, v_reset=None,
                       surrogate_function=surrogate.ATan(), detach_reset=True),
    )  # fmt: skip
    functional.set_step_mode(net, "m")

    def step():
        net.zero_grad(set_to_none=True)
        functional.reset_net(net)
        net(x).sum().backward()

    return step


def norse(x: torch.Tensor):
    """Norse: one ``Linear`` over the whole sequence, then a ``LIFBoxCell`` loop over ``unbind(0)``."""
    from norse.torch import LIFBoxCell, LIFBoxParameters

    n = x.shape[-1]
    fc = nn.Linear(n, n)
    par = LIFBoxParameters(tau_mem_inv=torch.tensor(1.0 / TAU), v_th=torch.tensor(1.0),
                           v_leak=torch.tensor(0.0), v_reset=torch.tensor(0.0))  # fmt: skip
    cell = LIFBoxCell(par, dt=DT)

    def step():
        fc.zero_grad(set_to_none=True)
        state, rec = None, []
        for cur in fc(x).unbind(0):
            z, state = cell(cur, state)
            rec.append(z)
        torch.stack(rec).sum().backward()

    return step


BUILDERS = {"evospikenet": evospikenet, "snntorch": snntorch, "spikingjelly": spikingjelly, "norse": norse}
