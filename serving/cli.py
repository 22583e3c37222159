"""``evospikenet-serve``: start the Ray Serve application (API + Insight UI) and keep it running.

Binds 127.0.0.1 by default, and Ray's own servers (GCS, raylet, object manager, worker gRPC ports) listen
on 127.0.0.1 only. Any other ``--host`` needs ``EVOSPIKENET_API_KEY`` of at least 32 characters (or
``--generate-key``); clients send ``Authorization: Bearer <key>`` and the UI asks for user ``evospikenet``
and the key as password. Requests reach the ingress through Serve's proxy on ``--port``.
``--direct-ingress`` lets the ingress replica answer on ``--port`` itself (one process hop less) with the
proxy on ``--port + 1``; see :func:`direct_ingress_env` for what that costs. docs/serving.md, "Security
model", lists every limit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from .paths import ModelPaths
from .raynet import ray_on_loopback
from .security import DEFAULT_QUEUE, ServerSettings, check_bind, generate_key, is_loopback

__all__ = [
    "main",
    "start",
    "stop",
    "exit_now",
    "wait_ready",
    "parse_args",
    "worker_env",
    "direct_ingress_env",
    "settings_from_args",
    "SERVE_TIMEOUTS",
    "SERVE_LOOPS",
]

EXAMPLES = """example:
  evospikenet-serve --model artifacts/spiking_lm_debug --port 8000
  EVOSPIKENET_API_KEY=$(python -c 'import secrets; print(secrets.token_urlsafe(32))') \\
      evospikenet-serve --host 0.0.0.0 --allowed-host myhost.example.org
exit status: 0 after Ctrl-C, 2 for a refused option (short key, non-loopback host without a key)."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="evospikenet-serve", description=__doc__.splitlines()[0], epilog=EXAMPLES,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    ap.add_argument("--model", default=None, help="causal spiking LM: directory or Hub id")
    ap.add_argument("--sentiment", default=None, help="classifier (default: artifacts/sst2 or debug)")
    ap.add_argument("--ecg", default=None, help="ECG beat classifier directory (default: debug model)")
    ap.add_argument(
        "--multimodal", default=None, help="multimodal LM (default: artifacts/multimodal/model or debug)"
    )
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--port", type=int, default=8000, help="HTTP port of the API and UI (default 8000)")
    ap.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                    help="a Host header name clients may use besides localhost and 127.0.0.1 (repeat; '*': "
                    "any, which gives up the DNS-rebinding check)")  # fmt: skip
    ap.add_argument("--generate-key", action="store_true",
                    help="make a random API key, print it once on stderr and require it")  # fmt: skip
    ap.add_argument("--max-body-bytes", type=int, default=ServerSettings.max_body_bytes,
                    help="largest request body; larger ones get 413 before parsing (default 1 MiB)")  # fmt: skip
    ap.add_argument("--request-timeout", type=float, default=ServerSettings.request_timeout_s, metavar="S",
                    help="seconds a request may run before it is stopped with 504 (default 60)")  # fmt: skip
    ap.add_argument("--max-queued", type=int, default=None, metavar="N",
                    help="requests each endpoint may hold at once, running or waiting; one more gets 503 "
                    f"(default per endpoint: {DEFAULT_QUEUE})")  # fmt: skip
    ap.add_argument("--expose-ray", action="store_true",
                    help="let Ray's own servers listen on the machine's address, not 127.0.0.1 (needs "
                    "EVOSPIKENET_API_KEY; for a multi-node cluster)")  # fmt: skip
    ap.add_argument("--sim-run", default=os.environ.get("EVOSPIKENET_SIM_RUN"), metavar="DIR",
                    help="a saved simulation run whose DIR/analysis/*.png the UI's 'Simulation run' tab shows "
                    "(default: $EVOSPIKENET_SIM_RUN)")  # fmt: skip
    ap.add_argument(
        "--direct-ingress",
        action="store_true",
        help="the ingress replica serves --port itself (faster; Serve's proxy moves to --port + 1; after an "
        "ingress restart the port can stay busy for a minute)",
    )
    ap.add_argument("--device-map", default=None, help="accelerate device map for the LMs: auto, cpu, ...")
    ap.add_argument("--sentiment-replicas", type=int, default=1, help="replicas of the sentiment deployment")
    ap.add_argument("--unbatched", action="store_true", help="turn off dynamic batching of sentiment")
    ap.add_argument("--no-ui", action="store_true", help="do not mount the Gradio UI at /ui")
    ap.add_argument(
        "--access-log",
        action="store_true",
        help="log one line per request in the ingress and sentiment replicas (off: about a tenth of the "
        "ingress's CPU under load)",
    )
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray may use (default: all)")
    return ap.parse_args(argv)


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """The :class:`ServerSettings` the options ask for; a specific ``--host`` is an allowed Host name."""
    hosts = [*ServerSettings.allowed_hosts, *args.allowed_host]
    if args.host not in ("0.0.0.0", "::"):
        hosts.append(args.host)
    queue = dict(DEFAULT_QUEUE) if args.max_queued is None else dict.fromkeys(DEFAULT_QUEUE, args.max_queued)
    return ServerSettings(max_body_bytes=args.max_body_bytes, request_timeout_s=args.request_timeout,
                          allowed_hosts=tuple(dict.fromkeys(hosts)), queue=queue)  # fmt: skip


# Serve's proxy must answer its ready check within 5 s and its health checks within 10 s by default; on a
# machine whose few cores are busy (training beside serving) it misses them and is killed in a loop.
SERVE_TIMEOUTS = {
    "RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S": "60",
    "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "30",
}


# Serve runs user code and each handle's router on event loops of their own threads by default, so every
# request crosses threads (and the GIL) several times in the ingress and again in a replica. One loop per
# replica answers more on two cores: 375 against 430 batched requests/s at concurrency 32 (debug classifier,
# 8 rounds each, alternating; docs/serving.md), so the workers get it unless the user sets these variables
# (any RAY_SERVE_* variable reaches the workers; "1" restores Serve's default).
SERVE_LOOPS = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",
}


def direct_ingress_env(port: int) -> dict:
    """Serve's direct ingress with the one ingress replica on ``port``: the replica's own HTTP server
    answers the API, and a restarted replica may take the port again after 1 s (not Serve's 30 s).

    The costs, and why it is not the default: one port means one ingress replica, so ``serve.run`` of a
    changed application cannot start the new replica beside the old (``serve.delete("evospikenet")``
    first); and Serve binds without ``SO_REUSEADDR``, so after an ingress restart with clients connected
    the port stays in TIME_WAIT for about a minute and the new replica cannot start until it is free."""
    return {
        "RAY_SERVE_ENABLE_DIRECT_INGRESS": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT": str(port),
        "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT": str(port + 1),  # exclusive bound
        "RAY_SERVE_PORT_QUARANTINE_S": "1",
        "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S": "2",  # a stopped replica frees the port in 2 s
    }


def worker_env(direct_port: int | None = None) -> dict:
    """Environment of the Ray workers: this checkout importable, one torch thread per replica, Serve's
    proxy timeouts (``SERVE_TIMEOUTS``, unless set already) patient enough for a busy machine, one event
    loop per replica (``SERVE_LOOPS``, unless set already), every
    ``RAY_SERVE_*`` variable of this process, and, with ``direct_port``, Serve's direct ingress on that
    port."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **SERVE_TIMEOUTS,
        **SERVE_LOOPS,
        **{k: v for k, v in os.environ.items() if k.startswith("RAY_SERVE_")},
    }
    if direct_port is not None:
        env.update(direct_ingress_env(direct_port))
    return {"PYTHONPATH": path, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"), **env}


def start(
    paths: ModelPaths,
    host: str = "127.0.0.1",
    port: int = 8000,
    num_cpus: int | None = None,
    direct_ingress: bool = False,
    ready_timeout_s: float = 300.0,
    expose_ray: bool = False,
    **kw,
) -> str:
    """Start Ray and the application; returns the base URL of the API. Pair with :func:`stop`.

    Ray started here listens on 127.0.0.1 only (:mod:`serving.raynet`) unless ``expose_ray``, which needs
    ``EVOSPIKENET_API_KEY``. ``kw`` goes to :func:`serving.deployments.build_app` (``settings``, ``sim_run``,
    ``batched``, ...).

    ``direct_ingress`` (taken when this call starts Ray): the ingress replica serves HTTP itself on
    ``port`` (Serve's direct ingress) and Serve's proxy listens on ``port + 1``. That is one process hop
    less per request: on two cores the no-model ``/healthz`` floor at concurrency 32 rises from about 200
    to 950 requests/s. Without it, or when Ray already runs in this process, the proxy serves ``port``.
    Returns once ``/healthz`` answers (:func:`wait_ready`, at most ``ready_timeout_s``).
    """
    key = os.environ.get("EVOSPIKENET_API_KEY") or None
    check_bind(host, key)
    if expose_ray and not key:
        raise ValueError("--expose-ray needs EVOSPIKENET_API_KEY: Ray's own ports would be reachable")
    for k, v in SERVE_TIMEOUTS.items():  # before Serve reads its constants in this process too
        os.environ.setdefault(k, v)
    import ray

    if not ray.is_initialized():
        ray_on_loopback(not expose_ray)
    direct = direct_ingress and not ray.is_initialized()
    env = worker_env(port if direct else None)  # direct ingress lives in the workers' environment only
    from ray import serve

    from .deployments import build_app

    if not ray.is_initialized():
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": env})  # fmt: skip
    http_options = {"host": host, "port": port + 1 if direct else port}
    try:
        serve.start(http_options=http_options)
    except TimeoutError:
        # Serve waits a fixed 60 s for its proxy, which a machine whose cores are busy can miss. The
        # controller and the proxy keep starting: this call connects to them, and the readiness wait below
        # covers the proxy.
        serve.start(http_options=http_options)
    serve.run(build_app(paths, port=port, **kw), name="evospikenet", route_prefix="/")
    name = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{f'[{name}]' if ':' in name else name}:{port}"  # an IPv6 literal goes in brackets
    wait_ready(url, ready_timeout_s)
    return url


def wait_ready(url: str, timeout_s: float = 300.0) -> None:
    """Poll ``url/healthz`` until it answers 200; a ``TimeoutError`` naming the URL after ``timeout_s``."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never via an http_proxy
    deadline = time.monotonic() + timeout_s
    last = "no answer"
    while True:
        try:
            with opener.open(f"{url}/healthz", timeout=5.0) as r:
                if r.status == 200:
                    return
                last = f"HTTP {r.status}"
        except urllib.error.HTTPError as e:
            last = f"HTTP {e.code}"
        except (urllib.error.URLError, OSError) as e:
            last = str(getattr(e, "reason", e))
        if time.monotonic() >= deadline:
            raise TimeoutError(
                f"{url}/healthz did not answer within {timeout_s:.0f} s (last: {last}); the machine may be "
                "too busy to start Ray Serve, or the port taken: see the Ray logs under /tmp/ray/session_latest"
            )
        time.sleep(0.5)


def _bounded(fn, timeout_s: float) -> bool:
    """Run ``fn`` in a daemon thread; True when it returned within ``timeout_s``."""
    import threading

    t = threading.Thread(target=fn, name=f"evospikenet-{fn.__name__}", daemon=True)
    t.start()
    t.join(timeout_s)
    return not t.is_alive()


def stop(serve_timeout_s: float = 45.0, ray_timeout_s: float = 30.0) -> bool:
    """Shut Serve and Ray down in bounded time; False when Ray did not stop within ``ray_timeout_s``.

    Serve's graceful shutdown (replicas finish in-flight requests) gets ``serve_timeout_s``; Ray is shut down
    after it either way. Nothing happens when Ray is not running in this process.
    """
    import ray
    from ray import serve

    if not ray.is_initialized():
        return True
    if not _bounded(serve.shutdown, serve_timeout_s):
        print(f"evospikenet-serve: Serve did not shut down within {serve_timeout_s:g} s; stopping Ray",
              file=sys.stderr, flush=True)  # fmt: skip
    if _bounded(ray.shutdown, ray_timeout_s):
        return True
    print(f"evospikenet-serve: Ray did not stop within {ray_timeout_s:g} s", file=sys.stderr, flush=True)
    return False


def exit_now(code: int) -> None:
    """Exit at once, after ``stop()`` found Ray hung: Ray's processes share the driver's fate, so they end
    too, where a normal exit would wait on Ray's own exit hook again."""
    sys.stdout.flush()
    os._exit(code)


def _install_signal_handlers() -> None:
    """SIGINT (Ctrl-C) and SIGTERM (``docker stop``, a scheduler) shut the server down, so Ray's processes go
    with us; SIGUSR1 prints every thread's stack to stderr (``kill -USR1 PID`` shows where a stuck server
    waits). SIGINT is handled even when inherited as ignored, as a shell does for a job started with ``&``:
    Python would otherwise keep ignoring it and the server could only be killed."""
    import faulthandler
    import signal

    def handler(_signum, _frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)
    faulthandler.register(signal.SIGUSR1, all_threads=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.generate_key and not os.environ.get("EVOSPIKENET_API_KEY"):
        os.environ["EVOSPIKENET_API_KEY"] = generate_key()  # reaches the replicas through Ray's environment
        print(
            f"evospikenet-serve: API key (shown once): {os.environ['EVOSPIKENET_API_KEY']}", file=sys.stderr
        )
    key = os.environ.get("EVOSPIKENET_API_KEY") or None
    try:
        check_bind(args.host, key)
        if args.expose_ray and not key:
            raise ValueError("--expose-ray needs EVOSPIKENET_API_KEY: Ray's own ports would be reachable")
        if args.sim_run and not os.path.isdir(args.sim_run):
            raise ValueError(f"--sim-run {args.sim_run!r} is not a directory")
    except ValueError as e:
        print(f"evospikenet-serve: {e}", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(f"evospikenet-serve: serving on {args.host}; /v1 and /ui need the API key", file=sys.stderr)
    paths = ModelPaths(
        lm=args.model,
        sentiment=args.sentiment,
        ecg=args.ecg,
        multimodal=args.multimodal,
        device_map=args.device_map,
    )
    _install_signal_handlers()
    try:
        url = start(paths, args.host, args.port, args.num_cpus, direct_ingress=args.direct_ingress,
                    expose_ray=args.expose_ray, batched=not args.unbatched,
                    sentiment_replicas=args.sentiment_replicas, ui=not args.no_ui, access_log=args.access_log,
                    settings=settings_from_args(args),
                    sim_run=os.path.abspath(args.sim_run) if args.sim_run else None)  # fmt: skip
        print(f"API: {url}/docs   health: {url}/healthz   UI: {url}/ui   (Ctrl-C stops)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        if not stop():
            exit_now(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
