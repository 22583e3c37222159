"""``benchmarks/serve.py``'s redeploy retry: Serve refuses a redeploy while the old ingress's port drains."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench():
    spec = importlib.util.spec_from_file_location("bench_serve", ROOT / "benchmarks" / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_retry_after_a_refused_ingress_then_give_up(bench):
    calls = []

    def refused_once():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError(
                "Deploying application evospikenet failed: Failed to update the deployments ['Ingress']."
            )
        return "handle"

    assert bench._retry(refused_once, wait_s=0) == "handle" and len(calls) == 2

    def always_refused():
        raise RuntimeError("Failed to update the deployments ['Ingress'].")

    with pytest.raises(RuntimeError, match="Ingress"):
        bench._retry(always_refused, attempts=3, wait_s=0)


def test_other_errors_are_not_retried(bench):
    calls = []

    def broken():
        calls.append(1)
        raise RuntimeError("model directory not found")

    with pytest.raises(RuntimeError, match="not found"):
        bench._retry(broken, wait_s=0)
    assert len(calls) == 1
