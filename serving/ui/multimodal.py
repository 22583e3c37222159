"""The Multimodal tab: ask the multimodal spiking LM about a digit image or an ECG beat.

Inputs: a held-out digit (the fixed seeded 20 % of the sklearn digits, ``digits_split()["test"]``), the
synthetic example beat (:func:`serving.examples.example_beat`), or values pasted / uploaded (a text, CSV or
``.npy`` file: 64 pixels 0..16 row by row, or the beat window of the served model's length). The answer
comes from ``/v1/multimodal``; the plots show the input, the spikes of the encoder populations and the
cross-modal attention (last layer, mean over heads) from the prefix tokens to every text token.
"""

from __future__ import annotations

import re

import gradio as gr

from ..examples import example_beat
from .client import ApiClient
from .plots import heatmap, new_figure, raster_plot

__all__ = ["multimodal_tab", "parse_values", "held_out_digit"]

SOURCES = ("held-out digit", "example beat", "pasted / uploaded image", "pasted / uploaded beat")
MAX_UPLOAD_BYTES = 1 << 20  # an upload is a few hundred numbers; anything larger is not one


def parse_values(text: str | None, path: str | None = None) -> list[float]:
    """Numbers separated by commas, spaces or new lines (from ``path`` when given: text, CSV or .npy)."""
    if path:
        import os

        if os.path.getsize(path) > MAX_UPLOAD_BYTES:
            raise gr.Error(f"values: the file is over {MAX_UPLOAD_BYTES} bytes")
        if str(path).endswith(".npy"):
            import numpy as np

            return [float(v) for v in np.load(path, allow_pickle=False).reshape(-1)]
        with open(path) as f:
            text = f.read()
    try:
        return [float(v) for v in re.split(r"[\s,;\[\]]+", text or "") if v]
    except ValueError as e:
        raise gr.Error(f"values: not a number ({e})") from None


def held_out_digit(k: int) -> tuple[list[float], int]:
    """Pixels (64 values 0..16) and label of held-out digit ``k`` (0..359)."""
    from evospikenet.data.multimodal import digits_split

    x, y = digits_split()["test"]
    k = max(0, min(int(k), len(y) - 1))
    return x[k].reshape(-1).astype(float).tolist(), int(y[k])


def _input_plot(image: list[float] | None, signal: list[float] | None, title: str):
    fig, ax = new_figure(3.2, 3.0)
    if image is not None:
        side = int(round(len(image) ** 0.5))
        ax.imshow([image[i * side : (i + 1) * side] for i in range(side)], cmap="Greys", vmin=0)
        ax.set_axis_off()
    else:
        ax.plot(signal)
        ax.set_xlabel("sample")
        ax.set_ylabel("mV")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _cross_plot(r: dict):
    """Heatmap (text tokens x prefix tokens) of the attention from each text token to the prefix."""
    title = "cross-modal attention: text token -> prefix token\n(last layer, mean over heads)"
    fig = heatmap(r["cross_attention"], title, "prefix token", "text token", 4.5, 4.0, aspect="auto")
    ax = fig.axes[0]
    ax.set_xticks(range(len(r["prefix_tokens"])), r["prefix_tokens"], fontsize=7, rotation=45)
    ax.set_yticks(range(len(r["text_tokens"])), r["text_tokens"], fontsize=7)
    fig.tight_layout()
    return fig


def multimodal_tab(client: ApiClient) -> None:
    with gr.Row():
        source = gr.Radio(list(SOURCES), value=SOURCES[0], label="Input", elem_id="mm-source")
        index = gr.Slider(0, 359, value=0, step=1, label="Held-out digit (index)", elem_id="mm-index")
    with gr.Row():
        values = gr.Textbox(label="Pasted values (64 pixels 0..16, or the beat window)", lines=2)
        rr = gr.Textbox(label="RR features of the beat (optional; empty: training mean)")
        upload = gr.File(label="or upload values (.txt, .csv, .npy)", type="filepath")
    question = gr.Textbox(label="Question", value="what digit is this ?", elem_id="mm-question")
    button = gr.Button("Ask", variant="primary", elem_id="mm-button")
    answer = gr.Textbox(label="Answer", elem_id="mm-answer")
    with gr.Row():
        shown = gr.Plot(label="Input", elem_id="mm-input", elem_classes="evo-plot")
        spikes = gr.Plot(label="Spikes of the encoder populations (T steps each, first 64 neurons)",
                         elem_id="mm-spikes", elem_classes="evo-plot")  # fmt: skip
        cross = gr.Plot(label="Cross-modal attention", elem_id="mm-cross", elem_classes="evo-plot")

    def pick_question(src):
        beat = "beat" in src
        return gr.update(value="what kind of beat is this ?" if beat else "what digit is this ?")

    def ask(src, k, text_values, rr_text, path, q):
        body: dict = {"text": q}
        if src == SOURCES[0]:
            img, label = held_out_digit(k)
            body["image"], title = img, f"held-out digit {int(k)} (label {label})"
        elif src == SOURCES[1]:
            n = int((client.get("/healthz").get("multimodal") or {}).get("signal_length") or 86)
            body["signal"], title = example_beat(n), "synthetic example beat"
        else:
            vals = parse_values(text_values, path)
            body["image" if "image" in src else "signal"], title = vals, f"{len(vals)} values"
        if rr_text and rr_text.strip():
            body["rr"] = parse_values(rr_text)
        r = client.post("/v1/multimodal", body)
        rasters = {name: s["raster"] for name, s in r["encoder_spikes"].items()}
        rates = ", ".join(f"{name} {s['rate']:.3f}" for name, s in r["encoder_spikes"].items())
        return (
            r["answer"],
            _input_plot(body.get("image"), body.get("signal"), title),
            raster_plot(rasters, f"spike rates: {rates}"),
            _cross_plot(r),
        )

    source.change(pick_question, [source], [question])
    button.click(ask, [source, index, values, rr, upload, question], [answer, shown, spikes, cross])
