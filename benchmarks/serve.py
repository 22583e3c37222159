"""Load test of the sentiment endpoint on 127.0.0.1, with and without dynamic batching, plus a replica kill.

``python benchmarks/serve.py [--quick]`` starts the Ray Serve application (the SST-2 model when
``artifacts/sst2`` exists, the debug classifier otherwise; ``--sentiment`` chooses) with Serve's direct
ingress (``--via-proxy``: through Serve's proxy, the default of ``evospikenet-serve``), sends bounded
closed-loop load at concurrency 1, 8 and 32 (throughput, p50/p99 latency), redeploys unbatched and repeats, then
kills one of its two replicas mid-load and records the failed requests, the requests in flight at the kill
and the time until Serve reports both replicas running again. The last stdout line is one JSON object.

``healthz_floor_32`` is the same closed loop at concurrency 32 against ``/healthz``, which runs no model:
the most this machine's Ray Serve ingress (and proxy) can answer, measured in the same run. On two shared
cores it bounds what any model endpoint can reach (see docs/serving.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
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


async def _load(
    url: str,
    concurrency: int,
    n_requests: int,
    max_s: float,
    stats: dict | None = None,
    path: str = "/v1/sentiment",
) -> dict:
    """Closed-loop load: ``concurrency`` workers, at most ``n_requests`` requests or ``max_s`` seconds.

    The client is aiohttp (a dependency of Ray Serve): it shares the two cores with the server, and costs
    a fraction of httpx's CPU per request. ``path`` "/healthz" (a GET) measures the no-model floor.
    """
    import aiohttp

    lat, errors, sent = [], 0, 0
    t_end = time.perf_counter() + max_s
    stats = stats if stats is not None else {}
    stats.setdefault("in_flight", 0)
    conn = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=30.0)
    async with aiohttp.ClientSession(base_url=url, connector=conn, timeout=timeout) as client:

        async def one(text: str) -> bool:
            if path == "/healthz":
                async with client.get(path) as r:
                    await r.read()
                    return r.status == 200
            async with client.post(path, json={"text": text}) as r:
                await r.read()
                return r.status == 200

        async def worker(w: int):
            nonlocal errors, sent
            while sent < n_requests and time.perf_counter() < t_end:
                text = SENTENCES[(sent + w) % len(SENTENCES)]
                sent += 1
                t0 = time.perf_counter()
                stats["in_flight"] += 1
                try:
                    ok = await one(text)
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
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

    def pct(p):
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 2) if lat else None

    return {"rps": round(len(lat) / wall, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99), "n": len(lat),
            "errors": errors}  # fmt: skip


def _sweep(url: str, quick: bool) -> tuple[dict, int]:
    out, errors = {}, 0
    for c in (1, 8, 32):
        n = (
            (60 if c == 1 else 300 if c == 8 else 600)
            if quick
            else (300 if c == 1 else 2000 if c == 8 else 4000)
        )
        asyncio.run(_load(url, c, min(c * 10, n), 10))  # warm-up: the first batches of a shape run slower
        r = asyncio.run(_load(url, c, n, 20 if quick else 60))
        errors += r.pop("errors")
        out[str(c)] = r
    return out, errors


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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="benchmarks/serve.py", description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small request counts (about 5 minutes here)")
    ap.add_argument("--port", type=int, default=8123)
    ap.add_argument(
        "--sentiment",
        default="auto",
        help="classifier to serve: auto (artifacts/sst2 when present, else the debug model), debug, or a "
        "model directory",
    )
    ap.add_argument(
        "--via-proxy",
        action="store_true",
        help="send the load through Serve's proxy (evospikenet-serve's default) instead of direct ingress",
    )
    args = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from ray import serve

    from evospikenet.runtime import freeze_heap
    from serving.cli import start, stop
    from serving.deployments import build_app
    from serving.local import ModelPaths, model_name, resolve_paths

    chosen = None
    if args.sentiment == "debug":
        from serving.debug_models import make_debug_models

        chosen = make_debug_models(tempfile.mkdtemp(prefix="evospikenet-debug-models-"))["sentiment"]
    elif args.sentiment != "auto":
        chosen = args.sentiment
    paths = resolve_paths(ModelPaths(sentiment=chosen))
    model = "sst2" if "sst2" in paths.sentiment else model_name(paths.sentiment)
    replicas = 2
    t0 = time.perf_counter()
    url = start(paths, "127.0.0.1", args.port, direct_ingress=not args.via_proxy, sentiment_replicas=replicas,
                ui=False)  # fmt: skip
    print(f"started in {time.perf_counter() - t0:.1f} s at {url}", file=sys.stderr)
    # This process is the load generator, and it has imported Ray, torch and transformers: a full garbage
    # collection here (0.28 s) would delay reading every answer in flight and count as server latency.
    freeze_heap()
    try:
        asyncio.run(_load(url, 32, 64, 10, path="/healthz"))  # warm-up
        floor = asyncio.run(_load(url, 32, 600 if args.quick else 3000, 20, path="/healthz"))
        floor.pop("errors")
        print(f"healthz floor at 32: {floor}", file=sys.stderr)
        batched, e1 = _sweep(url, args.quick)
        print(f"batched: {batched}", file=sys.stderr)
        if not args.via_proxy:  # the ingress replica owns the port: stop it before its successor starts
            serve.delete("evospikenet")
        app = build_app(paths, port=args.port, batched=False, sentiment_replicas=replicas, ui=False)
        _retry(lambda: serve.run(app, name="evospikenet", route_prefix="/"))
        unbatched, e2 = _sweep(url, args.quick)
        print(f"unbatched: {unbatched}", file=sys.stderr)
        kill = _replica_kill(url, replicas)
    finally:
        stop()
    ingress = "proxy" if args.via_proxy else "direct"
    print(json.dumps({"model": model, "ingress": ingress, "replicas": replicas, "batched": batched,
                      "unbatched": unbatched, "errors": e1 + e2, "replica_kill": kill,
                      "healthz_floor_32": floor}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
