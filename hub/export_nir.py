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
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from evospikenet.neurons import LIF

__all__ = ["NIR_DT", "RecurrentLIF", "SpikingSequential", "to_nir", "export_nir_file", "read_into_snntorch"]

NIR_DT = 1e-4  # the step (s) NIR time constants are written for (snnTorch's importer assumes it)


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


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


def to_nir(model: SpikingSequential):
    """The NIR graph (``nir.NIRGraph``) of ``model``."""
    import nir

    if not isinstance(model, SpikingSequential):
        raise ValueError(f"model must be a SpikingSequential, got {type(model).__name__}")
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
    """Write ``to_nir(model)`` to ``path`` (HDF5, ``nir.write``); returns the path."""
    import nir

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nir.write(str(path), to_nir(model))
    return path


def read_into_snntorch(graph) -> nn.Module:
    """snnTorch modules for a NIR graph, executed by nirtorch; call as ``out, state = m(x_t, state)``.

    Feed-forward and convolutional graphs go through ``snntorch.import_nir.import_from_nir``. A graph with a
    recurrent loop is built from the same snnTorch node converters by ``nirtorch.nir_to_torch`` directly:
    snnTorch's importer also passes a ``Flatten``'s NIR dims (which exclude the batch) to torch unshifted, so
    graphs with a ``Flatten`` take this path too. snnTorch's importer first rewrites a LIF <-> weight loop
    into a subgraph whose external input enters the
    *weight* node (``S_t = LIF(W (x_t + S_{t-1}))``), which is not the NIR graph's meaning
    (``LIF(x_t + W S_{t-1})``); nirtorch keeps the loop as written, reading ``W S_{t-1}`` from its state.
    """
    import nir
    import nirtorch
    from snntorch.import_nir import _nir_to_snntorch_module, import_from_nir

    edges = set(graph.edges)
    cyclic = any((b, a) in edges for a, b in edges)
    has_flatten = any(isinstance(n, nir.Flatten) for n in graph.nodes.values())
    if not cyclic and not has_flatten:
        return import_from_nir(graph)
    conv = lambda n: _nir_to_snntorch_module(n, init_hidden=True)  # noqa: E731
    node_map = {t: conv for t in (nir.Affine, nir.Linear, nir.Conv2d, nir.IF, nir.LIF, nir.CubaLIF)}
    # NIR's Flatten dims exclude the batch; snnTorch passes them to torch unshifted (flattening the batch)
    node_map[nir.Flatten] = lambda n: nn.Flatten(
        n.start_dim + 1, n.end_dim if n.end_dim < 0 else n.end_dim + 1
    )
    return nirtorch.nir_to_torch(graph, node_map)
