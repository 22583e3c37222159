"""Fixtures of the attack suite: tiny debug models, API servers on 127.0.0.1, the Ray Serve application."""

from __future__ import annotations

import pytest
from evo_security_server import KEY, LocalServer, ServeProcess


@pytest.fixture(scope="session")
def services(tmp_path_factory):
    """Every endpoint's tiny debug model, loaded in this process."""
    from serving.debug_models import make_debug_models
    from serving.local import ModelPaths, Services

    made = make_debug_models(tmp_path_factory.mktemp("evospikenet-debug-models-security"))
    return Services(ModelPaths(**{k: made[k] for k in ("lm", "sentiment", "ecg", "multimodal")}))


@pytest.fixture
def serve_api(services):
    """``serve_api(backend=None, ui=False, **create_api_kwargs)``: the API in uvicorn on 127.0.0.1 (stopped
    after the test); returns its base URL."""
    from serving.api import create_api
    from serving.local import LocalBackend

    running = []

    def start(backend=None, ui: bool = False, **kw) -> str:
        blocks = None
        if ui:
            from serving.ui import build_ui

            blocks = build_ui("http://127.0.0.1:9", api_key=kw.get("api_key"))
        server = LocalServer(create_api(backend or LocalBackend(services), ui=blocks, **kw)).__enter__()
        running.append(server)
        return server.url

    yield start
    for server in running:
        server.__exit__()


@pytest.fixture(scope="module")
def ray_server():
    """``evospikenet-serve`` (Ray Serve, UI included) with an API key and a queue of 4 per endpoint; stopped
    with Ctrl-C after the module's tests."""
    with ServeProcess("--max-queued", "4", "--request-timeout", "60", env={"EVOSPIKENET_API_KEY": KEY}) as s:
        yield s
