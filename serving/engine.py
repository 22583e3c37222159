"""Model loading and the inference functions every deployment (and the Ray-free local backend) runs.

* :func:`load_causal_lm` / :func:`load_classifier` load a saved directory or Hub id; with ``device_map`` they
  go through accelerate (``init_empty_weights`` + ``load_checkpoint_and_dispatch``), so one replica can span
  the GPUs it is given, splitting at ``SpikingBlock`` boundaries.
* :func:`generate_steps` is the generation loop (greedy or temperature / top-k sampling, no KV cache: the
  model recomputes the prefix cropped to its context). It yields one :class:`Step` per token, with the spike
  raster of every population for the newest token, the last layer's attention averaged over heads and the
  compute energy ``E = SOPs * E_AC + MACs * E_MAC`` of the step (``SpikeStats``).

Request errors are :class:`serving.errors.RequestError` (-> 422); the tiny debug models live in
:mod:`serving.debug_models`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from typing import NamedTuple

import torch

import evospikenet  # noqa: F401  (registers the Auto classes)
from evospikenet.models import (
    SpikingEvoSpikeNetConfig,
    SpikingEvoSpikeNetForCausalLM,
    SpikingEvoSpikeNetForSequenceClassification,
)
from evospikenet.models.ecg import ECGSpikingNet, load_ecg_model
from evospikenet.models.spiking_lm import pack_sequences
from evospikenet.models.spiking_lm.neurons import LIFPopulation

from .errors import RequestError, check_deadline
from .schemas import LIMITS

__all__ = [
    "Step",
    "ECG_CLASSES",
    "default_device_map",
    "load_tokenizer",
    "load_causal_lm",
    "load_classifier",
    "load_ecg",
    "generate_steps",
    "classify_texts",
    "classify_ecg",
    "generation_positions",
]

ECG_CLASSES = ("N", "S", "V", "F", "Q")  # AAMI beat classes
NO_SPLIT = ["SpikingBlock"]  # modules a device map keeps whole
SERVE_NEURON_BACKEND = "evospikenet"  # neuron backend of every served spiking LM (see _dispatch)


class Step(NamedTuple):
    """One generated token with what the model did to produce it."""

    token_id: int  # chosen token
    token: str  # its text
    energy_j: float  # compute energy of the step (every token of the prefix)
    energy_per_token_j: float  # energy_j / prefix length
    spike_rate: float  # mean firing rate of the step
    rasters: dict | None  # population -> (T, N) int spikes of the newest token (with insight)
    attention: list | None  # (L, L) last layer attention, mean over heads (with insight)


def load_tokenizer(path: str):
    """The tokenizer saved beside the model, else the byte-level tokenizer for a 257-token vocabulary."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(path)
    except (OSError, ValueError, TypeError):
        from evospikenet.data.text import byte_tokenizer

        return byte_tokenizer()


def _dispatch(cls, path: str, device_map):
    """Load ``cls`` from ``path`` with accelerate: empty weights, then dispatch the checkpoint.

    A checkpoint that lacks some weights (saved by an older model version) leaves them on the meta device;
    then the model is built for real (its own init for the missing weights), the checkpoint loaded over it,
    and ``dispatch_model`` places it by the same device map.
    """
    from accelerate import (
        dispatch_model,
        infer_auto_device_map,
        init_empty_weights,
        load_checkpoint_and_dispatch,
    )

    from hub.publish import resolve_model

    local = str(resolve_model(path))  # verified: manifest SHA-256s, no pickles, sizes within limits
    config = SpikingEvoSpikeNetConfig.from_pretrained(local)
    # Inference runs the fused core LIF: the same spikes as snnTorch's Leaky (tests/models), without its
    # per-step Python overhead (2-3x faster per request on the CPU).
    config.neuron_backend = SERVE_NEURON_BACKEND
    with init_empty_weights():
        model = cls(config)
    kw = {"no_split_module_classes": NO_SPLIT, "dtype": torch.float32}
    try:
        model = load_checkpoint_and_dispatch(model, local, device_map=device_map, **kw)
        missing = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    except NotImplementedError:  # "Cannot copy out of meta tensor": a weight the checkpoint lacks
        missing = sorted(set(cls(config).state_dict()) - set(_read_state_dict(local)))
    if not missing:
        return model
    warnings.warn(f"{path}: checkpoint lacks {missing}; they keep the model's initialisation", stacklevel=3)
    model = cls(config)
    model.load_state_dict(_read_state_dict(local), strict=False)
    if isinstance(device_map, str):
        device_map = infer_auto_device_map(model, no_split_module_classes=NO_SPLIT)
    return dispatch_model(model, device_map=device_map)


def _read_state_dict(local: str) -> dict:
    import glob

    from safetensors.torch import load_file

    files = sorted(glob.glob(os.path.join(local, "*.safetensors")))
    if not files:  # never unpickle weights (.bin): they can run code
        raise ValueError(f"{local} holds no *.safetensors weights; re-save the model with save_pretrained")
    return {k: v for f in files for k, v in load_file(f).items()}


def default_device_map():
    """``"auto"`` (spread over the visible GPUs) when CUDA is available, else everything on the CPU."""
    return "auto" if torch.cuda.is_available() else {"": "cpu"}


def _load(cls, path: str, device_map):
    return _dispatch(cls, path, device_map if device_map is not None else default_device_map()).eval()


def load_causal_lm(path: str, device_map=None):
    """(model, tokenizer) of a causal spiking LM; ``device_map`` ("auto", "cpu", dict) uses accelerate."""
    from hub.publish import resolve_model

    path = str(resolve_model(path))  # a Hub id is pulled and verified once; the tokenizer comes from there
    return _load(SpikingEvoSpikeNetForCausalLM, path, device_map), load_tokenizer(path)


def load_classifier(path: str, device_map=None):
    """(model, tokenizer, labels) of a spiking sequence classifier."""
    from hub.publish import resolve_model

    path = str(resolve_model(path))
    model = _load(SpikingEvoSpikeNetForSequenceClassification, path, device_map)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    return model, load_tokenizer(path), labels


def load_ecg(path: str):
    """An ECG beat classifier (either kind) in eval mode."""
    from hub.publish import resolve_model

    return load_ecg_model(str(resolve_model(path)))


def _encode(tokenizer, text: str, context: int, field: str = "text") -> list[int]:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise RequestError(field, "text encodes to no tokens")
    if len(ids) > context:
        raise RequestError(field, f"text is {len(ids)} tokens, over the model's context of {context}")
    return ids


class _RasterHooks:
    """Forward hooks on every ``LIFPopulation`` keeping its spikes (T, B, L, N<=max_neurons) of one call."""

    def __init__(self, model, max_neurons: int) -> None:
        self.spikes: dict[str, torch.Tensor] = {}
        self.handles = []
        for name, mod in model.named_modules():
            if isinstance(mod, LIFPopulation):
                self.handles.append(mod.register_forward_hook(self._hook(name, max_neurons)))

    def _hook(self, name: str, n: int):
        def f(_mod, _inp, out):
            s = out[0]  # (T, B, L, D) or (T, B, L, H, d)
            self.spikes[name.removeprefix("spiking.")] = s.reshape(*s.shape[:3], -1)[..., :n].detach()

        return f

    def raster(self, name: str, b: int, pos: int) -> list[list[int]]:
        """(T, N) spikes of population ``name`` for batch item ``b`` at token ``pos``."""
        return self.spikes[name][:, b, pos].to(torch.int8).cpu().tolist()

    def rasters(self, b: int = 0, pos: int = -1) -> dict[str, list[list[int]]]:
        return {name: self.raster(name, b, pos) for name in self.spikes}

    def remove(self) -> None:
        for h in self.handles:
            h.remove()


def generation_positions(prompt_tokens: int, new_tokens: int, window: int) -> int:
    """Token positions the model processes to generate ``new_tokens`` after ``prompt_tokens``, with no KV
    cache: ``sum_k min(window, prompt_tokens + k)`` for ``k = 0 .. new_tokens - 1``."""
    return sum(min(window, prompt_tokens + k) for k in range(new_tokens))


@torch.no_grad()
def generate_steps(
    model,
    tokenizer,
    text: str,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_k: int = 0,
    seed: int = 0,
    insight: bool = False,
    max_neurons: int = 64,
    deadline: float | None = None,
) -> Iterator[Step]:
    """Yield one :class:`Step` per generated token (stops early at ``eos_token_id``).

    Before the first forward pass the request's work, :func:`generation_positions`, is checked against
    ``LIMITS.max_generate_positions`` (a :class:`RequestError` naming ``max_new_tokens`` when over); between
    tokens, ``deadline`` (epoch seconds) is checked (:class:`serving.errors.DeadlineExceeded`)."""
    ctx = model.generation_window  # context_length - 1: the last position's embedding is never trained
    ids = _encode(tokenizer, text, 10**9)[-ctx:]
    work = generation_positions(len(ids), max_new_tokens, ctx)
    if work > LIMITS.max_generate_positions:
        raise RequestError(
            "max_new_tokens",
            f"{max_new_tokens} new tokens after a {len(ids)}-token prompt make the model process {work} token "
            f"positions, over this server's budget of {LIMITS.max_generate_positions}; ask for fewer tokens",
        )
    device = next(model.parameters()).device
    x = torch.tensor([ids], device=device)
    g = torch.Generator().manual_seed(seed)
    eos = model.config.eos_token_id
    for _ in range(max_new_tokens):
        check_deadline(deadline, "max_new_tokens")
        x = x[:, -ctx:]
        hooks = _RasterHooks(model, max_neurons) if insight else None
        try:
            out = model(input_ids=x, output_attentions=insight)
        finally:
            if hooks is not None:
                hooks.remove()
        logits = out.logits[0, -1].float().cpu()  # (V,)
        if temperature > 0:
            # In float64 (a float32 temperature of 1e-170 is 0) and shifted so the largest logit is 0: a tiny
            # temperature sends the others to -inf, never the largest to inf (softmax of inf is NaN).
            logits = (logits.double() - logits.max()) / temperature
            if top_k > 0:
                kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = int(torch.multinomial(logits.softmax(-1), 1, generator=g))
        else:
            nxt = int(logits.argmax())
        stats = out.spike_stats
        e_tok = stats.energy_per_token_j()
        attention = None
        if insight and out.attentions and out.attentions[-1] is not None:
            attention = out.attentions[-1][0].mean(0).float().cpu().tolist()  # (L, L)
        yield Step(
            nxt,
            tokenizer.decode([nxt]),
            e_tok * x.shape[1],
            e_tok,
            float(out.spike_rate),
            hooks.rasters() if hooks else None,
            attention,
        )
        if eos is not None and nxt == eos:
            return
        x = torch.cat([x, torch.tensor([[nxt]], device=device)], dim=1)


@torch.no_grad()
def classify_texts(
    model, tokenizer, labels: list[str], texts: list[str], return_spikes: bool = False, encoded=None
) -> list:
    """Class probabilities of each text.

    Several texts are packed into rows of ``context_length`` tokens (``pack_sequences``: no compute spent on
    padding, same logits as a padded batch); with ``return_spikes`` the batch is right-padded instead, one
    text per row, so each raster belongs to one text. ``encoded``: the texts' token ids, already checked
    with ``_encode`` (the caller validated them), so they are not tokenised twice.
    """
    ctx = model.config.context_length
    enc = encoded if encoded is not None else [_encode(tokenizer, t, ctx) for t in texts]
    pad = model.config.pad_token_id or 0
    device = next(model.parameters()).device
    if return_spikes or len(enc) == 1:
        L = max(len(e) for e in enc)
        ids = torch.full((len(enc), L), pad, dtype=torch.long)
        mask = torch.zeros(len(enc), L, dtype=torch.long)
        for i, e in enumerate(enc):
            ids[i, : len(e)] = torch.tensor(e)
            mask[i, : len(e)] = 1
        pos, order = None, list(range(len(enc)))
    else:
        ids, pos, mask, order = pack_sequences(enc, ctx, pad)
        pos = pos.to(device)
    hooks = _RasterHooks(model, 64) if return_spikes else None
    try:
        out = model(input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=pos)
    finally:
        if hooks is not None:
            hooks.remove()
    probs = torch.empty_like(out.logits, dtype=torch.float, device="cpu")  # (B, C) in the order of texts
    probs[torch.tensor(order)] = out.logits.float().softmax(-1).cpu()
    e_tok = out.spike_stats.energy_per_token_j()
    results = []
    for i, e in enumerate(enc):
        p = probs[i].tolist()
        r = {
            "label": labels[int(probs[i].argmax())],
            "probabilities": dict(zip(labels, p)),
            "spike_rate": float(out.spike_rate),
            "energy_per_token_j": e_tok,
        }
        if return_spikes:
            r["input_ids"] = e
            last = list(hooks.spikes)[-1]  # the last spiking population before the head
            r["raster"] = hooks.raster(last, i, len(e) - 1)  # (T, N)
            r["raster_layer"] = last
        results.append(r)
    return results


@torch.no_grad()
def classify_ecg(model, signals: list[list[float]], rrs: list, return_spikes: bool = False) -> list:
    """Class probabilities of each beat window; ``rrs[i]`` None means the training-set mean RR."""
    c = model.config
    for name, v in (("signal", signals),):
        for s in v:
            if len(s) != c.window:
                raise RequestError(name, f"signal has {len(s)} samples, the model needs {c.window}")
    rows = []
    for rr in rrs:
        if rr is None:
            rows.append(model.rr_mean.tolist())
        elif len(rr) != c.n_rr:
            raise RequestError("rr", f"rr has {len(rr)} values, the model needs {c.n_rr}")
        else:
            rows.append(list(rr))
    x = torch.tensor(signals, dtype=torch.float32)
    rr_t = torch.tensor(rows, dtype=torch.float32)
    if isinstance(model, ECGSpikingNet):
        logits, spikes = model(x, rr_t, return_spikes=True)
    else:
        logits, spikes = model(x, rr_t), []
    probs = logits.float().softmax(-1)
    names = list(ECG_CLASSES[: c.n_classes])
    out = []
    for i in range(len(signals)):
        r = {"label": names[int(probs[i].argmax())], "probabilities": dict(zip(names, probs[i].tolist()))}
        if return_spikes:
            layers = ("enc", "conv2", "conv3", "fc")
            r["rasters"] = {
                n: s[:, i].reshape(s.shape[0], -1)[:, :64].to(torch.int8).tolist()
                for n, s in zip(layers, spikes)
            }
        out.append(r)
    return out
