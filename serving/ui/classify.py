"""The Classify tab: sentiment of a sentence and the AAMI class of an ECG beat, each with its input signal,
the spikes it caused and the class probabilities."""

from __future__ import annotations

import gradio as gr

from ..examples import example_beat
from .client import ApiClient
from .plots import bar_plot, line_plot, raster_plot

__all__ = ["classify_tab"]


def _sentiment(client: ApiClient) -> None:
    text = gr.Textbox(label="Sentence", value="a gripping, beautifully made film", elem_id="sent-text")
    button = gr.Button("Classify sentiment", variant="primary", elem_id="sent-button")
    probabilities = gr.Label(label="Class probabilities")
    with gr.Row():
        tokens_plot = gr.Plot(
            label="Input signal (token ids)", elem_id="sent-signal", elem_classes="evo-plot"
        )
        spikes_plot = gr.Plot(label="Spikes it caused (final layer, last token)", elem_id="sent-spikes",
                              elem_classes="evo-plot")  # fmt: skip

    def classify_sentence(t):
        r = client.post("/v1/sentiment", {"text": t, "return_spikes": True})
        tokens = bar_plot(r["input_ids"], "input tokens", "position")
        spikes = raster_plot({r["raster_layer"]: r["raster"]}, f"spike rate {r['spike_rate']:.3f}")
        return r["probabilities"], tokens, spikes

    button.click(classify_sentence, [text], [probabilities, tokens_plot, spikes_plot])


def _ecg(client: ApiClient) -> None:
    kind = gr.Radio(["normal", "wide QRS"], value="normal", label="Example beat")
    button = gr.Button("Classify beat", variant="primary", elem_id="ecg-button")
    probabilities = gr.Label(label="Class probabilities (AAMI)", elem_id="ecg-probs")
    with gr.Row():
        beat_plot = gr.Plot(label="Input signal", elem_id="ecg-signal", elem_classes="evo-plot")
        spikes_plot = gr.Plot(label="Spikes it caused", elem_id="ecg-spikes", elem_classes="evo-plot")

    def classify_beat(k):
        n = int(client.get("/healthz").get("ecg_window") or 128)
        beat = example_beat(n, "normal" if k == "normal" else "wide")
        r = client.post("/v1/ecg", {"signal": beat, "return_spikes": True})
        shown = line_plot(beat, f"{k} beat, {n} samples", "sample", "mV")
        return r["probabilities"], shown, raster_plot(r.get("rasters") or {}, "spikes per layer")

    button.click(classify_beat, [kind], [probabilities, beat_plot, spikes_plot])


def classify_tab(client: ApiClient) -> None:
    with gr.Tab("Sentiment"):
        _sentiment(client)
    with gr.Tab("ECG"):
        _ecg(client)
