"""The Network tab: run the plastic E/I network (``/v1/simulate``) and draw its spike raster, firing rates,
the connectivity among the first excitatory neurons (synapses active in the chosen window in red) and the
``ee`` weight histograms over time."""

from __future__ import annotations

import math

import gradio as gr

from .client import ApiClient
from .plots import new_figure

__all__ = ["network_tab", "network_figures"]


def _raster(r: dict):
    fig, ax = new_figure()
    offset = 0
    for name, color in (("exc", "tab:blue"), ("inh", "tab:red")):
        events = r["spikes"].get(name, [])
        ax.scatter([e[0] for e in events], [e[1] + offset for e in events], s=1, c=color, label=name)
        offset += r["neurons"][name]
    ax.axvspan(*r["graph"]["window"], color="gold", alpha=0.2)
    ax.set_xlabel("step")
    ax.set_ylabel("neuron")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def _rates(r: dict):
    fig, ax = new_figure()
    for name, rate in r["rate_hz"].items():
        ax.plot([10 * i for i in range(len(rate))], rate, label=name)
    ax.set_xlabel("step")
    ax.set_ylabel("rate (Hz)")
    ax.legend()
    fig.tight_layout()
    return fig


def _graph(r: dict):
    fig, ax = new_figure(4, 4)
    nodes = r["graph"]["nodes"]
    angle = {i: 2 * math.pi * i / len(nodes) for i in nodes}
    pos = {i: (math.cos(a), math.sin(a)) for i, a in angle.items()}
    for pre, post, _w, active in sorted(r["graph"]["edges"], key=lambda e: e[3]):  # active ones on top
        (x0, y0), (x1, y1) = pos[pre], pos[post]
        ax.plot([x0, x1], [y0, y1], color="red" if active else "lightgray", lw=1.2 if active else 0.5)
    ax.scatter([p[0] for p in pos.values()], [p[1] for p in pos.values()], s=20, zorder=3)
    ax.set_axis_off()
    fig.tight_layout()
    return fig


def _weights(r: dict):
    fig, ax = new_figure()
    wh = r["weight_hist"]
    ax.imshow(wh["counts"], aspect="auto", cmap="magma",
              extent=[wh["bins"][0], wh["bins"][-1], wh["steps"][-1], wh["steps"][0]])  # fmt: skip
    ax.set_xlabel("ee weight")
    ax.set_ylabel("step")
    fig.tight_layout()
    return fig


def network_figures(r: dict) -> tuple:
    """(raster, rates, connectivity, weight histograms) of a ``/v1/simulate`` answer."""
    return _raster(r), _rates(r), _graph(r), _weights(r)


def network_tab(client: ApiClient) -> None:
    with gr.Row():
        n_exc = gr.Number(80, label="Excitatory neurons", precision=0)
        n_inh = gr.Number(20, label="Inhibitory neurons", precision=0)
        steps = gr.Number(400, label="Steps (1 ms)", precision=0)
        window_start = gr.Number(390, label="Window start", precision=0)
        window_stop = gr.Number(400, label="Window stop", precision=0)
    button = gr.Button("Simulate", variant="primary", elem_id="net-button")
    with gr.Row():
        raster = gr.Plot(label="Spike raster", elem_id="net-raster", elem_classes="evo-plot")
        rates = gr.Plot(label="Firing rates", elem_id="net-rates", elem_classes="evo-plot")
    with gr.Row():
        graph = gr.Plot(label="Connectivity (active synapses in the window in red)", elem_id="net-graph",
                        elem_classes="evo-plot")  # fmt: skip
        weights = gr.Plot(label="Weight histograms over time", elem_id="net-weights", elem_classes="evo-plot")

    def simulate(ne, ni, st, a, b):
        body = {"n_exc": int(ne), "n_inh": int(ni), "steps": int(st), "window": [int(a), int(b)]}
        return network_figures(client.post("/v1/simulate", {**body, "snapshot_every": max(1, int(st) // 8)}))

    button.click(simulate, [n_exc, n_inh, steps, window_start, window_stop], [raster, rates, graph, weights])
