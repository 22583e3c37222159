"""The Generate tab: text streams in token by token, then a step slider scrubs the spike rasters of each layer
and the attention map, beside the energy per token."""

from __future__ import annotations

import gradio as gr

from .client import ApiClient
from .plots import attention_plot, bar_plot, raster_plot

__all__ = ["generate_tab", "step_plots"]


def step_plots(insight: dict, k: int):
    """(raster figure, attention figure) of step ``k`` of an ``/v1/insight`` answer (None, None if empty)."""
    if not insight or not insight.get("steps"):
        return None, None
    k = min(int(k), len(insight["steps"]) - 1)
    s = insight["steps"][k]
    return raster_plot(s["rasters"], f"step {k}: token {s['token']!r}"), attention_plot(s["attention"])


def generate_tab(client: ApiClient) -> None:
    insight_state = gr.State({})
    with gr.Row():
        prompt = gr.Textbox(label="Prompt", value="The spiking network", elem_id="gen-prompt")
        n_tokens = gr.Slider(1, 16, value=8, step=1, label="New tokens")
    button = gr.Button("Generate", variant="primary", elem_id="gen-button")
    text_out = gr.Textbox(label="Generated text (token by token)", elem_id="gen-output")
    step = gr.Slider(0, 15, value=0, step=1, label="Step", elem_id="gen-step")
    with gr.Row():
        raster = gr.Plot(label="Spike raster of each layer (newest token, T steps per layer)",
                         elem_id="gen-raster", elem_classes="evo-plot")  # fmt: skip
        attention = gr.Plot(label="Attention map", elem_id="gen-attention", elem_classes="evo-plot")
    energy = gr.Plot(label="Energy per token", elem_id="gen-energy", elem_classes="evo-plot")

    def generate(text, n):
        generated = ""
        for event in client.stream_tokens({"text": text, "max_new_tokens": int(n)}):
            generated += event["token"]
            yield generated, {}, gr.update(), None, None, None
        insight = client.post("/v1/insight", {"text": text, "max_new_tokens": int(n)})
        energy_fig = bar_plot(
            [s["energy_per_token_j"] for s in insight["steps"]], "energy per token (J)", "step"
        )
        raster_fig, attention_fig = step_plots(insight, 0)
        last = max(1, len(insight["steps"]) - 1)
        yield generated, insight, gr.update(maximum=last, value=0), raster_fig, attention_fig, energy_fig

    button.click(generate, [prompt, n_tokens], [text_out, insight_state, step, raster, attention, energy])
    step.change(step_plots, [insight_state, step], [raster, attention])
