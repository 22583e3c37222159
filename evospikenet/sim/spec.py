r"""A population network of current-based LIF neurons, as plain data.

:class:`NetworkSpec` describes every network :mod:`evospikenet.sim` simulates: populations of
``iaf_psc_exp`` neurons (NEST's name for a current-based LIF neuron with exponential post-synaptic currents,
integrated exactly), blocks of "fixed total number" connectivity between them, DC and Poisson drive, and
spike generators (the thalamic input of PD14). It holds primitives only, round-trips through JSON, and is
the one description both our engine and the PyNEST reference script (``scripts/pd14_nest.py``) build from.

Neuron (per population, all neurons alike), with :math:`V` relative to nothing (absolute mV):

.. math::

    C_m \frac{dV}{dt} = -\frac{C_m}{\tau_m}(V - E_L) + I_{syn}(t) + I_e, \qquad
    \frac{dI_{syn}}{dt} = -\frac{I_{syn}}{\tau_{syn}} + \sum_k w_k \delta(t - t_k - d_k)

spike when :math:`V \ge V_{th}`, then :math:`V = V_{reset}` held for :math:`t_{ref}`.

Connectivity block ``(a, b)`` (target population ``a``, source ``b``): ``n_synapses[a][b]`` pairs
(source, target) drawn uniformly with replacement (multapses and autapses allowed). Each synapse has a weight
drawn from :math:`N(\mu_{ab}, (r_w \mu_{ab})^2)`, redrawn while its sign differs from :math:`\mu_{ab}`'s, and a
delay from :math:`N(\bar d_{ab}, (r_d \bar d_{ab})^2)`, redrawn while below :math:`dt / 2`, then rounded to the
nearest step (so at least one step), as NEST's PD14 implementation does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["Population", "Generator", "NetworkSpec"]


@dataclass
class Population:
    """One population of ``iaf_psc_exp`` neurons."""

    name: str  # e.g. "L23E"
    size: int  # number of neurons
    excitatory: bool  # sign of its outgoing weights (used for plots and checks)
    c_m: float = 250.0  # membrane capacitance (pF)
    tau_m: float = 10.0  # membrane time constant (ms)
    tau_syn: float = 0.5  # post-synaptic current time constant (ms), excitatory and inhibitory alike
    e_l: float = -65.0  # resting potential (mV)
    v_th: float = -50.0  # threshold (mV)
    v_reset: float = -65.0  # reset potential (mV)
    t_ref: float = 2.0  # absolute refractory period (ms)
    v0_mean: float = -58.0  # initial membrane potential: mean (mV) of a normal distribution
    v0_sd: float = 10.0  # initial membrane potential: standard deviation (mV)
    i_e: float = 0.0  # constant input current (pA): DC drive and scaling compensation
    poisson_rate_hz: float = 0.0  # total rate of independent Poisson input spikes per neuron (Hz)
    poisson_weight: float = 0.0  # current jump of one Poisson input spike (pA)


@dataclass
class Generator:
    """Spike sources without dynamics: each emits an independent Poisson train in ``[start_ms, stop_ms)``."""

    name: str  # e.g. "TC" (thalamo-cortical)
    size: int  # number of sources
    rate_hz: float  # rate of each source while active (Hz)
    start_ms: float  # first moment of activity (ms)
    stop_ms: float  # end of activity (ms, exclusive)
    n_synapses: list[int]  # synapses onto each population, fixed total number (len = populations)
    weight_mean: float  # mean weight (pA); relative SD and delays as for the recurrent blocks
    delay_mean: float  # mean delay (ms)


@dataclass
class NetworkSpec:
    """A whole network: populations, connectivity blocks, drive, generators and the time step."""

    populations: list[Population]
    n_synapses: list[list[int]]  # [target][source] synapse totals (fixed total number)
    weight_mean: list[list[float]]  # [target][source] mean weight (pA); sign = sign of the block
    delay_mean: list[list[float]]  # [target][source] mean delay (ms)
    weight_rel_sd: float = 0.1  # relative standard deviation of weights
    delay_rel_sd: float = 0.5  # relative standard deviation of delays
    dt: float = 0.1  # time step (ms)
    generators: list[Generator] = field(default_factory=list)
    name: str = "network"  # model name reported by the CLI ("pd14")
    meta: dict = field(default_factory=dict)  # derivation parameters (scale, drive, ...), for the record

    def __post_init__(self) -> None:
        self.populations = [p if isinstance(p, Population) else Population(**p) for p in self.populations]
        self.generators = [g if isinstance(g, Generator) else Generator(**g) for g in self.generators]
        n = len(self.populations)
        for key in ("n_synapses", "weight_mean", "delay_mean"):
            m = getattr(self, key)
            if len(m) != n or any(len(row) != n for row in m):
                raise ValueError(f"NetworkSpec.{key} must be {n} x {n} (one row per target population)")
        for a, row in enumerate(self.n_synapses):
            for b, k in enumerate(row):
                if k < 0:
                    raise ValueError(f"n_synapses[{a}][{b}] = {k} is negative")
                if k and self.delay_mean[a][b] <= 0:
                    raise ValueError(f"delay_mean[{a}][{b}] must be positive where there are synapses")
        for g in self.generators:
            if len(g.n_synapses) != n:
                raise ValueError(f"generator {g.name}: n_synapses needs {n} entries, got {len(g.n_synapses)}")
        if self.dt <= 0:
            raise ValueError(f"dt must be positive, got {self.dt}")

    # Sizes and index ranges --------------------------------------------------------------------------
    @property
    def n_neurons(self) -> int:
        return sum(p.size for p in self.populations)

    @property
    def n_synapses_total(self) -> int:
        """Recurrent synapses plus generator synapses."""
        return sum(map(sum, self.n_synapses)) + sum(sum(g.n_synapses) for g in self.generators)

    def first_ids(self) -> list[int]:
        """Global id of each population's first neuron; generators follow the neurons, in order."""
        out, at = [], 0
        for p in [*self.populations, *self.generators]:
            out.append(at)
            at += p.size
        return out

    # JSON ----------------------------------------------------------------------------------------------
    def to_json(self, path: str | Path | None = None) -> str:
        text = json.dumps(asdict(self), indent=1)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_json(cls, text_or_path: str | Path) -> NetworkSpec:
        text = str(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text_or_path).read_text()
        return cls(**json.loads(text))
