"""The console scripts as users run them, as subprocesses: ``evospikenet-serve`` and ``python -m
serving.demo`` / ``serving.ui`` (exit status, help text, the demo's last JSON line). The server's own
start and Ctrl-C stop are exercised by tests/security (its ``ray_server`` fixture requires exit status 0)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVE = str(Path(sys.executable).parent / "evospikenet-serve")


def _run(args: list[str], timeout: float = 300, **env) -> subprocess.CompletedProcess:
    e = {**os.environ, "OMP_NUM_THREADS": "1", **env}
    e.pop("EVOSPIKENET_API_KEY", None)
    return subprocess.run(args, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)


def test_serve_help_names_its_options_with_an_example():
    r = _run([SERVE, "--help"])
    assert r.returncode == 0, r.stderr
    for option in ("--model", "--host", "--port", "--allowed-host", "--generate-key", "--max-body-bytes",
                   "--request-timeout", "--max-queued", "--expose-ray", "--sim-run", "--no-ui"):  # fmt: skip
        assert option in r.stdout, option
    assert "example:" in r.stdout and "evospikenet-serve --model" in r.stdout


@pytest.mark.parametrize(("args", "says"), [
    (["--port", "eighty"], "invalid int value"),
    (["--host", "0.0.0.0"], "EVOSPIKENET_API_KEY"),
    (["--expose-ray"], "EVOSPIKENET_API_KEY"),
    (["--sim-run", "/nonexistent/run"], "--sim-run"),
])  # fmt: skip
def test_serve_refuses_bad_options_with_status_2(args, says):
    r = _run([SERVE, *args])
    assert r.returncode == 2 and says in r.stderr, (r.returncode, r.stderr[-500:])


@pytest.mark.parametrize("module", ["serving.demo", "serving.ui"])
def test_module_help(module):
    r = _run([sys.executable, "-m", module, "--help"])
    assert r.returncode == 0 and "example:" in r.stdout, r.stderr


@pytest.mark.slow
def test_demo_runs_every_endpoint_and_ends_with_a_json_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    r = _run([sys.executable, "-m", "serving.demo", "--port", str(port)], timeout=1200)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    last = json.loads(r.stdout.strip().splitlines()[-1])
    assert last["ok"] is True and last["url"] == f"http://127.0.0.1:{port}"
    assert set(last["status"]) == {"healthz", "generate", "insight", "sentiment", "ecg", "simulate", "ui"}
    assert set(last["status"].values()) == {200}


@pytest.mark.parametrize(("serve_hangs", "ray_hangs", "stopped", "says"), [
    (False, False, True, ""),
    (True, False, True, "Serve did not shut down within 0.2 s; stopping Ray"),
    (False, True, False, "Ray did not stop within 0.2 s"),
])  # fmt: skip
def test_stop_is_bounded_when_serve_or_ray_hangs(monkeypatch, capsys, serve_hangs, ray_hangs, stopped, says):
    import threading

    import ray
    from ray import serve

    from serving.cli import stop

    release = threading.Event()
    calls = []

    def fake(name, hangs):
        def fn():
            calls.append(name)
            if hangs:
                release.wait(10)

        fn.__name__ = name
        return fn

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(serve, "shutdown", fake("serve_shutdown", serve_hangs))
    monkeypatch.setattr(ray, "shutdown", fake("ray_shutdown", ray_hangs))
    try:
        assert stop(serve_timeout_s=0.2, ray_timeout_s=0.2) is stopped
    finally:
        release.set()
    assert calls == ["serve_shutdown", "ray_shutdown"]  # Ray is stopped even when Serve hangs
    err = capsys.readouterr().err
    assert (says in err) if says else err == ""


@pytest.mark.parametrize(("stopped", "code"), [(True, 0), (False, 1)])
def test_demo_fails_when_ray_does_not_stop(monkeypatch, capsys, stopped, code):
    import serving.demo as demo

    status = dict.fromkeys(("healthz", "generate"), 200)
    monkeypatch.setattr(demo, "run_platform_demo", lambda *a, **k: {
        "answers": {}, "status": status, "url": "http://127.0.0.1:1", "stopped": stopped})  # fmt: skip
    exits = []
    monkeypatch.setattr(demo, "exit_now", exits.append)
    assert demo.main(["--port", "1"]) == code
    assert exits == ([] if stopped else [1])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last["stopped"] is stopped and last["ok"] is stopped
