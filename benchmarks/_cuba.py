"""The Vogels-Abbott CUBA network of ``benchmarks/core.py`` as EvoSpikeNet flat networks (float and int16).

4000 LIF neurons (rows 0..3199 excitatory, 3200..3999 inhibitory), each ordered pair connected with
probability 0.02 (no autapses), ``dt = 0.1`` ms, ``tau_m = 20``, ``tau_e = 5``, ``tau_i = 10`` ms,
``V_th = -50``, ``V_reset = -60``, ``E_L = -49`` mV, jumps of 1.62 and -9 mV, 5 ms refractory, one step of
synaptic delay: the network of ``scripts/brian2_cuba.py`` and ``scripts/nest_cuba.py``.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch

__all__ = ["cuba_flats"]


def _cuba_structure(seed: int = 1):
    """Random CUBA connectivity: rows 0..3199 excitatory, 3200..3999 inhibitory, each synapse p = 0.02."""
    g = torch.Generator().manual_seed(seed)
    n = 4000
    mask = torch.rand(n, n, generator=g) < 0.02
    mask.fill_diagonal_(False)
    groups = []
    for rows in (slice(0, 3200), slice(3200, n)):
        m = torch.zeros_like(mask)
        m[rows] = mask[rows]
        crow = torch.zeros(n + 1, dtype=torch.int32)
        crow[1:] = m.sum(1).cumsum(0).to(torch.int32)
        groups.append((crow, m.nonzero()[:, 1].to(torch.int32).contiguous()))
    u0 = torch.rand(n, generator=g)  # initial v = Vr + u0 (Vt - Vr)
    return n, groups, u0


def cuba_flats(seed: int = 1):
    """Float network in mV, and its int16 quantisation (membrane relative to El in units of ``unit`` mV)."""
    n, (exc, inh), u0 = _cuba_structure(seed)
    dt, taum, taue, taui = 0.1, 20.0, 5.0, 10.0  # ms
    vt, vr, el, we, wi = -50.0, -60.0, -49.0, 60 * 0.27 / 10, -20 * 4.5 / 10  # mV
    beta, refr = math.exp(-dt / taum), torch.full((n,), 50, dtype=torch.int32)  # 5 ms refractory
    full = lambda v, dtype=torch.float32: torch.full((n,), v, dtype=dtype)  # noqa: E731

    def grp(c, w, dtype, **kw):  # one synapse group, every weight w
        return SimpleNamespace(
            crow=c[0], col=c[1], delay=1, values=torch.full(c[1].shape, w, dtype=dtype), **kw
        )

    fl = SimpleNamespace(
        kind="float", n=n, beta=full(beta), gain=full(1 - beta), v_th=full(vt), v_reset=full(vr),
        v_rest=full(el),
        refractory_steps=refr, reset="zero", bias=full(0.0), v0=vr + u0 * (vt - vr), leak_shift=None,
        synapses=[grp(exc, we, dtype=torch.float32, decay=math.exp(-dt / taue), syn_shift=-1),
                  grp(inh, wi, dtype=torch.float32, decay=math.exp(-dt / taui), syn_shift=-1)],
    )  # fmt: skip
    # int16: weights int8 with scale ws (|wi| -> 127); currents carry w_shift fractional bits; the membrane,
    # zero at El (the leak's fixed point), counts units of gain * ws * 2 so one weight unit moves it by 1/2.
    ws, w_shift = abs(wi) / 127, 12
    unit = (1 - beta) * ws * 2
    q = lambda mv: round(mv / unit)  # noqa: E731
    i16 = torch.int16
    it = SimpleNamespace(
        kind="int16", n=n, leak_shift=full(0, torch.int32), leak_mul=full(round(beta * 65536), torch.int32),
        leak_bits=16, v_th=full(q(vt - el), i16), v_reset=full(q(vr - el), i16), v_rest=full(0, i16),
        refractory_steps=refr, reset="zero", bias=full(0, torch.int32), i_shift=w_shift + 1,
        v0=torch.tensor([q(vr - el + float(u) * (vt - vr)) for u in u0], dtype=i16),
        synapses=[grp(exc, round(we / ws), dtype=torch.int8, syn_mul=round(math.exp(-dt / taue) * 65536),
                      w_shift=w_shift, syn_shift=-1, decay=0.0),
                  grp(inh, round(wi / ws), dtype=torch.int8, syn_mul=round(math.exp(-dt / taui) * 65536),
                      w_shift=w_shift, syn_shift=-1, decay=0.0)],
    )  # fmt: skip
    return fl, it
