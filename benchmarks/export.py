"""Export benchmark: onnxruntime (CPU) vs eager PyTorch, Lava vs our ``loihi`` profile, the ECG net on Lava.

``python benchmarks/export.py [--quick] [--ecg-model DIR]`` prints progress to stderr and, as its last stdout
line, one JSON object: ``{"onnx": {"ecg"|"digits"|"lm": {"eager_ms", "ort_ms", "speedup", "spike_agreement",
"max_abs_logit_diff", "samples_with_spike_flip", "argmax_flip_rate"}}, "lava": {"neurons", "steps",
"spike_match", "lava_s", "core_s"}, "nir": {"ecg": {...}, "digits": {...}}, "lava_ecg": {"beats", "records", "spike_match", "accuracy_lava",
"accuracy_float", "loihi_cores", "sops_per_beat", "energy_per_beat_j_estimate", "lava_s"}, "lava_ecg_cost":
{...}}``.

``lava_ecg``: the trained ECG net (``--ecg-model``, default ``artifacts/ecg/model``, made by ``make ecg``) in
its Loihi 2 form (3 epochs of Loihi-aware fine-tuning on the training beats, as ``evospikenet-hub export
--format lava`` makes it) on held-out beats (the last 20 % of each record): ``--quick`` the first 100 of each
of 5 records (100, 106, 208, 223, 232: every AAMI class occurs), else every held-out beat of every record.
The beats run through the float model, the core's ``loihi`` profile and Lava's ``Loihi2SimCfg`` (fixed
point); ``spike_match`` is the fraction of (step, beat, neuron) spikes where Lava and the core agree,
``lava_s`` the wall time of the Lava subprocess (start, build, run, read back). ``lava_ecg_cost`` is
:func:`hub.lava.cost.loihi_cost` on those beats (its sources are in that module). ``nir``: the trained ECG
net (same beats) and digits net (``artifacts/digits_debug``) exported to NIR and read back into snnTorch
(:func:`bench_nir`). Both sides run one thread (``torch.set_num_threads(1)``, ORT
``intra_op_num_threads=1``); times are medians of repeated calls on the same batch. Models: the spiking ECG
net (default sizes), the STDP digits net (``artifacts/digits_debug`` when present) and a small spiking LM
(fixed context), with the weights they have (the agreement figures do not need trained weights).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub.export_onnx import DigitsClassifier, export_onnx, wrap_for_onnx  # noqa: E402


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _median_ms(fn, reps: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def _models(quick: bool):
    from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM
    from evospikenet.models.ecg import ECGSpikingConfig, ECGSpikingNet
    from evospikenet.models.plastic_snn import PlasticDigitsSNN
    from hub.models import load_model

    torch.manual_seed(0)
    ecg = ECGSpikingNet(ECGSpikingConfig()).eval()
    try:
        digits = load_model(ROOT / "artifacts" / "digits_debug")
    except (ValueError, OSError):
        digits = DigitsClassifier(
            PlasticDigitsSNN(n_in=64, n_exc=40, time_steps=10), torch.nn.Linear(40, 10), 10.0
        )
    cfg = SpikingEvoSpikeNetConfig(
        d_model=64, n_layers=2, n_heads=4, context_length=32, time_steps=4, neuron_backend="evospikenet"
    )
    lm = SpikingEvoSpikeNetForCausalLM(cfg).eval()
    b = 16 if quick else 64
    g = torch.Generator().manual_seed(1)
    inputs = {
        "ecg": [torch.randn(b, ecg.config.window, generator=g) * 0.5, torch.randn(b, 6, generator=g)],
        "digits": [
            torch.bernoulli(torch.full((digits.net.time_steps, b, digits.net.n_in), 0.25), generator=g)
        ],
        "lm": [torch.randint(0, cfg.vocab_size, (4 if quick else 16, cfg.context_length), generator=g)],
    }
    return {"ecg": ecg, "digits": digits.eval(), "lm": lm}, inputs


def bench_onnx(quick: bool) -> dict:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    models, inputs = _models(quick)
    reps = 10 if quick else 50
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, model in models.items():
            _log(f"onnx: {name}")
            x = inputs[name]
            plain = export_onnx(model, Path(tmp) / f"{name}.onnx")
            spiky = export_onnx(model, Path(tmp) / f"{name}_spikes.onnx", with_spikes=True)
            wrap, _, names, _, _ = wrap_for_onnx(model, with_spikes=False)
            wrap_s, *_ = wrap_for_onnx(model, with_spikes=True)
            feed = {k: v.numpy() for k, v in zip(names, x)}
            sess = ort.InferenceSession(str(plain), so, providers=["CPUExecutionProvider"])
            sess_s = ort.InferenceSession(str(spiky), so, providers=["CPUExecutionProvider"])
            with torch.inference_mode():
                eager_ms = _median_ms(lambda w=wrap, x=x: w(*x), reps)
                ref_logits, ref_spikes = wrap_s(*x)
            ort_ms = _median_ms(lambda s=sess, f=feed: s.run(None, f), reps)
            logits, spikes = sess_s.run(None, feed)
            ref_logits, ref_spikes = ref_logits.numpy(), ref_spikes.numpy()
            diff = spikes != ref_spikes  # (T, B, N)
            flip_samples = diff.any(axis=(0, 2)) if diff.ndim == 3 else diff.any(axis=0)
            out[name] = {
                "eager_ms": round(eager_ms, 3),
                "ort_ms": round(ort_ms, 3),
                "speedup": round(eager_ms / ort_ms, 3),
                "spike_agreement": float(1.0 - diff.mean()),
                "max_abs_logit_diff": float(np.abs(logits - ref_logits).max()),
                "samples_with_spike_flip": float(flip_samples.mean()),
                "argmax_flip_rate": float((logits.argmax(-1) != ref_logits.argmax(-1)).mean()),
            }
    return out


def bench_lava(quick: bool) -> dict:
    from hub.lava.bridge import lava_unavailable_reason, run_core, run_lava

    reason = lava_unavailable_reason()
    if reason:
        _log(f"lava skipped: {reason}")
        return {"neurons": 0, "steps": 0, "spike_match": None, "skipped": reason}
    from hub.lava.bridge import random_network

    net = random_network(40, 160)
    steps = 1000
    _log(f"lava: {sum(p.n for p in net.populations.values())} neurons, {steps} steps")
    t0 = time.perf_counter()
    core = run_core(net, steps)
    core_s = time.perf_counter() - t0
    lava, lava_s = run_lava(net, steps)
    match = [(lava[k] == core[k]) for k in core]
    agree = sum(int(m.sum()) for m in match) / sum(m.size for m in match)
    return {
        "neurons": sum(p.n for p in net.populations.values()),
        "steps": steps,
        "spike_match": agree,
        "lava_s": round(lava_s, 3),
        "core_s": round(core_s, 3),
        "spike_rate": float(np.mean([core[k].mean() for k in core])),
    }


def bench_lava_ecg(quick: bool, model_dir: Path) -> tuple[dict, dict]:
    from hub.lava.bridge import lava_unavailable_reason
    from hub.lava.cost import loihi_cost
    from hub.lava.ecg import ECG_RECORDS, heldout_beats, loihi_ecg, verify_ecg
    from hub.models import load_model

    reason = lava_unavailable_reason()
    if reason is None and not (model_dir / "model.safetensors").is_file():
        reason = f"no trained ECG model in {str(model_dir)!r} (make ecg)"
    if reason:
        _log(f"lava_ecg skipped: {reason}")
        return {"beats": 0, "spike_match": None, "skipped": reason}, {}
    model = load_model(model_dir)
    beats = heldout_beats(model.config, ECG_RECORDS if quick else None, 100 if quick else None)
    _log(f"lava_ecg: fine-tuning and quantising {model_dir}")
    net = loihi_ecg(model, qat_epochs=3, log=_log)
    _log(f"lava_ecg: {len(beats)} held-out beats through float, core and Lava")
    r = verify_ecg(model, net, beats)
    cost = loihi_cost(net, r["spikes"], r["inputs"])
    out = {
        "beats": r["beats"],
        "records": r["records"],
        "spike_match": r["spike_match"],
        "accuracy_lava": r["accuracy_lava"],
        "accuracy_float": r["accuracy_float"],
        "loihi_cores": cost["cores"],
        "sops_per_beat": cost["sops_per_sample"],
        "energy_per_beat_j_estimate": cost["energy_per_sample_j"],
        "lava_s": round(r["lava_s"], 3),
    }
    extra = {k: v for k, v in cost.items() if k not in ("sops_per_sample", "cores", "energy_per_sample_j")}
    extra.update(
        accuracy_core=r["accuracy_core"],
        readout_match=r["readout_match"],
        lava_run_s=round(r["lava_run_s"], 3),
        core_s=round(r["core_s"], 3),
        horowitz_45nm_energy_per_beat_j=_horowitz(model, beats),
    )
    return out, extra


def bench_nir(quick: bool, ecg_dir: Path, digits_dir: Path) -> dict:
    """Trained ECG and digits nets through NIR and back into snnTorch: spikes and classes vs PyTorch.

    ECG: held-out beats (as ``lava_ecg``) with the reset metadata honoured and ignored; digits: Bernoulli
    spike trains at rate 0.25 (seeded) for the digits network.
    """
    import nir

    from hub.export_nir import export_nir_file
    from hub.lava.ecg import ECG_RECORDS, heldout_beats
    from hub.models import load_model
    from hub.nir_ecg import ECG_LIFS
    from hub.nir_read import run_digits_graph, run_ecg_graph

    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        if (ecg_dir / "model.safetensors").is_file():
            model = load_model(ecg_dir)
            beats = heldout_beats(model.config, ECG_RECORDS if quick else None, 100 if quick else None)
            x, rr, y = torch.from_numpy(beats.x), torch.from_numpy(beats.rr), beats.y
            graph = nir.read(str(export_nir_file(model, Path(tmp) / "ecg.nir")))
            with torch.no_grad():
                ref, spikes = model(x, rr, return_spikes=True)
            row = {"beats": len(y), "accuracy_pytorch": float((ref.argmax(1).numpy() == y).mean())}
            for mode, honour in (("metadata", True), ("zero_reset", False)):
                steps, got = run_ecg_graph(graph, x, rr, model.config.time_steps, honour)
                same = sum(int((got[k] == s).sum()) for k, s in zip(ECG_LIFS, spikes))
                pred = steps.mean(0).argmax(1)
                row[mode] = {
                    "spike_match": same / sum(s.numel() for s in spikes),
                    "same_class": float((pred == ref.argmax(1)).float().mean()),
                    "accuracy": float((pred.numpy() == y).mean()),
                    "max_abs_logit_diff": float((steps.mean(0) - ref).abs().max()),
                }
            out["ecg"] = row
        if (digits_dir / "model.safetensors").is_file():
            model = load_model(digits_dir)
            g = torch.Generator().manual_seed(0)
            n = 64 if quick else 512
            x = torch.bernoulli(torch.full((model.net.time_steps, n, model.net.n_in), 0.25), generator=g)
            graph = nir.read(str(export_nir_file(model, Path(tmp) / "digits.nir")))
            with torch.no_grad():
                ref, spikes = model(x, return_spikes=True)
            logits, got = run_digits_graph(graph, x)
            out["digits"] = {
                "samples": n,
                "spike_match": float((got == spikes).float().mean()),
                "same_class": float((logits.argmax(1) == ref.argmax(1)).float().mean()),
                "max_abs_logit_diff": float((logits - ref).abs().max()),
            }
    return out


def _horowitz(model, beats) -> float:
    """The project's own compute-energy estimate of the float net on the same beats (45 nm, SOPs + MACs)."""
    from evospikenet.energy import HOROWITZ_45NM, OpCounter

    counter = OpCounter()
    with torch.no_grad():
        model(torch.from_numpy(beats.x), torch.from_numpy(beats.rr), counter=counter)
    return HOROWITZ_45NM.report(counter).compute_j / len(beats)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small batches, fewer repetitions, 500 ECG beats")
    ap.add_argument("--ecg-model", default=str(ROOT / "artifacts" / "ecg" / "model"), help="trained ECG net")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    lava_ecg, cost = bench_lava_ecg(a.quick, Path(a.ecg_model))
    result = {
        "nir": bench_nir(a.quick, Path(a.ecg_model), ROOT / "artifacts" / "digits_debug"),
        "onnx": bench_onnx(a.quick),
        "lava": bench_lava(a.quick),
        "lava_ecg": lava_ecg,
        "lava_ecg_cost": cost,
    }
    print(json.dumps(result, default=lambda v: None if isinstance(v, float) and math.isnan(v) else v))


if __name__ == "__main__":
    main()
