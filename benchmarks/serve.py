"""Load test of the sentiment endpoint on 127.0.0.1, with and without dynamic batching, plus a replica kill.

``python benchmarks/serve.py [--quick]`` starts the Ray Serve application (the SST-2 model when
``artifacts/sst2`` exists, the debug classifier otherwise; ``--sentiment`` chooses) with Serve's direct
ingress (``--via-proxy``: through Serve's proxy, the default of ``evospikenet-serve``). Then, in rounds of
alternating order (batched, unbatched, unbatched, batched, ...: a drift of the machine over the run weighs on
both equally), each round sends

* closed-loop load at concurrency 1, 8 and 32 (throughput, p50/p99 latency), and
* open-loop load: Poisson arrivals at fixed rates (``--rates``), each request timed from its scheduled
  arrival, so the time a request waits because the server is behind counts (a closed loop hides it: its
  clients stop sending while they wait). Reported: achieved requests/s, p50/p99 of the answered, how many
  were rejected (503, the endpoint's queue full) and how many failed otherwise.

Last, one of the two Sentiment replicas is killed mid-load: failed requests, requests in flight at the kill
and the time until Serve reports both replicas running again. ``healthz_floor_32`` is the closed loop at
concurrency 32 against ``/healthz`` (no model): the most the ingress can answer on this machine, in the same
run. ``api_cost`` is the FastAPI app's own time per request in process, with and without the request guard
(:mod:`serving.guard`). The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SENTENCES = [
    "a gripping, beautifully made film",
    "the plot is thin and the acting worse",
    "an instant classic",
    "i wanted my two hours back",
    "charming, funny and surprisingly moving",
    "dull",
    "a mess of a movie that never finds its tone",
    "the best thing i have seen this year",
]


def _headers() -> dict:
    key = os.environ.get("EVOSPIKENET_API_KEY")
    return {"Authorization": f"Bearer {key}"} if key else {}


def _pct(lat: list[float], p: float):
    return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None


async def _one(client, path: str, text: str) -> int:
    """Status of one request (``/healthz`` is a GET; 0 for a connection error or a timeout)."""
    import aiohttp

    try:
        if path == "/healthz":
            async with client.get(path) as r:
                await r.read()
                return r.status
        async with client.post(path, json={"text": text}) as r:
            await r.read()
            return r.status
    except (aiohttp.ClientError, asyncio.TimeoutError):
        return 0


async def _load(url: str, concurrency: int, n_requests: int, max_s: float, stats: dict | None = None,
                path: str = "/v1/sentiment") -> dict:  # fmt: skip
    """Closed-loop load: ``concurrency`` workers, at most ``n_requests`` requests or ``max_s`` seconds.

    The client is aiohttp (a dependency of Ray Serve): it shares the cores with the server, and costs a
    fraction of httpx's CPU per request. ``path`` "/healthz" measures the no-model floor.
    """
    import aiohttp

    lat, errors, sent = [], 0, 0
    t_end = time.perf_counter() + max_s
    stats = stats if stats is not None else {}
    stats.setdefault("in_flight", 0)
    conn = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(base_url=url, connector=conn, timeout=timeout, headers=_headers()) as c:

        async def worker(w: int):
            nonlocal errors, sent
            while sent < n_requests and time.perf_counter() < t_end:
                text = SENTENCES[(sent + w) % len(SENTENCES)]
                sent += 1
                t0 = time.perf_counter()
                stats["in_flight"] += 1
                try:
                    ok = await _one(c, path, text) == 200
                finally:
                    stats["in_flight"] -= 1
                if ok:
                    lat.append(time.perf_counter() - t0)
                else:
                    errors += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        wall = time.perf_counter() - t0
    lat.sort()
    return {"rps": round(len(lat) / wall, 1), "p50_ms": _pct(lat, 0.50), "p99_ms": _pct(lat, 0.99), "n": len(lat),
            "errors": errors}  # fmt: skip


async def _open_loop(url: str, rate: float, duration_s: float, seed: int = 0) -> dict:
    """Poisson arrivals at ``rate`` per second for ``duration_s``; latency from each scheduled arrival."""
    import aiohttp

    rng = random.Random(seed)
    lat, statuses = [], {}
    conn = aiohttp.TCPConnector(limit=0)  # no client-side cap: the server's queue is what is measured
    timeout = aiohttp.ClientTimeout(total=60.0)
    async with aiohttp.ClientSession(base_url=url, connector=conn, timeout=timeout, headers=_headers()) as c:

        async def one(due: float, text: str):
            status = await _one(c, "/v1/sentiment", text)
            statuses[status] = statuses.get(status, 0) + 1
            if status == 200:
                lat.append(time.perf_counter() - due)

        start = time.perf_counter()
        due, tasks, i = start, [], 0
        while due < start + duration_s:
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            tasks.append(asyncio.create_task(one(due, SENTENCES[i % len(SENTENCES)])))
            i += 1
            due += rng.expovariate(rate)
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    lat.sort()
    rejected = statuses.get(503, 0)
    return {"rate": rate, "sent": i, "rps": round(len(lat) / wall, 1), "p50_ms": _pct(lat, 0.50),
            "p99_ms": _pct(lat, 0.99), "rejected": rejected,
            "failed": sum(n for s, n in statuses.items() if s not in (200, 503))}  # fmt: skip


class _Instant:
    """A backend that answers at once: what remains is the cost of the API itself."""

    async def info(self) -> dict:
        return {"sentiment": "instant"}

    async def sentiment(self, req, deadline=None) -> dict:
        return {"model": "instant", "label": "positive", "probabilities": {"negative": 0.4, "positive": 0.6},
                "spike_rate": 0.1, "energy_per_token_j": 1e-9}  # fmt: skip


def _api_cost(n: int = 3000, pairs: int = 3) -> dict:
    """ms per ``/v1/sentiment`` request of the FastAPI app in process (ASGI calls, no sockets), with and
    without :class:`serving.guard.Guard`, in alternating order; the median of ``pairs`` runs each."""
    from serving.api import create_api
    from serving.guard import Guard

    body = json.dumps({"text": SENTENCES[0]}).encode()
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/sentiment", "raw_path": b"/v1/sentiment", "root_path": "", "query_string": b"",
             "headers": [(b"host", b"127.0.0.1:8000"), (b"content-type", b"application/json"),
                         (b"content-length", str(len(body)).encode())],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000)}  # fmt: skip

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(_message):
        pass

    async def per_request(guard: bool) -> float:
        app = create_api(_Instant())
        if not guard:
            app.user_middleware = [m for m in app.user_middleware if m.cls is not Guard]
        for _ in range(200):  # warm-up (the middleware stack is built on the first call)
            await app(scope, receive, send)
        t0 = time.perf_counter()
        for _ in range(n):
            await app(scope, receive, send)
        return (time.perf_counter() - t0) / n * 1000

    runs = {True: [], False: []}
    for i in range(pairs):
        for guard in (True, False) if i % 2 == 0 else (False, True):
            runs[guard].append(asyncio.run(per_request(guard)))
    return {"with_guard_ms": round(sorted(runs[True])[pairs // 2], 4),
            "without_guard_ms": round(sorted(runs[False])[pairs // 2], 4)}  # fmt: skip


def _round(url: str, quick: bool, rates: list[float]) -> dict:
    """One round: the closed-loop sweep at concurrency 1, 8, 32, then the open-loop rates."""
    closed, errors = {}, 0
    for c in (1, 8, 32):
        n = (
            (60 if c == 1 else 300 if c == 8 else 600)
            if quick
            else (300 if c == 1 else 2000 if c == 8 else 4000)
        )
        asyncio.run(_load(url, c, min(c * 10, n), 10))  # warm-up: the first batches of a shape run slower
        r = asyncio.run(_load(url, c, n, 20 if quick else 60))
        errors += r.pop("errors")
        closed[str(c)] = r
    duration = 10.0 if quick else 30.0
    open_loop = {str(rate): asyncio.run(_open_loop(url, rate, duration, seed=int(rate))) for rate in rates}
    return {"closed": closed, "open": open_loop, "errors": errors}


def _median_round(rounds: list[dict]) -> dict:
    """Per concurrency and rate, the round with the median throughput (its own p50/p99 kept together)."""
    out = {"closed": {}, "open": {}}
    for kind in ("closed", "open"):
        for key in rounds[0][kind]:
            ranked = sorted((r[kind][key] for r in rounds), key=lambda x: x["rps"])
            out[kind][key] = ranked[(len(ranked) - 1) // 2]
    return out


def _retry(deploy, attempts: int = 4, wait_s: float = 3.0):
    """``deploy()``, again after ``wait_s`` when Serve refuses it: the controller keeps the deleted
    ingress's port quarantined and draining for about 3 s, and a redeploy inside that window fails with
    ``NoAvailablePortError`` (seen as a ``RuntimeError`` naming the Ingress deployment)."""
    for attempt in range(attempts):
        try:
            return deploy()
        except RuntimeError as err:
            if attempt == attempts - 1 or "Ingress" not in str(err):
                raise
            print(f"redeploy refused ({err}); retrying in {wait_s:.0f} s", file=sys.stderr)
            time.sleep(wait_s)


def _running(app: str = "evospikenet", dep: str = "Sentiment") -> int:
    from ray import serve

    st = serve.status().applications[app].deployments[dep]
    return int(st.replica_states.get("RUNNING", 0))


def _replica_kill(url: str, replicas: int) -> dict:
    import ray

    names = [a for a in ray.util.list_named_actors(all_namespaces=True) if "Sentiment" in a["name"]]
    if not names:
        return {
            "failed_requests": None,
            "in_flight": None,
            "recovery_s": None,
            "note": "no replica actor found",
        }
    victim = ray.get_actor(names[0]["name"], namespace=names[0]["namespace"])
    stats: dict = {}

    async def run():
        task = asyncio.create_task(_load(url, 8, 10**6, 12.0, stats))
        await asyncio.sleep(3.0)
        in_flight = stats.get("in_flight", 0)
        ray.kill(victim, no_restart=True)
        t_kill = time.perf_counter()
        res = await task
        return res, in_flight, t_kill

    res, in_flight, t_kill = asyncio.run(run())
    recovery = None
    deadline = time.perf_counter() + 180
    while time.perf_counter() < deadline:
        if _running() >= replicas:
            recovery = round(time.perf_counter() - t_kill, 2)
            break
        time.sleep(0.25)
    return {"failed_requests": res["errors"], "in_flight": in_flight, "recovery_s": recovery,
            "served_during": res["n"]}  # fmt: skip


def _order(rounds: int) -> list[bool]:
    """Batched (True) / unbatched (False) in ABBA order: B U, U B, B U, ..."""
    out = []
    for i in range(rounds):
        out += [True, False] if i % 2 == 0 else [False, True]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/serve.py", description=__doc__.splitlines()[0],
                                 epilog="example: python benchmarks/serve.py --quick")  # fmt: skip
    ap.add_argument("--quick", action="store_true", help="small request counts, 2 rounds (about 10 minutes)")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per setting (default 2 quick, 3 full)")
    ap.add_argument(
        "--rates", default="50,100,200", help="open-loop arrival rates, requests/s (default 50,100,200)"
    )
    ap.add_argument("--max-queued", type=int, default=None, metavar="N",
                    help="requests each endpoint may hold at once (default: serving.security.DEFAULT_QUEUE)")  # fmt: skip
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument("--sentiment", default="auto",
                    help="classifier to serve: auto (artifacts/sst2 when present, else the debug model), debug, or "
                    "a model directory")  # fmt: skip
    ap.add_argument("--via-proxy", action="store_true",
                    help="send the load through Serve's proxy (evospikenet-serve's default) instead of direct "
                    "ingress")  # fmt: skip
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ray import serve

    from evospikenet.runtime import freeze_heap
    from serving.cli import start, stop
    from serving.deployments import build_app
    from serving.local import ModelPaths, model_name, resolve_paths
    from serving.security import DEFAULT_QUEUE, ServerSettings

    api_cost = _api_cost()
    print(f"API cost per request in process: {api_cost}", file=sys.stderr)
    chosen = None
    if args.sentiment == "debug":
        from serving.debug_models import make_debug_models

        chosen = make_debug_models(tempfile.mkdtemp(prefix="evospikenet-debug-models-"))["sentiment"]
    elif args.sentiment != "auto":
        chosen = args.sentiment
    paths = resolve_paths(ModelPaths(sentiment=chosen))
    model = "sst2" if "sst2" in paths.sentiment else model_name(paths.sentiment)
    replicas = 2
    rates = [float(r) for r in args.rates.split(",") if r]
    order = _order(args.rounds or (2 if args.quick else 3))
    queue = DEFAULT_QUEUE if args.max_queued is None else dict.fromkeys(DEFAULT_QUEUE, args.max_queued)
    settings = ServerSettings(queue=queue)
    t0 = time.perf_counter()
    url = start(paths, "127.0.0.1", args.port, direct_ingress=not args.via_proxy, sentiment_replicas=replicas,
                ui=False, batched=order[0], settings=settings)  # fmt: skip
    print(f"started in {time.perf_counter() - t0:.1f} s at {url}", file=sys.stderr)
    # This process is the load generator, and it has imported Ray, torch and transformers: a full garbage
    # collection here (0.28 s) would delay reading every answer in flight and count as server latency.
    freeze_heap()
    results: dict = {True: [], False: []}
    errors = 0
    try:
        asyncio.run(_load(url, 32, 64, 10, path="/healthz"))  # warm-up
        floor = asyncio.run(_load(url, 32, 600 if args.quick else 3000, 20, path="/healthz"))
        floor.pop("errors")
        print(f"healthz floor at 32: {floor}", file=sys.stderr)
        deployed = order[0]
        for batched in order:
            if batched != deployed:
                if (
                    not args.via_proxy
                ):  # the ingress replica owns the port: stop it before its successor starts
                    serve.delete("evospikenet")
                app = build_app(paths, port=args.port, batched=batched, sentiment_replicas=replicas, ui=False,
                                settings=settings)  # fmt: skip
                _retry(lambda app=app: serve.run(app, name="evospikenet", route_prefix="/"))
                deployed = batched
            r = _round(url, args.quick, rates)
            errors += r.pop("errors")
            results[batched].append(r)
            print(f"{'batched' if batched else 'unbatched'}: {r}", file=sys.stderr)
        kill = _replica_kill(url, replicas)
    finally:
        stop()
    batched, unbatched = _median_round(results[True]), _median_round(results[False])
    ingress = "proxy" if args.via_proxy else "direct"
    print(json.dumps({"model": model, "ingress": ingress, "replicas": replicas, "queue": queue["sentiment"],
                      "order": ["batched" if b else "unbatched" for b in order],
                      "batched": batched["closed"], "unbatched": unbatched["closed"],
                      "open_loop": {"batched": batched["open"], "unbatched": unbatched["open"]},
                      "rounds": {"batched": results[True], "unbatched": results[False]},
                      "errors": errors, "replica_kill": kill, "healthz_floor_32": floor,
                      "api_cost": api_cost}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
