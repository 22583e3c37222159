r"""Native (C++) simulation loop: all ``n_steps`` of a flattened network in one call, event-driven.

Per-step dispatch overhead of tensor ops (80-170 us) dominates small-network simulation, so this backend runs
the whole time loop in C++ over the CSR arrays of :class:`FlatNetwork` (row = presynaptic neuron). Each step

.. math::

    I_g &\leftarrow d_g I_g + W_g^T s_{t - D_g}                      \quad (d_g = 0: \text{delta synapse})\\
    H &= V_{rest} + \beta (V - V_{rest}) + \text{gain} \, (b + \textstyle\sum_g I_g)\\
    S &= [H \ge V_{th}], \qquad
    V = H - S V_{th} \;(\text{subtract}),\; V_{reset} \;(\text{zero}),\; H \;(\text{none})

and a refractory neuron is held at ``V_reset`` without firing. ``W^T s`` is computed event-driven: only the
CSR rows of neurons that spiked are read (a spike of ``j`` adds row ``j`` into the currents). The integer
path follows :mod:`evospikenet.functional.integer_lif` (int16 membrane, leak ``V - (V >> k)``, int32
currents with shift decay ``I - (I >> s)`` or delta when ``s = -1``, saturation to int16, int8 weights), with
the rounded leaks of :mod:`evospikenet.core.flat` (``V - ((V + 2^(k-1)) >> k)`` or ``(V m + 2^(b-1)) >> b``).
Spikes match ``flat.run_flat_reference`` exactly (same summation order).

The C++ source is ``evospikenet/csrc/native.cpp`` (one time loop templated over the float and integer
models), built on first use by :func:`evospikenet._native_build.build_sources` (``-O3``, cached under
``~/.cache/torch_extensions``). Without a working compiler ``native_available()`` is False and ``run_flat``
raises ``RuntimeError``.
"""

from __future__ import annotations

import functools

import torch

__all__ = ["native_available", "load_native", "run_flat", "propagate_events"]


@functools.cache
def load_native():
    """Compile (once, cached on disk) and return the extension module; raises RuntimeError if impossible."""
    try:
        from .._native_build import build_sources, csrc

        return build_sources("evospikenet_native", [csrc("native.cpp")])
    except Exception as exc:  # compiler missing, headers missing, build error
        raise RuntimeError(
            "the native backend needs a working C++ compiler (g++/clang and ninja) to build its extension: "
            f"{exc}"
        ) from exc


def native_available() -> bool:
    """True if the C++ extension builds (or is already built) on this machine."""
    try:
        load_native()
    except RuntimeError:
        return False
    return True


_RESETS = {"subtract": 0, "zero": 1, "none": 2}


def _vec(x, n: int, dtype: torch.dtype) -> torch.Tensor:
    """Per-neuron (n,) contiguous CPU tensor of ``dtype`` from a scalar or tensor."""
    t = torch.as_tensor(x).detach().to("cpu")
    if t.is_floating_point() and not dtype.is_floating_point:
        t = t.round()
    return t.to(dtype).expand(n).contiguous() if t.numel() == 1 else t.to(dtype).reshape(n).contiguous()


def run_flat(flat, n_steps: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Simulate a ``FlatNetwork`` for ``n_steps`` in one native call.

    Returns ``(spike_steps, spike_ids, v_final)``: int64 (M,) step and neuron of every spike, in time order
    (neurons ascending within a step), and the final membrane (n,) (float32, or int16 on the integer path),
    on the device of ``flat.v0``. Raises ``RuntimeError`` if the extension cannot be built.
    """
    if not isinstance(n_steps, int) or isinstance(n_steps, bool) or n_steps < 0:
        raise ValueError(f"n_steps must be a non-negative integer, got {n_steps!r}")
    if flat.reset not in _RESETS:
        raise ValueError(f"reset must be one of {tuple(_RESETS)}, got {flat.reset!r}")
    if flat.kind not in ("float", "int16"):
        raise ValueError(f"kind must be 'float' or 'int16', got {flat.kind!r}")
    ext = load_native()
    n, device = int(flat.n), flat.v0.device
    groups = list(flat.synapses)
    for g in groups:
        if int(g.delay) < 1:
            raise ValueError(f"delay must be at least 1 step, got {g.delay!r}")
    crows = [g.crow.detach().to("cpu", torch.int32).contiguous() for g in groups]
    cols = [g.col.detach().to("cpu", torch.int32).contiguous() for g in groups]
    delays = [int(g.delay) for g in groups]
    refr = _vec(flat.refractory_steps, n, torch.int32)
    if flat.kind == "float":
        f32 = torch.float32
        vals = [g.values.detach().to("cpu", f32).contiguous() for g in groups]
        s, ids, v = ext.run_float(
            n_steps, _vec(flat.beta, n, f32), _vec(flat.gain, n, f32), _vec(flat.v_th, n, f32),
            _vec(flat.v_reset, n, f32), _vec(flat.v_rest, n, f32), refr, _vec(flat.bias, n, f32),
            _vec(flat.v0, n, f32), _RESETS[flat.reset], crows, cols, vals, [float(g.decay) for g in groups],
            delays,
        )  # fmt: skip
    else:
        if flat.reset == "none":
            raise ValueError("reset must be 'subtract' or 'zero' on the integer path, got 'none'")
        i32 = torch.int32
        vals = [g.values.detach().to("cpu", torch.int8).contiguous() for g in groups]
        # Optional fixed-point refinements (absent from a plain FlatNetwork; defaults give the contract):
        # multiply leak (V * leak_mul) >> leak_bits, synaptic decay (I * syn_mul) >> 16, weights << w_shift
        # into the current, and the summed current >> i_shift into the membrane.
        leak_mul, leak_bits = getattr(flat, "leak_mul", None), int(getattr(flat, "leak_bits", 0) or 0)
        leak_mul = _vec(0 if leak_mul is None else leak_mul, n, i32)
        muls = [int(getattr(g, "syn_mul", -1)) for g in groups]
        w_shifts = [int(getattr(g, "w_shift", 0)) for g in groups]
        s, ids, v = ext.run_int(
            n_steps, _vec(0 if flat.leak_shift is None else flat.leak_shift, n, i32), leak_mul, leak_bits,
            _vec(flat.v_th, n, i32), _vec(flat.v_reset, n, i32), refr, _vec(flat.bias, n, i32),
            _vec(flat.v0, n, torch.int16),
            _RESETS[flat.reset], int(getattr(flat, "i_shift", 0)), crows, cols, vals,
            [int(g.syn_shift) for g in groups], muls, w_shifts, delays,
        )  # fmt: skip
    return s.to(device), ids.to(device), v.to(device)


def propagate_events(
    crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor, spike_ids: torch.Tensor, out: torch.Tensor
) -> torch.Tensor:
    """Add the CSR rows of ``spike_ids`` into ``out`` in place (``out[col] += value``) and return ``out``.

    ``crow``/``col`` int32 CPU, ``values`` float32 (``out`` float32) or int8 (``out`` int32).
    """
    if values.dtype not in (torch.float32, torch.int8):
        raise ValueError(f"values must be float32 or int8, got {values.dtype}")
    want = torch.float32 if values.dtype == torch.float32 else torch.int32
    if out.dtype != want or not out.is_contiguous() or out.device.type != "cpu":
        raise ValueError(f"out must be a contiguous CPU {want} tensor, got {out.dtype} on {out.device}")
    for name, t in (("crow", crow), ("col", col)):
        if t.dtype != torch.int32 or t.device.type != "cpu":
            raise ValueError(f"{name} must be an int32 CPU tensor, got {t.dtype} on {t.device}")
    load_native().propagate(
        crow.contiguous(), col.contiguous(), values.contiguous(), spike_ids.to(torch.int64), out
    )
    return out
