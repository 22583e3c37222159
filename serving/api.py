"""The FastAPI ingress: routes, request checks, error mapping and API-key auth, over any backend.

A backend is an object with async methods ``info()``, ``generate(req)`` (async iterator of step dicts),
``insight(req)``, ``sentiment(req)``, ``ecg(req)``, ``multimodal(req)`` and ``simulate(req)``;
:class:`serving.local.LocalBackend` runs the models in this process, :mod:`serving.deployments` forwards
to Ray Serve deployments. Every rejected request is answered with a 4xx whose JSON holds ``message``
naming the field and ``detail`` (a list of ``{"loc": [...], "msg": ...}``); errors inside the
server are 500 with no traceback text.
"""

from __future__ import annotations

import hmac
import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from .engine import RequestError
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
)

__all__ = ["create_api", "check_bind", "LOCAL_HOSTS"]

log = logging.getLogger("evospikenet.serving")
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def check_bind(host: str, api_key: str | None) -> None:
    """Refuse a non-loopback ``host`` unless an API key (``EVOSPIKENET_API_KEY``) is set."""
    if host not in LOCAL_HOSTS and not api_key:
        raise ValueError(
            f"host={host!r} is not a loopback address; set EVOSPIKENET_API_KEY to serve on it "
            "(clients then send 'Authorization: Bearer <key>')"
        )


def _error(status: int, field: str, msg: str, loc_prefix: str = "body") -> JSONResponse:
    return JSONResponse(
        status_code=status,
        content={"message": f"{field}: {msg}", "detail": [{"loc": [loc_prefix, field], "msg": msg}]},
    )


def _check_model(req, info: dict, endpoint: str) -> None:
    name = getattr(req, "model", None)
    served = info.get(endpoint)
    if name is not None and name not in ("default", served):
        raise RequestError("model", f"unknown model {name!r}; this server serves {served!r} here")


class _Guard:
    """Pure ASGI middleware (no per-request task, unlike ``@app.middleware``): the bearer-token check on
    ``/v1`` and a 500 without traceback text for anything the routes leave unhandled."""

    def __init__(self, app, api_key: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {api_key}".encode() if api_key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope["path"]
        if self.expected is not None and path.startswith("/v1"):
            given = dict(scope["headers"]).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                reply = _error(401, "authorization", "missing or wrong bearer token", "header")
                return await reply(scope, receive, send)
        started = False

        async def send_tracked(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_tracked)
        except Exception:  # last resort, no traceback to the client
            log.exception("unhandled error on %s", path)
            if not started:
                await JSONResponse(status_code=500, content={"message": "internal error"})(
                    scope, receive, send
                )


def create_api(backend, api_key: str | None = None, ui=None, ui_auth=None) -> FastAPI:
    """The FastAPI app over ``backend``; mounts the Gradio Blocks ``ui`` at ``/ui`` when given."""
    app = FastAPI(
        title="EvoSpikeNet serving",
        version="0.1.0",
        description="Spiking LM generation, sentiment and ECG classification, SNN simulation and insight.",
    )

    app.add_middleware(_Guard, api_key=api_key)

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

    @app.exception_handler(RequestError)
    async def request_error(_request: Request, exc: RequestError):
        return _error(422, exc.field, exc.message)

    @app.get("/healthz", response_model=HealthResponse)
    async def healthz():
        info = await backend.info()
        models = {k: v for k, v in info.items() if isinstance(v, str)}
        return {"status": "ok", "models": models, "ecg_window": info.get("ecg_window"),
                "multimodal": info.get("multimodal_input")}  # fmt: skip

    @app.get("/v1/limits")
    async def limits():
        return LIMITS.model_dump()

    @app.post("/v1/generate", response_model=GenerateResponse, responses={422: {}, 401: {}})
    async def generate(req: GenerateRequest):
        """Generate text; with ``stream: true`` the answer is ``text/event-stream``, one event per token."""
        info = await backend.info()
        _check_model(req, info, "generate")
        steps = backend.generate(req)
        if req.stream:
            first = await anext(steps, None)  # errors in the request surface here, as a 422

            async def events():
                step = first
                while step is not None:
                    yield f"data: {json.dumps({'token': step['token'], 'energy_j': step['energy_j']})}\n\n"
                    step = await anext(steps, None)
                yield "data: [DONE]\n\n"

            return StreamingResponse(events(), media_type="text/event-stream")
        tokens, energy = [], []
        async for step in steps:
            tokens.append(step["token"])
            energy.append(step["energy_per_token_j"])
        return {
            "model": info["generate"],
            "text": "".join(tokens),
            "tokens": tokens,
            "energy_per_token_j": energy,
        }

    @app.post("/v1/insight", response_model=InsightResponse, responses={422: {}, 401: {}})
    async def insight(req: InsightRequest):
        """Generate a few tokens and return, per step, spike rasters, attention and energy."""
        _check_model(req, await backend.info(), "insight")
        return await backend.insight(req)

    @app.post("/v1/sentiment", response_model=SentimentResponse, responses={422: {}, 401: {}})
    async def sentiment(req: SentimentRequest):
        _check_model(req, await backend.info(), "sentiment")
        return await backend.sentiment(req)

    @app.post("/v1/ecg", response_model=ECGResponse, responses={422: {}, 401: {}})
    async def ecg(req: ECGRequest):
        _check_model(req, await backend.info(), "ecg")
        return await backend.ecg(req)

    @app.post("/v1/multimodal", response_model=MultimodalResponse, responses={422: {}, 401: {}},
              response_model_exclude_none=True)  # fmt: skip
    async def multimodal(req: MultimodalRequest):
        """Answer a question about an image or an ECG beat, with encoder spikes and cross-modal attention."""
        _check_model(req, await backend.info(), "multimodal")
        return await backend.multimodal(req)

    @app.post("/v1/simulate", response_model=SimulateResponse, responses={422: {}, 401: {}})
    async def simulate(req: SimulateRequest):
        return await backend.simulate(req)

    if ui is not None:
        import gradio as gr

        gr.mount_gradio_app(app, ui, path="/ui", auth=ui_auth)
    return app
