"""Fuzz the API over the in-process backend (300 requests here; 1,000 against Ray in test_ray_app.py)."""

from __future__ import annotations

from evo_serving_fuzz import fuzz


def test_fuzz_local_api(local_client):
    seen = fuzz(local_client, 300)
    assert sum(seen.values()) >= 300
    assert seen.get(422, 0) > 0 and seen.get(200, 0) > 0  # both accepted and rejected requests were drawn
    assert local_client.get("/healthz").status_code == 200
