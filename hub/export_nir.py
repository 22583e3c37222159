r"""NIR export of feed-forward, convolutional and recurrent SNNs built from the core's float LIF.

The networks are :class:`SpikingSequential` stacks of ``nn.Linear``, ``nn.Conv1d``/``nn.Conv2d``,
``nn.Flatten``, ``evospikenet.neurons.LIF`` (single-step mode) and :class:`RecurrentLIF`; ``forward`` runs the
``T``-step loop, every layer within the same step (NIR edges carry no delay), a recurrent layer feeding its
spikes of step ``t - 1`` back:

.. math::

    H_t = \beta V_{t-1} + (1 - \beta) R\,(I_t + W_{rec} S_{t-1}), \quad S_t = [H_t \ge V_{th}], \quad
    V_t = (1 - S_t) H_t \;(\text{reset to zero})

NIR's LIF is the ODE ``tau dv/dt = (v_leak - v) + R I``; with the forward-Euler step ``dt`` it is the same
neuron when ``1 - dt / tau = beta``. NIR graphs carry no ``dt``; we write ``tau = NIR_DT / (1 - beta)`` with
``NIR_DT = 1e-4``, the step snnTorch's importer assumes, and ``r = R`` (so ``r dt / tau = (1 - beta) R``),
``v_leak = 0``, ``v_reset = 0``. Only the zero reset exists in NIR's LIF: a layer with ``reset="subtract"``
is refused. Linear layers become ``Affine`` (``Linear`` without bias), convs ``Conv1d``/``Conv2d``, a
recurrent layer a ``LIF`` with an ``Affine``/``Linear`` loop on itself (the pattern snnTorch imports as
``RLeaky``).

The saved classifiers have their own modules: :mod:`hub.nir_ecg` (``ECGSpikingNet``, subtract reset carried
as node metadata) and :mod:`hub.nir_digits` (the STDP digits net, winner-take-all carried as metadata).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from evospikenet.neurons import LIF

from .nir_common import NIR_DT, RESET_KEY, _np
from .nir_read import read_into_snntorch

__all__ = [
    "NIR_CLASSES",
    "NIR_DT",
    "RESET_KEY",
    "RecurrentLIF",
    "SpikingSequential",
    "to_nir",
    "export_nir_file",
    "read_into_snntorch",
]  # read_into_snntorch lives in hub.nir_read; re-exported as the reading half of this format

NIR_CLASSES = ("ECGSpikingNet", "DigitsClassifier")  # saved model classes with a NIR form


class RecurrentLIF(nn.Module):
    """LIF layer of ``n`` neurons with all-to-all recurrent weights ``rec`` (``nn.Linear(n, n)``)."""

    def __init__(self, n: int, bias: bool = False, **params) -> None:
        super().__init__()
        if params.get("reset", "zero") != "zero":
            raise ValueError(f"reset must be 'zero' for RecurrentLIF, got {params['reset']!r}")
        params["reset"] = "zero"
        self.lif = LIF(step_mode="s", **params)
        self.rec = nn.Linear(n, n, bias=bias)

    def forward(self, x, state):  # x: (B, n); state: (V (B, n), last spikes (B, n)) or None
        p = self.lif.params
        v, s_prev = state if state is not None else (torch.zeros_like(x), torch.zeros_like(x))
        gain = (1.0 - p.beta) * p.r
        # summed in this order: beta V + gain (I + W s), as NIR executors feed the loop into the LIF input
        h = p.beta * v + gain * (x + self.rec(s_prev))
        s = (h >= p.v_th).to(h.dtype)
        return s, (h * (1.0 - s), s)


class SpikingSequential(nn.Module):
    """Layers run in order at every step of a ``T``-step loop; LIF layers keep their state across steps."""

    def __init__(self, *layers: nn.Module, input_shape: tuple[int, ...]) -> None:
        super().__init__()
        for i, m in enumerate(layers):
            if not isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Flatten, LIF, RecurrentLIF)):
                raise ValueError(
                    f"layers[{i}] must be Linear, Conv1d, Conv2d, Flatten, LIF or RecurrentLIF, "
                    f"got {type(m).__name__}"
                )
            if isinstance(m, LIF) and m.step_mode != "s":
                raise ValueError(f"layers[{i}]: LIF must be single-step (step_mode='s')")
        self.layers = nn.ModuleList(layers)
        self.input_shape = tuple(input_shape)  # one sample's input shape, without time and batch

    def forward(self, x: torch.Tensor, return_all: bool = False):
        """``x`` (T, B, *input_shape) -> output (T, B, ...); with ``return_all`` also every LIF's spikes."""
        states = [None] * len(self.layers)
        outs, rec = [], {i: [] for i, m in enumerate(self.layers) if isinstance(m, (LIF, RecurrentLIF))}
        for xt in x.unbind(0):
            h = xt
            for i, m in enumerate(self.layers):
                if isinstance(m, (LIF, RecurrentLIF)):
                    h, states[i] = m(h, states[i])
                    rec[i].append(h)
                else:
                    h = m(h)
            outs.append(h)
        out = torch.stack(outs)
        return (out, {i: torch.stack(v) for i, v in rec.items()}) if return_all else out


def _lif_node(p, shape):
    import nir

    if p.reset != "zero" or p.v_reset != 0.0:
        raise ValueError(f"LIF reset must be 'zero' to 0 for NIR, got reset={p.reset!r}, v_reset={p.v_reset}")
    if p.v_rest != 0.0 or p.refractory_steps:
        raise ValueError(f"LIF with v_rest={p.v_rest} or a refractory period has no NIR form")
    full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
    return nir.LIF(
        tau=full(NIR_DT / (1.0 - p.beta)),
        r=full(p.r),
        v_leak=full(0.0),
        v_threshold=full(p.v_th),
        v_reset=full(0.0),
    )


def to_nir(model: nn.Module):
    """The NIR graph (``nir.NIRGraph``) of a :class:`SpikingSequential`, an ``ECGSpikingNet`` or a
    ``DigitsClassifier`` (:mod:`hub.nir_digits`)."""
    import nir

    from evospikenet.models.ecg import ECGSpikingNet

    from .export_onnx import DigitsClassifier

    if isinstance(model, ECGSpikingNet):
        from .nir_ecg import ecg_to_nir

        return ecg_to_nir(model)
    if isinstance(model, DigitsClassifier):
        from .nir_digits import digits_to_nir

        return digits_to_nir(model)
    if not isinstance(model, SpikingSequential):
        raise ValueError(
            "model must be a SpikingSequential, an ECGSpikingNet or a DigitsClassifier for NIR export, "
            f"got {type(model).__name__}"
        )
    with torch.no_grad():
        shapes, h = [], torch.zeros(1, *model.input_shape)
        for m in model.layers:
            if isinstance(m, (LIF, RecurrentLIF)):
                shapes.append(tuple(h.shape[1:]))
                continue
            shapes.append(tuple(h.shape[1:]))
            h = m(h)
        out_shape = tuple(h.shape[1:])
    nodes = {"input": nir.Input(input_type={"input": np.array(model.input_shape)})}
    edges, prev = [], "input"
    for i, (m, shp) in enumerate(zip(model.layers, shapes)):
        name = f"{i}"
        if isinstance(m, nn.Linear):
            nodes[name] = (
                nir.Affine(_np(m.weight), _np(m.bias)) if m.bias is not None else nir.Linear(_np(m.weight))
            )
        elif isinstance(m, nn.Conv2d):
            b = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
            nodes[name] = nir.Conv2d(shp[1:], _np(m.weight), m.stride, m.padding, m.dilation, m.groups, b)
        elif isinstance(m, nn.Conv1d):
            b = _np(m.bias) if m.bias is not None else np.zeros(m.out_channels, np.float32)
            nodes[name] = nir.Conv1d(
                shp[1], _np(m.weight), m.stride[0], m.padding[0], m.dilation[0], m.groups, b
            )
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise ValueError(
                    f"layers[{i}]: only Flatten(1, -1) is exported, got ({m.start_dim}, {m.end_dim})"
                )
            nodes[name] = nir.Flatten({"input": np.array(shp)}, 0, -1)  # NIR shapes carry no batch dimension
        elif isinstance(m, LIF):
            nodes[name] = _lif_node(m.params, shp)
        else:  # RecurrentLIF: LIF node with a weight loop on itself
            nodes[name] = _lif_node(m.lif.params, shp)
            w = m.rec
            nodes[f"{i}.rec"] = (
                nir.Affine(_np(w.weight), _np(w.bias)) if w.bias is not None else nir.Linear(_np(w.weight))
            )
            edges += [(name, f"{i}.rec"), (f"{i}.rec", name)]
        edges.append((prev, name))
        prev = name
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def export_nir_file(model, path) -> Path:
    """Write ``to_nir(model)`` to ``path`` (HDF5, ``nir.write``; a temporary file renamed into place)."""
    import os

    import nir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        nir.write(str(tmp), to_nir(model))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
