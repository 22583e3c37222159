r"""Reading NIR graphs back into snnTorch modules and running them.

:func:`read_into_snntorch` turns a graph into modules (honouring this project's node metadata: the ECG net's
subtract reset, the digits net's winner-take-all); :func:`run_ecg_graph` and :func:`run_digits_graph` run the
two saved classifiers' graphs step by step and return what the exports are checked against.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .nir_common import RESET_KEY, WTA_KEY
from .nir_digits import WTALIF
from .nir_ecg import ECG_LIFS, SubtractLIF

__all__ = ["read_into_snntorch", "run_ecg_graph", "run_digits_graph"]


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


def run_ecg_graph(graph, x: torch.Tensor, rr: torch.Tensor, T: int, honour_reset: bool = True):
    """Read ``graph`` back into snnTorch and run ``T`` steps on beats ``x`` (B, L), ``rr`` (B, 6).

    Returns the per-step readout (T, B, n_classes) (its mean over T is the logits) and the spikes
    ``{lif: (T, B, ...)}`` of every LIF node.
    """
    m = read_into_snntorch(graph, honour_reset=honour_reset)
    rec = {k: [] for k in ECG_LIFS}
    hooks = [m.mods[k].register_forward_hook(lambda mod, i, o, k=k: rec[k].append(o)) for k in ECG_LIFS]
    state, outs = None, []
    with torch.no_grad():
        for _ in range(T):
            out, state = m(x=x.unsqueeze(1), rr=rr, state=state)
            outs.append(out)
    for h in hooks:
        h.remove()
    return torch.stack(outs), {k: torch.stack(v) for k, v in rec.items()}


def run_digits_graph(graph, spikes_in: torch.Tensor, honour: bool = True):
    """Read ``graph`` back into snnTorch and run it on ``spikes_in`` (T, B, n_in).

    Returns the logits (B, n_classes) (mean of the per-step output) and the excitatory spikes (T, B, n).
    """
    m = read_into_snntorch(graph, honour_reset=honour)
    rec = []
    hook = m.mods["exc"].register_forward_hook(
        lambda mod, i, o: rec.append(o[0] if isinstance(o, tuple) else o)
    )
    state, outs = None, []
    with torch.no_grad():
        for s in spikes_in.unbind(0):
            out, state = m(input=s, state=state)
            outs.append(out)
    hook.remove()
    return torch.stack(outs).mean(0), torch.stack(rec)
