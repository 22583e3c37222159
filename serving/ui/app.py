"""``build_ui``: the Insight UI's Blocks, one tab per entry of ``TABS`` plus the Simulation run tab; ``main``
runs it alone against a running API."""

from __future__ import annotations

import argparse
import os

import gradio as gr

from .classify import classify_tab
from .client import ApiClient
from .generate import generate_tab
from .multimodal import multimodal_tab
from .network import network_tab
from .sim_run import sim_run_tab

__all__ = ["build_ui", "TABS", "main"]

TABS = [
    ("Generate", generate_tab),
    ("Classify", classify_tab),
    ("Network", network_tab),
    ("Multimodal", multimodal_tab),
]


def build_ui(
    base_url: str = "http://127.0.0.1:8000", api_key: str | None = None, sim_run: str | None = None
) -> gr.Blocks:
    """The Insight UI over the API at ``base_url``; ``sim_run``: a saved simulation run to show."""
    client = ApiClient(base_url, api_key)
    with gr.Blocks(title="EvoSpikeNet Insight") as demo:
        gr.Markdown(
            "# EvoSpikeNet Insight\nSpiking LM generation, classification, plastic SNN simulation, "
            "multimodal questions and the plots of a saved simulation run."
        )
        for title, builder in TABS:
            with gr.Tab(title, elem_id=f"tab-{title.lower()}"):
                builder(client)
        with gr.Tab("Simulation run", elem_id="tab-simulation-run"):
            sim_run_tab(sim_run)
    return demo


def main(argv: list[str] | None = None) -> int:
    """Run the UI alone against a running endpoint (local address only, no share links)."""
    ap = argparse.ArgumentParser(
        prog="python -m serving.ui",
        description="The Insight UI alone, against a running EvoSpikeNet API.",
        epilog="example: python -m serving.ui --url http://127.0.0.1:8000 --sim-run runs/pd14",
    )
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the running API")
    ap.add_argument("--port", type=int, default=7860, help="port of the UI on 127.0.0.1 (default 7860)")
    ap.add_argument("--sim-run", default=os.environ.get("EVOSPIKENET_SIM_RUN"), metavar="DIR",
                    help="a saved simulation run whose DIR/analysis/*.png the Simulation run tab shows")  # fmt: skip
    args = ap.parse_args(argv)
    build_ui(args.url, os.environ.get("EVOSPIKENET_API_KEY"), args.sim_run).launch(
        server_name="127.0.0.1", server_port=args.port, share=False, max_file_size=1 << 20
    )
    return 0
