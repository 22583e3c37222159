"""Safe loading of the project's saved model directories: every file checked before any file is parsed.

A directory holds ``config.json`` and ``model.safetensors`` (or shards listed by
``model.safetensors.index.json``), tokenizer files for the LMs, optionally ``exports/`` and, when it was
published by :mod:`hub.publish` (always, for a pulled model), ``evospikenet_manifest.json``: the SHA-256
and size of every file. :func:`verify_dir` checks, in this order, raising :class:`ModelLoadError` (a
``ValueError``) that names the file and the problem:

1. no pickle file (``*.bin``, ``*.pt``, ``*.pth``, ``*.ckpt``, ``*.pkl``, ``*.pickle``) anywhere in the
   directory: such a file is never loaded, and its presence is refused because other loaders (accelerate)
   would prefer it to safetensors;
2. the manifest (required with ``require_manifest``, e.g. after a download): a bounded JSON object whose
   every path is relative, inside the directory and of an allowed type; every listed file exists inside the
   snapshot, with its recorded size and SHA-256. Only then is any other file read;
3. ``config.json`` (bounded) parses, its model type is one of :data:`KNOWN_TYPES`, the keys that type needs
   are present, and its sizes are within :class:`hub.limits.LoadLimits`;
4. the weights: ``model.safetensors`` or the shards of the index (each shard name checked as in 2, and
   listed in the manifest when there is one); each safetensors header parses and covers its file.

:func:`load_model` then compares the header shapes with the model the config describes (built on the
``meta`` device) before it allocates and fills the real one.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath

from torch import nn

from .limits import DEFAULT_LIMITS, LoadLimits, ModelLoadError, check_config_limits, check_weight_shapes

__all__ = [
    "ModelLoadError",
    "KNOWN_TYPES",
    "MANIFEST",
    "PICKLE_SUFFIXES",
    "FILE_SUFFIXES",
    "model_type_of",
    "safe_name",
    "read_manifest",
    "check_manifest_files",
    "verify_dir",
    "load_model",
    "file_digest",
    "safetensors_header",
]

MANIFEST = "evospikenet_manifest.json"
DIGITS_TYPE = "evospikenet_plastic_digits"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# Types a published model directory may hold (what a pull downloads): weights, configs, cards, tokenizers,
# exports (ONNX graphs, NIR HDF5 graphs, Loihi npz arrays read with allow_pickle=False).
FILE_SUFFIXES = (".json", ".safetensors", ".md", ".txt", ".model", ".yaml", ".onnx", ".nir", ".npz")
MAX_JSON_BYTES = 16 << 20  # config, manifest and index files larger than this are refused unread
# model type -> config keys it needs
KNOWN_TYPES = {
    "spiking_evospikenet": ("d_model", "n_layers", "n_heads", "vocab_size", "context_length", "time_steps"),
    "evospikenet_ecg_snn": ("channels", "kernels", "strides", "hidden", "time_steps"),
    "evospikenet_ecg_resnet18": ("widths", "blocks"),
    DIGITS_TYPE: ("network_config", "n_classes", "feature_scale"),
    "multimodal_evospikenet": (
        "vocab",
        "d_model",
        "n_layers",
        "image_size",
        "signal_length",
        "context_length",
    ),
}
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def file_digest(path: Path) -> str:
    """SHA-256 hex digest of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def safe_name(name, where: str = "manifest") -> str:
    """``name`` if it is a relative POSIX path inside the directory with an allowed suffix, else an error."""
    if not isinstance(name, str) or not name or len(name) > 1024 or "\\" in name or "\0" in name:
        raise ModelLoadError(f"{where}: {name!r} is not a usable file name")
    p = PurePosixPath(name)
    if p.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        raise ModelLoadError(f"{where}: {name!r} points outside the model directory")
    if p.suffix.lower() in PICKLE_SUFFIXES:
        raise ModelLoadError(
            f"{where}: {name!r} is a pickle file, which is never loaded (pickle can run code)"
        )
    if p.suffix.lower() not in FILE_SUFFIXES:
        raise ModelLoadError(
            f"{where}: {name!r} has a file type a model directory may not hold ({FILE_SUFFIXES})"
        )
    return name


def _read_json(f: Path, what: str):
    if f.stat().st_size > MAX_JSON_BYTES:
        raise ModelLoadError(
            f"{str(f)!r} ({what}) is larger than {MAX_JSON_BYTES} bytes; refusing to read it"
        )
    try:
        return json.loads(f.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{str(f)!r} is not valid JSON: {e}") from None


def read_manifest(d: Path) -> dict:
    """``{name: {"size", "sha256"}}`` of ``d/evospikenet_manifest.json``, every entry validated."""
    f = Path(d) / MANIFEST
    if not f.is_file():
        raise ModelLoadError(f"{str(d)!r} has no {MANIFEST}; refusing to load an unverifiable download")
    man = _read_json(f, "manifest")
    files = man.get("files") if isinstance(man, dict) else None
    if not isinstance(files, dict) or not files:
        raise ModelLoadError(f"{str(f)!r} must be an object with a non-empty 'files' object")
    for name, info in files.items():
        safe_name(name, str(f))
        ok = isinstance(info, dict) and isinstance(info.get("size"), int) and info["size"] >= 0
        if not ok or not isinstance(info.get("sha256"), str) or not _SHA256.match(info["sha256"]):
            raise ModelLoadError(f"{str(f)!r}: entry {name!r} needs an integer 'size' and a hex 'sha256'")
    if "config.json" not in files:
        raise ModelLoadError(f"{str(f)!r} does not list config.json")
    return files


def _roots(d: Path) -> list[Path]:
    """Where the files of ``d`` may really live: ``d`` itself, and for a Hub cache snapshot its blob store."""
    d = d.resolve()
    roots = [d]
    if d.parent.name == "snapshots":  # <cache>/models--org--name/snapshots/<sha> -> ../../blobs
        roots.append(d.parent.parent / "blobs")
    return roots


def check_manifest_files(d: Path, files: dict) -> None:
    """Every manifest entry exists inside ``d`` (or its cache blobs), with its recorded size and SHA-256."""
    roots = _roots(Path(d))
    for name, info in files.items():
        f = Path(d) / name
        if not f.is_file():
            raise ModelLoadError(f"{str(f)!r} listed in the manifest is missing")
        real = f.resolve()
        if not any(real.is_relative_to(r) for r in roots):
            raise ModelLoadError(f"{str(f)!r} resolves to {str(real)!r}, outside the model snapshot")
        if real.stat().st_size != info["size"]:
            raise ModelLoadError(
                f"{str(f)!r} has {real.stat().st_size} bytes, the manifest says {info['size']} (truncated?)"
            )
        if file_digest(real) != info["sha256"]:
            raise ModelLoadError(f"{str(f)!r} does not match its SHA-256 in the manifest (tampered?)")


def model_type_of(cfg: dict) -> str | None:
    """The model type of a config (the STDP digits module's Lightning config maps to ``DIGITS_TYPE``)."""
    if "model_type" in cfg:
        return cfg["model_type"]
    if str(cfg.get("_class_path", "")).endswith("STDPDigitsModule"):
        return DIGITS_TYPE
    return None


def safetensors_header(f: Path) -> dict:
    """The JSON header of a safetensors file, checked to parse and to cover the file exactly."""
    size = f.stat().st_size
    with open(f, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise ModelLoadError(f"{str(f)!r} is truncated ({size} bytes): no safetensors header")
        n = int.from_bytes(head, "little")
        if n > size - 8 or n > MAX_JSON_BYTES:
            raise ModelLoadError(f"{str(f)!r} is truncated: header of {n} bytes in a {size}-byte file")
        try:
            header = json.loads(fh.read(n))
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ModelLoadError(f"{str(f)!r} has a corrupt safetensors header") from None
    if not isinstance(header, dict):
        raise ModelLoadError(f"{str(f)!r} has a corrupt safetensors header")
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        raise ModelLoadError(
            f"{str(f)!r} is truncated or padded: header says {8 + n + end} bytes, file has {size}"
        )
    return {k: v for k, v in header.items() if k != "__metadata__"}


def _weight_files(d: Path, files: dict | None) -> list[Path]:
    index = d / "model.safetensors.index.json"
    if (d / "model.safetensors").is_file():
        return [d / "model.safetensors"]
    if not index.is_file():
        raise ModelLoadError(f"{str(d)!r} has no model.safetensors")
    wmap = _read_json(index, "shard index").get("weight_map")
    if not isinstance(wmap, dict) or not wmap:
        raise ModelLoadError(f"{str(index)!r} needs a non-empty 'weight_map'")
    shards = sorted({safe_name(v, str(index)) for v in wmap.values()})
    roots = _roots(d)
    for s in shards:
        if not s.endswith(".safetensors") or (files is not None and s not in files):
            raise ModelLoadError(f"{str(index)!r}: shard {s!r} is not a manifest-listed safetensors file")
        if not (d / s).is_file() or not any((d / s).resolve().is_relative_to(r) for r in roots):
            raise ModelLoadError(
                f"{str(index)!r}: shard {s!r} is missing or resolves outside the model directory"
            )
    return [d / s for s in shards]


def verify_dir(path, require_manifest: bool = False, limits: LoadLimits = DEFAULT_LIMITS) -> tuple[dict, str]:
    """Run checks 1-4 on a model directory; returns ``(config, model_type)``."""
    d = Path(path)
    if not d.is_dir():
        raise ModelLoadError(f"model directory {str(d)!r} does not exist")
    pickles = sorted(
        str(p.relative_to(d))
        for p in d.rglob("*")
        if p.suffix.lower() in PICKLE_SUFFIXES and not any(s.startswith(".") for s in p.relative_to(d).parts)
    )
    if pickles:
        raise ModelLoadError(
            f"{str(d)!r} holds {pickles}: pickle files are never loaded (they can run code) and other loaders "
            f"would prefer them to safetensors; delete them (the weights belong in model.safetensors)"
        )
    files = None
    if require_manifest or (d / MANIFEST).is_file():
        files = read_manifest(d)
        check_manifest_files(d, files)
    f = d / "config.json"
    if not f.is_file():
        raise ModelLoadError(f"{str(d)!r} has no config.json")
    cfg = _read_json(f, "config")
    if not isinstance(cfg, dict):
        raise ModelLoadError(f"{str(f)!r} must hold a JSON object")
    mt = model_type_of(cfg)
    if mt not in KNOWN_TYPES:
        raise ModelLoadError(
            f"config.json of {str(d)!r} has model type {mt!r}, not an EvoSpikeNet model "
            f"(one of {sorted(KNOWN_TYPES)}); refusing to load it"
        )
    missing = [k for k in KNOWN_TYPES[mt] if k not in cfg]
    if missing:
        raise ModelLoadError(f"config.json of {str(d)!r} ({mt}) lacks required keys {missing}")
    check_config_limits(cfg, mt, repr(str(d)), limits)
    for w in _weight_files(d, files):
        safetensors_header(w)
    return cfg, mt


def _header_shapes(d: Path) -> dict:
    out = {}
    for w in _weight_files(d, None):
        out.update({k: v["shape"] for k, v in safetensors_header(w).items()})
    return out


def _meta_shapes(build) -> dict | None:
    """Shapes of ``build()``'s state dict built on the meta device (None when the model cannot be built there)."""
    import torch

    try:
        with torch.device("meta"):
            m = build()
    except Exception:  # noqa: BLE001  (any failure only means: check against the CPU-built model instead)
        return None
    return {k: tuple(v.shape) for k, v in m.state_dict().items()}


def _load_digits(d: Path, cfg: dict, limits: LoadLimits) -> nn.Module:
    from safetensors.torch import load_file

    from evospikenet.models.plastic_snn import PlasticDigitsSNN

    from .export_onnx import DigitsClassifier

    shapes = _header_shapes(d)
    crow = shapes.get("net.proj.crow")
    if not crow or len(crow) != 1 or not 2 <= crow[0] <= limits.samples + 1:
        raise ModelLoadError(
            f"weights of {str(d)!r}: net.proj.crow must hold n_in + 1 <= {limits.samples + 1} rows"
        )
    n_in, n_exc = crow[0] - 1, int(cfg["network_config"].get("n_exc", 100))
    for key in ("net.proj.col", "net.proj.values"):
        if len(shapes.get(key, ())) != 1 or shapes[key][0] > n_in * n_exc:
            raise ModelLoadError(f"weights of {str(d)!r}: {key} must hold at most n_in x n_exc synapses")
    net = PlasticDigitsSNN(n_in=n_in, **cfg["network_config"])
    readout = nn.Linear(net.n_exc, int(cfg["n_classes"]))
    model = DigitsClassifier(net, readout, cfg["feature_scale"])
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_weight_shapes(
        expected | {k: tuple(shapes[k]) for k in shapes if k.startswith("net.proj.")}, shapes, repr(str(d))
    )
    model.load_state_dict(load_file(str(d / "model.safetensors")), strict=True)
    return model.eval()


def load_model(path, task: str | None = None, limits: LoadLimits = DEFAULT_LIMITS) -> nn.Module:
    """Verify then load a saved model directory (any project model type) in eval mode.

    ``task`` picks the head of a spiking LM config (``"causal-lm"`` or ``"sequence-classification"``); by
    default the config's ``architectures`` decides.
    """
    d = Path(path)
    cfg, mt = verify_dir(d, limits=limits)
    import evospikenet  # noqa: F401  (registers the Auto classes)

    if mt == DIGITS_TYPE:
        return _load_digits(d, cfg, limits)
    from safetensors.torch import load_file

    if mt.startswith("evospikenet_ecg"):
        from evospikenet.models.ecg import ECGResNet18, ECGResNetConfig, ECGSpikingConfig, ECGSpikingNet

        cls, ccls = (
            (ECGSpikingNet, ECGSpikingConfig) if mt.endswith("snn") else (ECGResNet18, ECGResNetConfig)
        )
        conf = ccls.from_dict({k: v for k, v in cfg.items() if k != "model_type"})
    elif mt == "multimodal_evospikenet":
        from evospikenet.models.multimodal import (
            MultiModalEvoSpikeNetConfig,
            MultiModalEvoSpikeNetForCausalLM,
        )

        cls, conf = MultiModalEvoSpikeNetForCausalLM, MultiModalEvoSpikeNetConfig.from_dict(cfg)
    else:
        from transformers import AutoConfig

        from evospikenet.models import (
            SpikingEvoSpikeNetForCausalLM,
            SpikingEvoSpikeNetForSequenceClassification,
        )

        arch = (cfg.get("architectures") or [""])[0]
        if task is None:
            task = "sequence-classification" if "SequenceClassification" in arch else "causal-lm"
        if task not in ("causal-lm", "sequence-classification"):
            raise ValueError(f"task must be 'causal-lm' or 'sequence-classification', got {task!r}")
        seq = task != "causal-lm"
        cls = SpikingEvoSpikeNetForSequenceClassification if seq else SpikingEvoSpikeNetForCausalLM
        conf = AutoConfig.from_pretrained(str(d))
    header = _header_shapes(d)
    expected = _meta_shapes(lambda: cls(conf))
    # Built on the CPU and filled from safetensors here (not ``from_pretrained``, which builds on the meta
    # device, where snnTorch's Leaky constructor cannot run); the config's sizes are within limits already.
    model = cls(conf)
    if expected is None:
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_weight_shapes(expected, header, repr(str(d)))
    state = {}
    for w in _weight_files(d, None):
        state.update(load_file(str(w)))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected or [k for k in missing if not k.endswith(("tau_plus", "reward_baseline"))]:
        raise ModelLoadError(
            f"weights of {str(d)!r} do not fit {cls.__name__}: missing {missing}, unexpected {unexpected}"
        )
    return model.eval()
