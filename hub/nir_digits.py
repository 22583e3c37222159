r"""NIR form of the STDP digits classifier (:class:`hub.export_onnx.DigitsClassifier`).

Graph: ``input`` (n_in spikes) ``-> proj`` (``Linear``, the learned ``W^T``) ``-> exc`` (``LIF``) ``->
readout`` (``Affine``, ``feature_scale W_r`` and ``b_r``) ``-> output``; the logits are the mean of the
output over the ``T`` steps (the readout is linear, so the mean of per-step readouts is the readout of the
mean spike count). The excitatory layer integrates ``v_t = \beta v_{t-1} + W^T s_t`` (NIR's LIF with
``tau = NIR_DT / (1 - beta)``, ``r = 1 / (1 - beta)``, ``v_reset = 0``) and fires at ``v > thr + theta``.

Two parts of the model have no NIR 1.0 primitive and travel as node metadata, as the ECG net's subtract
reset does (:data:`hub.export_nir.RESET_KEY`):

* ``evospikenet.wta = "hard"``: at most one neuron per sample fires per step (the arg-max of
  ``v - thr - theta`` when it is positive) and its spike resets every membrane of that sample;
* ``evospikenet.theta`` / ``evospikenet.theta_plus``: the adaptive threshold offsets, raised by
  ``theta_plus`` per spike (summed over the batch, as the model does) within a presentation.

``evospikenet.beta`` and ``evospikenet.threshold`` carry the exact float32 constants. A NIR reader that
ignores the metadata runs independent LIF neurons with threshold ``thr + theta`` (``v_threshold``).
:class:`WTALIF` is the metadata-honouring neuron that :func:`hub.nir_read.read_into_snntorch` builds.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .nir_common import NIR_DT, WTA_KEY, _np

__all__ = ["WTA_KEY", "digits_to_nir", "WTALIF"]


def digits_to_nir(model):
    """NIR graph of a ``DigitsClassifier`` (see the module docstring)."""
    import nir

    from .export_onnx import DigitsClassifier

    if not isinstance(model, DigitsClassifier):
        raise ValueError(f"model must be a DigitsClassifier, got {type(model).__name__}")
    net, p = model.net, model.net.layer
    n_in, n_exc = net.n_in, net.n_exc
    with torch.no_grad():
        w = net.proj.dense()  # (n_in, n_exc)
        theta = net.theta.detach().to(torch.float32)
        full = lambda v: np.full((n_exc,), v, dtype=np.float32)  # noqa: E731
        exc = nir.LIF(
            tau=full(NIR_DT / (1.0 - p.beta)),
            r=full(1.0 / (1.0 - p.beta)),
            v_leak=full(0.0),
            v_threshold=_np(p.threshold + theta),
            v_reset=full(0.0),
            metadata={
                WTA_KEY: "hard",
                "evospikenet.beta": np.float32(p.beta),
                "evospikenet.threshold": np.float32(p.threshold),
                "evospikenet.theta": _np(theta),
                "evospikenet.theta_plus": np.float32(p.theta_plus),
            },
        )
        nodes = {
            "input": nir.Input(input_type={"input": np.array([n_in])}),
            "proj": nir.Linear(_np(w.T)),
            "exc": exc,
            "readout": nir.Affine(_np(model.readout.weight * model.feature_scale), _np(model.readout.bias)),
            "output": nir.Output(output_type={"output": np.array([model.readout.out_features])}),
        }
    edges = [("input", "proj"), ("proj", "exc"), ("exc", "readout"), ("readout", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


class WTALIF(nn.Module):
    r"""A NIR ``LIF`` node with ``evospikenet.wta = "hard"``: the digits network's excitatory layer.

    Per step, input ``x`` (B, n): ``v = beta v + x``; ``m = v - (thr + theta)``; the arg-max neuron of a
    sample fires where ``max m > 0``, that sample's membranes reset to 0, ``theta += theta_plus
    \sum_{batch} s``. State (``v``, ``theta``) is kept inside and cleared by :meth:`reset_state`.
    """

    def __init__(self, node) -> None:
        super().__init__()
        md = node.metadata
        self.beta = float(np.asarray(md["evospikenet.beta"], dtype=np.float32))
        self.threshold = float(np.asarray(md["evospikenet.threshold"], dtype=np.float32))
        self.theta_plus = float(np.asarray(md["evospikenet.theta_plus"], dtype=np.float32))
        self.register_buffer("theta0", torch.as_tensor(np.asarray(md["evospikenet.theta"], dtype=np.float32)))
        self.mem = torch.zeros(0)
        self.theta = self.theta0.clone()

    def reset_state(self) -> None:
        self.mem, self.theta = torch.zeros(0), self.theta0.clone()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x: (B, n)
        if self.mem.shape != x.shape:
            self.mem = torch.zeros_like(x)
        v = self.beta * self.mem + x
        best, idx = (v - (self.threshold + self.theta)).max(dim=1)
        fired = (best > 0).to(v.dtype)  # (B,)
        s = nn.functional.one_hot(idx, v.shape[1]).to(v.dtype) * fired[:, None]
        self.mem = v * (1.0 - fired[:, None])
        self.theta = self.theta + self.theta_plus * s.sum(0)
        return s
