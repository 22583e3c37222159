"""The whole Ray Serve application on 127.0.0.1: every endpoint, streaming, errors from inside deployments,
the mounted UI, and >= 1,000 fuzzed requests with no 5xx. Starting Ray and six replicas takes minutes on
two shared cores, hence ``slow``; the module starts the application once."""

from __future__ import annotations

import json
import socket

import httpx
import pytest
from evo_serving_fuzz import fuzz

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_url(debug_paths):
    from serving.cli import start, stop

    url = start(debug_paths, "127.0.0.1", _free_port(), num_cpus=2, direct_ingress=True)
    try:
        yield url
    finally:
        stop()


@pytest.fixture(scope="module")
def client(ray_url):
    with httpx.Client(base_url=ray_url, timeout=120) as c:
        yield c


def test_every_endpoint_answers(client):
    assert client.get("/healthz").json()["models"]["sentiment"] == "debug"
    g = client.post("/v1/generate", json={"text": "Hello", "max_new_tokens": 4}).json()
    assert len(g["tokens"]) == 4
    with client.stream(
        "POST", "/v1/generate", json={"text": "Hello", "max_new_tokens": 4, "stream": True}
    ) as r:
        toks = [json.loads(ln[6:])["token"] for ln in r.iter_lines() if ln.startswith("data: {")]
    assert toks == g["tokens"]
    ins = client.post("/v1/insight", json={"text": "Hello", "max_new_tokens": 2}).json()
    assert len(ins["steps"]) == 2 and len(ins["steps"][1]["attention"]) == 6
    s = client.post("/v1/sentiment", json={"text": "great"}).json()
    assert abs(sum(s["probabilities"].values()) - 1) < 1e-5
    e = client.post("/v1/ecg", json={"signal": [0.0] * 128}).json()
    assert e["label"] in "NSVFQ"
    sim = client.post("/v1/simulate", json={"steps": 50, "n_exc": 20, "n_inh": 5}).json()
    assert sim["neurons"] == {"exc": 20, "inh": 5}


@pytest.mark.parametrize("path,body,field", [
    ("/v1/sentiment", {"text": "x" * 100}, "text"),  # found inside the Sentiment deployment
    ("/v1/ecg", {"signal": [0.0] * 7}, "signal"),  # found inside the ECG deployment
    ("/v1/simulate", {"steps": 10, "window": [3, 30]}, "window"),  # found inside the Simulator
    ("/v1/generate", {"text": "hi", "max_new_tokens": 1000}, "max_new_tokens"),
])  # fmt: skip
def test_errors_from_deployments_are_422(client, path, body, field):
    r = client.post(path, json=body)
    assert r.status_code == 422 and field in r.json()["message"]


def test_ui_is_mounted(client):
    r = client.get("/ui/")
    assert r.status_code == 200 and "gradio" in r.text.lower()


def test_fuzz_1000_requests_no_5xx(client):
    seen = fuzz(client, 1000)
    assert sum(seen.values()) >= 1000
    assert client.get("/healthz").status_code == 200
    assert client.post("/v1/sentiment", json={"text": "still here"}).status_code == 200


def _listener(port: int) -> str:
    import psutil

    for c in psutil.net_connections("tcp"):
        if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid:
            return " ".join(psutil.Process(c.pid).cmdline())
    return ""


def test_direct_ingress_with_the_proxy_beside_it(ray_url):
    """The API port is the ingress replica's own server; Serve's proxy on port + 1 routes to it too."""
    port = int(ray_url.rsplit(":", 1)[1])
    assert "Ingress" in _listener(port) and "ProxyActor" in _listener(port + 1)
    with httpx.Client(base_url=f"http://127.0.0.1:{port + 1}", timeout=60) as via_proxy:
        assert via_proxy.get("/healthz").json()["models"]["sentiment"] == "debug"
        assert via_proxy.post("/v1/sentiment", json={"text": "fine"}).status_code == 200
