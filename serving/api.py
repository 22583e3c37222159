"""The FastAPI ingress: routes, queue limits, deadlines and error mapping, over any backend.

A backend is an object with async methods ``info()``, ``generate(req, deadline)`` (async iterator of step
dicts), ``insight``, ``sentiment``, ``ecg``, ``multimodal`` and ``simulate`` (each ``(req, deadline)``);
``deadline`` is the epoch second by which the work must stop. :class:`serving.local.LocalBackend` runs the
models in this process, :mod:`serving.deployments` forwards to Ray Serve deployments.

Every request passes :class:`serving.guard.Guard` first (Host, throttle, body size, key). Then each endpoint
admits at most ``ServerSettings.queue[endpoint]`` requests at once (one more: 503 with ``Retry-After``),
checks its compute budget (422), and stops work at ``request_timeout_s`` (504). Rejected requests get JSON
whose ``message`` names the field and ``detail`` is a list of ``{"loc": [...], "msg": ...}``; errors inside
the server are 500 with no traceback text. A stream that fails after its first event ends with
``data: {"error": {...}}`` and ``data: [DONE]``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import defaultdict
from contextlib import contextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .errors import DeadlineExceeded, Overloaded, RequestError, ServingError
from .guard import Guard, error_body
from .schemas import (
    LIMITS,
    ECGRequest,
    ECGResponse,
    GenerateRequest,
    GenerateResponse,
    HealthResponse,
    InsightRequest,
    InsightResponse,
    MultimodalRequest,
    MultimodalResponse,
    SentimentRequest,
    SentimentResponse,
    SimulateRequest,
    SimulateResponse,
    check_simulate_budget,
)
from .security import ServerSettings, check_key

__all__ = ["create_api", "Admission"]

log = logging.getLogger("evospikenet.serving")
ERRORS = {401: {}, 413: {}, 422: {}, 429: {}, 503: {}, 504: {}}  # documented in the OpenAPI schema


class Admission:
    """Requests each endpoint holds at once (running plus waiting), at most ``limits[endpoint]``."""

    def __init__(self, limits: dict[str, int], retry_after_s: float = 1.0) -> None:
        self.limits = dict(limits)
        self.retry_after_s = retry_after_s
        self.held: dict[str, int] = defaultdict(int)

    def acquire(self, endpoint: str) -> None:
        """Take a place, or :class:`Overloaded` (-> 503 with ``Retry-After``) when the endpoint is full."""
        limit = self.limits.get(endpoint)
        if limit is not None and self.held[endpoint] >= limit:
            raise Overloaded(
                "queue", f"/v1/{endpoint} already holds {limit} requests; retry later", self.retry_after_s
            )
        self.held[endpoint] += 1

    def release(self, endpoint: str) -> None:
        self.held[endpoint] -= 1

    @contextmanager
    def slot(self, endpoint: str):
        self.acquire(endpoint)
        try:
            yield
        finally:
            self.release(endpoint)


def _check_model(req, info: dict, endpoint: str) -> None:
    name = getattr(req, "model", None)
    served = info.get(endpoint)
    if name is not None and name not in ("default", served):
        raise RequestError("model", f"unknown model {name!r}; this server serves {served!r} here")


async def _within(awaitable, deadline: float, field: str):
    """``await awaitable``, or :class:`DeadlineExceeded` naming ``field`` once ``deadline`` has passed."""
    try:
        return await asyncio.wait_for(awaitable, max(0.0, deadline - time.time()))
    except asyncio.TimeoutError:
        raise DeadlineExceeded(
            field, "stopped at the server's request_timeout_s; ask for less work"
        ) from None


def _error_event(e: Exception) -> str:
    if isinstance(e, ServingError):
        err = {"status": e.status, "field": e.field, "message": e.message}
    else:
        log.error("error in a stream after its first event", exc_info=e)
        err = {"status": 500, "field": "stream", "message": "internal error"}
    return f"data: {json.dumps({'error': err})}\n\n"


def create_api(
    backend, api_key: str | None = None, ui=None, ui_auth=None, settings: ServerSettings | None = None
) -> FastAPI:
    """The FastAPI app over ``backend``; mounts the Gradio Blocks ``ui`` at ``/ui`` when given."""
    check_key(api_key)
    s = settings or ServerSettings()
    admission = Admission(s.queue, s.retry_after_s)
    app = FastAPI(
        title="EvoSpikeNet serving",
        version="0.1.0",
        description="Spiking LM generation, sentiment and ECG classification, SNN simulation and insight.",
    )
    app.add_middleware(Guard, api_key=api_key, settings=s)

    def deadline() -> float:
        return time.time() + s.request_timeout_s

    @app.exception_handler(RequestValidationError)
    async def validation(_request: Request, exc: RequestValidationError):
        errors = exc.errors()
        detail = [{"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", ""))} for e in errors]
        fields = [".".join(d["loc"][1:]) or d["loc"][0] if d["loc"] else "body" for d in detail]
        msg = "; ".join(f"{f}: {d['msg']}" for f, d in zip(fields, detail)) or "invalid request"
        return JSONResponse(status_code=422, content={"message": msg, "detail": detail})

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        msg = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail)
        return JSONResponse(status_code=exc.status_code, content={"message": f"body: {msg}", "detail": [
            {"loc": ["body"], "msg": msg}]}, headers=getattr(exc, "headers", None))  # fmt: skip

    @app.exception_handler(ServingError)
    async def serving_error(_request: Request, exc: ServingError):
        headers = {"Retry-After": str(round(exc.retry_after_s))} if isinstance(exc, Overloaded) else None
        return JSONResponse(
            status_code=exc.status, content=error_body(exc.field, exc.message), headers=headers
        )

    async def run(endpoint: str, req, call):
        """``call(req, deadline)`` within the endpoint's admission slot and the request deadline."""
        _check_model(req, await backend.info(), endpoint)
        with admission.slot(endpoint):
            d = deadline()
            return await _within(call(req, d), d, endpoint)

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz():
        info = await backend.info()
        models = {k: v for k, v in info.items() if isinstance(v, str)}
        return {"status": "ok", "models": models, "ecg_window": info.get("ecg_window"),
                "multimodal": info.get("multimodal_input")}  # fmt: skip

    @app.get("/v1/limits")
    async def limits():
        return LIMITS.model_dump()

    @app.post("/v1/generate", response_model=GenerateResponse, responses=ERRORS)
    async def generate(req: GenerateRequest):
        """Generate text; with ``stream: true`` the answer is ``text/event-stream``, one event per token."""
        info = await backend.info()
        _check_model(req, info, "generate")
        admission.acquire("generate")  # released when the answer or the stream ends
        d = deadline()
        steps = backend.generate(req, d)
        try:
            first = await _within(anext(steps, None), d, "max_new_tokens")  # request errors surface here
        except BaseException:
            admission.release("generate")
            await steps.aclose()
            raise
        if req.stream:

            async def events():
                try:
                    step = first
                    while step is not None:
                        yield f"data: {json.dumps({'token': step['token'], 'energy_j': step['energy_j']})}\n\n"
                        try:
                            step = await _within(anext(steps, None), d, "max_new_tokens")
                        except Exception as e:  # the status line is sent: the error becomes an event
                            yield _error_event(e)
                            break
                    yield "data: [DONE]\n\n"
                finally:
                    admission.release("generate")
                    await steps.aclose()

            return StreamingResponse(events(), media_type="text/event-stream")
        tokens, energy = [], []
        try:
            step = first
            while step is not None:
                tokens.append(step["token"])
                energy.append(step["energy_per_token_j"])
                step = await _within(anext(steps, None), d, "max_new_tokens")
        finally:
            admission.release("generate")
            await steps.aclose()
        return {"model": info["generate"], "text": "".join(tokens), "tokens": tokens,
                "energy_per_token_j": energy}  # fmt: skip

    @app.post("/v1/insight", response_model=InsightResponse, responses=ERRORS)
    async def insight(req: InsightRequest):
        """Generate a few tokens and return, per step, spike rasters, attention and energy."""
        return await run("insight", req, backend.insight)

    @app.post("/v1/sentiment", response_model=SentimentResponse, responses=ERRORS)
    async def sentiment(req: SentimentRequest):
        return await run("sentiment", req, backend.sentiment)

    @app.post("/v1/ecg", response_model=ECGResponse, responses=ERRORS)
    async def ecg(req: ECGRequest):
        return await run("ecg", req, backend.ecg)

    @app.post("/v1/multimodal", response_model=MultimodalResponse, responses=ERRORS,
              response_model_exclude_none=True)  # fmt: skip
    async def multimodal(req: MultimodalRequest):
        """Answer a question about an image or an ECG beat, with encoder spikes and cross-modal attention."""
        return await run("multimodal", req, backend.multimodal)

    @app.post("/v1/simulate", response_model=SimulateResponse, responses=ERRORS)
    async def simulate(req: SimulateRequest):
        """Run the plastic E/I network; ``(n_exc + n_inh) * steps`` is checked against the budget first."""
        check_simulate_budget(req)
        return await run("simulate", req, backend.simulate)

    if ui is not None:
        import gradio as gr

        gr.mount_gradio_app(app, ui, path="/ui", auth=ui_auth, max_file_size=s.max_body_bytes)
    return app
