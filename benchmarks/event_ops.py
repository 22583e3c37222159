"""Event-driven inference against the dense tensor code, in the same run: ``python benchmarks/event_ops.py``.

1. ``spike_linear``: one synaptic layer fed with binary spikes (the spiking LM's shapes, 768 rows = 4 steps x
   192 tokens), the C++ event-driven product against ``F.linear`` (BLAS), at several firing rates.
2. ``ln_lif``: ``LIF(LayerNorm(x))`` from rest, as every population of the spiking LM runs it, the fused
   one-pass kernel (``ln_lif_forward_native``) against ``torch.layer_norm`` followed by the C++ LIF, on the
   block's shapes (4 steps x 64 tokens; a 256-wide slice of the (.., 768) ``W_qkv`` output, as q, k and v
   are, and the 1024-wide hidden layer).
3. ``classifier``: a forward pass of the sentiment classifier that serving runs (``artifacts/sst2`` when it
   exists, else a randomly initialised model of the same size) on the load test's 8 sentences, batches of 1,
   16 and 32: everything dense and padded (the path before these kernels), event kernels with padding, and
   event kernels with packed rows (what ``serving.engine.classify_texts`` runs).

One thread, median of repeats. Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [ROOT, os.path.dirname(os.path.abspath(__file__))]

from evospikenet.functional import event_ops  # noqa: E402

SHAPES = [(256, 768), (256, 1024), (1024, 256)]  # (in, out): W_qkv, W_1, W_2 of a d 256 block
RATES = [0.02, 0.1, 0.2, 0.3]


def _median_ms(fn, repeats: int, *args, **kwargs) -> float:
    fn(*args, **kwargs)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - t)
    return round(1e3 * statistics.median(times), 3)


def bench_linear(repeats: int) -> list[dict]:
    out = []
    for k, m in SHAPES:
        w = torch.randn(m, k) / k**0.5
        cache: dict = {}
        for rate in RATES:
            x = (torch.rand(768, k) < rate).float()
            with torch.no_grad():
                dense = _median_ms(F.linear, repeats, x, w)
                event = _median_ms(event_ops.spike_linear, repeats, x, w, None, cache)
            row = {"in": k, "out": m, "rate": rate, "dense_ms": dense, "event_ms": event,
                   "speedup": round(dense / event, 2)}  # fmt: skip
            print(row, file=sys.stderr)
            out.append(row)
    return out


def _ln_then_lif(x, w, b):
    y = F.layer_norm(x, (x.shape[-1],), w, b, 1e-5)  # (T, N, D)
    v0 = torch.zeros(y[0].numel())
    return event_ops.lif_forward_native(y.reshape(y.shape[0], -1), v0, 0.5, 1.0, 0.0, 1.0, 0.0, "subtract")


def _ln_lif(x, w, b):
    return event_ops.ln_lif_forward_native(x, w, b, 1e-5, 0.5, 1.0, 0.0, 1.0, 0.0, "subtract")


def bench_ln_lif(repeats: int) -> list[dict]:
    out = []
    for tokens, width, stride in ((64, 256, 768), (64, 256, 256), (64, 1024, 1024), (128, 1024, 1024)):
        torch.manual_seed(0)
        x = torch.randn(4, tokens, stride)[..., :width]  # (T, N, D), a strided view when stride > width
        w, b = torch.rand(width) + 0.5, torch.rand(width) - 0.5

        with torch.no_grad():
            row = {"tokens": tokens, "width": width, "strided": stride != width,
                   "separate_ms": _median_ms(_ln_then_lif, repeats, x, w, b),
                   "fused_ms": _median_ms(_ln_lif, repeats, x, w, b)}  # fmt: skip
        row["speedup"] = round(row["separate_ms"] / row["fused_ms"], 2)
        print(row, file=sys.stderr)
        out.append(row)
    return out


def _classifier():
    from serving import engine

    path = os.path.join(ROOT, "artifacts", "sst2", "student_distilled")
    if os.path.isdir(path):
        model, tok, labels = engine.load_classifier(path)
        return "sst2", model, tok, labels
    from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForSequenceClassification

    cfg = SpikingEvoSpikeNetConfig(vocab_size=30522, d_model=256, n_layers=2, n_heads=8, context_length=64,
                                   num_labels=2, bos_token_id=101, eos_token_id=102, pad_token_id=0)  # fmt: skip
    model = SpikingEvoSpikeNetForSequenceClassification(cfg).eval()
    ids = [
        [101, *range(1000 + 7 * i, 1000 + 7 * i + n), 102] for i, n in enumerate([6, 8, 3, 6, 6, 1, 10, 8])
    ]
    return "random_init", model, ids, None


def bench_classifier(repeats: int) -> dict:
    from serve import SENTENCES

    from evospikenet.models.spiking_lm import pack_sequences
    from serving import engine

    name, model, tok, _ = _classifier()
    enc = [engine._encode(tok, s, 64) for s in SENTENCES] if name == "sst2" else tok

    def padded(seqs):
        ids = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, s in enumerate(seqs):
            ids[i, : len(s)], mask[i, : len(s)] = torch.tensor(s), 1
        return {"input_ids": ids, "attention_mask": mask}

    def packed(seqs):
        ids, pos, mask, _ = pack_sequences(seqs, model.config.context_length)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": pos}

    out = {"model": name}
    for b in (1, 16, 32):
        seqs = [enc[i % len(enc)] for i in range(b)]
        row = {}
        with torch.no_grad():
            os.environ["EVOSPIKENET_EVENT_KERNELS"] = "0"
            row["dense_padded_ms"] = _median_ms(model, repeats, **padded(seqs))
            os.environ["EVOSPIKENET_EVENT_KERNELS"] = "1"
            row["event_padded_ms"] = _median_ms(model, repeats, **padded(seqs))
            row["event_packed_ms"] = _median_ms(model, repeats, **(packed(seqs) if b > 1 else padded(seqs)))
        row["speedup"] = round(row["dense_padded_ms"] / row["event_packed_ms"], 2)
        print(b, row, file=sys.stderr)
        out[str(b)] = row
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/event_ops.py", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (about a minute)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if not event_ops.event_kernels_enabled():
        print("the event kernels did not build (no C++ compiler?)", file=sys.stderr)
        print(json.dumps({"available": False}))
        return 1
    repeats = 7 if args.quick else 25
    result = {"available": True, "threads": 1, "spike_linear": bench_linear(repeats),
              "ln_lif": bench_ln_lif(10 * repeats), "classifier": bench_classifier(repeats)}  # fmt: skip
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
