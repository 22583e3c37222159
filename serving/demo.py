"""``make demo`` end of the pipeline: serve a model on 127.0.0.1, send one request of each kind, stop."""

from __future__ import annotations

import json
import os
import sys

import httpx

from .examples import example_beat
from .local import ModelPaths

__all__ = ["run_platform_demo", "main"]


def run_platform_demo(
    model_dir: str | None = None,
    sentiment_dir: str | None = None,
    ecg_dir: str | None = None,
    port: int = 8000,
    out=sys.stdout,
) -> dict:
    """Start the application on 127.0.0.1, send one request of each kind, print the answers, stop.

    Missing models are replaced by tiny random-init debug models. Returns the answers by endpoint.
    """
    from .cli import start, stop

    url = start(ModelPaths(lm=model_dir, sentiment=sentiment_dir, ecg=ecg_dir), "127.0.0.1", port)
    answers = {}
    try:
        c = httpx.Client(base_url=url, timeout=300)
        health = c.get("/healthz").json()
        answers["healthz"] = health
        answers["generate"] = c.post(
            "/v1/generate", json={"text": "To be, or not", "max_new_tokens": 16}
        ).json()
        ins = c.post("/v1/insight", json={"text": "To be", "max_new_tokens": 2}).json()
        answers["insight"] = {
            "text": ins["text"],
            "energy_per_token_j": [s["energy_per_token_j"] for s in ins["steps"]],
            "layers": list(ins["steps"][0]["rasters"]),
            "attention_shape": [len(ins["steps"][-1]["attention"])] * 2,
        }
        answers["sentiment"] = c.post("/v1/sentiment", json={"text": "a wonderful, moving film"}).json()
        beat = example_beat(int(health["ecg_window"]))
        answers["ecg"] = c.post("/v1/ecg", json={"signal": beat}).json()
        sim = c.post("/v1/simulate", json={"steps": 300}).json()
        answers["simulate"] = {
            "mean_rate_hz": {k: sum(v) / max(1, len(v)) for k, v in sim["rate_hz"].items()},
            "active_synapses_in_window": sum(e[3] for e in sim["graph"]["edges"]),
            "energy_j": sim["energy_j"],
        }
        ui = c.get("/ui/")
        answers["ui"] = {"url": f"{url}/ui", "status": ui.status_code}
        for k, v in answers.items():
            print(f"{k}: {json.dumps(v)[:400]}", file=out)
        print(f"UI address (while serving): {url}/ui", file=out)
    finally:
        stop()
    return answers


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m serving.demo")
    ap.add_argument("--model", default=os.environ.get("EVOSPIKENET_DEMO_MODEL"))
    ap.add_argument("--sentiment", default=None)
    ap.add_argument("--ecg", default=None)
    ap.add_argument("--port", type=int, default=8000)
    a = ap.parse_args(argv)
    run_platform_demo(a.model, a.sentiment, a.ecg, a.port)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
