"""Serving the multimodal spiking LM: loading, request checks and one answer with what the model did.

:func:`answer` checks a request against the served model (image size and pixel range, beat length, RR
features, a prompt that names a modality whose input is missing: each a :class:`RequestError` naming the
field -> 422), answers greedily with ``MultiModalEvoSpikeNetForCausalLM.generate_from_encoded`` (encoders
run once), then runs one forward pass over ``prompt + answer`` with ``output_attentions=True`` and returns

* the spikes of every encoder population, ``(T, N<=64)`` of the one item, with its mean firing rate;
* the cross-modal attention: last layer, mean over heads, rows = text positions ``i >= P``, columns =
  prefix positions ``j < P`` (``P = prefix_len``), i.e. ``A[P:, :P]`` of the causal ``(P+L, P+L)`` map,
  plus each text row's total mass on the prefix ``sum_j A[i, j<P]``.
"""

from __future__ import annotations

import torch

import evospikenet  # noqa: F401  (registers the Auto classes)
from evospikenet.models.multimodal import MultiModalEvoSpikeNetForCausalLM

from .errors import RequestError

__all__ = ["load_multimodal", "answer", "prefix_names"]

MAX_NEURONS = 64  # neurons per population returned in a raster (LIMITS.max_raster_neurons)


def load_multimodal(path: str) -> MultiModalEvoSpikeNetForCausalLM:
    """The multimodal LM saved in ``path`` (directory or Hub id), in eval mode on the CPU."""
    from hub.publish import resolve_model

    local = str(resolve_model(path))  # verified: manifest SHA-256s, no pickles, sizes within limits
    return MultiModalEvoSpikeNetForCausalLM.from_pretrained(local, use_safetensors=True).eval()


def prefix_names(model, modalities) -> list[str]:
    """Labels of the prefix positions: ``image.0..3`` then ``signal.0..3`` (the order of ``encode``)."""
    c = model.config
    n = {"images": c.n_image_tokens, "signals": c.signal_tokens}
    return [f"{m[:-1]}.{i}" for m in modalities for i in range(n[m])]


def _check(model, req: dict) -> tuple:
    """(images (1, C, S, S) | None, signals (1, n) | None, rr (1, n_rr) | None) or a RequestError."""
    from evospikenet.data.multimodal import tokenize_words

    c = model.config
    image, signal, rr = req.get("image"), req.get("signal"), req.get("rr")
    if image is None and signal is None:
        raise RequestError("image", "give an image or a signal (ECG beat) to ask about")
    if rr is not None and signal is None:
        raise RequestError("rr", "rr was given without a signal")
    words = set(tokenize_words(req["text"]))
    for given, vocab, field, what in ((image, c.image_words, "image", "an image"),
                                      (signal, c.signal_words, "signal", "an ECG beat")):  # fmt: skip
        hit = sorted(words & set(vocab))
        if hit and given is None:
            raise RequestError(
                field, f"the prompt refers to {what} ({', '.join(hit)}) but no {field} was given"
            )
    images = signals = rr_t = None
    if image is not None:
        n = c.image_channels * c.image_size**2
        if len(image) != n:
            raise RequestError(
                "image", f"image has {len(image)} values, the model needs {n} "
                f"({c.image_channels} x {c.image_size} x {c.image_size}, row by row)"
            )  # fmt: skip
        if min(image) < 0 or max(image) > c.image_max_value:
            raise RequestError("image", f"pixel values must lie in [0, {c.image_max_value:g}]")
        images = torch.tensor(image, dtype=torch.float32).reshape(1, c.image_channels, c.image_size, -1)
    if signal is not None:
        if len(signal) != c.signal_length:
            raise RequestError(
                "signal", f"signal has {len(signal)} samples, the model needs {c.signal_length}"
            )
        signals = torch.tensor([signal], dtype=torch.float32)
        if c.n_rr > 0:
            if rr is None:  # the training-set mean RR features
                rr = list(c.rr_mean) if c.rr_mean is not None else [0.0] * c.n_rr
            if len(rr) != c.n_rr:
                raise RequestError("rr", f"rr has {len(rr)} values, the model needs {c.n_rr}")
            rr_t = torch.tensor([rr], dtype=torch.float32)
    P = (c.n_image_tokens if images is not None else 0) + (c.signal_tokens if signals is not None else 0)
    L = len(model.tokenizer.prompt(req["text"]))
    if P + L + 1 > c.context_length:
        raise RequestError("text", f"prompt is {L} tokens; with the {P} prefix tokens it leaves no room to "
                           f"answer within the context of {c.context_length}")  # fmt: skip
    return images, signals, rr_t


@torch.no_grad()
def answer(model, req: dict, model_name: str = "") -> dict:
    """Answer one multimodal request (``text``, ``image`` | ``signal`` [+ ``rr``], ``max_new_tokens``)."""
    images, signals, rr = _check(model, req)
    enc = model.encode(images, signals, rr)
    n_new = req.get("max_new_tokens") or model.config.max_new_tokens
    text = model.generate_from_encoded([req["text"]], enc, int(n_new))[0]
    out = {"model": model_name, "prompt": req["text"], "answer": text}
    if not req.get("return_insight", True):
        return out
    tok = model.tokenizer
    ids = tok.prompt(req["text"]) + tok.words(text)
    ids = ids[: model.config.context_length - sum(v.current.shape[2] for v in enc.values())]
    res = model(input_ids=torch.tensor([ids]), encoded=enc, output_attentions=True)
    P = res.prefix_len
    att = res.attentions[-1]
    cross = att[0].float().mean(0)[P:, :P] if att is not None else torch.zeros(len(ids), P)  # (L, P)
    spikes = {}
    for m, pops in res.encoder_spikes.items():
        for i, s in enumerate(pops):  # s: (T, B, ...)
            flat = s[:, 0].reshape(s.shape[0], -1)  # (T, N)
            spikes[f"{m[:-1]}.enc{i}"] = {
                "raster": flat[:, :MAX_NEURONS].to(torch.int8).tolist(),
                "neurons": int(flat.shape[1]),
                "rate": float(flat.float().mean()),
            }
    out.update(
        text_tokens=[tok.vocab[i] for i in ids],
        prefix_tokens=prefix_names(model, list(enc)),
        prefix_len=int(P),
        cross_attention=cross.tolist(),
        prefix_mass=cross.sum(-1).tolist(),
        encoder_spikes=spikes,
        spike_rate=float(res.spike_rate),
        energy_j=float(res.spike_stats.energy_per_token_j() * len(ids)),
    )
    return out
