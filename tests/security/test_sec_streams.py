"""Item 8 (in process): a stream that fails after its first event ends with an error event and then
``[DONE]``; a request error before the first event is still a plain 422. (A replica that dies is in
test_sec_ray.py.)"""

from __future__ import annotations

import json

from evo_security_server import assert_healthz_fast, client

from serving.local import LocalBackend


class FailingAfterFirstToken(LocalBackend):
    """The in-process backend, except that generation fails after its first token: a stand-in for a model
    that breaks mid-answer (out of memory, a lost device), which cannot be caused on demand here."""

    def __init__(self, services, error: Exception) -> None:
        super().__init__(services)
        self.error = error

    async def generate(self, req, deadline=None):
        async for step in super().generate(req, deadline):
            yield step
            raise self.error


def _events(url: str, body: dict) -> list:
    with client(url) as c, c.stream("POST", "/v1/generate", json={**body, "stream": True}) as r:
        assert r.status_code == 200
        return [ln[6:] for ln in r.iter_lines() if ln.startswith("data: ")]


def test_error_after_first_event_ends_the_stream_with_an_error_event(serve_api, services):
    from serving.errors import DeadlineExceeded

    for error, status in (
        (RuntimeError("device lost"), 500),
        (DeadlineExceeded("max_new_tokens", "late"), 504),
    ):
        url = serve_api(FailingAfterFirstToken(services, error))
        events = _events(url, {"text": "To be", "max_new_tokens": 8})
        assert len(events) == 3 and events[-1] == "[DONE]", events
        assert "token" in json.loads(events[0])
        err = json.loads(events[1])["error"]
        assert err["status"] == status and err["message"]
        assert "device lost" not in events[1]  # no internal detail leaks to the client
        with client(url) as c:  # the same failure without streaming: an error status, not a hang
            r = c.post("/v1/generate", json={"text": "To be", "max_new_tokens": 8})
            assert r.status_code == status
        assert_healthz_fast(url)


def test_errors_before_the_first_event_are_still_422(serve_api):
    url = serve_api()
    with client(url) as c:
        r = c.post("/v1/generate", json={"text": "hi", "max_new_tokens": 4, "stream": True, "model": "gpt-9"})
        assert r.status_code == 422 and r.json()["message"].startswith("model")
    assert _events(url, {"text": "hi", "max_new_tokens": 3})[-1] == "[DONE]"
    assert_healthz_fast(url)
