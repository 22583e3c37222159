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


def test_rounds_alternate_abba(bench):
    """Batched and unbatched rounds alternate (B U U B ...), so a drift over the run weighs on both."""
    assert bench._order(1) == [True, False]
    assert bench._order(3) == [True, False, False, True, True, False]


def test_open_loop_counts_rejections_and_times_from_arrival(bench, services):
    """Poisson arrivals against the API in uvicorn with a sentiment queue of 1: answers are timed, and what
    the full queue turns away is counted as rejected, not as a failure."""
    import asyncio
    import threading
    import time

    import uvicorn

    from serving.api import create_api
    from serving.local import LocalBackend
    from serving.security import ServerSettings

    class Slow(LocalBackend):
        async def sentiment(self, req, deadline=None):
            await asyncio.sleep(0.2)
            return await super().sentiment(req, deadline)

    app = create_api(Slow(services), settings=ServerSettings(queue={"sentiment": 1}))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    th = threading.Thread(target=server.run, daemon=True)
    th.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        r = asyncio.run(bench._open_loop(f"http://127.0.0.1:{port}", rate=40.0, duration_s=2.0))
    finally:
        server.should_exit = True
        th.join(10)
    assert r["sent"] > 40 and r["failed"] == 0
    assert r["rejected"] > 0 and r["rps"] > 0  # at 40/s a 0.2 s request cannot be served one at a time
    assert r["p50_ms"] >= 200 and r["p99_ms"] >= r["p50_ms"]
