"""The UI's HTTP client of the serving API (bearer key when given).

It never reads proxy settings from the environment (``trust_env=False``): a ``HTTP(S)_PROXY`` set for other
tools must not receive the API key, and the API is on this machine anyway. Errors become ``gr.Error`` with
the API's ``message``; a stream's error event does too.
"""

from __future__ import annotations

import json

import gradio as gr
import httpx

__all__ = ["ApiClient"]


def _message(r: httpx.Response) -> str:
    if r.headers.get("content-type", "").startswith("application/json"):
        return r.json().get("message", r.text)
    return r.text


class ApiClient:
    """``post``, ``get`` and ``stream_tokens`` against ``base_url`` with one pooled connection set."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, trust_env=False)

    def post(self, path: str, body: dict) -> dict:
        r = self.http.post(path, json=body)
        if r.status_code >= 400:
            raise gr.Error(_message(r))
        return r.json()

    def get(self, path: str) -> dict:
        r = self.http.get(path)
        if r.status_code >= 400:
            raise gr.Error(_message(r))
        return r.json()

    def stream_tokens(self, body: dict):
        """Yield the events of ``/v1/generate`` with ``stream: true`` (server-sent events)."""
        with self.http.stream("POST", "/v1/generate", json={**body, "stream": True}) as r:
            if r.status_code >= 400:
                r.read()
                raise gr.Error(_message(r))
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    event = json.loads(line[6:])
                    if "error" in event:
                        raise gr.Error(event["error"]["message"])
                    yield event
