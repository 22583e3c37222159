"""Fixtures of the serving tests: tiny random-init models written once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def debug_paths(tmp_path_factory):
    from serving.debug_models import make_debug_models
    from serving.local import ModelPaths

    made = make_debug_models(tmp_path_factory.mktemp("evospikenet-debug-models-x"))
    return ModelPaths(
        lm=made["lm"], sentiment=made["sentiment"], ecg=made["ecg"], multimodal=made["multimodal"]
    )


@pytest.fixture(scope="session")
def services(debug_paths):
    from serving.local import Services

    return Services(debug_paths)


@pytest.fixture(scope="session")
def local_client(services):
    """A TestClient over the API with the in-process backend (no Ray, no UI)."""
    from fastapi.testclient import TestClient

    from serving.api import create_api
    from serving.local import LocalBackend

    with TestClient(create_api(LocalBackend(services)), base_url="http://127.0.0.1") as c:
        yield c
