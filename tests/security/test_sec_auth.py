"""Item 7: keys shorter than 32 characters are refused (or one is generated and printed once); failed
attempts on ``/v1`` and ``/ui/login`` are throttled (429 with ``Retry-After``); the UI's HTTP client ignores
``HTTP(S)_PROXY``; ``serve run serving/config.yaml`` applies the CLI's bind and key checks."""

from __future__ import annotations

import os
import socket
import subprocess
import threading

import pytest
from evo_security_server import KEY, assert_healthz_fast, client, console_script

from serving.security import ServerSettings


def test_short_keys_are_refused_and_a_generated_key_is_printed_once(services):
    from serving.api import create_api
    from serving.local import LocalBackend

    with pytest.raises(ValueError, match="at least 32"):
        create_api(LocalBackend(services), api_key="x" * 31)
    env = {**os.environ, "EVOSPIKENET_API_KEY": "hunter2"}
    r = subprocess.run(
        [console_script("evospikenet-serve")], env=env, capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 2 and "at least 32" in r.stderr
    env.pop("EVOSPIKENET_API_KEY")
    # --generate-key on a public host: a key is made and printed once; the bad --sim-run then stops the start.
    r = subprocess.run([console_script("evospikenet-serve"), "--host", "0.0.0.0", "--generate-key", "--sim-run",
                        "/nonexistent/run"], env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2 and "--sim-run" in r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "API key (shown once)" in ln]
    assert len(lines) == 1 and len(lines[0].rsplit(" ", 1)[1]) >= 32


def test_failed_bearer_tokens_are_throttled(serve_api):
    url = serve_api(api_key=KEY, settings=ServerSettings(auth_failures=5, auth_window_s=30))
    with client(url, "wrong-" + KEY) as bad, client(url, KEY) as good:
        statuses = [bad.post("/v1/sentiment", json={"text": "hi"}).status_code for _ in range(5)]
        assert statuses == [401] * 5
        r = bad.post("/v1/sentiment", json={"text": "hi"})
        assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 30
        # Locked out: the right key from the same address waits too, so guessing cannot go on.
        assert good.post("/v1/sentiment", json={"text": "hi"}).status_code == 429
    assert_healthz_fast(url)  # /healthz is not guarded


def test_failed_ui_logins_are_throttled(serve_api):
    url = serve_api(
        api_key=KEY, ui=True, ui_auth=("evospikenet", KEY), settings=ServerSettings(auth_failures=4)
    )
    with client(url) as c:
        form = {"username": "evospikenet", "password": "guess"}
        statuses = [c.post("/ui/login", data=form).status_code for _ in range(4)]
        assert statuses == [400] * 4
        r = c.post("/ui/login", data={"username": "evospikenet", "password": KEY})
        assert r.status_code == 429 and "retry-after" in r.headers
    assert_healthz_fast(url)


def test_right_login_succeeds_before_any_lockout(serve_api):
    url = serve_api(api_key=KEY, ui=True, ui_auth=("evospikenet", KEY))
    with client(url) as c:
        assert c.post("/ui/login", data={"username": "evospikenet", "password": KEY}).status_code == 200
    assert_healthz_fast(url)


def test_ui_client_does_not_use_proxy_settings(serve_api, monkeypatch):
    """A proxy from the environment would receive the bearer key; the UI's client never contacts it."""
    from serving.ui.client import ApiClient

    url = serve_api(api_key=KEY)
    trap = socket.socket()
    trap.bind(("127.0.0.1", 0))
    trap.listen(8)
    trap.settimeout(0.5)
    seen = []

    def watch():
        try:
            conn, _ = trap.accept()
            seen.append(conn.recv(4096))
            conn.close()
        except OSError:
            pass

    watcher = threading.Thread(target=watch)
    watcher.start()
    proxy = f"http://127.0.0.1:{trap.getsockname()[1]}"
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(k, proxy)
    for k in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(k, raising=False)
    api = ApiClient(url, api_key=KEY)
    assert api.post("/v1/sentiment", {"text": "fine"})["label"] in ("negative", "positive")
    watcher.join()
    trap.close()
    assert seen == []
    assert_healthz_fast(url)


@pytest.mark.parametrize(("http_host", "ray_ip", "key", "ok"), [
    ("127.0.0.1", "127.0.0.1", None, True),
    ("0.0.0.0", "127.0.0.1", None, False),  # public HTTP without a key
    ("127.0.0.1", "10.1.2.3", None, False),  # Ray reachable from the network without a key
    ("0.0.0.0", "10.1.2.3", KEY, True),
    ("0.0.0.0", "127.0.0.1", "short-key", False),
    (None, None, None, True),  # builder called before Serve and Ray run (`serve build`): checked at deploy
    (None, None, "short-key", False),  # a short key is refused whatever is known
])  # fmt: skip
def test_serve_run_builder_applies_the_cli_checks(monkeypatch, tmp_path, http_host, ray_ip, key, ok):
    """``serving.deployments.app_builder`` (what ``serve run serving/config.yaml`` calls) refuses what the
    CLI refuses. The running Serve's HTTP host and Ray's address are what the builder reads from Serve;
    here they are given, since starting Serve for each case would take minutes."""
    import serving.deployments as deployments

    monkeypatch.setattr(deployments, "_serve_exposure", lambda: (http_host, ray_ip))
    if key:
        monkeypatch.setenv("EVOSPIKENET_API_KEY", key)
    else:
        monkeypatch.delenv("EVOSPIKENET_API_KEY", raising=False)
    monkeypatch.setattr(deployments, "build_app", lambda paths, **kw: ("app", kw["settings"]))
    if ok:
        app, settings = deployments.app_builder({"max_body_bytes": 2048})
        assert app == "app" and settings.max_body_bytes == 2048
    else:
        with pytest.raises(ValueError, match="EVOSPIKENET_API_KEY|at least 32"):
            deployments.app_builder({})
