"""Item 4: only the configured host names reach the server (localhost and 127.0.0.1 by default), so a page
on another site cannot reach it through DNS rebinding: any other Host header, or none, gets 400."""

from __future__ import annotations

import json

from evo_security_server import assert_healthz_fast, raw_request

from serving.security import ServerSettings, host_of


def _get(port: int, path: str, host: str | None) -> tuple[int, bytes]:
    head = (
        f"GET {path} HTTP/1.1\r\n"
        + (f"Host: {host}\r\n" if host is not None else "")
        + "Connection: close\r\n\r\n"
    )
    status, _, body = raw_request(port, head.encode())
    return status, body


def test_unknown_host_names_get_400(serve_api):
    url = serve_api(ui=True)
    port = int(url.rsplit(":", 1)[1])
    for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.nip.io", "0.0.0.0", "[::2]:80"):
        for path in ("/healthz", "/v1/limits", "/ui/"):
            status, body = _get(port, path, host)
            assert status == 400, (host, path, status)
            assert json.loads(body)["message"].startswith("host:")
    status, _ = _get(port, "/healthz", None)  # no Host header at all (HTTP/1.1 requires one)
    assert status == 400
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}"):
        assert _get(port, "/healthz", host)[0] == 200, host
    assert_healthz_fast(url)


def test_configured_names_are_allowed(serve_api):
    url = serve_api(settings=ServerSettings(allowed_hosts=("localhost", "127.0.0.1", "serve.example.org")))
    port = int(url.rsplit(":", 1)[1])
    assert _get(port, "/healthz", "serve.example.org:8000")[0] == 200
    assert _get(port, "/healthz", "other.example.org")[0] == 400
    assert_healthz_fast(url)


def test_host_of():
    assert host_of("Example.ORG:8000") == "example.org"
    assert host_of("[::1]:8000") == "::1" and host_of("[::1]") == "::1"
    assert host_of("127.0.0.1") == "127.0.0.1"
