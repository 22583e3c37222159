"""The Insight UI (Gradio): Generate, Classify, Network and Multimodal tabs over the HTTP API (no Ray).

``build_ui(base_url)`` talks to a running endpoint only through HTTP (``httpx``), so the same Blocks are
mounted at ``/ui`` inside the Ray Serve application and also run alone against any server
(``python -m serving.ui --url http://127.0.0.1:8000``). Tabs register in ``TABS``: a list of
``(title, builder(client))``; the Multimodal tab lives in :mod:`serving.ui_multimodal`.
"""

from __future__ import annotations

import argparse
import json
import math

import gradio as gr
import httpx
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

__all__ = ["build_ui", "ApiClient", "TABS", "example_beat", "main"]


class ApiClient:
    """Thin HTTP client of the serving API (bearer key when given)."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 120.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.timeout = timeout

    def post(self, path: str, body: dict) -> dict:
        r = httpx.post(self.base_url + path, json=body, headers=self.headers, timeout=self.timeout)
        if r.status_code >= 400:
            raise gr.Error(r.json().get("message", r.text) if r.headers.get("content-type", "").startswith(
                "application/json") else r.text)  # fmt: skip
        return r.json()

    def get(self, path: str) -> dict:
        return httpx.get(self.base_url + path, headers=self.headers, timeout=self.timeout).json()

    def stream_tokens(self, body: dict):
        """Yield tokens of ``/v1/generate`` with ``stream: true`` (server-sent events)."""
        with httpx.stream("POST", self.base_url + "/v1/generate", json={**body, "stream": True},
                          headers=self.headers, timeout=self.timeout) as r:  # fmt: skip
            if r.status_code >= 400:
                r.read()
                raise gr.Error(r.json().get("message", r.text))
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    yield json.loads(line[6:])


def _fig(w: float = 6.0, h: float = 3.0):
    fig, ax = plt.subplots(figsize=(w, h))
    return fig, ax


def _raster_plot(rasters: dict, title: str):
    """Stack the (T, N) rasters of several populations into one image (rows: population x neuron)."""
    fig, ax = _fig(6, 3.5)
    rows, ticks, labels = [], [], []
    for name, r in rasters.items():
        T = len(r)
        for t in range(T):
            rows.append(r[t])
        ticks.append(len(rows) - T / 2)
        labels.append(name)
    if rows:
        width = max(len(r) for r in rows)
        ax.imshow([row + [0] * (width - len(row)) for row in rows], aspect="auto", cmap="Greys",
                  interpolation="nearest")  # fmt: skip
        ax.set_yticks(ticks[:: max(1, len(ticks) // 12)], labels[:: max(1, len(ticks) // 12)], fontsize=6)
    ax.set_xlabel("neuron")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _attention_plot(att: list, tokens: list[str]):
    fig, ax = _fig(4, 3.5)
    im = ax.imshow(att, cmap="viridis", vmin=0.0)
    fig.colorbar(im, ax=ax)
    ax.set_title("attention (last layer, mean over heads)", fontsize=9)
    ax.set_xlabel("key token")
    ax.set_ylabel("query token")
    fig.tight_layout()
    return fig


def _bar_plot(values: list[float], title: str, xlabel: str):
    fig, ax = _fig(5, 2.5)
    ax.bar(range(len(values)), values, color="tab:orange")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def _generate_tab(client: ApiClient) -> None:
    state = gr.State({})
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", value="The spiking network", elem_id="gen-prompt")
        n_tok = gr.Slider(1, 16, value=8, step=1, label="New tokens")
    go = gr.Button("Generate", variant="primary", elem_id="gen-button")
    out = gr.Textbox(label="Generated text (token by token)", elem_id="gen-output")
    step = gr.Slider(0, 15, value=0, step=1, label="Step", elem_id="gen-step")
    with gr.Row():
        raster = gr.Plot(label="Spike raster of each layer (newest token, T steps per layer)")
        attn = gr.Plot(label="Attention map")
    energy = gr.Plot(label="Energy per token")

    def run(text, n):
        acc = ""
        for ev in client.stream_tokens({"text": text, "max_new_tokens": int(n)}):
            acc += ev["token"]
            yield acc, {}, gr.update(), None, None, None
        ins = client.post("/v1/insight", {"text": text, "max_new_tokens": int(n)})
        e = _bar_plot([s["energy_per_token_j"] for s in ins["steps"]], "energy per token (J)", "step")
        r, a = show(ins, 0)
        yield acc, ins, gr.update(maximum=max(1, len(ins["steps"]) - 1), value=0), r, a, e

    def show(ins, k):
        if not ins or not ins.get("steps"):
            return None, None
        k = min(int(k), len(ins["steps"]) - 1)
        s = ins["steps"][k]
        return _raster_plot(s["rasters"], f"step {k}: token {s['token']!r}"), _attention_plot(
            s["attention"], []
        )

    go.click(run, [prompt, n_tok], [out, state, step, raster, attn, energy])
    step.change(show, [state, step], [raster, attn])


def example_beat(n: int, kind: str = "normal") -> list[float]:
    """A synthetic beat window of ``n`` samples (mV): P wave, QRS complex at 35 %, T wave."""
    c = 0.35 * n
    qrs_w = 0.02 * n if kind == "normal" else 0.06 * n

    def g(mu, sd, a):
        return [a * math.exp(-0.5 * ((i - mu) / sd) ** 2) for i in range(n)]

    parts = [g(c - 0.15 * n, 0.03 * n, 0.15), g(c, qrs_w, 1.2), g(c + 0.3 * n, 0.06 * n, 0.3)]
    return [round(sum(v), 5) for v in zip(*parts)]


def _classify_tab(client: ApiClient) -> None:
    with gr.Tab("Sentiment"):
        text = gr.Textbox(label="Sentence", value="a gripping, beautifully made film", elem_id="sent-text")
        go = gr.Button("Classify sentiment", variant="primary", elem_id="sent-button")
        probs = gr.Label(label="Class probabilities")
        with gr.Row():
            sig = gr.Plot(label="Input signal (token ids)")
            spk = gr.Plot(label="Spikes it caused (final layer, last token)")

        def run(t):
            r = client.post("/v1/sentiment", {"text": t, "return_spikes": True})
            s = _bar_plot(r["input_ids"], "input tokens", "position")
            return (
                r["probabilities"],
                s,
                _raster_plot({r["raster_layer"]: r["raster"]}, f"spike rate {r['spike_rate']:.3f}"),
            )

        go.click(run, [text], [probs, sig, spk])
    with gr.Tab("ECG"):
        kind = gr.Radio(["normal", "wide QRS"], value="normal", label="Example beat")
        go2 = gr.Button("Classify beat", variant="primary", elem_id="ecg-button")
        probs2 = gr.Label(label="Class probabilities (AAMI)")
        with gr.Row():
            sig2 = gr.Plot(label="Input signal")
            spk2 = gr.Plot(label="Spikes it caused")

        def run2(k):
            n = int(client.get("/healthz").get("ecg_window") or 128)
            beat = example_beat(n, "normal" if k == "normal" else "wide")
            r = client.post("/v1/ecg", {"signal": beat, "return_spikes": True})
            fig, ax = _fig(5, 2.5)
            ax.plot(beat)
            ax.set_xlabel("sample")
            ax.set_ylabel("mV")
            fig.tight_layout()
            return r["probabilities"], fig, _raster_plot(r.get("rasters") or {}, "spikes per layer")

        go2.click(run2, [kind], [probs2, sig2, spk2])


def _network_tab(client: ApiClient) -> None:
    with gr.Row():
        n_exc = gr.Number(80, label="Excitatory neurons", precision=0)
        n_inh = gr.Number(20, label="Inhibitory neurons", precision=0)
        steps = gr.Number(400, label="Steps (1 ms)", precision=0)
        w0 = gr.Number(390, label="Window start", precision=0)
        w1 = gr.Number(400, label="Window stop", precision=0)
    go = gr.Button("Simulate", variant="primary", elem_id="net-button")
    with gr.Row():
        raster = gr.Plot(label="Spike raster")
        rates = gr.Plot(label="Firing rates")
    with gr.Row():
        graph = gr.Plot(label="Connectivity (active synapses in the window in red)")
        hist = gr.Plot(label="Weight histograms over time")

    def run(ne, ni, st, a, b):
        body = {"n_exc": int(ne), "n_inh": int(ni), "steps": int(st), "window": [int(a), int(b)]}
        r = client.post("/v1/simulate", {**body, "snapshot_every": max(1, int(st) // 8)})
        f1, ax = _fig()
        off = 0
        for name, color in (("exc", "tab:blue"), ("inh", "tab:red")):
            ev = r["spikes"].get(name, [])
            ax.scatter([e[0] for e in ev], [e[1] + off for e in ev], s=1, c=color, label=name)
            off += r["neurons"][name]
        ax.axvspan(*r["graph"]["window"], color="gold", alpha=0.2)
        ax.set_xlabel("step")
        ax.set_ylabel("neuron")
        ax.legend(loc="upper right")
        f1.tight_layout()
        f2, ax = _fig()
        for name, rate in r["rate_hz"].items():
            ax.plot([10 * i for i in range(len(rate))], rate, label=name)
        ax.set_xlabel("step")
        ax.set_ylabel("rate (Hz)")
        ax.legend()
        f2.tight_layout()
        f3, ax = _fig(4, 4)
        nodes = r["graph"]["nodes"]
        pos = {
            i: (math.cos(2 * math.pi * i / len(nodes)), math.sin(2 * math.pi * i / len(nodes))) for i in nodes
        }
        for pre, post, _w, active in sorted(r["graph"]["edges"], key=lambda e: e[3]):
            (x0, y0), (x1, y1) = pos[pre], pos[post]
            ax.plot([x0, x1], [y0, y1], color="red" if active else "lightgray", lw=1.2 if active else 0.5)
        ax.scatter([p[0] for p in pos.values()], [p[1] for p in pos.values()], s=20, zorder=3)
        ax.set_axis_off()
        f3.tight_layout()
        f4, ax = _fig()
        wh = r["weight_hist"]
        ax.imshow(wh["counts"], aspect="auto", cmap="magma",
                  extent=[wh["bins"][0], wh["bins"][-1], wh["steps"][-1], wh["steps"][0]])  # fmt: skip
        ax.set_xlabel("ee weight")
        ax.set_ylabel("step")
        f4.tight_layout()
        return f1, f2, f3, f4

    go.click(run, [n_exc, n_inh, steps, w0, w1], [raster, rates, graph, hist])


def _multimodal_tab(client: ApiClient) -> None:
    from .ui_multimodal import multimodal_tab  # imported here: it builds on this module's helpers

    multimodal_tab(client)


TABS = [
    ("Generate", _generate_tab),
    ("Classify", _classify_tab),
    ("Network", _network_tab),
    ("Multimodal", _multimodal_tab),
]


def build_ui(base_url: str = "http://127.0.0.1:8000", api_key: str | None = None) -> gr.Blocks:
    """The Insight UI over the API at ``base_url``."""
    client = ApiClient(base_url, api_key)
    with gr.Blocks(title="EvoSpikeNet Insight") as demo:
        gr.Markdown(
            "# EvoSpikeNet Insight\nSpiking LM generation, classification, plastic SNN simulation and "
            "multimodal questions."
        )
        for title, builder in TABS:
            with gr.Tab(title, elem_id=f"tab-{title.lower()}"):
                builder(client)
    return demo


def main(argv: list[str] | None = None) -> int:
    """Run the UI alone against a running endpoint (local address only, no share links)."""
    import os

    ap = argparse.ArgumentParser(prog="python -m serving.ui")
    ap.add_argument("--url", default="http://127.0.0.1:8000", help="base URL of the running API")
    ap.add_argument("--port", type=int, default=7860, help="port of the UI (default 7860)")
    args = ap.parse_args(argv)
    build_ui(args.url, os.environ.get("EVOSPIKENET_API_KEY")).launch(
        server_name="127.0.0.1", server_port=args.port, share=False
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
