"""Size limits of a model ``config.json`` and the weight shapes it implies, checked before anything is built.

A 1 KB config can ask for a model that exhausts memory (``d_model: 10**9``). :func:`check_config_limits`
reads every size field of the project's model types, requires a positive integer within :class:`LoadLimits`
and estimates the parameter count from the config alone; :func:`check_weight_shapes` compares the tensor
shapes of the safetensors headers with the shapes the config implies (from a model built on PyTorch's
``meta`` device, which allocates nothing). Both raise :class:`hub.models.ModelLoadError` naming the field or
tensor.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LoadLimits", "DEFAULT_LIMITS", "ModelLoadError", "check_config_limits", "check_weight_shapes"]


@dataclass(frozen=True)
class LoadLimits:
    """Largest sizes a loaded config may ask for (every field a count)."""

    d_model: int = 8192  # width of a spiking LM's residual stream
    layers: int = 128  # Transformer blocks (n_layers)
    heads: int = 128  # attention heads per block
    vocab: int = 1_048_576  # token vocabulary
    context: int = 131_072  # tokens per forward call
    time_steps: int = 1024  # simulation steps per token, beat or image
    neurons: int = 1_000_000  # neurons (channels, hidden units) of one layer
    samples: int = 1_000_000  # input samples (beat window, image pixels)
    mlp_ratio: int = 64  # MLP width over d_model
    parameters: int = 4_000_000_000  # estimated parameters of the whole model


DEFAULT_LIMITS = LoadLimits()


class ModelLoadError(ValueError):
    """A saved model directory failed a safety or consistency check (nothing was run)."""


def _error(msg: str) -> ModelLoadError:
    return ModelLoadError(msg)


def _int(cfg: dict, key: str, limit: int, where: str, name: str | None = None) -> int:
    v = cfg.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        raise _error(f"config.json of {where}: {key} must be an integer, got {v!r}")
    if not 1 <= v <= limit:
        raise _error(
            f"config.json of {where}: {key} = {v} is outside [1, {limit}] (LoadLimits.{name or key}); "
            f"refusing to build the model"
        )
    return v


def _ints(cfg: dict, key: str, limit: int, where: str, name: str) -> list[int]:
    v = cfg.get(key)
    if not isinstance(v, (list, tuple)) or not v or len(v) > 64:
        raise _error(
            f"config.json of {where}: {key} must be a non-empty list of at most 64 integers, got {v!r}"
        )
    return [_int({key: x}, key, limit, where, name) for x in v]


def check_config_limits(cfg: dict, model_type: str, where: str, limits: LoadLimits = DEFAULT_LIMITS) -> int:
    """Check the size fields of ``cfg`` (a ``model_type`` config); returns the estimated parameter count."""
    L = limits
    if model_type in ("spiking_evospikenet", "multimodal_evospikenet"):
        d = _int(cfg, "d_model", L.d_model, where)
        n = _int(cfg, "n_layers", L.layers, where, "layers")
        h = _int(cfg, "n_heads", L.heads, where, "heads") if "n_heads" in cfg else 1
        _int(cfg, "context_length", L.context, where, "context")
        if "time_steps" in cfg:
            _int(cfg, "time_steps", L.time_steps, where)
        r = _int(cfg, "mlp_ratio", L.mlp_ratio, where) if "mlp_ratio" in cfg else 4
        if d % h:
            raise _error(f"config.json of {where}: d_model = {d} is not divisible by n_heads = {h}")
        if model_type == "spiking_evospikenet":
            v = _int(cfg, "vocab_size", L.vocab, where, "vocab")
        else:
            vocab = cfg.get("vocab")
            if not isinstance(vocab, list) or not 0 < len(vocab) <= L.vocab:
                raise _error(f"config.json of {where}: vocab must be a list of 1..{L.vocab} words")
            v = len(vocab)
            _int(cfg, "image_size", 4096, where, "samples")
            _int(cfg, "signal_length", L.samples, where, "samples")
            for key in ("vision_channels", "signal_channels"):
                if key in cfg:
                    _ints(cfg, key, L.neurons, where, "neurons")
        est = n * (4 + 2 * r) * d * d + 2 * v * d + cfg["context_length"] * d
    elif model_type == "evospikenet_ecg_snn":
        ch = _ints(cfg, "channels", L.neurons, where, "neurons")
        ks = _ints(cfg, "kernels", 1024, where, "samples")
        _ints(cfg, "strides", 1024, where, "samples")
        hid = _int(cfg, "hidden", L.neurons, where, "neurons")
        _int(cfg, "time_steps", L.time_steps, where)
        win = _int(cfg, "beat_before", L.samples, where, "samples") + _int(
            cfg, "beat_after", L.samples, where, "samples"
        )
        ins = [1] + ch[:-1]
        est = sum(a * b * k for a, b, k in zip(ins, ch, ks)) + ch[-1] * win * hid
    elif model_type == "evospikenet_ecg_resnet18":
        ws = _ints(cfg, "widths", L.neurons, where, "neurons")
        bs = _ints(cfg, "blocks", L.layers, where, "layers")
        est = sum(2 * 3 * w * w * b for w, b in zip(ws, bs))
    else:  # the STDP digits classifier (Lightning hyper-parameters)
        net = cfg.get("network_config")
        if not isinstance(net, dict):
            raise _error(f"config.json of {where}: network_config must be an object")
        n_exc = _int(net, "n_exc", L.neurons, where, "neurons") if "n_exc" in net else 100
        if "time_steps" in net:
            _int(net, "time_steps", L.time_steps, where)
        _int(cfg, "n_classes", L.neurons, where, "neurons")
        est = n_exc * 4096
    if est > L.parameters:
        raise _error(
            f"config.json of {where} implies about {est:.3g} parameters, over LoadLimits.parameters = "
            f"{L.parameters:.3g}; refusing to build the model"
        )
    return int(est)


def check_weight_shapes(expected: dict, header: dict, where: str) -> None:
    """``expected``: name -> shape the config implies; ``header``: name -> shape in the safetensors files.

    Every stored tensor must be expected, with the expected shape (tensors the model may lack are checked
    by the caller's ``load_state_dict``); raises ``ModelLoadError`` naming the first misfit.
    """
    for name, shape in header.items():
        if name not in expected:
            raise _error(f"weights of {where}: tensor {name!r} is not part of the model the config describes")
        if tuple(shape) != tuple(expected[name]):
            raise _error(
                f"weights of {where}: tensor {name!r} has shape {tuple(shape)}, the config implies "
                f"{tuple(expected[name])}"
            )
