"""Matplotlib figures of the Insight UI.

Figures are ``matplotlib.figure.Figure`` objects made without pyplot, so the server keeps no global figure
registry (pyplot would hold every figure until closed) and threads do not share pyplot's state.
"""

from __future__ import annotations

from matplotlib.figure import Figure

__all__ = ["new_figure", "raster_plot", "attention_plot", "bar_plot", "line_plot", "heatmap"]


def new_figure(w: float = 6.0, h: float = 3.0):
    """(figure, axes) of ``w`` x ``h`` inches."""
    fig = Figure(figsize=(w, h))
    return fig, fig.subplots()


def raster_plot(rasters: dict, title: str):
    """Stack the (T, N) rasters of several populations into one image (rows: population x step)."""
    fig, ax = new_figure(6, 3.5)
    rows, ticks, labels = [], [], []
    for name, r in rasters.items():
        rows.extend(r)
        ticks.append(len(rows) - len(r) / 2)
        labels.append(name)
    if rows:
        width = max(len(r) for r in rows)
        ax.imshow([row + [0] * (width - len(row)) for row in rows], aspect="auto", cmap="Greys",
                  interpolation="nearest")  # fmt: skip
        every = max(1, len(ticks) // 12)
        ax.set_yticks(ticks[::every], labels[::every], fontsize=6)
    ax.set_xlabel("neuron")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def heatmap(values: list, title: str, xlabel: str, ylabel: str, w: float = 4.0, h: float = 3.5, **kw):
    """``values`` (rows x columns) as an image with a colour bar; ``kw`` goes to ``imshow``."""
    fig, ax = new_figure(w, h)
    im = ax.imshow(values, cmap=kw.pop("cmap", "viridis"), vmin=kw.pop("vmin", 0.0), **kw)
    fig.colorbar(im, ax=ax)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig


def attention_plot(att: list):
    """(L, L) attention of the last layer, mean over heads."""
    return heatmap(att, "attention (last layer, mean over heads)", "key token", "query token")


def bar_plot(values: list[float], title: str, xlabel: str):
    fig, ax = new_figure(5, 2.5)
    ax.bar(range(len(values)), values, color="tab:orange")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    fig.tight_layout()
    return fig


def line_plot(values: list[float], title: str, xlabel: str, ylabel: str):
    fig, ax = new_figure(5, 2.5)
    ax.plot(values)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig
