"""The ECG classifier on Loihi 2: from a saved ``ECGSpikingNet`` to a verified Lava deployment.

* :func:`loihi_ecg` quantises a model for Loihi (:func:`evospikenet.quant.loihi.quantize_ecg`), after
  ``qat_epochs`` of Loihi-aware fine-tuning on the model's training beats (the first ``train_fraction`` of
  every MIT-BIH record, the split the ECG recipe trains on; ``qat_epochs=0``: plain rounding).
* :func:`heldout_beats` picks held-out beats (the last ``1 - train_fraction`` of each record, as
  ``docs/ecg.md`` defines them).
* :func:`verify_ecg` runs beats through the float model, the ``loihi`` profile of the core and Lava's
  bit-accurate simulator and compares them spike for spike.
"""

from __future__ import annotations

import time

import numpy as np
import torch

__all__ = ["ECG_RECORDS", "beat_window", "training_beats", "heldout_beats", "loihi_ecg", "verify_ecg"]

# Held-out records of the Lava check: between them every AAMI class occurs (N, S, V, F, Q).
ECG_RECORDS = ["100", "106", "208", "223", "232"]


def beat_window(config):
    """The beat window a model was trained on (from its config)."""
    from evospikenet.data.mitdb import BeatWindow

    band = tuple(config.band) if config.band is not None else None
    return BeatWindow(int(config.beat_before), int(config.beat_after), int(config.downsample), band)


def training_beats(config, data_dir=None, records=None, train_fraction: float = 0.8):
    """The training split's beats (``BeatSet``): the first ``train_fraction`` of each record."""
    from evospikenet.data.mitdb import load_beats, split_by_time

    return split_by_time(load_beats(data_dir, records, beat_window(config)), train_fraction)[0]


def heldout_beats(config, records=None, per_record: int | None = None, data_dir=None, train_fraction=0.8):
    """Held-out beats of ``records``: the first ``per_record`` of each record's last ``1 - train_fraction``."""
    from evospikenet.data.mitdb import load_beats, split_by_time

    val = split_by_time(load_beats(data_dir, records, beat_window(config)), train_fraction)[1]
    if per_record is None:
        return val
    keep = np.zeros(len(val), dtype=bool)
    for r in np.unique(val.record):
        keep[np.flatnonzero(val.record == r)[:per_record]] = True
    return val.subset(keep)


def loihi_ecg(model, qat_epochs: int = 3, data_dir=None, log=None):
    """The ``LoihiNet`` of a trained ``ECGSpikingNet``; ``meta`` records how it was made."""
    from evospikenet.quant.loihi import quantize_ecg
    from evospikenet.quant.loihi_qat import finetune_loihi

    if qat_epochs > 0:
        train = training_beats(model.config, data_dir)
        tuned = finetune_loihi(model, train.x, train.rr, train.y, epochs=qat_epochs, log=log)
        net = quantize_ecg(tuned)
    else:
        net = quantize_ecg(model)
    net.meta["qat_epochs"] = int(qat_epochs)
    return net


def verify_ecg(model, net, beats, lava: bool = True) -> dict:
    """Float, core ``loihi`` profile and (with ``lava``) Lava on ``beats``; spike match and accuracies."""
    from evospikenet.quant.loihi import encode_ecg, run_loihi

    from .bridge import run_lava_loihi

    x, rr, y = torch.from_numpy(beats.x), torch.from_numpy(beats.rr), beats.y
    with torch.no_grad():
        pred_float = model(x, rr).argmax(1).numpy()
    inputs = encode_ecg(net, x, rr)
    t0 = time.perf_counter()
    spikes, v = run_loihi(net, inputs)
    core_s = time.perf_counter() - t0
    out = {
        "beats": int(len(y)),
        "records": int(len(np.unique(beats.record))),
        "accuracy_float": float((pred_float == y).mean()),
        "accuracy_core": float((v.argmax(1).numpy() == y).mean()),
        "core_s": core_s,
        "spikes": spikes,
        "inputs": inputs,
    }
    if lava:
        t0 = time.perf_counter()
        lspikes, lv, lava_run_s = run_lava_loihi(net, inputs)
        out["lava_s"] = time.perf_counter() - t0
        out["lava_run_s"] = lava_run_s
        same = sum(int((lspikes[k] == spikes[k]).sum()) for k in lspikes)
        total = sum(spikes[k].numel() for k in lspikes)
        out["spike_match"] = same / total if total else 1.0
        out["readout_match"] = bool(torch.equal(lv, v))
        out["accuracy_lava"] = float((lv.argmax(1).numpy() == y).mean())
    return out
