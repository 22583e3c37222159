"""Ray Serve deployments and the application builder (``serve run serving/config.yaml``).

Deployments: ``Generator`` (streaming tokens), ``Insight`` (rasters, attention, energy), ``Sentiment``
(dynamic batching in the ingress with ``@serve.batch``: up to 16 requests that arrive within 5 ms go to a
replica as one call and one forward pass, see ``RayBackend``), ``ECG`` (``@serve.batch`` in the replica),
``Multimodal`` (questions about an image or an ECG beat),
``Simulator`` (the plastic E/I network) and ``Ingress`` (the FastAPI app of :mod:`serving.api` with the
Gradio UI mounted at ``/ui``). Each replica loads its model once, in ``__init__``.
Deployments answer request errors as ``{"error": {"kind", "field", "message"}}`` so the ingress maps them
(:mod:`serving.errors`) without depending on how Ray wraps exceptions. Each deployment queues at most
``max_queued_requests`` calls per caller (``BackPressureError`` -> 503 with ``Retry-After``); a replica that
dies under a request fails it at once with 503 (:meth:`RayBackend._call`).
"""

from __future__ import annotations

import os
import threading
from dataclasses import asdict

import torch
from ray import serve

from evospikenet.runtime import freeze_heap, load_kernels, retain_freed_memory

from .errors import Overloaded, ServingError, Unavailable, error_answer, raise_error
from .local import ModelPaths, Services, describe, resolve_paths, run_simulation, step_dict
from .raynet import replica_servers_on_node_address
from .security import ServerSettings, check_exposure

__all__ = ["build_app", "app_builder", "RayBackend", "DEFAULT_PORT"]

DEFAULT_PORT = 8000
_CPU0 = {"num_cpus": 0}  # replicas share the cores instead of reserving one each
_QUEUE = 64  # calls a deployment queues per caller beyond its max_ongoing_requests


def _threads() -> None:
    """Replica set-up: its gRPC server on Ray's node address (loopback unless Ray was exposed,
    :mod:`serving.raynet`), its torch threads, freed tensors kept for reuse (``retain_freed_memory``), and
    the C++ kernels loaded while the replica starts rather than in its first request (``load_kernels``).
    Each ``__init__`` ends with :func:`_started`."""
    replica_servers_on_node_address()
    torch.set_num_threads(int(os.environ.get("EVOSPIKENET_TORCH_THREADS", "1")))
    retain_freed_memory()
    load_kernels()


def _started() -> None:
    """The end of a replica's start-up: what it has loaded leaves the garbage collector's scans
    (``freeze_heap``), so a full collection under load does not stall its requests for about 0.28 s."""
    freeze_heap()


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=8, max_queued_requests=_QUEUE)
class Generator:
    def __init__(self, paths: dict) -> None:
        _threads()
        self.s = Services(ModelPaths(**paths), kinds=("lm",))
        _started()

    def stream(self, req: dict, deadline: float | None = None):
        try:
            for step in self.s.generate_iter(req, deadline):
                yield step_dict(step)
        except ServingError as e:
            yield error_answer(e)


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=4, max_queued_requests=_QUEUE)
class Insight:
    def __init__(self, paths: dict) -> None:
        _threads()
        self.s = Services(ModelPaths(**paths), kinds=("lm",))
        _started()

    def run(self, req: dict, deadline: float | None = None) -> dict:
        return self.s.insight(req, deadline)


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=16, max_queued_requests=4 * _QUEUE)
class Sentiment:
    """The sentiment classifier; batching happens in the ingress (``RayBackend``), not here.

    With batching, ``build_app`` lets a replica hold 2 calls (one running, one next): the router then sends
    a new batch to the idle replica instead of queueing it behind a busy one. Serve runs the two calls on two
    threads; the lock makes the second wait for the first instead of running beside it, because two forward
    passes sharing the cores with each other (and the GIL with the replica's own threads) both finish later:
    on two cores a batch of about 9 took 64 ms of wall time side by side and 48 ms in turn.
    """

    def __init__(self, paths: dict) -> None:
        _threads()
        self.s = Services(ModelPaths(**paths), kinds=("sentiment",))
        self._forward = threading.Lock()  # one forward pass at a time per replica
        # One forward pass while the replica starts: the first request does not pay first-call costs.
        self.s.sentiment_batch([{"text": "warm up"}])
        _started()

    def classify(self, req: dict) -> dict:
        """One request, one forward pass (the unbatched path)."""
        with self._forward:
            return self.s.sentiment_batch([req])[0]

    def classify_many(self, reqs: list[dict]) -> list[dict]:
        """A batch already gathered by the ingress: one forward pass, one answer per request."""
        with self._forward:
            return self.s.sentiment_batch(reqs)

    def pid(self) -> int:
        return os.getpid()


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=64, max_queued_requests=4 * _QUEUE)
class ECG:
    def __init__(self, paths: dict) -> None:
        _threads()
        self.s = Services(ModelPaths(**paths), kinds=("ecg",))
        _started()

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.005)
    async def classify(self, reqs: list[dict]) -> list[dict]:
        return self.s.ecg_batch(reqs)


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=4, max_queued_requests=_QUEUE)
class Multimodal:
    def __init__(self, paths: dict) -> None:
        _threads()
        self.s = Services(ModelPaths(**paths), kinds=("multimodal",))
        _started()

    def run(self, req: dict) -> dict:
        return self.s.multimodal(req)


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=4, max_queued_requests=_QUEUE)
class Simulator:
    def __init__(self) -> None:
        _threads()
        _started()

    def run(self, req: dict, deadline: float | None = None) -> dict:
        return run_simulation(req, deadline)

    def pid(self) -> int:
        return os.getpid()


class RayBackend:
    """The API backend forwarding to deployment handles.

    With ``batched`` the sentiment requests are gathered here, in the ingress (``@serve.batch``: up to 16
    requests or 5 ms), and sent as one ``classify_many`` call: one Ray round trip and one forward pass per
    batch instead of one per request, which is what the per-call overhead of two CPU cores makes worth it.
    Without it every request is its own call and its own forward pass.
    """

    def __init__(self, handles: dict, info: dict, batched: bool = True) -> None:
        self.h = handles
        self._info = info
        self.batched = batched

    async def info(self) -> dict:
        return self._info

    @staticmethod
    async def _call(awaitable):
        """The answer of a deployment call, with Ray's failures mapped: a full queue (``BackPressureError``)
        to :class:`Overloaded`, a replica that died or cannot be reached to :class:`Unavailable`."""
        from ray.exceptions import RayActorError
        from ray.serve.exceptions import (
            BackPressureError,
            DeploymentUnavailableError,
            ReplicaUnavailableError,
        )

        try:
            return raise_error(await awaitable)
        except BackPressureError:
            raise Overloaded("queue", "the deployment's queue is full; retry later") from None
        except (RayActorError, ReplicaUnavailableError, DeploymentUnavailableError) as e:
            raise Unavailable("replica", f"the replica serving this request stopped ({type(e).__name__}); "
                              "retry") from None  # fmt: skip

    async def generate(self, req, deadline: float | None = None):
        gen = self.h["generate"].options(stream=True).stream.remote(req.model_dump(), deadline)
        try:
            while True:
                step = await self._call(anext(gen, None))
                if step is None:
                    return
                yield step
        finally:  # a client gone or a deadline passed: the replica stops generating too
            gen.cancel()

    async def insight(self, req, deadline: float | None = None) -> dict:
        return await self._call(self.h["insight"].run.remote(req.model_dump(), deadline))

    # Four batches of up to 16 in flight: with two Sentiment replicas (each takes 2 calls) every replica has
    # the next batch queued while it runs one, instead of idling while the ingress answers and gathers.
    @serve.batch(max_batch_size=16, batch_wait_timeout_s=0.005, max_concurrent_batches=4)
    async def _sentiment_many(self, reqs: list[dict]) -> list[dict]:
        return await self.h["sentiment"].classify_many.remote(reqs)

    async def sentiment(self, req, deadline: float | None = None) -> dict:
        if self.batched:
            return await self._call(self._sentiment_many(req.model_dump()))
        return await self._call(self.h["sentiment"].classify.remote(req.model_dump()))

    async def ecg(self, req, deadline: float | None = None) -> dict:
        return await self._call(self.h["ecg"].classify.remote(req.model_dump()))

    async def multimodal(self, req, deadline: float | None = None) -> dict:
        return await self._call(self.h["multimodal"].run.remote(req.model_dump()))

    async def simulate(self, req, deadline: float | None = None) -> dict:
        return await self._call(self.h["simulate"].run.remote(req.model_dump(), deadline))


@serve.deployment(ray_actor_options=_CPU0, max_ongoing_requests=256, max_queued_requests=4 * _QUEUE)
@serve.ingress()
class Ingress:
    """The FastAPI app of :mod:`serving.api` over a :class:`RayBackend`, with the UI at ``/ui``.

    ``settings``: :class:`serving.security.ServerSettings` as a dict; ``ui``: ``{"enabled", "base_url",
    "sim_run"}``. The API key comes from ``EVOSPIKENET_API_KEY`` in the replica's environment."""

    def __init__(self, handles: dict, info: dict, ui: dict, settings: dict | None = None) -> None:
        replica_servers_on_node_address()
        self.backend = RayBackend(handles, info)
        self.ui = ui
        self.settings = ServerSettings.from_dict(settings)

    def reconfigure(self, config: dict) -> None:
        """``user_config`` ``{"batched": bool}``. Under ``serve deploy`` with a config file, changing it updates
        the running replica in place; ``serve.run`` from Python gives the code a new version and replaces it."""
        self.backend.batched = bool(config.get("batched", True))

    def __serve_build_asgi_app__(self):
        from .api import create_api

        key = os.environ.get("EVOSPIKENET_API_KEY") or None
        blocks, auth = None, None
        if self.ui.get("enabled", True):
            from .ui import build_ui

            blocks = build_ui(self.ui["base_url"], api_key=key, sim_run=self.ui.get("sim_run"))
            auth = ("evospikenet", key) if key else None
        app = create_api(self.backend, api_key=key, ui=blocks, ui_auth=auth, settings=self.settings)
        _started()  # the ingress imported FastAPI (and Gradio with the UI) for this app
        return app


def build_app(
    paths: ModelPaths | None = None,
    *,
    port: int = DEFAULT_PORT,
    batched: bool = True,
    sentiment_replicas: int = 1,
    ui: bool = True,
    debug_dir: str | None = None,
    access_log: bool = False,
    settings: ServerSettings | None = None,
    sim_run: str | None = None,
):
    """The bound application: every deployment plus the ingress (``serve.run(build_app(...))``).

    ``access_log`` turns on Serve's per-request access log lines in the ingress and sentiment replicas;
    off by default, because under load on two cores writing them took about a tenth of the ingress's CPU
    (py-spy, docs/serving.md). Errors are logged either way. ``settings``: the limits of
    :class:`serving.security.ServerSettings`; ``sim_run``: a saved simulation run whose plots the UI shows.
    """
    from ray.serve.config import BackpressureConfig

    logs = {"enable_access_log": access_log}
    p = resolve_paths(paths or ModelPaths(), debug_dir)
    d = asdict(p)
    handles = {
        "generate": Generator.bind(d),
        "insight": Insight.bind(d),
        "sentiment": Sentiment.options(
            num_replicas=sentiment_replicas, max_ongoing_requests=2 if batched else 16, logging_config=logs
        ).bind(d),
        "ecg": ECG.bind(d),
        "simulate": Simulator.bind(),
        "multimodal": Multimodal.bind(d),
    }
    ui_config = {"enabled": ui, "base_url": f"http://127.0.0.1:{port}", "sim_run": sim_run}
    s = (settings or ServerSettings()).to_dict()
    ingress = Ingress.options(user_config={"batched": batched}, logging_config=logs,
                              backpressure_config=BackpressureConfig(status_code=503, retry_after_s=1))  # fmt: skip
    return ingress.bind(handles, describe(p), ui_config, s)


def _serve_exposure() -> tuple[str | None, str | None]:
    """(the host Serve's HTTP proxy binds, the address Ray's own servers listen on), each None where it is
    not known yet: no Serve controller running (the builder called before ``serve.start``), no Ray."""
    import ray

    node_ip = ray.util.get_node_ip_address() if ray.is_initialized() else None
    try:
        from ray.serve.context import _get_global_client

        client = _get_global_client(raise_if_no_controller_running=False)
    except Exception:  # Serve's client API is private; an unknown host is checked where it is known
        client = None
    return (client.http_config.host if client is not None else None), node_ip


def app_builder(args: dict):
    """Builder for ``serve run serving/config.yaml`` (or ``serve run serving.deployments:app_builder lm=...``).

    Applies the checks of ``evospikenet-serve``: the HTTP host and Ray's own address must be loopback
    unless ``EVOSPIKENET_API_KEY`` is set, and a key must have at least 32 characters
    (:func:`serving.security.check_exposure`); a failing check fails the deployment with its message."""
    args = dict(args or {})
    host, node_ip = _serve_exposure()
    check_exposure(host, node_ip, os.environ.get("EVOSPIKENET_API_KEY") or None)
    paths = ModelPaths(
        **{k: args.pop(k) for k in ("lm", "sentiment", "ecg", "multimodal", "device_map") if k in args}
    )
    settings = ServerSettings(
        max_body_bytes=int(args.get("max_body_bytes", ServerSettings.max_body_bytes)),
        request_timeout_s=float(args.get("request_timeout_s", ServerSettings.request_timeout_s)),
        allowed_hosts=tuple(args.get("allowed_hosts", ServerSettings.allowed_hosts)),
    )
    return build_app(
        paths,
        port=int(args.get("port", DEFAULT_PORT)),
        batched=str(args.get("batched", "true")).lower() != "false",
        ui=str(args.get("ui", "true")).lower() != "false",
        access_log=str(args.get("access_log", "false")).lower() == "true",
        settings=settings,
        sim_run=args.get("sim_run"),
    )
