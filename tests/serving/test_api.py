"""The API over the in-process backend: answers, streaming parity, batching parity, 4xx naming the field."""

from __future__ import annotations

import json
import math

import pytest
import torch

from serving.schemas import LIMITS


def test_healthz_names_debug_models(local_client):
    h = local_client.get("/healthz").json()
    assert h["status"] == "ok"
    assert h["models"] == {
        "generate": "debug",
        "insight": "debug",
        "sentiment": "debug",
        "ecg": "debug",
        "multimodal": "debug",
    }
    assert h["ecg_window"] == 128


def test_stream_matches_plain_generation(local_client):
    body = {"text": "To be or", "max_new_tokens": 5}
    plain = local_client.post("/v1/generate", json=body).json()
    with local_client.stream("POST", "/v1/generate", json={**body, "stream": True}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = [ln for ln in r.iter_lines() if ln.startswith("data: ")]
    assert lines[-1] == "data: [DONE]"
    tokens = [json.loads(ln[6:])["token"] for ln in lines[:-1]]
    assert tokens == plain["tokens"] and len(tokens) == 5
    assert all(e > 0 for e in plain["energy_per_token_j"])


def test_insight_shapes_and_energy(local_client, services):
    r = local_client.post("/v1/insight", json={"text": "abc", "max_new_tokens": 3}).json()
    T, D = services.lm.config.time_steps, services.lm.config.d_model
    assert len(r["steps"]) == 3
    for k, step in enumerate(r["steps"]):
        L = 3 + k  # prefix grows by one token per step (no KV cache)
        att = torch.tensor(step["attention"])
        assert att.shape == (L, L)
        assert torch.allclose(att.sum(-1), torch.ones(L), atol=1e-5)  # softmax rows
        assert torch.all(att.triu(1) == 0)  # causal
        n_blocks = services.lm.config.n_layers
        assert {f"blocks.{i}.lif_q" for i in range(n_blocks)} <= set(step["rasters"])
        for raster in step["rasters"].values():
            assert len(raster) == T and all(v in (0, 1, -1) for row in raster for v in row)
        assert len(step["rasters"]["blocks.0.lif_in"][0]) == min(D, LIMITS.max_raster_neurons)
        assert math.isclose(step["energy_j"], step["energy_per_token_j"] * L, rel_tol=1e-9)


def test_sentiment_batch_equals_single(services):
    texts = ["good", "a much longer sentence about a film", "bad movie"]
    batch = services.sentiment_batch([{"text": t} for t in texts])
    single = [services.sentiment_batch([{"text": t}])[0] for t in texts]
    for b, s in zip(batch, single):
        for k in b["probabilities"]:
            assert math.isclose(b["probabilities"][k], s["probabilities"][k], abs_tol=1e-6)
        assert math.isclose(sum(b["probabilities"].values()), 1.0, abs_tol=1e-6)


def test_sentiment_and_ecg_spikes(local_client):
    r = local_client.post("/v1/sentiment", json={"text": "fine", "return_spikes": True}).json()
    assert r["input_ids"] == list(b"fine") and len(r["raster"]) == 4
    assert r["raster_layer"].startswith("blocks.") and {v for row in r["raster"] for v in row} <= {0, 1}
    beat = [0.0] * 128
    e = local_client.post("/v1/ecg", json={"signal": beat, "return_spikes": True}).json()
    assert set(e["probabilities"]) == {"N", "S", "V", "F", "Q"}
    assert set(e["rasters"]) == {"enc", "conv2", "conv3", "fc"}
    rr_mean = local_client.post("/v1/ecg", json={"signal": beat}).json()
    rr_zero = local_client.post("/v1/ecg", json={"signal": beat, "rr": [0.0] * 6}).json()
    assert rr_mean["probabilities"] == rr_zero["probabilities"]  # debug model: rr_mean = 0


def test_simulate_window_marks_active_synapses(local_client):
    body = {
        "n_exc": 40,
        "n_inh": 10,
        "steps": 120,
        "window": [50, 120],
        "snapshot_every": 40,
        "graph_neurons": 20,
    }
    r = local_client.post("/v1/simulate", json=body).json()
    fired = {i for t, i in r["spikes"]["exc"] if 50 <= t < 120}
    for pre, post, _w, active in r["graph"]["edges"]:
        assert active == (pre in fired) and pre < 20 and post < 20
    assert r["weight_hist"]["steps"] == [0, 40, 80, 120]
    n_syn = [sum(c) for c in r["weight_hist"]["counts"]]
    assert n_syn[0] > 0
    spikes = len(r["spikes"]["exc"])
    assert math.isclose(sum(r["rate_hz"]["exc"]) * 10 * 1e-3 * 40, spikes, rel_tol=1e-6)


def test_found_by_the_schema_fuzz(local_client):
    """Inputs schemathesis found to give 500: a temperature so small that float32 made it 0 (NaN
    probabilities), and a network with one excitatory neuron (no ee synapse to histogram)."""
    g = local_client.post(
        "/v1/generate", json={"text": "\x1d0", "temperature": 1.38e-170, "max_new_tokens": 3}
    )
    greedy = local_client.post("/v1/generate", json={"text": "\x1d0", "max_new_tokens": 3})
    assert g.status_code == 200 and g.json()["tokens"] == greedy.json()["tokens"]  # the limit of T -> 0
    r = local_client.post("/v1/simulate", json={"n_exc": 1, "n_inh": 1, "steps": 30, "graph_neurons": 2})
    assert r.status_code == 200 and r.json()["graph"]["edges"] == []
    assert all(sum(c) == 0 for c in r.json()["weight_hist"]["counts"])


BAD = [
    ("/v1/generate", {"text": ""}, "text"),
    ("/v1/generate", {"text": "x" * (LIMITS.max_text_chars + 1)}, "text"),
    ("/v1/generate", {"text": "hi", "max_new_tokens": LIMITS.max_new_tokens + 1}, "max_new_tokens"),
    ("/v1/generate", {"text": "hi", "max_new_tokens": "many"}, "max_new_tokens"),
    ("/v1/generate", {"text": 5}, "text"),
    ("/v1/generate", {"text": "hi", "model": "gpt-9"}, "model"),
    ("/v1/generate", {"text": "hi", "stream": True, "model": "gpt-9"}, "model"),
    ("/v1/insight", {"text": "hi", "max_new_tokens": LIMITS.max_insight_tokens + 1}, "max_new_tokens"),
    ("/v1/sentiment", {"text": "x" * 100}, "text"),  # over the debug model's context of 64 tokens
    ("/v1/sentiment", {"txt": "hi"}, "text"),
    ("/v1/ecg", {"signal": [0.0] * 5}, "signal"),
    ("/v1/ecg", {"signal": [0.0] * 128, "rr": [1.0]}, "rr"),
    ("/v1/ecg", {"signal": "flat"}, "signal"),
    ("/v1/simulate", {"steps": 10, "window": [5, 50]}, "window"),
    ("/v1/simulate", {"steps": LIMITS.max_sim_steps + 1}, "steps"),
]


@pytest.mark.parametrize("path,body,field", BAD)
def test_bad_requests_get_422_naming_the_field(local_client, path, body, field):
    r = local_client.post(path, json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["message"]
    assert any(field in d["loc"] for d in r.json()["detail"])


@pytest.mark.parametrize("raw", ['{"signal": [NaN, 1.0]}', '{"signal": [Infinity]}'])
def test_non_finite_signal_is_rejected(local_client, raw):
    r = local_client.post("/v1/ecg", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and "signal" in r.json()["message"]


def test_malformed_json_is_4xx(local_client):
    r = local_client.post("/v1/sentiment", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422


def test_api_key_and_bind_rules(services, monkeypatch):
    monkeypatch.delenv("EVOSPIKENET_API_KEY", raising=False)
    from fastapi.testclient import TestClient

    from serving.api import create_api
    from serving.cli import main
    from serving.local import LocalBackend
    from serving.security import check_bind

    key = "k" * 32
    check_bind("127.0.0.1", None)
    with pytest.raises(ValueError, match="EVOSPIKENET_API_KEY"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", key)
    with pytest.raises(ValueError, match="at least 32"):  # a short key is refused everywhere
        check_bind("0.0.0.0", "secret")
    with pytest.raises(ValueError, match="at least 32"):
        create_api(LocalBackend(services), api_key="k" * 31)
    with TestClient(create_api(LocalBackend(services), api_key=key), base_url="http://127.0.0.1") as c:
        assert c.get("/healthz").status_code == 200
        assert c.post("/v1/sentiment", json={"text": "hi"}).status_code == 401
        bad = {"Authorization": "Bearer nope"}
        assert c.post("/v1/sentiment", json={"text": "hi"}, headers=bad).status_code == 401
        ok = {"Authorization": f"Bearer {key}"}
        assert c.post("/v1/sentiment", json={"text": "hi"}, headers=ok).status_code == 200
    assert main(["--host", "0.0.0.0"]) == 2  # refuses before starting anything
    monkeypatch.setenv("EVOSPIKENET_API_KEY", "short")
    assert main([]) == 2  # a short key is refused on loopback too


def test_openapi_lists_every_endpoint(local_client):
    paths = local_client.get("/openapi.json").json()["paths"]
    for p in ("/healthz", "/v1/generate", "/v1/insight", "/v1/sentiment", "/v1/ecg", "/v1/simulate"):
        assert p in paths


def test_worker_env_defaults_and_overrides(monkeypatch):
    """Patient proxy timeouts and one loop per replica unless the user set them; any RAY_SERVE_* variable
    reaches the workers; direct ingress only with a port."""
    from serving.cli import SERVE_LOOPS, SERVE_TIMEOUTS, worker_env

    for k in (*SERVE_LOOPS, *SERVE_TIMEOUTS):
        monkeypatch.delenv(k, raising=False)
    env = worker_env()
    assert env["RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"] == "60"
    assert all(env[k] == "0" for k in SERVE_LOOPS), "one loop per replica by default"
    assert "RAY_SERVE_ENABLE_DIRECT_INGRESS" not in env
    monkeypatch.setenv("RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD", "1")  # back to Serve's default
    monkeypatch.setenv("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "5")  # the user's choice wins
    env = worker_env(8123)
    assert env["RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD"] == "1"
    assert env["RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP"] == "0"
    assert env["RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S"] == "5"
    assert env["RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT"] == "8123"


def _healthz_server(status: int):
    """A plain HTTP server on a free loopback port that answers ``/healthz`` with ``status``."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def test_wait_ready_returns_on_200_and_names_the_url_otherwise(monkeypatch):
    from serving.cli import wait_ready

    for k in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(k, raising=False)
    for k in ("http_proxy", "HTTP_PROXY"):  # a user's proxy must not stand between us and our own server
        monkeypatch.setenv(k, "http://127.0.0.1:9")
    srv, url = _healthz_server(200)
    try:
        wait_ready(url, 10.0)
    finally:
        srv.shutdown()
    srv, url = _healthz_server(503)
    try:
        with pytest.raises(TimeoutError, match=r"/healthz did not answer within 1 s \(last: HTTP 503\)"):
            wait_ready(url, 1.0)
    finally:
        srv.shutdown()
        srv.server_close()
    with pytest.raises(TimeoutError, match=url.replace(".", r"\.")):  # nothing listens there any more
        wait_ready(url, 1.0)


def test_start_survives_serves_proxy_timeout(monkeypatch):
    """Serve's fixed 60 s wait for its proxy timing out (a loaded machine) does not end ``start``: the second
    call connects to the controller that is still starting, the app is deployed, and ``start`` returns once
    ``/healthz`` answers."""
    import ray
    from ray import serve

    import serving.cli as cli
    import serving.deployments as deployments

    calls = []

    def fake_start(http_options):
        calls.append(http_options)
        if len(calls) == 1:
            raise TimeoutError("HTTP proxies not available after 60s.")

    srv, url = _healthz_server(200)
    port = int(url.rsplit(":", 1)[1])
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(serve, "start", fake_start)
    monkeypatch.setattr(serve, "run", lambda app, **kw: calls.append("run"))
    monkeypatch.setattr(deployments, "build_app", lambda paths, **kw: "app")
    try:
        assert cli.start(cli.ModelPaths(), "127.0.0.1", port, ready_timeout_s=10.0) == url
    finally:
        srv.shutdown()
    assert calls == [{"host": "127.0.0.1", "port": port}] * 2 + ["run"]

    def always_late(http_options):
        raise TimeoutError("HTTP proxies not available after 60s.")

    monkeypatch.setattr(serve, "start", always_late)  # a second timeout is the user's to see
    with pytest.raises(TimeoutError, match="proxies"):
        cli.start(cli.ModelPaths(), "127.0.0.1", port, ready_timeout_s=1.0)
