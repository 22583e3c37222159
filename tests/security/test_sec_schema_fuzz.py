"""Schema fuzz: schemathesis draws requests from our OpenAPI document (bodies that fit it, and bodies that
break it on purpose), at least 500 per POST endpoint, against the API on 127.0.0.1. No answer may be a
5xx, every error names its field, and the server still answers ``/healthz`` within 1 s afterwards.

Simulations are capped at 60 steps (a valid 2,000-step run takes seconds; the budget's refusal of
larger ones is tested in test_sec_queue_budget_deadline.py), so the fuzz fits in minutes."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest
import requests
from evo_security_server import assert_healthz_fast

pytestmark = pytest.mark.slow

PER_MODE = 250  # examples per endpoint and generation mode (positive and negative): 500 per endpoint


def _fuzz(op, mode, url: str, session, sent: Counter, statuses: Counter) -> None:
    """``PER_MODE`` requests drawn for ``op`` in generation ``mode``; fails on any 5xx."""
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(max_examples=PER_MODE, deadline=None, database=None, derandomize=True,
              phases=[Phase.generate], suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=op.as_strategy(generation_mode=mode))
    def one(case):
        if op.path == "/v1/simulate" and isinstance(case.body, dict):
            for k in ("steps", "snapshot_every"):
                if isinstance(case.body.get(k), int) and case.body[k] > 60:
                    case.body[k] = 60
        r = case.call(base_url=url, session=session, timeout=120)
        sent[op.path] += 1
        statuses[r.status_code] += 1
        assert r.status_code < 500, (op.path, case.body, r.text[:300])
        if r.status_code >= 400:
            assert r.json()["message"], r.text

    one()


def test_schemathesis_fuzz_finds_no_5xx(serve_api):
    import schemathesis

    url = serve_api()
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json", trust_env=False).json())
    ops = [r.ok() for r in schema.get_all_operations()]
    posts = [op for op in ops if op.method.upper() == "POST"]
    assert {op.path for op in posts} >= {"/v1/generate", "/v1/insight", "/v1/sentiment", "/v1/ecg",
                                         "/v1/multimodal", "/v1/simulate"}  # fmt: skip
    session = requests.Session()
    session.trust_env = False
    sent: Counter = Counter()
    statuses: Counter = Counter()
    for op in ops:
        modes = [schemathesis.GenerationMode.POSITIVE]
        if op in posts:  # a GET without parameters has nothing to break
            modes.append(schemathesis.GenerationMode.NEGATIVE)
        for mode in modes:
            _fuzz(op, mode, url, session, sent, statuses)
    for op in posts:
        assert sent[op.path] >= 2 * PER_MODE, (op.path, sent[op.path])
    assert statuses[200] > 0 and statuses[422] > 0, statuses
    print(dict(sent), dict(statuses))
    assert_healthz_fast(url)
