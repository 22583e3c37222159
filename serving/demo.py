"""``make demo`` end of the pipeline: serve the models on 127.0.0.1, send one request of each kind, stop.

``python -m serving.demo [--model DIR] [--sentiment DIR] [--ecg DIR] [--port N]`` prints each answer, then one
JSON line: ``{"ok": true|false, "url": ..., "status": {endpoint: HTTP status}}``; the exit status is 0 when
every endpoint answered 200, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx

from .cli import exit_now, start, stop
from .examples import example_beat
from .paths import ModelPaths

__all__ = ["run_platform_demo", "main"]


def _summaries(c: httpx.Client, health: dict) -> tuple[dict, dict]:
    """(answers, HTTP status) of one request to each endpoint and the UI."""
    answers, status = {"healthz": health}, {"healthz": 200}
    beat = example_beat(int(health["ecg_window"]))
    requests = {
        "generate": ("/v1/generate", {"text": "To be, or not", "max_new_tokens": 16}),
        "insight": ("/v1/insight", {"text": "To be", "max_new_tokens": 2}),
        "sentiment": ("/v1/sentiment", {"text": "a wonderful, moving film"}),
        "ecg": ("/v1/ecg", {"signal": beat}),
        "simulate": ("/v1/simulate", {"steps": 300}),
    }
    for name, (path, body) in requests.items():
        r = c.post(path, json=body)
        status[name] = r.status_code
        answers[name] = r.json()
    if status["insight"] == 200:
        ins = answers["insight"]
        answers["insight"] = {
            "text": ins["text"],
            "energy_per_token_j": [s["energy_per_token_j"] for s in ins["steps"]],
            "layers": list(ins["steps"][0]["rasters"]),
            "attention_shape": [len(ins["steps"][-1]["attention"])] * 2,
        }
    if status["simulate"] == 200:
        sim = answers["simulate"]
        answers["simulate"] = {
            "mean_rate_hz": {k: sum(v) / max(1, len(v)) for k, v in sim["rate_hz"].items()},
            "active_synapses_in_window": sum(e[3] for e in sim["graph"]["edges"]),
            "energy_j": sim["energy_j"],
        }
    status["ui"] = c.get("/ui/").status_code
    return answers, status


def run_platform_demo(
    model_dir: str | None = None,
    sentiment_dir: str | None = None,
    ecg_dir: str | None = None,
    port: int = 8000,
    out=sys.stdout,
) -> dict:
    """Start the application on 127.0.0.1, send one request of each kind, print the answers, stop.

    Missing models are replaced by tiny random-init debug models. Returns ``{"answers", "status", "url",
    "stopped"}`` (``stopped``: False when Ray did not shut down in bounded time, see ``serving.cli.stop``).
    """
    url = start(ModelPaths(lm=model_dir, sentiment=sentiment_dir, ecg=ecg_dir), "127.0.0.1", port)
    key = os.environ.get("EVOSPIKENET_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with httpx.Client(base_url=url, timeout=300, headers=headers, trust_env=False) as c:
            answers, status = _summaries(c, c.get("/healthz").json())
        for k, v in answers.items():
            print(f"{k}: {json.dumps(v)[:400]}", file=out)
        print(f"UI address (while serving): {url}/ui", file=out)
    finally:
        stopped = stop()
    return {"answers": answers, "status": status, "url": url, "stopped": stopped}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m serving.demo",
        description="Serve the models on 127.0.0.1, send one request of each kind, print the answers, stop.",
        epilog="example: python -m serving.demo --model artifacts/spiking_lm_debug --port 8000",
    )
    ap.add_argument("--model", default=os.environ.get("EVOSPIKENET_DEMO_MODEL"), help="causal LM directory")
    ap.add_argument("--sentiment", default=None, help="sentiment classifier directory (default: debug model)")
    ap.add_argument("--ecg", default=None, help="ECG classifier directory (default: debug model)")
    ap.add_argument("--port", type=int, default=8000, help="HTTP port on 127.0.0.1 (default 8000)")
    a = ap.parse_args(argv)
    res = run_platform_demo(a.model, a.sentiment, a.ecg, a.port)
    ok = all(s == 200 for s in res["status"].values()) and res["stopped"]
    print(
        json.dumps({"ok": ok, "url": res["url"], "status": res["status"], "stopped": res["stopped"]}),
        flush=True,
    )
    if not res["stopped"]:
        exit_now(1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
