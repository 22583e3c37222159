r"""Export networks with the ``loihi`` profile to Lava and run them there, from the main venv.

**Trained classifiers** (:class:`evospikenet.quant.loihi.LoihiNet`, e.g. ``quantize_ecg(model)``):
:func:`save_loihi` writes the npz a Loihi 2 deployment needs (spec JSON + integer arrays), :func:`load_loihi`
reads and validates it, :func:`run_lava_loihi` streams samples through Lava's bit-accurate simulator (the
mapping is described in ``hub/lava/runner.py``) and returns spikes and readout voltages shaped as
:func:`evospikenet.quant.loihi.run_loihi` returns them.

**Core networks** (``evospikenet.core.Network``, below). Mapping (every population ``neuron="loihi"``, every projection a delta synapse with ``delay=1``):

* ``Population`` -> ``LIF(du, dv, vth, bias_mant, bias_exp, u, v)``. Lava's LIF takes one scalar ``vth``, so
  the per-neuron thresholds of the population must all be equal; initial ``v0`` is carried per neuron.
* ``Projection`` (int8 ``W`` of shape (pre, post)) -> ``Dense(weights = 2 W^T, weight_exp = -1)``.
  Lava's bit-accurate Dense clips weights to 8 bits and, for a matrix of *mixed* sign, truncates the least
  significant bit (``(w >> 1) << 1``: only even weights survive). Doubling the weights makes them even and
  ``weight_exp = -1`` (an arithmetic right shift of the accumulated sum by one) divides the exact sum of
  even numbers back, so the current equals ``W^T s`` bit for bit. (An all-negative matrix with an entry
  -128 would be clipped by the inhibitory sign mode: refused.)
* Delay: Lava's Dense sends at step ``t`` the accumulation of the spikes it received at ``t - 1`` (its
  ``a_buff``), which is exactly our projection with ``delay = 1``; other delays are refused.
* The LIF arithmetic is the same on both sides: ``loihi_lif_step`` follows ``PyLifModelBitAcc`` (``du + 1``
  current decay, sign-magnitude truncation, 24-bit wrap of ``u``, clip of ``v``, ``v > vth << 6``, reset
  to 0) and both shift the input by 6 bits.

``run_lava`` writes the npz, runs ``hub/lava/runner.py`` with ``.venv-lava/bin/python`` in a subprocess and
returns the spike trains ``{pop: (n_steps, n) int8}``; ``run_core`` runs the same network on our core.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from evospikenet.core import Network, Population, Projection, fixed_probability

__all__ = [
    "LAVA_VENV",
    "lava_python",
    "lava_unavailable_reason",
    "export_lava",
    "run_lava",
    "run_core",
    "random_network",
    "save_loihi",
    "load_loihi",
    "run_lava_loihi",
]

ROOT = Path(__file__).resolve().parents[2]
LAVA_VENV = Path(os.environ.get("EVOSPIKENET_LAVA_VENV", ROOT / ".venv-lava"))
RUNNER = Path(__file__).with_name("runner.py")


def lava_python() -> Path:
    """The interpreter of the Lava venv."""
    return LAVA_VENV / "bin" / "python"


def lava_unavailable_reason() -> str | None:
    """None when ``.venv-lava`` has lava-nc, else why not (for skips)."""
    py = lava_python()
    if not py.is_file():
        return f"no Lava venv at {LAVA_VENV} (build it with `make lava-venv`)"
    r = subprocess.run([str(py), "-c", "import lava.proc.lif.process"], capture_output=True, text=True)
    if r.returncode != 0:
        return f"lava-nc does not import in {LAVA_VENV}: {r.stderr.strip()[-300:]}"
    return None


def _dense(proj) -> np.ndarray:
    return proj.weights.to_dense().cpu().numpy().astype(np.int32)  # (pre, post)


def export_lava(net: Network, path, n_steps: int = 100) -> Path:
    """Write ``net`` (loihi populations, delay-1 delta projections) as the runner's npz; returns the path."""
    if not isinstance(net, Network):
        raise ValueError(f"net must be an evospikenet.core.Network, got {type(net).__name__}")
    if net.inputs or net.rules:
        raise ValueError("net must have no inputs or rules for Lava export (drive it with bias_mant)")
    arrays, pops, projs = {}, [], []
    for name, p in net.populations.items():
        if p.neuron != "loihi":
            raise ValueError(f"population {name!r} has neuron={p.neuron!r}; Lava export needs 'loihi'")
        vth = p.v_th.unique()
        if vth.numel() != 1:
            raise ValueError(f"population {name!r} has per-neuron thresholds; Lava's LIF takes one vth")
        q = p.params
        pops.append(dict(name=name, n=p.n, du=q.du, dv=q.dv, vth=int(vth), bias_exp=q.bias_exp))
        arrays["bias_" + name] = np.full(p.n, q.bias_mant, dtype=np.int32)
        v0 = p.v0 if p.v0 is not None else torch.zeros(p.n, dtype=torch.int32)
        arrays["v0_" + name] = v0.cpu().numpy().astype(np.int32)
        arrays["u0_" + name] = np.zeros(p.n, dtype=np.int32)
    for name, pr in net.projections.items():
        if pr.delay != 1 or pr.tau_syn is not None or pr.syn_shift is not None:
            raise ValueError(f"projection {name!r} must be a delta synapse with delay=1 for Lava export")
        w = _dense(pr)
        if w.max() <= 0 and w.min() == -128:
            raise ValueError(f"projection {name!r}: an all-inhibitory matrix with -128 is clipped by Lava")
        arrays["w_" + name] = (2 * w).T.copy()  # (post, pre), even: survives Dense's LSB truncation
        projs.append(dict(name=name, pre=pr.pre.name, post=pr.post.name, weight_exp=-1))
    spec = dict(n_steps=int(n_steps), populations=pops, projections=projs)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, spec=np.array(json.dumps(spec)), **arrays)
    return path


def _w8(n_pre, n_post, p, lo, hi, seed):
    g = torch.Generator().manual_seed(seed)
    return fixed_probability(
        n_pre,
        n_post,
        p,
        dtype=torch.int8,
        seed=seed,
        weight=lambda k, _g: torch.randint(lo, hi, (k,), generator=g).to(torch.int8),
    )


def random_network(n_a: int = 40, n_b: int = 160, seed: int = 0) -> Network:
    """A test network for the bridge: biased drivers ``a`` (random initial voltages) -> recurrent ``b``
    (mixed-sign int8 weights) -| ``a`` (inhibitory feedback); every population ``loihi``, delays 1."""
    g = torch.Generator().manual_seed(seed)
    a = Population(
        "a",
        n_a,
        "loihi",
        dict(du=4095, dv=256, vth=20, bias_mant=100, bias_exp=1),
        v0=torch.randint(0, 1280, (n_a,), generator=g).to(torch.int32),
    )
    b = Population("b", n_b, "loihi", dict(du=3000, dv=400, vth=40))
    return Network(
        [a, b],
        [
            Projection("ab", a, b, _w8(n_a, n_b, 0.3, -40, 90, seed + 1)),
            Projection("bb", b, b, _w8(n_b, n_b, 0.1, -128, 100, seed + 2)),
            Projection("ba", b, a, _w8(n_b, n_a, 0.05, -6, 0, seed + 3)),
        ],
    )


def run_lava(net: Network, n_steps: int, timeout: float = 600.0) -> tuple[dict[str, np.ndarray], float]:
    """Run ``net`` for ``n_steps`` on Lava (subprocess); returns ``({pop: (n_steps, n) int8}, seconds)``."""
    reason = lava_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "net.npz", Path(tmp) / "out.npz"
        export_lava(net, src, n_steps)
        r = subprocess.run(
            [str(lava_python()), str(RUNNER), str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if r.returncode != 0:
            raise RuntimeError(f"Lava runner failed ({r.returncode}): {r.stderr[-2000:]}")
        out = np.load(dst)
        return {k[len("spikes_") :]: out[k] for k in out.files if k.startswith("spikes_")}, float(
            out["elapsed_s"]
        )


def run_core(net: Network, n_steps: int) -> dict[str, np.ndarray]:
    """Run ``net`` (batch 1) for ``n_steps`` on our core; returns ``{pop: (n_steps, n) int8}``."""
    net.reset()
    rec = {name: [] for name in net.populations}
    for _ in range(n_steps):
        s = net.step()
        for name, x in s.items():
            rec[name].append(x[0].cpu().numpy().astype(np.int8))
    return {k: np.stack(v) for k, v in rec.items()}


def save_loihi(net, path) -> Path:
    """Write a ``LoihiNet`` as an npz (``spec`` JSON string + ``bias_*``/``w_*`` integer arrays), atomically."""
    spec, arrays = net.to_arrays()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        np.savez(f, spec=np.array(json.dumps(spec)), **arrays)
    os.replace(tmp, path)
    return path


def load_loihi(path):
    """Read and validate an npz written by :func:`save_loihi` (no pickle is ever loaded)."""
    from evospikenet.quant.loihi import LoihiNet

    with np.load(path, allow_pickle=False) as data:
        if "spec" not in data.files:
            raise ValueError(f"{str(path)!r} is not a Loihi export (no 'spec' entry)")
        spec = json.loads(str(data["spec"]))
        return LoihiNet.from_arrays(spec, {k: data[k] for k in data.files if k != "spec"})


def run_lava_loihi(net, inputs: dict, timeout: float = 1800.0) -> tuple[dict, torch.Tensor, float]:
    """Stream the samples of ``inputs`` (``{name: (B, n) int}``) through ``net`` on Lava.

    Returns ``({pop: (T, B, n) int8 spikes}, readout voltage (B, n) int32, seconds in Lava's run)``.
    """
    reason = lava_unavailable_reason()
    if reason:
        raise RuntimeError(reason)
    with tempfile.TemporaryDirectory() as tmp:
        src, ins, dst = Path(tmp) / "net.npz", Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        save_loihi(net, src)
        np.savez(ins, **{f"in_{k}": torch.as_tensor(v).numpy().astype(np.int32) for k, v in inputs.items()})
        r = subprocess.run(
            [str(lava_python()), str(RUNNER), str(src), str(dst), str(ins)],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if r.returncode != 0:
            raise RuntimeError(f"Lava runner failed ({r.returncode}): {r.stderr[-2000:]}")
        with np.load(dst, allow_pickle=False) as out:
            spikes = {
                k[len("spikes_") :]: torch.from_numpy(out[k]) for k in out.files if k.startswith("spikes_")
            }
            v = torch.from_numpy(out["v_" + net.readout])
            return spikes, v, float(out["elapsed_s"])
