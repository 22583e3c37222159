"""Helpers of the attack suite: real servers on 127.0.0.1 and raw HTTP against them.

``LocalServer`` runs the API (``serving.api.create_api`` over the in-process backend, optionally with the UI)
in uvicorn on a free loopback port; ``ServeProcess`` runs the ``evospikenet-serve`` console script (Ray Serve)
as a subprocess. ``raw_request`` speaks HTTP/1.1 over a socket, so a test controls exactly what is sent
(a declared length with no body, a chunked body, a missing Host header).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

KEY = "evospikenet-test-key-" + "x" * 24  # 45 characters: over the 32-character minimum


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalServer:
    """uvicorn on 127.0.0.1 serving ``app`` in a thread; ``url`` once started."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


def client(url: str, key: str | None = None, timeout: float = 120.0) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=url, headers=headers, timeout=timeout, trust_env=False)


def assert_healthz_fast(url: str, limit_s: float = 1.0) -> float:
    """``/healthz`` answers 200 within ``limit_s`` seconds; returns the time it took."""
    with client(url, timeout=limit_s + 5) as c:
        t0 = time.perf_counter()
        r = c.get("/healthz")
        took = time.perf_counter() - t0
    assert r.status_code == 200, r.text
    assert took < limit_s, f"/healthz took {took:.2f} s"
    return took


def raw_request(port: int, head: bytes, body_chunks=(), timeout: float = 30.0) -> tuple[int, dict, bytes]:
    """Send ``head`` (request line and headers, ending in a blank line), then each of ``body_chunks`` as
    long as the server reads them, then read the answer: (status, headers, body). Writes the server
    refuses (it answered and closed) end the sending."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(head)
        for chunk in body_chunks:
            try:
                s.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data) < _expected(data):
                got = s.recv(65536)
                if not got:
                    break
                data += got
        except ConnectionResetError:
            pass
    head_raw, _, body = data.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
    return status, headers, body


def _expected(data: bytes) -> int:
    head, sep, _ = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(head) + len(sep) + int(line.split(b":")[1])
    return len(data) + 1  # unknown: read until the server closes


def console_script(name: str) -> str:
    """The path of a console script of this environment."""
    return str(Path(sys.executable).parent / name)


class ServeProcess:
    """``evospikenet-serve`` on a free loopback port as a subprocess (Ray Serve, every replica); ``url`` once
    ``/healthz`` answers. Started with SIGINT ignored and stopped with SIGINT (what Ctrl-C sends), then
    killed if it lingers."""

    def __init__(self, *args: str, env: dict | None = None, ready_s: float = 900.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [console_script("evospikenet-serve"), "--port", str(self.port), "--num-cpus", "2", *args]
        self.env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
        self.ready_s = ready_s
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> ServeProcess:
        # SIGINT starts ignored, as a shell leaves it for a job started with `&` (CI's case): Ctrl-C must still
        # stop the console script. `trap '' INT; exec` sets that up without a preexec_fn (unsafe with threads).
        self.proc = subprocess.Popen(["sh", "-c", "trap '' INT; exec \"$@\"", "sh", *self.args], env=self.env,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)  # fmt: skip
        self.lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        deadline = time.monotonic() + self.ready_s
        while not any(ln.startswith("API: ") for ln in self.lines):
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"evospikenet-serve exited {self.proc.returncode}:\n" + "".join(self.lines[-40:])
                )
            if time.monotonic() > deadline:
                self.__exit__()
                raise TimeoutError("evospikenet-serve did not start:\n" + "".join(self.lines[-40:]))
            time.sleep(0.5)
        return self

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def __exit__(self, *exc) -> None:
        """Ctrl-C; the console script must stop Ray and exit 0 (an ``AssertionError`` otherwise)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            code = self.proc.wait(120)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # the console script prints every thread's stack
            time.sleep(2)
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)
            raise AssertionError(
                "evospikenet-serve did not stop within 120 s of Ctrl-C:\n" + "".join(self.lines[-120:])
            ) from None
        assert code == 0, f"evospikenet-serve exited {code} after Ctrl-C:\n" + "".join(self.lines[-40:])
