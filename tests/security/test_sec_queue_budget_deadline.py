"""Item 3: bounded work per request and per endpoint. A full endpoint answers 503 with ``Retry-After``; work
over the compute budget (neurons x steps, token positions) gets 422 before it starts; a request past
``request_timeout_s`` gets 504 and its simulation stops at the deadline instead of running on."""

from __future__ import annotations

import threading
import time

import pytest
from evo_security_server import assert_healthz_fast, client

from serving.schemas import LIMITS
from serving.security import ServerSettings


def test_full_endpoint_answers_503_with_retry_after(serve_api):
    url = serve_api(settings=ServerSettings(queue={"simulate": 2}))
    answers: list = []

    def one():
        with client(url) as c:
            r = c.post("/v1/simulate", json={"n_exc": 80, "n_inh": 20, "steps": 400})
            answers.append((r.status_code, r.headers.get("retry-after"), r.json().get("message", "")))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    assert_healthz_fast(url)  # while the endpoint is full
    for t in threads:
        t.join(300)
    statuses = sorted(a[0] for a in answers)
    assert statuses.count(200) >= 2 and statuses.count(503) >= 1 and set(statuses) <= {200, 503}, statuses
    for status, retry, msg in answers:
        if status == 503:
            assert retry == "1" and msg.startswith("queue:")
    with client(url) as c:  # places are given back: the endpoint answers again
        assert c.post("/v1/simulate", json={"n_exc": 8, "n_inh": 2, "steps": 20}).status_code == 200
    assert_healthz_fast(url)


@pytest.mark.parametrize(("body", "field"), [
    ({"n_exc": 1600, "n_inh": 400, "steps": 2000}, "steps"),  # 4,000,000 neuron-steps
    ({"n_exc": 1000, "n_inh": 1, "steps": 401}, "steps"),  # just over 400,000
])  # fmt: skip
def test_simulation_over_budget_is_refused_before_it_starts(serve_api, body, field):
    url = serve_api()
    with client(url) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/simulate", json=body)
        took = time.perf_counter() - t0
    assert r.status_code == 422 and r.json()["message"].startswith(field), r.text
    assert str(LIMITS.max_sim_neuron_steps) in r.json()["message"]
    assert took < 1.0, f"refusal took {took:.2f} s: work started"
    assert_healthz_fast(url)


def test_generation_over_token_budget_is_refused(serve_api, tmp_path):
    """A model with a 512-token context: 64 new tokens after a long prompt make 64 x 511 positions."""
    from evospikenet.data.text import byte_tokenizer
    from evospikenet.models import SpikingEvoSpikeNetConfig, SpikingEvoSpikeNetForCausalLM
    from serving.engine import generation_positions
    from serving.local import LocalBackend, ModelPaths, Services

    cfg = SpikingEvoSpikeNetConfig(
        d_model=16, n_layers=1, n_heads=2, mlp_ratio=2, context_length=512, time_steps=2
    )
    SpikingEvoSpikeNetForCausalLM(cfg).save_pretrained(tmp_path / "lm")
    byte_tokenizer().save_pretrained(tmp_path / "lm")
    url = serve_api(LocalBackend(Services(ModelPaths(lm=str(tmp_path / "lm")), kinds=("lm",))))
    assert generation_positions(600, 64, 511) == 64 * 511 > LIMITS.max_generate_positions
    with client(url) as c:
        for stream in (False, True):
            r = c.post("/v1/generate", json={"text": "x" * 600, "max_new_tokens": 64, "stream": stream})
            assert r.status_code == 422 and r.json()["message"].startswith("max_new_tokens"), r.text
        ok = c.post("/v1/generate", json={"text": "x" * 20, "max_new_tokens": 8})
        assert ok.status_code == 200 and len(ok.json()["tokens"]) == 8
    assert_healthz_fast(url)


def test_request_past_its_deadline_gets_504_and_the_simulation_stops(serve_api):
    url = serve_api(settings=ServerSettings(request_timeout_s=1.0))
    with client(url) as c:
        t0 = time.perf_counter()
        r = c.post("/v1/simulate", json={"n_exc": 160, "n_inh": 40, "steps": 2000})  # about 20 s of work
        took = time.perf_counter() - t0
        # The in-process backend waits for its worker thread, so a prompt 504 means the simulation stopped.
        assert r.status_code == 504 and r.json()["message"].startswith("simulate"), r.text
        assert took < 6.0, f"the simulation ran on for {took:.1f} s"
    assert_healthz_fast(url)


def test_simulate_stops_at_its_deadline_directly():
    from serving.errors import DeadlineExceeded
    from serving.simulate import simulate

    t0 = time.perf_counter()
    with pytest.raises(DeadlineExceeded, match="steps"):
        simulate(n_exc=80, n_inh=20, steps=2000, deadline=time.time() + 0.5)
    assert time.perf_counter() - t0 < 3.0
