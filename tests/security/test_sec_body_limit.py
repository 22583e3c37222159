"""Item 2: request bodies over the limit (1 MiB by default) get 413 before they are read or parsed,
whether they declare their length or come chunked; the Gradio upload path is covered too."""

from __future__ import annotations

import json
import time

from evo_security_server import assert_healthz_fast, raw_request

MIB = 1 << 20


def _post(path: str, port: int, extra: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"{extra}\r\n").encode()  # fmt: skip


def test_oversized_bodies_get_413_before_parsing(serve_api):
    url = serve_api(ui=True)
    port = int(url.rsplit(":", 1)[1])
    # A 200 MB body declared but never sent: the answer must come without reading it.
    t0 = time.perf_counter()
    status, headers, body = raw_request(port, _post("/v1/ecg", port, f"Content-Length: {200 * MIB}\r\n"))
    assert status == 413 and time.perf_counter() - t0 < 5
    assert "1048576 bytes" in json.loads(body)["message"] and headers.get("connection") == "close"
    # A chunked body of 4 MiB in 64 KiB chunks (no length declared): 413 once it passes 1 MiB.
    data = b"0," * 32768
    chunk = b"%x\r\n%s\r\n" % (len(data), data)
    status, _, body = raw_request(
        port, _post("/v1/ecg", port, "Transfer-Encoding: chunked\r\n"), [chunk] * 64
    )
    assert status == 413, body
    # Just under the limit is read and parsed: a 422 naming the field, not a 413.
    ok = json.dumps({"signal": [0.0] * 150_000}).encode()
    assert MIB // 2 < len(ok) < MIB
    status, _, body = raw_request(port, _post("/v1/ecg", port, f"Content-Length: {len(ok)}\r\n"), [ok])
    assert status == 422 and "signal" in json.loads(body)["message"]
    # A length that is not a number is refused the same way.
    status, _, _ = raw_request(port, _post("/v1/ecg", port, "Content-Length: 12abc\r\n"))
    assert status in (400, 413)
    # The UI's upload path: a 2 MiB multipart file.
    boundary = "evoboundary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"v.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\n").encode() + b"1," * MIB + f"\r\n--{boundary}--\r\n".encode()  # fmt: skip
    head = (f"POST /ui/gradio_api/upload HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: {len(part)}\r\n"
            f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode()  # fmt: skip
    status, _, _ = raw_request(port, head, [part])
    assert status == 413
    assert_healthz_fast(url)


def test_the_limit_is_configurable(serve_api):
    from serving.security import ServerSettings

    url = serve_api(settings=ServerSettings(max_body_bytes=4096))
    port = int(url.rsplit(":", 1)[1])
    body = json.dumps({"signal": [0.0] * 1200}).encode()  # about 6 KB
    status, _, _ = raw_request(port, _post("/v1/ecg", port, f"Content-Length: {len(body)}\r\n"), [body])
    assert status == 413
    small = json.dumps({"signal": [0.0] * 128}).encode()
    status, _, _ = raw_request(port, _post("/v1/ecg", port, f"Content-Length: {len(small)}\r\n"), [small])
    assert status == 200
    assert_healthz_fast(url)
