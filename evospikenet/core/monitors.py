"""Monitors: spikes as compact events and sampled state variables.

``SpikeMonitor`` always keeps per-neuron spike counts (B, n) int64; with ``record=True`` it also stores every
spike as an event ``(t, batch, index)``: one int64 (E, 3) tensor appended per step, so memory grows with the
number of spikes, never with ``T * n``. ``StateMonitor`` samples one state variable of chosen neurons
every ``every`` steps into a list of (B, len(indices)) tensors.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .populations import Population

__all__ = ["SpikeMonitor", "StateMonitor"]


def _check_pop(pop) -> Population:
    if not isinstance(pop, Population):
        raise ValueError(f"pop must be a Population, got {type(pop).__name__}")
    return pop


class SpikeMonitor:
    """Spike counts of ``pop`` (always) and, with ``record=True``, its spike events ``(t, batch, index)``."""

    def __init__(self, pop: Population, record: bool = True):
        self.pop = _check_pop(pop)
        self.record = bool(record)
        self.counts = None  # (B, n) int64 spikes per neuron
        self._events: list[torch.Tensor] = []  # (E_t, 3) int64 chunks

    def reset(self, batch: int, device) -> None:
        """Forget everything recorded."""
        self.counts = torch.zeros(batch, self.pop.n, dtype=torch.int64, device=device)
        self._events = []

    def __call__(self, t: int, spikes: torch.Tensor) -> None:
        """Record this step's spikes (B, n)."""
        fired = spikes != 0
        self.counts += fired
        if self.record:
            bi = fired.nonzero()  # (E, 2): batch, index
            if bi.numel():
                self._events.append(torch.cat([torch.full_like(bi[:, :1], t), bi], dim=1))

    def add_events(self, t: torch.Tensor, batch: torch.Tensor, index: torch.Tensor) -> None:
        """Record events produced elsewhere (e.g. by a native backend); (E,) each."""
        dev = self.counts.device
        self.counts.index_put_(
            (batch.to(dev), index.to(dev)), torch.ones_like(index, device=dev), accumulate=True
        )
        if self.record and t.numel():
            self._events.append(torch.stack([t, batch, index], dim=1).to(dev, torch.int64))

    @property
    def events(self) -> torch.Tensor:
        """(E, 3) int64 rows ``(t, batch, index)`` in time order."""
        if not self._events:
            dev = self.counts.device if self.counts is not None else None
            return torch.zeros(0, 3, dtype=torch.int64, device=dev)
        if len(self._events) > 1:
            self._events = [torch.cat(self._events)]
        return self._events[0]

    @property
    def t(self) -> torch.Tensor:
        """(E,) step of each spike."""
        return self.events[:, 0]

    @property
    def i(self) -> torch.Tensor:
        """(E,) neuron index of each spike."""
        return self.events[:, 2]

    @property
    def num_spikes(self) -> int:
        """Total spikes seen."""
        return int(self.counts.sum()) if self.counts is not None else 0

    def nbytes(self) -> int:
        """Bytes held by the recorded events."""
        return sum(e.numel() * e.element_size() for e in self._events)


class StateMonitor:
    """Samples ``pop.state.<var>`` (or ``"v_th"``) of neurons ``indices`` every ``every`` steps."""

    def __init__(self, pop: Population, var: str = "v", indices: Sequence[int] | torch.Tensor | None = None,
                 every: int = 1):  # fmt: skip
        self.pop = _check_pop(pop)
        fields = {"lif": ("v", "refrac"), "int": ("v", "refrac"), "loihi": ("u", "v")}[pop.neuron] + ("v_th",)
        if var not in fields:
            raise ValueError(f"var must be one of {fields} for neuron={pop.neuron!r}, got {var!r}")
        self.var = var
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ValueError(f"every must be a positive integer, got {every!r}")
        self.every = every
        idx = (
            torch.arange(pop.n)
            if indices is None
            else torch.as_tensor(indices, dtype=torch.int64).reshape(-1)
        )
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= pop.n:
            raise ValueError(f"indices must be non-empty and lie in [0, {pop.n}), got {indices!r:.80}")
        self.indices = idx
        self.samples: list[torch.Tensor] = []  # (B, len(indices)) each
        self.steps: list[int] = []

    def reset(self, batch: int, device) -> None:
        """Forget every sample."""
        self.indices = self.indices.to(device)
        self.samples, self.steps = [], []

    def __call__(self, t: int, spikes: torch.Tensor) -> None:
        """Sample at steps ``t`` divisible by ``every``."""
        if t % self.every:
            return
        x = self.pop.v_th.unsqueeze(0) if self.var == "v_th" else getattr(self.pop.state, self.var)
        self.samples.append(x[:, self.indices].clone())
        self.steps.append(t)

    @property
    def values(self) -> torch.Tensor:
        """(S, B, len(indices)) samples in time order."""
        if not self.samples:
            raise ValueError("values: nothing was sampled yet (run the network first)")
        return torch.stack(self.samples)
