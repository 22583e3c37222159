r"""The Potjans & Diesmann (2014) cortical microcircuit ("PD14") as a :class:`~evospikenet.sim.spec.NetworkSpec`.

Parameters are the published model description's (Potjans & Diesmann 2014, Cerebral Cortex 24:785; the
INM-6 ``microcircuit-PD14-model`` documentation). Derivations, written from the description:

* Synapse totals, "fixed total number": for target population ``a`` and source ``b`` with connection
  probability :math:`C_{ab}`, :math:`K_{ab} = \log(1 - C_{ab}) / \log(1 - 1/(N_a N_b))` at full size, then
  ``round(K_ab * n_scale * k_scale)``.
* Weights: the mean excitatory PSP (0.15 mV) becomes a PSC amplitude through the peak of the PSP of an
  exponential current, :math:`J / \mathrm{PSP} = C_m (\tau_m - \tau_s) /
  (\tau_m \tau_s (e^{-t^*/\tau_m} - e^{-t^*/\tau_s}))` with :math:`t^* = \ln(\tau_m/\tau_s) \tau_m \tau_s /
  (\tau_m - \tau_s)` (87.8 pA for 0.15 mV); inhibitory sources ``g = -4`` times that, L4E -> L23E doubled.
* DC drive replaces the Poisson background by its mean:
  :math:`I_{DC} = 10^{-3} \nu_{bg} K_{ext} J_{ext} \tau_s`.
* Down-scaling keeps the full network's mean and variance of input (van Albada et al. 2015): weights divided
  by :math:`\sqrt{k}`, external in-degrees multiplied by ``k``, and the missing mean input added as DC,
  :math:`10^{-3} \tau_s (1 - \sqrt{k}) \sum_b J_{ab} K^{full}_{ab} \nu_b / N_a` (plus the Poisson term with
  Poisson drive), with :math:`\nu_b` the full network's published mean rates.
* Up-scaling (``scale`` > 1, ``k_scale`` = 1): more neurons with the full model's in-degrees, so each pair is
  connected with probability ``1 / scale`` of the original; rates stay those of the full network. It is how
  the engine's procedural mode is exercised beyond the published size.
* Thalamic input (optional): 902 Poisson sources at 120 Hz for 10 ms from 700 ms. Their synapse totals are
  scaled like the recurrent ones (by ``n_scale * k_scale``), which keeps each neuron's thalamic in-degree;
  NEST's example scales them by ``k_scale`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .spec import Generator, NetworkSpec, Population

__all__ = ["PD14Config", "pd14_spec", "psc_over_psp", "synapse_totals", "POPULATIONS", "NEST_FULL_RATES"]

POPULATIONS = ("L23E", "L23I", "L4E", "L4I", "L5E", "L5I", "L6E", "L6I")
FULL_SIZES = (20683, 5834, 21915, 5479, 4850, 1065, 14395, 2948)
# Connection probabilities, rows targets, columns sources.
CONN_PROBS = (
    (0.1009, 0.1689, 0.0437, 0.0818, 0.0323, 0.0, 0.0076, 0.0),
    (0.1346, 0.1371, 0.0316, 0.0515, 0.0755, 0.0, 0.0042, 0.0),
    (0.0077, 0.0059, 0.0497, 0.135, 0.0067, 0.0003, 0.0453, 0.0),
    (0.0691, 0.0029, 0.0794, 0.1597, 0.0033, 0.0, 0.1057, 0.0),
    (0.1004, 0.0622, 0.0505, 0.0057, 0.0831, 0.3726, 0.0204, 0.0),
    (0.0548, 0.0269, 0.0257, 0.0022, 0.06, 0.3158, 0.0086, 0.0),
    (0.0156, 0.0066, 0.0211, 0.0166, 0.0572, 0.0197, 0.0396, 0.2252),
    (0.0364, 0.001, 0.0034, 0.0005, 0.0277, 0.008, 0.0658, 0.1443),
)
K_EXT = (1600, 1500, 2100, 1900, 2000, 1900, 2900, 2100)  # external (background) in-degrees
BG_RATE_HZ = 8.0  # rate of each background input
# Mean rates (Hz) of the full network in one NEST run with DC drive: the scaling compensation uses them.
NEST_FULL_RATES = (0.903, 2.965, 4.414, 5.876, 7.569, 8.633, 1.105, 7.829)
PSP_EXC_MV = 0.15
G_INH = -4.0
V0_OPTIMIZED = (
    (-68.28, -63.16, -63.33, -63.45, -63.11, -61.66, -66.72, -61.43),  # means (mV)
    (5.36, 4.57, 4.74, 4.94, 4.94, 4.55, 5.46, 4.48),  # standard deviations (mV)
)
THALAMIC = {"size": 902, "rate_hz": 120.0, "start_ms": 700.0, "duration_ms": 10.0, "delay_mean": 1.5}
THALAMIC_PROBS = (0.0, 0.0, 0.0983, 0.0619, 0.0, 0.0, 0.0512, 0.0196)
NEURON = {
    "c_m": 250.0,
    "tau_m": 10.0,
    "tau_syn": 0.5,
    "e_l": -65.0,
    "v_th": -50.0,
    "v_reset": -65.0,
    "t_ref": 2.0,
}


@dataclass
class PD14Config:
    """What to build: size, drive and stimulus."""

    scale: float = 1.0  # N_scaling: multiple of each population's size (1.0 = 77,169 neurons; > 1 up-scales)
    k_scale: float | None = None  # K_scaling: fraction of in-degrees; None = ``scale`` below 1, else 1
    drive: str = "dc"  # background: "dc" (its mean as a constant current) or "poisson" (8 Hz per input)
    thalamic: bool = False  # the thalamic pulse (902 sources, 120 Hz, 700-710 ms)
    v0: str = "optimized"  # initial membrane potentials: "optimized" (per population) or "original"
    dt: float = 0.1  # time step (ms)

    def __post_init__(self) -> None:
        if not self.scale > 0 or not (0 < self.k <= 1):
            raise ValueError(f"scale must be > 0 and k_scale in (0, 1], got {self.scale} and {self.k}")
        if self.drive not in ("dc", "poisson"):
            raise ValueError(f"drive must be 'dc' or 'poisson', got {self.drive!r}")
        if self.v0 not in ("optimized", "original"):
            raise ValueError(f"v0 must be 'optimized' or 'original', got {self.v0!r}")

    @property
    def k(self) -> float:
        return min(self.scale, 1.0) if self.k_scale is None else self.k_scale


def psc_over_psp(c_m: float, tau_m: float, tau_syn: float) -> float:
    """PSC amplitude (pA) per mV of PSP peak for ``iaf_psc_exp`` (closed form in the module docstring)."""
    t_peak = math.log(tau_m / tau_syn) * tau_m * tau_syn / (tau_m - tau_syn)
    shape = (math.exp(-t_peak / tau_m) - math.exp(-t_peak / tau_syn)) * tau_m * tau_syn / (tau_m - tau_syn)
    return c_m / shape


def synapse_totals(prob: float, n_target: int, n_source: int) -> float:
    """Expected number of synapses giving connection probability ``prob`` with fixed total number."""
    if prob <= 0:
        return 0.0
    return math.log(1.0 - prob) / math.log(1.0 - 1.0 / (n_target * n_source))


def pd14_spec(cfg: PD14Config | None = None) -> NetworkSpec:
    """The PD14 network at ``cfg``'s scale, drive and stimulus."""
    cfg = cfg or PD14Config()
    n_pop, k, ts = len(POPULATIONS), cfg.k, NEURON["tau_syn"]
    j_per_mv = psc_over_psp(NEURON["c_m"], NEURON["tau_m"], ts)
    j_exc = PSP_EXC_MV * j_per_mv  # full-scale PSC of an excitatory synapse and of a background input (pA)
    j_full = [[j_exc * (1.0 if b % 2 == 0 else G_INH) for b in range(n_pop)] for _ in range(n_pop)]
    j_full[0][2] *= 2.0  # L4E -> L23E
    k_full = [
        [synapse_totals(CONN_PROBS[a][b], FULL_SIZES[a], FULL_SIZES[b]) for b in range(n_pop)]
        for a in range(n_pop)
    ]
    sizes = [round(n * cfg.scale) for n in FULL_SIZES]
    sqk = math.sqrt(k)
    pops = []
    for a in range(n_pop):
        dc = 0.0
        if cfg.drive == "dc":
            dc = 1e-3 * BG_RATE_HZ * K_EXT[a] * j_exc * ts
        if k != 1.0:  # the mean input the scaled in-degrees no longer deliver
            rec = sum(j_full[a][b] * k_full[a][b] / FULL_SIZES[a] * NEST_FULL_RATES[b] for b in range(n_pop))
            dc += 1e-3 * ts * (1.0 - sqk) * rec
            if cfg.drive == "poisson":
                dc += 1e-3 * ts * (1.0 - sqk) * j_exc * K_EXT[a] * BG_RATE_HZ
        mean, sd = (V0_OPTIMIZED[0][a], V0_OPTIMIZED[1][a]) if cfg.v0 == "optimized" else (-58.0, 10.0)
        poisson = cfg.drive == "poisson"
        pops.append(
            Population(
                name=POPULATIONS[a],
                size=sizes[a],
                excitatory=a % 2 == 0,
                v0_mean=mean,
                v0_sd=sd,
                i_e=dc,
                poisson_rate_hz=BG_RATE_HZ * round(K_EXT[a] * k) if poisson else 0.0,
                poisson_weight=j_exc / sqk if poisson else 0.0,
                **NEURON,
            )
        )
    generators = []
    if cfg.thalamic:
        th = THALAMIC
        totals = [synapse_totals(p, FULL_SIZES[a], th["size"]) for a, p in enumerate(THALAMIC_PROBS)]
        generators.append(
            Generator(
                name="TC",
                size=th["size"],
                rate_hz=th["rate_hz"],
                start_ms=th["start_ms"],
                stop_ms=th["start_ms"] + th["duration_ms"],
                n_synapses=[round(t * cfg.scale * k) for t in totals],
                weight_mean=j_exc / sqk,
                delay_mean=th["delay_mean"],
            )
        )
    return NetworkSpec(
        populations=pops,
        n_synapses=[[round(k_full[a][b] * cfg.scale * k) for b in range(n_pop)] for a in range(n_pop)],
        weight_mean=[[j_full[a][b] / sqk for b in range(n_pop)] for a in range(n_pop)],
        delay_mean=[[1.5 if b % 2 == 0 else 0.75 for b in range(n_pop)] for _ in range(n_pop)],
        weight_rel_sd=0.1,
        delay_rel_sd=0.5,
        dt=cfg.dt,
        generators=generators,
        name="pd14",
        meta={"scale": cfg.scale, "k_scale": k, "drive": cfg.drive, "thalamic": cfg.thalamic, "v0": cfg.v0},
    )
