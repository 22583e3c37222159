r"""A whole network on one global neuron index space, for native multi-step backends.

``flatten(net)`` concatenates the populations in order (population ``p`` owns global indices
``offset_p .. offset_p + n_p - 1``) and re-indexes every projection onto the global ``(n, n)`` space. A
backend then runs, for ``t = 0 .. n_steps - 1`` (batch 1, all tensors on one device):

.. math::

    I^g_t &= \text{decay}_g I^g_{t-1} + \textstyle\sum_{i : s_{t - d_g, i}} W^g_{i \cdot}
            \quad(\text{float; } \text{decay}_g = 0 \text{ is a delta synapse})\\
    I^g_t &= I^g_{t-1} - (I^g_{t-1} \gg k_g) + \textstyle\sum_{i : s_{t - d_g, i}} W^g_{i \cdot}
            \quad(\text{int16; } k_g = -1 \text{ is a delta synapse: } I^g_t = \text{the sum alone})\\
    I_t &= \text{bias} + \textstyle\sum_g I^g_t \qquad (s_{t'} = 0 \text{ for } t' < 0)

followed by one neuron step with ``I_t``: on the float path exactly ``lif_step``,
``H = v_rest + beta (V - v_rest) + gain I``, spike ``H >= v_th``, reset by ``reset``, refractory hold at
``v_reset`` for ``refractory_steps``; on the int16 path exactly ``int_lif_step``:
``H = sat16(leak(V) + sat16(I))`` in int32 with the rounded leak ``leak(V) = V - ((V + h(k)) >> k)``,
``k = leak_shift``, when ``leak_bits == 0``, or ``(V * leak_mul + h(leak_bits)) >> leak_bits`` otherwise
(``h(b) = 2^(b-1)``, ``h(0) = 0``: round to nearest), spike ``H >= v_th``, reset, refractory.
Synaptic currents are float32 (float path) or int32 (int16 path) of shape (n,).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import torch

if TYPE_CHECKING:
    from .network import Network

__all__ = ["FlatNetwork", "SynapseGroup", "flatten", "run_flat_reference"]


class SynapseGroup(NamedTuple):
    """One projection on the global index space (rows: presynaptic, columns: postsynaptic)."""

    crow: torch.Tensor  # int32 (n + 1,) row pointers; rows outside the pre population are empty
    col: torch.Tensor  # int32 (nnz,) global postsynaptic indices, sorted within a row
    values: torch.Tensor  # (nnz,) float32 (float path) or int8 (int16 path) weights
    decay: float  # float path: per-step current decay exp(-dt/tau_syn); 0.0 = delta synapse (and on int path)
    syn_shift: int  # int16 path: current decay shift k (I -= I >> k); -1 = delta synapse (and on float path)
    delay: int  # steps from a spike to its current (>= 1)


class FlatNetwork(NamedTuple):
    """Every per-neuron quantity of a network as (n,) tensors on the global index space (batch 1).

    Fields not used by a path are ``None`` (``beta``/``gain`` on the int16 path, ``leak_shift`` on the
    float path).
    """

    kind: str  # "float" (lif neurons, float32) or "int16" (int neurons)
    n: int  # total number of neurons
    beta: torch.Tensor | None  # float32 (n,) membrane decay exp(-dt/tau_mem) (float path)
    leak_shift: torch.Tensor | None  # int32 (n,) leak shift k, V -= V >> k (int16 path)
    gain: torch.Tensor | None  # float32 (n,) input gain (1 - beta) * R (float path)
    v_th: torch.Tensor  # (n,) threshold: float32 (float) or int16 (int16 path)
    v_reset: torch.Tensor  # (n,) reset / refractory potential, same dtype as v_th
    v_rest: torch.Tensor  # (n,) resting potential, same dtype as v_th (zeros on the int16 path)
    refractory_steps: torch.Tensor  # int32 (n,) refractory period in steps
    reset: str  # "subtract", "zero" or "none" (float only), shared by all neurons
    synapses: list[SynapseGroup]  # one per projection, in the network's order
    bias: torch.Tensor  # (n,) constant input current: float32 (float) or int32 (int16 path)
    v0: torch.Tensor  # (n,) initial membrane: float32 (float) or int16 (int16 path)
    dt: float = 1e-3  # step length (s)
    populations: tuple = ()  # ((name, offset, n), ...) the slice of the global space each population owns
    leak_mul: torch.Tensor | None = None  # int32 (n,) multiplier m of leak="mul" (int16 path, leak_bits > 0)
    leak_bits: int = 0  # b of leak="mul", V <- (V * m) >> b; 0 = shift leak (leak_shift) for every neuron


def _cat(parts: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat(parts) if len(parts) > 1 else parts[0].clone()


def flatten(net: Network) -> FlatNetwork:
    """Describe ``net`` (batch 1; lif neurons only, or int neurons with shift leak only) as a ``FlatNetwork``.

    Constant ``CurrentInput``s become ``bias``; the current membrane (batch 0) becomes ``v0``. Poisson and
    time-varying inputs, rules, synaptic currents in flight and refractory counters are not represented:
    ``Network.native_unsupported_reason()`` says when that matters. Raises ``ValueError`` when the network
    cannot be described (mixed neuron kinds, Loihi neurons, mixed reset modes or leaks, batch > 1).
    """
    from .inputs import CurrentInput

    pops = list(net.populations.values())
    kinds = {p.neuron for p in pops}
    if kinds not in ({"lif"}, {"int"}):
        raise ValueError(f"flatten needs only 'lif' or only 'int' neurons, got neuron kinds {sorted(kinds)}")
    if net.batch != 1:
        raise ValueError(f"flatten needs batch=1, got batch={net.batch}")
    resets = {p.params.reset for p in pops}
    if len(resets) != 1:
        raise ValueError(f"flatten needs one reset mode for all populations, got {sorted(resets)}")
    is_int = kinds == {"int"}
    leaks = (
        {(p.params.leak, p.params.leak_bits if p.params.leak == "mul" else 0) for p in pops}
        if is_int
        else set()
    )
    if len(leaks) > 1:
        raise ValueError(
            f"flatten needs one leak mode (and leak_bits) on every int population, got {sorted(leaks)}"
        )
    dev = net.device
    offsets, off = {}, 0
    for p in pops:
        offsets[p.name] = off
        off += p.n
    n = off
    vdt = torch.int16 if is_int else torch.float32

    def per_pop(fn, dtype) -> torch.Tensor:
        return _cat([torch.as_tensor(fn(p)).to(dev, dtype).expand(p.n) for p in pops])

    prm = {p.name: p.params for p in pops}
    beta = gain = leak_shift = leak_mul = None
    leak_bits = 0
    if is_int:
        leak_shift = per_pop(lambda p: prm[p.name].leak_shift, torch.int32)
        leak_bits = next(iter(leaks))[1]
        leak_mul = per_pop(lambda p: prm[p.name].leak_mul, torch.int32) if leak_bits else None
        v_rest = torch.zeros(n, dtype=vdt, device=dev)
        refr = per_pop(lambda p: prm[p.name].refractory, torch.int32)
    else:
        beta = per_pop(lambda p: prm[p.name].beta, torch.float32)
        gain = per_pop(lambda p: (1.0 - prm[p.name].beta) * prm[p.name].r, torch.float32)
        v_rest = per_pop(lambda p: prm[p.name].v_rest, vdt)
        refr = per_pop(lambda p: prm[p.name].refractory_steps, torch.int32)
    v_th = _cat([p.v_th.to(dev, vdt) for p in pops])
    v_reset = per_pop(lambda p: prm[p.name].v_reset, vdt)
    v0 = _cat([p.state.v[0].to(vdt) for p in pops])
    bias = torch.zeros(n, dtype=torch.int32 if is_int else torch.float32, device=dev)
    for inp in net.inputs:
        if isinstance(inp, CurrentInput) and inp.is_constant:
            c = inp.constant
            if c.ndim == 2 and c.shape[0] != 1:
                raise ValueError(
                    f"flatten needs a batch-independent constant current, got shape {tuple(c.shape)}"
                )
            o = offsets[inp.target.name]
            bias[o : o + inp.target.n] += c.reshape(-1, c.shape[-1] if c.ndim else 1)[0].to(dev, bias.dtype)
    groups = []
    for proj in net.projections.values():
        crow, col, val = proj.crow.to(torch.int64), proj.col, proj.values
        o_pre, o_post = offsets[proj.pre.name], offsets[proj.post.name]
        g_crow = torch.zeros(n + 1, dtype=torch.int64, device=dev)
        g_crow[o_pre + 1 : o_pre + proj.pre.n + 1] = crow[1:].to(dev)
        g_crow[o_pre + proj.pre.n + 1 :] = col.numel()
        shift = proj.decay_shift
        groups.append(SynapseGroup(
            crow=g_crow.to(torch.int32),
            col=(col.to(dev, torch.int64) + o_post).to(torch.int32),
            values=val.to(dev).clone(),
            decay=float(proj.decay),
            syn_shift=-1 if shift is None else int(shift),
            delay=int(proj.delay),
        ))  # fmt: skip
    return FlatNetwork(
        kind="int16" if is_int else "float", n=n, beta=beta, leak_shift=leak_shift, gain=gain,
        v_th=v_th, v_reset=v_reset, v_rest=v_rest, refractory_steps=refr, reset=resets.pop(),
        synapses=groups, bias=bias, v0=v0, dt=float(net.dt),
        populations=tuple((p.name, offsets[p.name], p.n) for p in pops),
        leak_mul=leak_mul,
        leak_bits=leak_bits,
    )  # fmt: skip


@torch.no_grad()
def run_flat_reference(flat: FlatNetwork, n_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Executable specification of a native backend: steps ``flat`` exactly as the module docstring says.

    Returns ``(spike_steps int64 (E,), spike_ids int64 (E,), v_final (n,))``, events in (step, id) order.
    Slow (one Python iteration per step); native backends are tested against it.
    """
    from .csr import make_csr
    from .propagate import propagate_events

    n, is_int = flat.n, flat.kind == "int16"
    csrs = [make_csr(g.crow, g.col, g.values, n, n) for g in flat.synapses]
    depth = max([g.delay for g in flat.synapses], default=1)
    hist: list[torch.Tensor | None] = [None] * depth
    acc = torch.int32 if is_int else torch.float32
    i_syn = [torch.zeros(n, dtype=acc, device=flat.v0.device) for _ in flat.synapses]
    v = flat.v0.clone().to(torch.int32 if is_int else torch.float32)
    refrac = torch.zeros(n, dtype=torch.int32, device=v.device)
    steps, ids = [], []
    for t in range(n_steps):
        cur = flat.bias.clone()
        for k, (g, csr) in enumerate(zip(flat.synapses, csrs)):
            s = hist[(t - g.delay) % depth] if t >= g.delay else None
            arr = propagate_events(csr, s) if s is not None else None
            if is_int and g.syn_shift >= 0:
                i_syn[k] -= i_syn[k] >> g.syn_shift
            elif not is_int:
                i_syn[k] *= g.decay
            else:
                i_syn[k].zero_()
            if arr is not None:
                i_syn[k] += arr
            cur += i_syn[k]
        active = refrac <= 0
        if is_int:
            if flat.leak_bits:
                leaked = (v * flat.leak_mul + ((1 << flat.leak_bits) >> 1)) >> flat.leak_bits
            else:
                k = flat.leak_shift
                leaked = v - ((v + (torch.ones_like(k) << k >> 1)) >> k)
            h = (leaked + cur.clamp(-32768, 32767)).clamp(-32768, 32767)
        else:
            h = flat.v_rest + flat.beta * (v - flat.v_rest) + flat.gain * cur
        h = torch.where(active, h, flat.v_reset.to(h.dtype))
        fired = (h >= flat.v_th) & active
        refrac = torch.where(fired, flat.refractory_steps, (refrac - 1).clamp(min=0))
        if flat.reset == "subtract":
            v = torch.where(fired, h - flat.v_th, h)
        elif flat.reset == "zero":
            v = torch.where(fired, flat.v_reset.to(h.dtype), h)
        else:
            v = h
        hist[t % depth] = fired
        idx = fired.nonzero().reshape(-1)
        steps.append(torch.full_like(idx, t))
        ids.append(idx)
    cat = (lambda xs: torch.cat(xs)) if steps else (lambda xs: torch.zeros(0, dtype=torch.int64))
    return cat(steps), cat(ids), v.to(flat.v0.dtype)
