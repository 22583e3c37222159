"""The ``exports/`` folder of a release: every deployment form of a model, each verified when it is built.

:func:`build_exports` writes into ``DIR/exports/`` the forms the model has and returns one row per export:
``{"format", "file", "verification", "command"}``. The verification is measured on the spot:

* ``onnx`` (ECG net, digits net, spiking LMs): onnxruntime on a seeded probe batch against the PyTorch
  model: largest logit difference and the fraction of samples with the same class;
* ``nir`` (ECG net, digits net): the graph read back into snnTorch (:func:`hub.export_nir.read_into_snntorch`)
  on the probe batch: fraction of identical spikes;
* ``lava`` (ECG net): the Loihi 2 form (:func:`hub.lava.ecg.loihi_ecg`) on held-out MIT-BIH beats: the
  fraction of identical spikes between Lava's bit-accurate simulator and the core's ``loihi`` profile, and
  the accuracy of both forms; without the Lava venv, the core's figures only (and it says so).

A format a model has no form for is skipped with the reason, which the model card lists.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

# Default file name of each export format inside a model directory's exports/ folder.
EXPORT_NAMES = {"onnx": "model.onnx", "nir": "model.nir", "lava": "model.loihi.npz"}

__all__ = ["build_exports", "FORMATS"]

FORMATS = ("onnx", "nir", "lava")


def _probe(model, kind: str, g: torch.Generator):
    if kind == "ecg":
        return [
            torch.randn(16, model.config.window, generator=g) * 0.5,
            torch.rand(16, model.config.n_rr, generator=g) + 0.5,
        ]
    if kind == "digits":
        return [torch.bernoulli(torch.full((model.net.time_steps, 16, model.net.n_in), 0.25), generator=g)]
    c = model.config
    return [torch.randint(0, c.vocab_size, (2, min(16, c.context_length)), generator=g)]


def _onnx(model, kind, out: Path) -> dict:
    import onnxruntime as ort

    from .export_onnx import export_onnx, wrap_for_onnx

    export_onnx(model, out)
    wrap, _, names, _, _ = wrap_for_onnx(model)
    x = _probe(model, kind, torch.Generator().manual_seed(0))
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {k: v.numpy() for k, v in zip(names, x)})[0]
    with torch.no_grad():
        ref = wrap(*x).numpy()
    return {
        "max_abs_logit_diff": float(np.abs(got - ref).max()),
        "same_class": float((got.argmax(-1) == ref.argmax(-1)).mean()),
        "probe": "seeded random batch",
    }


def _nir(model, kind, out: Path) -> dict:
    import nir

    from .export_nir import export_nir_file

    export_nir_file(model, out)
    graph = nir.read(str(out))
    x = _probe(model, kind, torch.Generator().manual_seed(0))
    with torch.no_grad():
        _, ref = model(*x, return_spikes=True)
    if kind == "ecg":
        from .nir_ecg import ECG_LIFS
        from .nir_read import run_ecg_graph

        _, got = run_ecg_graph(graph, *x, model.config.time_steps)
        pairs = [(got[k], r) for k, r in zip(ECG_LIFS, ref)]
    else:
        from .nir_read import run_digits_graph

        pairs = [(run_digits_graph(graph, x[0])[1], ref)]
    same = sum(int((a == b).sum()) for a, b in pairs)
    return {
        "spike_match": same / sum(b.numel() for _, b in pairs),
        "probe": "seeded random batch",
        "reader": "snnTorch",
    }


def _lava(model, out: Path, qat_epochs: int, beats_per_record: int, data_dir, log) -> dict:
    from .lava.bridge import lava_unavailable_reason, save_loihi
    from .lava.ecg import ECG_RECORDS, heldout_beats, loihi_ecg, verify_ecg

    net = loihi_ecg(model, qat_epochs=qat_epochs, data_dir=data_dir, log=log)
    save_loihi(net, out)
    beats = heldout_beats(model.config, ECG_RECORDS, beats_per_record, data_dir)
    reason = lava_unavailable_reason()
    r = verify_ecg(model, net, beats, lava=reason is None)
    v = {
        "beats": r["beats"],
        "records": r["records"],
        "qat_epochs": qat_epochs,
        "accuracy_float": r["accuracy_float"],
        "accuracy_loihi_core": r["accuracy_core"],
    }
    if reason is None:
        v.update(
            spike_match=r["spike_match"], readout_match=r["readout_match"], accuracy_lava=r["accuracy_lava"]
        )
    else:
        v["lava"] = f"not run: {reason}"
    return v


COMMANDS = {
    "onnx": 'onnxruntime.InferenceSession("exports/model.onnx").run(None, inputs)  # inputs: {names: arrays}',
    "nir": 'hub.export_nir.read_into_snntorch(nir.read("exports/model.nir"))',
    "lava": 'hub.lava.bridge.run_lava_loihi(hub.lava.bridge.load_loihi("exports/model.loihi.npz"), '
    "evospikenet.quant.loihi.encode_ecg(net, x, rr))",
}


def build_exports(
    model, d, formats=FORMATS, qat_epochs: int = 3, beats_per_record: int = 20, data_dir=None, log=None
):
    """Write ``d/exports/`` for ``model`` (loaded from ``d``); returns the rows the card lists."""
    name = type(model).__name__
    kind = {"ECGSpikingNet": "ecg", "DigitsClassifier": "digits"}.get(name)
    if kind is None and name.startswith("SpikingEvoSpikeNetFor"):
        kind = "lm"
    rows = []
    for fmt in formats:
        out = Path(d) / "exports" / EXPORT_NAMES[fmt]
        has = {"onnx": kind is not None, "nir": kind in ("ecg", "digits"), "lava": kind == "ecg"}[fmt]
        if not has:
            rows.append(
                {"format": fmt, "file": None, "verification": f"no {fmt} form for {name}", "command": None}
            )
            continue
        if log:
            log(f"export {fmt}: {out}")
        if fmt == "onnx":
            ver = _onnx(model, kind, out)
        elif fmt == "nir":
            ver = _nir(model, kind, out)
        else:
            ver = _lava(model, out, qat_epochs, beats_per_record, data_dir, log)
        rows.append(
            {"format": fmt, "file": f"exports/{out.name}", "verification": ver, "command": COMMANDS[fmt]}
        )
    return rows
