r"""NIR form of the spiking ECG classifier (:class:`evospikenet.models.ecg.ECGSpikingNet`).

Two inputs: the beat ``x`` (1, L), fed unchanged at every step, and the raw RR features ``rr`` (6,). Eval-mode BN is folded into
the three convs (``Conv1d`` with bias); the RR standardisation is folded into the side current,
``W_rr (rr - m) / s = (W_rr / s) rr - (W_rr / s) m`` (an ``Affine`` from ``rr``), which NIR sums with the
``fc`` ``Affine`` at the hidden LIF; the output node is the readout ``W_o S^{fc}_t + b_o`` per step, whose
mean over the ``T = config.time_steps`` steps is the model's logits. Its LIF neurons reset by
**subtraction** (``V_t = H_t - S_t V_th``), which NIR 1.0's ``LIF`` cannot express (its reset sets
``v_reset``). Each LIF node is therefore written with ``v_reset = 0`` and ``metadata["evospikenet.reset"] =
"subtract"``: :func:`hub.nir_read.read_into_snntorch` honours the metadata (a subtract-reset neuron, the exact model;
snnTorch's own subtract-reset ``Leaky`` subtracts a step later and is a different neuron), while a reader
that ignores metadata runs the zero-reset approximation (agreement measured in ``docs/hub.md``).
nirtorch 2.6 refuses graphs with two ``Input`` nodes, so such graphs are read back into the same snnTorch
modules and run by a small topological executor (``hub.nir_read._MultiInputGraph``); :func:`run_ecg_graph`
runs a graph so read back.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .nir_common import NIR_DT, RESET_KEY, _np

__all__ = ["ecg_to_nir", "SubtractLIF", "ECG_LIFS"]

ECG_LIFS = ("lif0", "lif1", "lif2", "lif_fc")  # the LIF nodes of the graph, in step order


def ecg_to_nir(model):
    """NIR graph of a trained ``ECGSpikingNet`` (eval mode; see the module docstring).

    Inputs ``x`` (1, L) and ``rr`` (n_rr,); output the per-step readout (n_classes,). LIF nodes carry
    ``metadata[RESET_KEY] = "subtract"`` (exact with ``read_into_snntorch``, zero reset elsewhere).
    """
    import nir

    from evospikenet.models.ecg import ECGSpikingNet

    if not isinstance(model, ECGSpikingNet):
        raise ValueError(f"model must be an ECGSpikingNet, got {type(model).__name__}")
    cfg, p = model.config, model.lif
    if p.v_rest != 0.0 or p.refractory_steps or abs((1.0 - p.beta) * p.r - 1.0) > 1e-6:
        raise ValueError(f"ECGSpikingNet LIF params {p} have no NIR form")

    def lif(shape):
        full = lambda v: np.full(shape, v, dtype=np.float32)  # noqa: E731
        return nir.LIF(
            tau=full(NIR_DT / (1.0 - p.beta)),
            r=full(p.r),
            v_leak=full(0.0),
            v_threshold=full(p.v_th),
            v_reset=full(0.0),
            metadata={RESET_KEY: "subtract"},
        )

    with torch.no_grad():
        folded = model.folded()
        n, shapes = cfg.window, []
        for conv in model.convs:
            shapes.append(n)
            n = _conv_len(n, conv)
        w_rr = model.rr_proj.weight / model.rr_std  # (H, n_rr)
        b_rr = -(w_rr @ model.rr_mean) + model.fc.bias  # fc's bias moved to the side current
    nodes = {
        "x": nir.Input(input_type={"input": np.array([1, cfg.window])}),
        "rr": nir.Input(input_type={"input": np.array([cfg.n_rr])}),
    }
    edges, prev = [], "x"
    for i, (conv, (w, b)) in enumerate(zip(model.convs, folded)):
        nodes[f"conv{i}"] = nir.Conv1d(
            shapes[i], _np(w), conv.stride[0], conv.padding[0], conv.dilation[0], conv.groups, _np(b)
        )
        nodes[f"lif{i}"] = lif((conv.out_channels, _conv_len(shapes[i], conv)))
        edges += [(prev, f"conv{i}"), (f"conv{i}", f"lif{i}")]
        prev = f"lif{i}"
    c3 = model.convs[2].out_channels
    nodes["flatten"] = nir.Flatten({"input": np.array([c3, n])}, 0, -1)
    nodes["fc"] = nir.Linear(_np(model.fc.weight))
    nodes["rr_proj"] = nir.Affine(_np(w_rr), _np(b_rr))
    nodes["lif_fc"] = lif((cfg.hidden,))
    nodes["readout"] = nir.Affine(_np(model.out.weight), _np(model.out.bias))
    nodes["output"] = nir.Output(output_type={"output": np.array([cfg.n_classes])})
    edges += [
        (prev, "flatten"),
        ("flatten", "fc"),
        ("fc", "lif_fc"),
        ("rr", "rr_proj"),
        ("rr_proj", "lif_fc"),
        ("lif_fc", "readout"),
        ("readout", "output"),
    ]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _conv_len(n: int, conv: nn.Conv1d) -> int:
    return (n + 2 * conv.padding[0] - conv.kernel_size[0]) // conv.stride[0] + 1


class SubtractLIF(nn.Module):
    r"""A NIR ``LIF`` node run with the subtract reset its metadata asks for (state kept inside, as snnTorch's
    ``init_hidden``): ``H_t = \beta V_{t-1} + (r\,dt/\tau) I_t``, ``S_t = [H_t \ge v_{th}]``,
    ``V_t = H_t - S_t v_{th}`` with ``beta = 1 - dt / tau``, ``dt = NIR_DT``.

    snnTorch's ``Leaky(reset_mechanism="subtract")`` is a different neuron: it subtracts the threshold one
    step later and after the decay (``H_t = \beta V_{t-1} + I_t - S_{t-1} v_{th}``), so it is not used here.
    """

    def __init__(self, node) -> None:
        super().__init__()
        f = lambda a: torch.as_tensor(np.asarray(a, dtype=np.float32))  # noqa: E731
        self.register_buffer("beta", 1.0 - NIR_DT / f(node.tau))
        self.register_buffer("gain", f(node.r) * NIR_DT / f(node.tau))
        self.register_buffer("v_th", f(node.v_threshold))
        self.mem = torch.zeros(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, *shape)
        if self.mem.shape != x.shape:
            self.mem = torch.zeros_like(x)
        h = self.beta * self.mem + self.gain * x
        s = (h >= self.v_th).to(h.dtype)
        self.mem = h - s * self.v_th
        return s
