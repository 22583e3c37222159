"""Fuzzing helpers: every POST endpoint of the OpenAPI schema, hypothesis-drawn bodies, no 5xx allowed.

Bodies mix schema-shaped objects whose fields take arbitrary JSON values (typed, mistyped, out of range,
missing, extra) with arbitrary JSON documents and raw bytes.
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIELDS = {
    "/v1/generate": ["text", "max_new_tokens", "temperature", "top_k", "seed", "stream", "model"],
    "/v1/insight": ["text", "max_new_tokens", "model"],
    "/v1/sentiment": ["text", "return_spikes", "model"],
    "/v1/ecg": ["signal", "rr", "return_spikes", "model"],
    "/v1/simulate": ["n_exc", "n_inh", "steps", "seed", "window", "snapshot_every", "graph_neurons"],
    "/v1/multimodal": ["text", "image", "signal", "rr", "max_new_tokens", "return_insight", "model"],
}

small_int = st.integers(-3, 40) | st.integers(-(2**63), 2**63)
leaf = st.none() | st.booleans() | small_int | st.floats(allow_nan=False) | st.text(max_size=30)
nested = st.recursive(
    leaf,
    lambda c: st.lists(c, max_size=5) | st.dictionaries(st.text(max_size=5), c, max_size=3),
    max_leaves=10,
)
values = nested | st.lists(st.floats(-5, 5), min_size=0, max_size=140)


@st.composite
def request(draw):
    path = draw(st.sampled_from(sorted(FIELDS)))
    kind = draw(st.sampled_from(["schema", "schema", "schema", "json", "bytes"]))
    if kind == "schema":
        keys = draw(st.lists(st.sampled_from(FIELDS[path] + ["extra"]), unique=True, max_size=5))
        body = {k: draw(values) for k in keys}
        if path in ("/v1/generate", "/v1/insight") and isinstance(body.get("max_new_tokens"), int):
            body["max_new_tokens"] = min(abs(body["max_new_tokens"]), 70)  # keep generation cheap
        if path == "/v1/simulate":
            for k in ("steps", "n_exc", "n_inh"):
                if isinstance(body.get(k), int) and 0 < body[k] < 10**4:
                    body[k] = min(body[k], 60)
        return path, json.dumps(body).encode()
    if kind == "json":
        return path, json.dumps(draw(values)).encode()
    return path, draw(st.binary(max_size=40))


def fuzz(client, n: int) -> dict:
    seen: dict[int, int] = {}

    @settings(max_examples=n, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(request())
    def one(req):
        path, body = req
        r = client.post(path, content=body, headers={"content-type": "application/json"})
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        assert r.status_code < 500, (path, body[:200], r.text[:300])
        if r.status_code >= 400:
            assert r.json()["message"]

    one()
    return seen
