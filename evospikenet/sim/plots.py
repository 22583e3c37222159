"""PNG plots of :mod:`evospikenet.sim.analysis` results: the raster of a run's last window, coloured by
population, and the rate / ISI-CV / correlation distributions per population (two runs overlaid)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .analysis import STATS, RunStats

__all__ = ["plot_raster", "plot_distributions"]

LABELS = {"rate": "rate (Hz)", "cv": "ISI CV", "corr": "count correlation"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_raster(st: RunStats, path: str | Path) -> Path:
    """Spikes of the window kept by ``spike_statistics`` (default the last 100 ms), one colour per population;
    the first population is drawn at the top, as in the usual PD14 figures."""
    plt = _pyplot()
    steps, gids = st.raster
    n_gid = max((f + n for f, n in zip(st.first_ids, st.sizes)), default=1)
    fig, ax = plt.subplots(figsize=(8, 6))
    colors = plt.get_cmap("tab10")
    for i, (p, f, n) in enumerate(zip(st.populations, st.first_ids, st.sizes)):
        m = (gids >= f) & (gids < f + n)
        ax.scatter((steps[m] + 1) * st.dt_ms, n_gid - gids[m], s=0.5, color=colors(i % 10), label=p.name)
    ax.set_yticks([n_gid - f - n / 2 for f, n in zip(st.first_ids, st.sizes)])
    ax.set_yticklabels([p.name for p in st.populations])
    ax.set_xlabel("time (ms)")
    ax.set_xlim(st.raster_from * st.dt_ms, st.n_steps * st.dt_ms)
    ax.set_title(f"raster: {Path(st.run_dir).name}")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_distributions(st: RunStats, other: RunStats | None, path: str | Path) -> Path:
    """A grid, one row per statistic and one column per population: density histograms on shared bins
    (over the 0.5-99.5 percentile range of both runs), ``st`` filled and ``other`` (if given) as an outline."""
    plt = _pyplot()
    n_pop = len(st.populations)
    fig, axes = plt.subplots(len(STATS), n_pop, figsize=(2.2 * n_pop, 6.5), squeeze=False)
    for c, p in enumerate(st.populations):
        q = other.populations[c] if other is not None else None
        for r, k in enumerate(STATS):
            ax = axes[r][c]
            a = getattr(p, k)
            b = getattr(q, k) if q is not None else np.empty(0)
            both = np.concatenate([a, b])
            if len(both) == 0:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
            else:
                lo, hi = (float(v) for v in np.percentile(both, [0.5, 99.5]))  # outliers off the axis
                bins = np.linspace(lo, hi if hi > lo else lo + 1.0, 31)
                if len(a):
                    ax.hist(a, bins=bins, density=True, alpha=0.6, color="tab:blue",
                            label=Path(st.run_dir).name)  # fmt: skip
                if len(b):
                    ax.hist(b, bins=bins, density=True, histtype="step", color="tab:red", lw=1.2,
                            label=Path(other.run_dir).name)  # fmt: skip
            if r == 0:
                ax.set_title(p.name)
            if c == 0:
                ax.set_ylabel("density")
            ax.set_xlabel(LABELS[k], fontsize=8)
            ax.tick_params(labelsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
