r"""ONNX export of the spiking models with the whole time loop in the graph.

Every model runs its ``T`` simulation steps inside one ONNX graph (the Python loop over ``t`` is unrolled by
the tracer, so the graph holds ``T`` copies of the step and no ``Loop`` node). The LIF step exported is the
one of :mod:`evospikenet.functional.lif`:

.. math::

    H_t = \beta V_{t-1} + (1 - \beta) R I_t, \qquad S_t = [H_t \ge V_{th}], \qquad V_t = H_t - S_t V_{th}

written with ``Add``/``Mul``/``GreaterOrEqual``/``Cast`` only (the fused autograd kernel is swapped for this
traceable twin while exporting; it computes the same float operations in the same order). Graphs use opset
17 operators that onnxruntime's CUDA execution provider implements (MatMul, Gemm, Conv, Add, Mul, Where,
Softmax, LayerNormalization, ReduceMean, ArgMax, OneHot ...); :func:`cpu_only_ops` lists any node outside that
set so the tests can assert there is none.

Exported forms (``wrap_for_onnx``):

* ECG spiking net: ``(x (B, L), rr (B, 6)) -> logits (B, 5)``; batch dynamic.
* STDP digits net: ``(spikes_in (T, B, n_in)) -> logits (B, 10)``; the Poisson encoder stays outside the
  graph (it is random); batch dynamic.
* spiking LM: ``input_ids (B, L) -> logits (B, L, V)``; batch and length dynamic up to the context.

``with_spikes=True`` adds a second output, every recorded spike train flattened and concatenated
``(T, B, N_total)``, used by the agreement check.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import torch
from torch import nn

from evospikenet.functional import lif as _lif_mod

__all__ = [
    "traceable_lif",
    "DigitsClassifier",
    "wrap_for_onnx",
    "export_onnx",
    "cpu_only_ops",
    "CUDA_EP_OPS",
    "OPSET",
]

OPSET = 17

# Operators of the exported graphs that onnxruntime's CUDA execution provider implements (opset 17).
CUDA_EP_OPS = frozenset(
    "Add Sub Mul Div Neg Abs Sqrt Pow Exp Log Tanh Sigmoid Relu Erf MatMul Gemm Conv Transpose Reshape "
    "Flatten Squeeze Unsqueeze Concat Split Slice Gather GatherElements Expand Tile Shape Size Cast CastLike "
    "Constant ConstantOfShape Range Where Equal Greater GreaterOrEqual Less LessOrEqual Not And Or Softmax "
    "LogSoftmax ReduceMean ReduceSum ReduceMax ReduceMin ArgMax OneHot LayerNormalization BatchNormalization "
    "Identity Clip Min Max Floor Ceil Round Sign ScatterND ScatterElements Trilu Dropout Einsum Pad MaxPool "
    "AveragePool GlobalAveragePool CumSum IsNaN IsInf Mod Softplus Reciprocal Elu LeakyRelu HardSigmoid "
    "Xor".split()
)


def traceable_lif(x: torch.Tensor, v0: torch.Tensor, p) -> tuple[torch.Tensor, torch.Tensor]:
    """The fused LIF forward as plain tensor ops: ``x`` (T, ...) currents -> spikes (T, ...), last V (...)."""
    beta = p.beta
    drive = x * ((1.0 - beta) * p.r)
    if p.v_rest != 0.0:
        drive = drive + (1.0 - beta) * p.v_rest
    v, out = v0, []
    for d in drive.unbind(0):
        h = torch.add(d, v, alpha=beta)
        s = (h >= p.v_th).to(h.dtype)
        if p.reset == "subtract":
            v = h - s * p.v_th
        elif p.reset == "zero":
            v = torch.where(s > 0, torch.full_like(h, p.v_reset), h)
        else:
            v = h
        out.append(s)
    return torch.stack(out), v


class _TraceableFused:
    @staticmethod
    def apply(x, v0, p):
        return traceable_lif(x, v0, p)


@contextlib.contextmanager
def _export_mode():
    """Swap the fused LIF kernel (an autograd.Function) for its traceable twin while exporting."""
    saved = _lif_mod._FusedLIF
    _lif_mod._FusedLIF = _TraceableFused
    try:
        yield
    finally:
        _lif_mod._FusedLIF = saved


class DigitsClassifier(nn.Module):
    r"""STDP digits network + linear readout as a graph of fixed ops (spikes in, logits out).

    Per step (``plastic_snn_step`` of :mod:`evospikenet.models.plastic_snn`, winner-take-all written with
    ``ArgMax``/``OneHot`` instead of boolean indexing):
    ``v = beta v + s_in W``, ``m = v - (thr + theta)``, the arg-max neuron fires where ``max m > 0``, its
    sample's membrane resets to 0 and ``theta += theta_plus * sum_batch(spikes)``.
    ``logits = readout(feature_scale * counts / T)``.
    """

    def __init__(self, net, readout: nn.Linear, feature_scale: float) -> None:
        super().__init__()
        self.net = net  # PlasticDigitsSNN
        self.readout = readout
        self.feature_scale = float(feature_scale)

    def forward(self, spikes_in: torch.Tensor, return_spikes: bool = False):
        # spikes_in: (T, B, n_in) in {0, 1}
        net, p = self.net, self.net.layer
        w = net.proj.dense()  # (n_in, n_exc)
        v = torch.zeros(spikes_in.shape[1], net.n_exc, dtype=w.dtype)  # (B, n_exc)
        theta = net.theta.clone()  # (n_exc,)
        out = []
        for s_in in spikes_in.unbind(0):
            v = p.beta * v + s_in @ w
            margin = v - (p.threshold + theta)
            best, idx = margin.max(dim=1)
            fired = (best > 0).to(v.dtype)  # (B,)
            spikes = nn.functional.one_hot(idx, net.n_exc).to(v.dtype) * fired[:, None]
            v = v * (1.0 - fired[:, None])
            theta = theta + p.theta_plus * spikes.sum(0)
            out.append(spikes)
        s = torch.stack(out)  # (T, B, n_exc)
        logits = self.readout(s.mean(0) * self.feature_scale)
        return (logits, s) if return_spikes else logits


class _ECGWrap(nn.Module):
    def __init__(self, model, with_spikes: bool) -> None:
        super().__init__()
        self.model, self.with_spikes = model, with_spikes

    def forward(self, x, rr):
        if not self.with_spikes:
            return self.model(x, rr)
        logits, spikes = self.model(x, rr, return_spikes=True)
        T, B = spikes[0].shape[:2]
        return logits, torch.cat([s.reshape(T, B, -1) for s in spikes], dim=2)


class _DigitsWrap(nn.Module):
    def __init__(self, model, with_spikes: bool) -> None:
        super().__init__()
        self.model, self.with_spikes = model, with_spikes

    def forward(self, spikes_in):
        return self.model(spikes_in, return_spikes=self.with_spikes)


class _LMWrap(nn.Module):
    def __init__(self, model, with_spikes: bool) -> None:
        super().__init__()
        self.model, self.with_spikes = model, with_spikes

    def forward(self, input_ids):
        if not self.with_spikes:
            return self.model(input_ids=input_ids).logits
        rec = []  # every LIF population's spikes, in call order (TAS excluded: it is an encoder)
        hooks = [
            m.register_forward_hook(lambda mod, inp, out: rec.append(out[0]))
            for m in self.model.modules()
            if type(m).__name__ == "LIFPopulation"
        ]
        try:
            logits = self.model(input_ids=input_ids).logits
        finally:
            for h in hooks:
                h.remove()
        T, B = rec[0].shape[:2]
        return logits, torch.cat([s.reshape(T, B, -1) for s in rec], dim=2)


def _kind(model) -> str:
    name = type(model).__name__
    if name == "ECGSpikingNet":
        return "ecg"
    if isinstance(model, DigitsClassifier):
        return "digits"
    if name.startswith("SpikingEvoSpikeNetFor"):
        return "lm"
    raise ValueError(f"model must be an ECG spiking net, a DigitsClassifier or a spiking LM, got {name}")


def wrap_for_onnx(model: nn.Module, with_spikes: bool = False):
    """``(module, example_inputs, input_names, output_names, dynamic_axes)`` for one of the classifiers/LM.

    The wrapper (and so the model) is put in eval mode: a fresh wrapper would be in training mode, and the
    exporter restores the wrapper's mode afterwards, recursively, which would leave the model training.
    """
    wrap, *rest = _wrap(model, with_spikes)
    return (wrap.eval(), *rest)


def _wrap(model, with_spikes):
    kind = _kind(model)
    model.eval()
    outs = ["logits"] + (["spikes"] if with_spikes else [])
    if kind == "ecg":
        c = model.config
        ex = (torch.randn(2, c.window), torch.randn(2, c.n_rr))
        axes = {"x": {0: "batch"}, "rr": {0: "batch"}, "logits": {0: "batch"}, "spikes": {1: "batch"}}
        return _ECGWrap(model, with_spikes), ex, ["x", "rr"], outs, axes
    if kind == "digits":
        ex = (torch.bernoulli(torch.full((model.net.time_steps, 2, model.net.n_in), 0.2)),)
        axes = {"spikes_in": {1: "batch"}, "logits": {0: "batch"}, "spikes": {1: "batch"}}
        return _DigitsWrap(model, with_spikes), ex, ["spikes_in"], outs, axes
    c = model.config
    ex = (torch.randint(0, c.vocab_size, (2, c.context_length)),)
    axes = {
        "input_ids": {0: "batch", 1: "length"},
        "logits": {0: "batch", 1: "length"},
        "spikes": {1: "batch", 2: "neurons"},
    }
    return _LMWrap(model, with_spikes), ex, ["input_ids"], outs, axes


def export_onnx(model: nn.Module, path: str | Path, with_spikes: bool = False) -> Path:
    """Export ``model`` (all T steps in one graph) to ``path``; returns the path (onnx.checker-checked).

    The graph is written to a temporary file beside ``path``, checked, then renamed into place.
    """
    import os

    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    wrap, ex, ins, outs, axes = wrap_for_onnx(model, with_spikes)
    axes = {k: v for k, v in axes.items() if k in ins + outs}
    try:
        with _export_mode(), torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                wrap,
                ex,
                str(tmp),
                input_names=ins,
                output_names=outs,
                dynamic_axes=axes,
                opset_version=OPSET,
                dynamo=False,
                do_constant_folding=True,
            )
        onnx.checker.check_model(str(tmp))
        bad = cpu_only_ops(tmp)
        if bad:
            raise RuntimeError(f"exported graph {str(path)!r} holds operators outside the CUDA EP set: {bad}")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def cpu_only_ops(path: str | Path) -> list[str]:
    """Sorted operator types of the graph that are not in :data:`CUDA_EP_OPS` (empty list: CUDA-ready)."""
    import onnx

    g = onnx.load(str(path)).graph
    return sorted({n.op_type for n in g.node} - CUDA_EP_OPS)
