"""The population-network engine in torch operations, for any device (CUDA GPUs above all).

The connectivity is drawn by the native engine on the CPU (the same counter-based streams, so the same
network), then decoded into per-synapse arrays on the device: target (int32), delay (int16) and weight
(float32, or int64 fixed point in exact mode), with each source's synapses contiguous. A step is the native
step in tensor form: the vectorised neuron update (same propagators, same order of operations), then
delivery of the spiking sources' synapses with one ``index_add_`` into the ring. In exact mode the ring
holds int64 fixed-point currents, whose sums do not depend on the order of the additions, so the spikes are
bit-identical to the native engine's on any device and any number of ranks (integer atomics on GPUs
commute too); in float mode GPU atomics add in any order and runs match statistically.
"""

from __future__ import annotations

import torch

from .engine import FIELDS, NativeEngine, group_table
from .philox import TAG, open01, philox, poisson_cdf, poisson_counts, seed_key

__all__ = ["TorchEngine"]


class TorchEngine:
    """One rank's share of a network as tensors on ``device`` (interface of :class:`NativeEngine`).

    ``native``: the (not yet built) native engine of the same rank, which draws the connectivity;
    ``TorchEngine(NativeEngine(spec, seed, rank, ranks, exact=True), "cuda")``.
    """

    def __init__(self, native: NativeEngine, device: str | torch.device = "cpu"):
        if native.procedural:
            raise ValueError("procedural connectivity runs on the native engine only (--backend native)")
        self.spec, self.rank, self.ranks, self.exact = native.spec, native.rank, native.ranks, native.exact
        self.device = torch.device(device)
        self.key = seed_key(native.seed)
        self._native = native
        self.recording = False

    def build(self, threads: int | None = None) -> None:
        self._native.build(threads)
        a = self._native._e.arrays()
        dev = self.device
        self.src_ptr = a["src_ptr"].to(dev)
        self.target = a["target"].to(dev, torch.int64)
        self.delay = a["delay"].to(dev, torch.int64)
        self.weight = (a["weight_fixed"] if self.exact else a["weight"]).to(dev)
        self.D = int(a["ring_slots"])
        self.unit = 2.0 ** -int(a["fixed_point_bits"])
        self.n_sources = len(self.src_ptr) - 1
        del self._native  # the device arrays replace it
        groups, _, _, _ = group_table(self.spec)
        n_pop, n = len(self.spec.populations), int(a["v0"].numel())
        self.n_local = n
        gids = torch.arange(n, dtype=torch.int64) * self.ranks + self.rank
        pop = torch.searchsorted(groups[:n_pop, 0].contiguous(), gids.double(), right=True) - 1
        self.pop = pop.to(dev)
        self.gids = gids.to(dev)
        col = {name: groups[:n_pop, i][pop].to(dev) for i, name in enumerate(FIELDS)}
        self.p = col
        self.ref = col["ref_steps"].to(torch.int32)
        tables = [poisson_cdf(float(lam)) for lam in groups[:n_pop, 12]]
        width = max(len(t) for t in tables)
        padded = torch.tensor([t + [1.0] * (width - len(t)) for t in tables], dtype=torch.float64)
        self.cdf = padded[pop].to(dev)
        self.poisson_on = bool((groups[:n_pop, 12] > 0).any())
        gens = groups[n_pop:]
        self.generators = [
            (
                int(g[0]),
                int(g[1]),
                int(g[14]),
                int(g[15]),
                torch.tensor(
                    [poisson_cdf(float(g[12]))] * int(g[1]), dtype=torch.float64
                ),  # one row per source
            )
            for g in gens
        ]
        self.V = a["v0"].to(dev)
        self.I = torch.zeros(n, dtype=torch.float64, device=dev)
        self.R = torch.zeros(n, dtype=torch.int32, device=dev)
        acc = torch.int64 if self.exact else torch.float32
        self.ring = torch.zeros(self.D, n, dtype=acc, device=dev)
        self.pcount = torch.zeros(4, n, dtype=torch.float64, device=dev)
        self.pblock = -1
        self.step, self.events = 0, 0
        self.count = torch.zeros(n_pop, dtype=torch.int64, device=dev)
        self.spikes = torch.zeros(0, dtype=torch.int64, device=dev)
        self.rec: list[tuple[int, torch.Tensor]] = []

    # ---- dynamics ----
    def _update(self) -> None:
        p, s = self.p, self.step
        if self.poisson_on and (s >> 2) != self.pblock:
            self.pblock = s >> 2
            x = philox(self.key, TAG["poisson"], self.gids, s >> 2, 0, 0)
            for lane in range(4):
                self.pcount[lane] = poisson_counts(self.cdf, open01(x[lane])).double()
        slot = s & (self.D - 1)
        v_free = p["e_l"] + (self.V - p["e_l"]) * p["p22"] + self.I * p["p21"] + p["drive"]
        v = torch.where(self.R == 0, v_free, self.V)
        inp = self.ring[slot].double() * self.unit if self.exact else self.ring[slot].double()
        self.ring[slot] = 0
        self.I = self.I * p["p11"] + inp + self.pcount[s & 3] * p["w_ext"]
        fired = v >= p["v_th"]
        self.V = torch.where(fired, p["v_reset"], v)
        self.R = torch.where(fired, self.ref, self.R - (self.R > 0).int())
        self.spikes = self.gids[fired]
        self.count += torch.bincount(self.pop[fired], minlength=len(self.count))
        if self.recording:
            self.rec.append((s, self.spikes))

    def _deliver(self, gids: torch.Tensor) -> None:
        if gids.numel() == 0:
            return
        start, stop = self.src_ptr[gids], self.src_ptr[gids + 1]
        lens = stop - start
        total = int(lens.sum())
        if total == 0:
            return
        offsets = torch.cumsum(lens, 0) - lens
        pos = torch.repeat_interleave(start - offsets, lens) + torch.arange(total, device=self.device)
        at = ((self.step + self.delay[pos]) & (self.D - 1)) * self.n_local + self.target[pos]
        self.ring.view(-1).index_add_(0, at, self.weight[pos])
        self.events += total

    def _generator_spikes(self) -> torch.Tensor:
        out = []
        for first, size, on, off, cdf in self.generators:
            if on <= self.step < off:
                ids = torch.arange(first, first + size, dtype=torch.int64)
                c = poisson_counts(cdf, open01(philox(self.key, TAG["generator"], ids, self.step, 0, 0)[0]))
                out.append(torch.repeat_interleave(ids, c))
        return (
            torch.cat(out).to(self.device) if out else torch.zeros(0, dtype=torch.int64, device=self.device)
        )

    # ---- the NativeEngine interface ----
    def update_pack(self, buf: torch.Tensor) -> int:
        self._update()
        n, cap = int(self.spikes.numel()), buf.numel() - 1
        buf[0] = n
        buf[1 : 1 + min(n, cap)] = self.spikes[:cap].to(buf.dtype)
        return n

    def deliver_local(self) -> None:
        self._deliver(self.spikes)
        self._deliver(self._generator_spikes())

    def deliver_gathered(self, gathered: torch.Tensor, world: int, rank: int) -> int:
        g = gathered.view(world, -1).to(self.device)
        counts, ids = g[:, 0].long(), g[:, 1:]
        mask = torch.arange(ids.shape[1], device=self.device) < counts.clamp(max=ids.shape[1]).unsqueeze(1)
        mask[rank] = False
        self._deliver(ids[mask].long())
        return int(counts.max())

    def deliver_gids(self, gids: torch.Tensor) -> None:
        self._deliver(gids.to(self.device, torch.int64))

    def end_step(self) -> None:
        self.step += 1

    def run(self, n: int) -> None:
        if self.ranks != 1:
            raise ValueError("run() is the single-rank loop; with several ranks step through SpikeExchange")
        for _ in range(n):
            self._update()
            self.deliver_local()
            self.step += 1

    def set_recording(self, on: bool) -> None:
        self.recording = on

    def drain(self) -> tuple[torch.Tensor, torch.Tensor]:
        steps = [torch.full((len(g),), s, dtype=torch.int32) for s, g in self.rec]
        gids = [g.to("cpu", torch.int32) for _, g in self.rec]
        self.rec = []
        if not steps:
            return torch.zeros(0, dtype=torch.int32), torch.zeros(0, dtype=torch.int32)
        return torch.cat(steps), torch.cat(gids)

    def last_spikes(self) -> torch.Tensor:
        return self.spikes.to("cpu", torch.int32)

    def counts(self) -> torch.Tensor:
        return self.count.cpu()

    def info(self) -> dict[str, int]:
        per = 4 + 2 + self.weight.element_size()
        return {
            "n_local": self.n_local,
            "n_synapses_local": int(self.target.numel()),
            "synapse_bytes": int(self.target.numel()) * per + int(self.src_ptr.numel()) * 8,
            "ring_slots": self.D,
            "step": self.step,
            "events": self.events,
        }

    def state(self) -> dict[str, torch.Tensor]:
        s = {
            "v": self.V.cpu(),
            "i_syn": self.I.cpu(),
            "refractory": self.R.cpu(),
            "counts": self.count.cpu(),
            "step": torch.tensor([self.step]),
            "events": torch.tensor([self.events]),
            "gids": self.gids.cpu(),
        }
        s["ring_fixed" if self.exact else "ring"] = self.ring.reshape(-1).cpu()
        return s

    def set_state(self, s: dict[str, torch.Tensor]) -> None:
        ring = "ring_fixed" if self.exact else "ring"
        if ring not in s:
            raise ValueError(f"the checkpoint has no {ring!r}: resume with the same --deterministic setting")
        if s["v"].numel() != self.n_local:
            raise ValueError(
                f"the checkpoint holds {s['v'].numel()} neurons for this rank, the network {self.n_local}"
            )
        dev = self.device
        self.V, self.I = s["v"].to(dev, torch.float64), s["i_syn"].to(dev, torch.float64)
        self.R, self.count = s["refractory"].to(dev, torch.int32), s["counts"].to(dev, torch.int64)
        self.ring = s[ring].to(dev, self.ring.dtype).view(self.D, self.n_local).clone()
        self.step, self.events = int(s["step"]), int(s["events"])
        self.pblock, self.rec = -1, []
