r"""Spike statistics of a run directory, and how far two runs are apart: ``evospikenet-sim analyze``.

For each population, after discarding a warm-up (spikes with :math:`t = (s + 1) dt \le t_w`, i.e. steps
:math:`s < t_w / dt`), over the remaining duration :math:`T = (n_{steps} - t_w / dt) dt`:

* firing rate of every neuron, :math:`\nu_i = n_i / T` (silent neurons count, at 0 Hz);
* ISI CV of every neuron with at least ``min_isis`` inter-spike intervals,
  :math:`CV_i = \sigma(\mathrm{ISI}_i) / \mu(\mathrm{ISI}_i)` (population SD, ddof 0);
* pairwise Pearson correlation coefficients of spike counts in bins of ``bin_ms``,
  :math:`\rho_{ij} = \mathrm{cov}(c_i, c_j) / (\sigma_i \sigma_j)`, for the pairs of a fixed subsample of
  ``n_corr`` neurons per population (drawn from ``seed`` and the population's index, so runs of the same
  network use the same neurons); pairs with a silent neuron have no coefficient and are left out.

Two runs are compared per population and statistic by the two-sample Kolmogorov-Smirnov distance
:math:`D = \sup_x |F_1(x) - F_2(x)|` of the empirical distributions.

Memory: the spike files are streamed once (``iter_spikes``); per neuron only a count, the last spike step
and two ISI sums are kept, plus the binned counts of the correlation subsample (``n_corr`` x bins, uint8)
and the spikes of the raster window.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .recording import RECORD, iter_spikes, read_run, spike_files

__all__ = [
    "RunStats",
    "PopulationStats",
    "run_populations",
    "spike_statistics",
    "ks_distance",
    "compare",
    "summary",
]

STATS = ("rate", "cv", "corr")


@dataclass
class PopulationStats:
    """The three distributions of one population (1-D float64 arrays)."""

    name: str
    rate: np.ndarray  # Hz, one per neuron
    cv: np.ndarray  # one per neuron with enough ISIs
    corr: np.ndarray  # one per pair of the subsample with both neurons active


@dataclass
class RunStats:
    run_dir: str
    dt_ms: float
    n_steps: int
    warmup_ms: float
    bin_ms: float
    populations: list[PopulationStats]
    raster: tuple[np.ndarray, np.ndarray] = field(
        default=(np.empty(0), np.empty(0))
    )  # (step, gid), last window
    first_ids: list[int] = field(default_factory=list)
    sizes: list[int] = field(default_factory=list)
    n_spikes: int = 0  # after the warm-up
    raster_from: int = 0  # first step of the raster window


def run_populations(run: dict) -> tuple[list[str], list[int], list[int]]:
    """(names, first ids, sizes) from ``run.json``: a list of ``{name, first_id, size}`` or a dict
    ``{name: {first_id, size}}``."""
    pops = run.get("populations")
    if isinstance(pops, dict):
        pops = [{"name": k, **v} for k, v in pops.items()]
    if not pops or not all(isinstance(p, dict) and {"name", "first_id", "size"} <= p.keys() for p in pops):
        raise ValueError("run.json needs 'populations': a list of {name, first_id, size} (or a dict by name)")
    return [p["name"] for p in pops], [int(p["first_id"]) for p in pops], [int(p["size"]) for p in pops]


def _corr_sample(first: list[int], sizes: list[int], n_corr: int, seed: int) -> list[np.ndarray]:
    """Sorted gids of the correlation subsample of each population (the same for the same network)."""
    out = []
    for i, (f, n) in enumerate(zip(first, sizes)):
        rng = np.random.default_rng([seed, i])
        out.append(np.sort(rng.choice(n, size=min(n_corr, n), replace=False)) + f)
    return out


def _pair_correlations(counts: np.ndarray, chunk: int = 8192) -> np.ndarray:
    """Correlation coefficients of the rows of ``counts`` (neurons x bins), upper triangle, over the rows
    with non-zero variance; the covariance is summed over chunks of bins (bounded float64 memory)."""
    n, n_bins = counts.shape
    if n < 2 or n_bins < 2:
        return np.empty(0)
    mean = counts.sum(axis=1, dtype=np.float64) / n_bins
    cov = np.zeros((n, n))
    for at in range(0, n_bins, chunk):
        x = counts[:, at : at + chunk].astype(np.float64) - mean[:, None]  # (neurons, chunk)
        cov += x @ x.T
    var = np.diag(cov).copy()
    ok = var > 1e-12 * n_bins  # silent neurons, or the same count in every bin, have no coefficient
    cov, sd = cov[np.ix_(ok, ok)], np.sqrt(var[ok])
    cc = cov / np.outer(sd, sd)
    return np.clip(cc[np.triu_indices(len(sd), k=1)], -1.0, 1.0)


def spike_statistics(
    run_dir: str | Path,
    warmup_ms: float = 500.0,
    bin_ms: float = 2.0,
    n_corr: int = 200,
    seed: int = 0,
    min_isis: int = 2,
    raster_ms: float = 100.0,
    progress: bool = True,
) -> RunStats:
    """Rates, ISI CVs and count correlations of every population of a run (see the module docstring)."""
    run = read_run(run_dir)
    names, first, sizes = run_populations(run)
    dt = float(run["dt_ms"])
    n_steps = int(run["n_steps"])
    warm = int(round(warmup_ms / dt))
    bin_steps = int(round(bin_ms / dt))
    if bin_steps < 1:
        raise ValueError(f"--bin-ms {bin_ms} is shorter than the time step {dt} ms")
    if warm >= n_steps:
        raise ValueError(f"the warm-up ({warmup_ms} ms) covers the whole run ({n_steps * dt:g} ms)")
    n_gid = max(f + n for f, n in zip(first, sizes))
    n_bins = (n_steps - warm) // bin_steps  # whole bins only
    raster_from = max(warm, n_steps - int(round(raster_ms / dt)))

    count = np.zeros(n_gid, np.int64)
    last = np.full(n_gid, -1, np.int64)  # last spike step seen per neuron (after the warm-up)
    n_isi = np.zeros(n_gid, np.int64)
    s_isi = np.zeros(n_gid, np.float64)
    s2_isi = np.zeros(n_gid, np.float64)
    sample = _corr_sample(first, sizes, n_corr, seed)
    row_of = np.full(n_gid, -1, np.int64)  # gid -> row of the binned-count matrix
    rows = np.concatenate(sample) if sample else np.empty(0, np.int64)
    row_of[rows] = np.arange(len(rows))
    # a neuron spikes at most once a step, so a bin holds at most bin_steps spikes
    binned = np.zeros((len(rows), max(n_bins, 0)), np.uint8 if bin_steps < 256 else np.int32)
    raster_s, raster_g = [], []

    total = sum(p.stat().st_size for p in spike_files(run_dir)) // RECORD.itemsize
    bar = _progress(total, progress)
    for steps, gids in iter_spikes(run_dir):
        bar.update(len(steps))
        if len(gids) and (gids.min() < 0 or gids.max() >= n_gid):
            raise ValueError(f"{run_dir}: spike of neuron id outside 0..{n_gid - 1} (run.json disagrees)")
        keep = steps >= warm
        s, g = steps[keep].astype(np.int64), gids[keep].astype(np.int64)
        if len(s) == 0:
            continue
        count += np.bincount(g, minlength=n_gid)
        # ISIs: group by neuron (stable, so each neuron's spikes stay in file order, ascending step)
        order = np.argsort(g, kind="stable")
        gs, ss = g[order], s[order]
        new = np.ones(len(gs), bool)
        new[1:] = gs[1:] != gs[:-1]
        prev = np.where(new, last[gs], np.r_[-1, ss[:-1]])  # previous spike of the same neuron, or -1
        isi = (ss - prev)[prev >= 0]
        gi = gs[prev >= 0]
        if len(isi) and isi.min() <= 0:
            raise ValueError(f"{run_dir}: a neuron's spikes are not in ascending step order within its file")
        n_isi += np.bincount(gi, minlength=n_gid)
        s_isi += np.bincount(gi, weights=isi.astype(np.float64), minlength=n_gid)
        s2_isi += np.bincount(gi, weights=isi.astype(np.float64) ** 2, minlength=n_gid)
        ends = np.r_[np.flatnonzero(new[1:]), len(gs) - 1]  # last spike of each neuron in this chunk
        last[gs[ends]] = ss[ends]
        # correlation subsample
        r = row_of[g]
        b = (s - warm) // bin_steps
        m = (r >= 0) & (b < n_bins)
        np.add.at(binned, (r[m], b[m]), 1)  # the subsample's spikes only (a few % of all)
        w = s >= raster_from
        raster_s.append(s[w])
        raster_g.append(g[w])
    bar.close()

    t_s = (n_steps - warm) * dt / 1000.0
    pops = []
    at = 0
    for name, f, n, smp in zip(names, first, sizes, sample):
        sl = slice(f, f + n)
        k = n_isi[sl]
        ok = k >= min_isis
        mean = s_isi[sl][ok] / k[ok]
        var = np.maximum(s2_isi[sl][ok] / k[ok] - mean**2, 0.0)
        pops.append(
            PopulationStats(
                name=name,
                rate=count[sl] / t_s,
                cv=np.sqrt(var) / mean,
                corr=_pair_correlations(binned[at : at + len(smp)]),
            )
        )
        at += len(smp)
    rs = np.concatenate(raster_s) if raster_s else np.empty(0, np.int64)
    rg = np.concatenate(raster_g) if raster_g else np.empty(0, np.int64)
    return RunStats(
        str(run_dir),
        dt,
        n_steps,
        warmup_ms,
        bin_ms,
        pops,
        (rs, rg),
        first,
        sizes,
        int(count.sum()),
        raster_from,
    )


def _progress(total: int, enabled: bool):
    """A tqdm bar on stderr, shown for reads of more than a million spikes."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total, unit="spk", unit_scale=True, desc="reading spikes", file=sys.stderr,
        disable=not enabled or total < 1_000_000,
    )  # fmt: skip


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    r"""Two-sample Kolmogorov-Smirnov statistic :math:`\sup_x |F_a(x) - F_b(x)|` (NaN if either is empty)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / len(a)
    fb = np.searchsorted(b, x, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def compare(x: RunStats, y: RunStats) -> dict[str, dict[str, float]]:
    """``{"ks_rate": {pop: D}, "ks_cv": ..., "ks_corr": ...}`` between two runs of the same populations."""
    nx, ny = [p.name for p in x.populations], [p.name for p in y.populations]
    if nx != ny:
        raise ValueError(f"the runs have different populations: {nx} vs {ny}")
    return {
        f"ks_{k}": {
            p.name: ks_distance(getattr(p, k), getattr(q, k)) for p, q in zip(x.populations, y.populations)
        }
        for k in STATS
    }


def _mean(a: np.ndarray) -> float | None:
    return float(np.mean(a)) if len(a) else None


def summary(st: RunStats) -> dict:
    """Per population: mean rate, mean CV, mean correlation and how many values each mean is over."""
    return {
        p.name: {
            "rate_hz": _mean(p.rate),
            "cv": _mean(p.cv),
            "corr": _mean(p.corr),
            "n_neurons": len(p.rate),
            "n_cv": len(p.cv),
            "n_pairs": len(p.corr),
        }
        for p in st.populations
    }
