"""The Simulation run tab: the PNG plots of a saved simulation run, ``DIR/analysis/*.png``.

The run directory is fixed when the UI is built (``--sim-run DIR`` or ``EVOSPIKENET_SIM_RUN``); the tab reads
only regular files whose resolved path lies directly in ``DIR/analysis`` (a link leading elsewhere is
left out), at most ``MAX_PLOTS`` of them, each at most ``MAX_PLOT_BYTES``. Images are decoded here and
handed to Gradio as pixels, so no path of the machine is ever served.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

__all__ = ["list_plots", "load_plots", "sim_run_tab", "MAX_PLOTS", "MAX_PLOT_BYTES"]

MAX_PLOTS = 200
MAX_PLOT_BYTES = 32 << 20


def list_plots(run_dir: str | Path | None) -> list[Path]:
    """The PNG files of ``run_dir/analysis`` in name order (empty when there is no such directory)."""
    if not run_dir:
        return []
    folder = (Path(run_dir) / "analysis").resolve()
    if not folder.is_dir():
        return []
    found = []
    for p in sorted(folder.glob("*.png")):
        real = p.resolve()
        if real.parent == folder and real.is_file() and real.stat().st_size <= MAX_PLOT_BYTES:
            found.append(real)
    return found[:MAX_PLOTS]


def load_plots(run_dir: str | Path | None) -> list[tuple]:
    """(RGB image, file name) for each plot of :func:`list_plots`; unreadable files are skipped."""
    from PIL import Image

    out = []
    for p in list_plots(run_dir):
        try:
            with Image.open(p) as im:
                out.append((im.convert("RGB"), p.name))
        except (OSError, Image.DecompressionBombError):
            continue
    return out


def sim_run_tab(run_dir: str | None) -> None:
    if run_dir:
        names = [p.name for p in list_plots(run_dir)]
        text = f"Run `{run_dir}`: {len(names)} plot(s) in `analysis/`" + (
            f" ({', '.join(names)})" if names else ""
        )
    else:
        text = "No run given: start with `--sim-run DIR` (or set `EVOSPIKENET_SIM_RUN`) to show `DIR/analysis/*.png`."
    gr.Markdown(text, elem_id="run-info")
    button = gr.Button("Show plots", variant="primary", elem_id="run-button")
    gallery = gr.Gallery(
        label="Plots of the run", columns=2, height="auto", object_fit="contain", elem_id="run-gallery"
    )

    def show():
        plots = load_plots(run_dir)
        if not plots:
            raise gr.Error("no PNG plots in the run's analysis/ directory")
        return plots

    button.click(show, [], [gallery])
