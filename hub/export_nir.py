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

__all__ = [
    "NIR_CLASSES",
    "NIR_DT",
    "RESET_KEY",
    "RecurrentLIF",
    "SpikingSequential",
    "to_nir",
    "export_nir_file",
    "read_into_snntorch",
]

NIR_DT = 1e-4  # the step (s) NIR time constants are written for (snnTorch's importer assumes it)
RESET_KEY = "evospikenet.reset"  # LIF node metadata key: "subtract" marks a subtract reset NIR cannot express
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


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


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


class _MultiInputGraph(nn.Module):
    """Executes an acyclic NIR graph with several ``Input`` nodes (nirtorch 2.6 refuses those).

    The same snnTorch modules (``init_hidden=True``, state kept inside each ``Leaky``) run in topological
    order, a node's incoming edges summed as NIR prescribes; ``state`` is only a started/not-started flag
    (``None`` resets every membrane), kept so the call matches nirtorch's ``out, state = m(*inputs, state)``.
    """

    def __init__(self, graph, node_map) -> None:
        import nir

        super().__init__()
        self.inputs = sorted(k for k, n in graph.nodes.items() if isinstance(n, nir.Input))
        self.output = next(k for k, n in graph.nodes.items() if isinstance(n, nir.Output))
        self.preds = {k: [a for a, b in graph.edges if b == k] for k in graph.nodes}
        order, done = [], set(self.inputs)
        while len(done) < len(graph.nodes):
            ready = [k for k in graph.nodes if k not in done and all(a in done for a in self.preds[k])]
            if not ready:
                raise ValueError("a NIR graph with several inputs must be acyclic to be read back")
            order += ready
            done.update(ready)
        self.order = order
        self.mods = nn.ModuleDict(
            {k: node_map[type(graph.nodes[k])](graph.nodes[k]) for k in order if k != self.output}
        )

    def forward(self, *args, state=None, **named):
        """Inputs by node name (``m(x=..., rr=..., state=state)``) or positionally in sorted name order."""
        xs = list(args[: len(self.inputs)])
        if len(args) > len(self.inputs):
            state = args[len(self.inputs)]
        vals = dict(zip(self.inputs, xs)) | named
        if sorted(vals) != self.inputs:
            raise ValueError(f"inputs must be {self.inputs}, got {sorted(vals)}")
        if state is None:
            for m in self.mods.values():
                if hasattr(m, "reset_state"):
                    m.reset_state()
                elif hasattr(m, "mem"):
                    m.mem = torch.zeros(0)
        for k in self.order:
            h = sum(vals[a] for a in self.preds[k])
            vals[k] = h if k == self.output else self.mods[k](h)
        return vals[self.output], {"started": True}


def _meta(node, key: str):
    """A metadata string of a NIR node (``nir.read`` may return bytes)."""
    v = node.metadata.get(key)
    return v.decode() if isinstance(v, bytes) else v


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


def read_into_snntorch(graph, honour_reset: bool = True) -> nn.Module:
    """snnTorch modules for a NIR graph, executed by nirtorch; call as ``out, state = m(x_t, state)``
    (graphs with several inputs, e.g. the ECG net's: ``m(x=x_t, rr=rr, state=state)``).

    With ``honour_reset`` a LIF node whose ``metadata[RESET_KEY]`` is ``"subtract"`` becomes a ``Leaky``
    with subtract reset; without it (as any metadata-blind NIR reader) it keeps NIR's zero reset.

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
    from .nir_digits import WTA_KEY, WTALIF

    wta = honour_reset and any(
        isinstance(n, nir.LIF) and n.metadata.get(WTA_KEY) for n in graph.nodes.values()
    )
    special = wta or any(
        isinstance(n, (nir.Flatten, nir.Conv1d)) or (isinstance(n, nir.LIF) and n.metadata.get(RESET_KEY))
        for n in graph.nodes.values()
    )
    if not cyclic and not special:
        return import_from_nir(graph)
    conv = lambda n: _nir_to_snntorch_module(n, init_hidden=True)  # noqa: E731
    node_map = {t: conv for t in (nir.Affine, nir.Linear, nir.Conv2d, nir.IF, nir.CubaLIF)}

    def lif(n):
        if honour_reset and _meta(n, RESET_KEY) == "subtract":
            from .nir_ecg import SubtractLIF

            return SubtractLIF(n)
        if honour_reset and _meta(n, WTA_KEY) == "hard":
            return WTALIF(n)
        return conv(n)

    def conv1d(n):  # snnTorch's importer has no Conv1d
        w = torch.as_tensor(np.asarray(n.weight, dtype=np.float32))
        m = nn.Conv1d(
            w.shape[1] * n.groups, w.shape[0], w.shape[2], n.stride, n.padding, n.dilation, n.groups
        )
        with torch.no_grad():
            m.weight.copy_(w)
            m.bias.copy_(torch.as_tensor(np.asarray(n.bias, dtype=np.float32)))
        return m

    node_map[nir.LIF] = lif
    node_map[nir.Conv1d] = conv1d
    # NIR's Flatten dims exclude the batch; snnTorch passes them to torch unshifted (flattening the batch)
    node_map[nir.Flatten] = lambda n: nn.Flatten(
        n.start_dim + 1, n.end_dim if n.end_dim < 0 else n.end_dim + 1
    )
    if wta or sum(isinstance(n, nir.Input) for n in graph.nodes.values()) > 1:
        return _MultiInputGraph(graph, node_map)
    return nirtorch.nir_to_torch(graph, node_map)
