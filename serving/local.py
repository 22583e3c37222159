"""Model sources and the Ray-free backend (models in this process, work in a thread pool).

:class:`ModelPaths` names what is served; missing entries are filled with tiny random-init debug models
(:func:`serving.debug_models.make_debug_models`), reported as ``"debug"`` by ``/healthz``. The same
:class:`Services` object is what every Ray deployment holds (each loads only the model it needs, once per
replica), so the two backends run identical code. Handlers answer errors as ``{"error": ...}``
(:func:`serving.errors.error_answer`) and take the request's ``deadline`` (epoch seconds).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict

import anyio

from . import engine, multimodal
from .debug_models import make_debug_models
from .errors import RequestError, ServingError, error_answer, raise_error
from .paths import ModelPaths
from .simulate import simulate

__all__ = [
    "ModelPaths",
    "resolve_paths",
    "model_name",
    "describe",
    "Services",
    "LocalBackend",
    "step_dict",
    "run_simulation",
]


# Trained artifacts served by default when they exist (written by `make sst2` and `make ecg`).
DEFAULT_ARTIFACTS = {
    "sentiment": os.path.join("artifacts", "sst2", "student_distilled"),
    "ecg": os.path.join("artifacts", "ecg", "model"),
    "multimodal": os.path.join("artifacts", "multimodal", "model"),
}


def resolve_paths(paths: ModelPaths, debug_dir: str | None = None) -> ModelPaths:
    """Fill missing entries: the trained ``DEFAULT_ARTIFACTS`` when they exist, else tiny debug models."""
    out = ModelPaths(**asdict(paths))
    for field, path in DEFAULT_ARTIFACTS.items():
        if getattr(out, field) is None and os.path.isfile(os.path.join(path, "config.json")):
            setattr(out, field, os.path.abspath(path))
    if None in (out.lm, out.sentiment, out.ecg, out.multimodal):
        debug_dir = debug_dir or tempfile.mkdtemp(prefix="evospikenet-debug-models-")
        made = make_debug_models(debug_dir)
        out.lm = out.lm or made["lm"]
        out.sentiment = out.sentiment or made["sentiment"]
        out.ecg = out.ecg or made["ecg"]
        out.multimodal = out.multimodal or made["multimodal"]
    return out


def model_name(path: str | None) -> str | None:
    """``debug`` for the generated debug models, else the directory name or Hub id (None: not served)."""
    if path is None:
        return None
    if "evospikenet-debug-models-" in path or os.path.isfile(os.path.join(path, "..", "debug_models.json")):
        return "debug"
    return os.path.basename(os.path.normpath(path)) if os.path.isdir(path) else path


def describe(p: ModelPaths) -> dict:
    """Served model name per endpoint, the ECG window length and the multimodal input sizes (configs only)."""
    from evospikenet.models.ecg import ECGSpikingConfig
    from evospikenet.models.multimodal import MultiModalEvoSpikeNetConfig

    n = model_name
    window = ECGSpikingConfig.from_pretrained(p.ecg).window if p.ecg else None
    info = {"generate": n(p.lm), "insight": n(p.lm), "sentiment": n(p.sentiment), "ecg": n(p.ecg),
            "ecg_window": window}  # fmt: skip
    if p.multimodal:
        c = MultiModalEvoSpikeNetConfig.from_pretrained(p.multimodal)
        info["multimodal"] = n(p.multimodal)
        info["multimodal_input"] = {
            "image_size": c.image_size, "image_channels": c.image_channels,
            "image_max_value": c.image_max_value,
            "signal_length": c.signal_length, "n_rr": c.n_rr, "image_words": list(c.image_words),
            "signal_words": list(c.signal_words),
        }  # fmt: skip
    return info


def step_dict(step: engine.Step) -> dict:
    return {
        "token": step.token,
        "energy_j": step.energy_j,
        "energy_per_token_j": step.energy_per_token_j,
        "spike_rate": step.spike_rate,
        "rasters": step.rasters,
        "attention": step.attention,
    }


class Services:
    """Loaded models and the synchronous request handlers (``kinds`` picks what to load)."""

    def __init__(self, paths: ModelPaths, kinds=("lm", "sentiment", "ecg", "multimodal")) -> None:
        from evospikenet.runtime import load_kernels

        load_kernels()  # built here (once per environment), not inside the first request and its deadline
        self.paths = paths
        dm = None if paths.device_map in (None, "") else paths.device_map
        if "lm" in kinds:
            self.lm, self.lm_tok = engine.load_causal_lm(paths.lm, dm)
        if "sentiment" in kinds:
            self.cls, self.cls_tok, self.labels = engine.load_classifier(paths.sentiment, dm)
        if "ecg" in kinds:
            self.ecg = engine.load_ecg(paths.ecg)
        self.mm = None  # the multimodal LM, loaded only when kinds asks for it and a path is given
        if "multimodal" in kinds and paths.multimodal:
            self.mm = multimodal.load_multimodal(paths.multimodal)

    def info(self) -> dict:
        if getattr(self, "_info", None) is None:  # read the configs once
            self._info = describe(self.paths)
        return self._info

    def generate_iter(self, req: dict, deadline: float | None = None):
        return engine.generate_steps(
            self.lm, self.lm_tok, req["text"], req["max_new_tokens"], req.get("temperature", 0.0),
            req.get("top_k", 0), req.get("seed", 0), deadline=deadline,
        )  # fmt: skip

    def insight(self, req: dict, deadline: float | None = None) -> dict:
        try:
            steps = [step_dict(s) for s in engine.generate_steps(
                self.lm, self.lm_tok, req["text"], req["max_new_tokens"], insight=True, deadline=deadline
            )]  # fmt: skip
        except ServingError as e:
            return error_answer(e)
        return {
            "model": model_name(self.paths.lm),
            "prompt": req["text"],
            "text": "".join(s["token"] for s in steps),
            "steps": steps,
        }

    def sentiment_batch(self, reqs: list[dict]) -> list[dict]:
        """One forward pass for the whole batch; a request whose text is unusable answers its own error."""
        out: list = [None] * len(reqs)
        good, enc = [], []
        for i, r in enumerate(reqs):
            try:
                enc.append(engine._encode(self.cls_tok, r["text"], self.cls.config.context_length))
                good.append(i)
            except RequestError as e:
                out[i] = error_answer(e)
        if good:
            spikes = any(reqs[i].get("return_spikes") for i in good)
            texts = [reqs[i]["text"] for i in good]
            res = engine.classify_texts(self.cls, self.cls_tok, self.labels, texts, spikes, encoded=enc)
            name = model_name(self.paths.sentiment)
            for i, r in zip(good, res):
                if not reqs[i].get("return_spikes"):
                    r.pop("input_ids", None)
                    r.pop("raster", None)
                    r.pop("raster_layer", None)
                out[i] = {"model": name, **r}
        return out

    def ecg_batch(self, reqs: list[dict]) -> list[dict]:
        out = []
        for r in reqs:  # the ECG net is tiny; per-request calls keep wrong-length errors per request
            try:
                res = engine.classify_ecg(
                    self.ecg, [r["signal"]], [r.get("rr")], r.get("return_spikes", False)
                )
                out.append({"model": model_name(self.paths.ecg), **res[0]})
            except RequestError as e:
                out.append(error_answer(e))
        return out

    def multimodal(self, req: dict) -> dict:
        """One answer (errors as ``{"error": ...}``, like the batch handlers)."""
        try:
            if self.mm is None:
                raise RequestError("model", "this server serves no multimodal model")
            return multimodal.answer(self.mm, req, model_name(self.paths.multimodal))
        except RequestError as e:
            return error_answer(e)


def run_simulation(req: dict, deadline: float | None = None) -> dict:
    """:func:`serving.simulate.simulate` of one request, errors as ``{"error": ...}``."""
    try:
        return simulate(**req, deadline=deadline)
    except ServingError as e:
        return error_answer(e)


class LocalBackend:
    """The API backend running :class:`Services` in this process (used by tests and ``serving.ui`` alone).

    Work runs in worker threads; a thread is not cancelled, so each handler stops itself at ``deadline``."""

    def __init__(self, services: Services) -> None:
        self.s = services

    async def info(self) -> dict:
        return self.s.info()

    async def generate(self, req, deadline: float | None = None):
        it = self.s.generate_iter(req.model_dump(), deadline)
        while True:
            step = await anyio.to_thread.run_sync(next, it, None)
            if step is None:
                return
            yield step_dict(step)

    async def insight(self, req, deadline: float | None = None) -> dict:
        return raise_error(await anyio.to_thread.run_sync(self.s.insight, req.model_dump(), deadline))

    async def sentiment(self, req, deadline: float | None = None) -> dict:
        res = await anyio.to_thread.run_sync(self.s.sentiment_batch, [req.model_dump()])
        return raise_error(res[0])

    async def ecg(self, req, deadline: float | None = None) -> dict:
        res = await anyio.to_thread.run_sync(self.s.ecg_batch, [req.model_dump()])
        return raise_error(res[0])

    async def multimodal(self, req, deadline: float | None = None) -> dict:
        return raise_error(await anyio.to_thread.run_sync(self.s.multimodal, req.model_dump()))

    async def simulate(self, req, deadline: float | None = None) -> dict:
        return raise_error(await anyio.to_thread.run_sync(run_simulation, req.model_dump(), deadline))
