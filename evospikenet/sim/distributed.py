"""One network across processes with ``torch.distributed``: rank setup and the per-step spike exchange.

Launched by ``torchrun`` (``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR`` ... in the environment), each process is a
rank that owns the neurons with ``gid % world == rank`` and stores only the synapses onto them (NEST's
scheme), so delivery stays local. Once per minimum delay (one step in PD14) the ranks all-gather the ids of
the neurons that spiked: a fixed-capacity ``[count, ids...]`` int32 buffer per rank in one
``all_gather_into_tensor`` (gloo on CPUs, NCCL on GPUs), with a second exchange for the overflow in the
rare step where a rank has more spikes than the capacity (which then doubles, on every rank alike since all
see the same counts). The exchange runs asynchronously while the rank delivers its own spikes.

When every rank runs on one node's CPUs, the per-step exchange goes through shared memory instead
(:class:`SharedSpikeExchange`): each rank publishes its spike list and a step counter in a region that all
ranks map, and waits for the others' counters. A gloo all-gather costs 0.5 ms per call on a 2-core VM, more
than a full-scale PD14 step's work per rank; the shared region costs microseconds. torch.distributed still
launches, joins and synchronises the ranks (setup, checkpoints, reductions) and carries the exchange across
nodes. ``EVOSPIKENET_EXCHANGE`` picks the path: ``shared`` (default on one node), ``gloo`` (the C++ loop
over the process group) or ``python`` (one collective per step from Python; any engine).

Failure: the stepping collectives run on a group with a short timeout (``step_timeout_s``); a rank that
dies closes its sockets, the others' collectives fail at once (or at the timeout), and the run stops with
an error naming the step. ``torchrun`` also stops the remaining workers when one exits with an error.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

__all__ = ["Comm", "init_comm", "SpikeExchange", "SharedSpikeExchange", "make_exchange", "PeerLost"]

# all_gather_single replaces all_gather_into_tensor in recent torch; older releases have only the latter.
_all_gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor


class PeerLost(RuntimeError):
    """A collective failed: another rank died, hung or could not be reached."""


@dataclass
class Comm:
    """This process's place in the run; ``world == 1`` without ``torch.distributed``."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    step_group: Any = None  # process group of the per-step exchange (short timeout)
    device: str = "cpu"  # where exchange buffers live: "cpu" (gloo) or the rank's GPU (NCCL)
    step_timeout_s: float = 30.0  # longest wait for another rank's spikes of one step

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values: torch.Tensor) -> torch.Tensor:
        """Elementwise sum over ranks (int64 or float64 tensors)."""
        if self.distributed:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


def init_comm(cuda: bool = False, setup_timeout_s: float = 1800.0, step_timeout_s: float = 30.0) -> Comm:
    """Join the ``torchrun`` job described by the environment, or return a single-rank ``Comm``.

    ``cuda``: ranks run on GPUs (each on ``cuda:<local rank>``) and exchange over NCCL; otherwise gloo.
    ``setup_timeout_s`` bounds barriers around the build and checkpoints (ranks build at their own pace);
    ``step_timeout_s`` bounds every per-step exchange.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if world <= 1:
        return Comm(device=f"cuda:{local_rank}" if cuda else "cpu")
    backend, device = ("nccl", f"cuda:{local_rank}") if cuda else ("gloo", "cpu")
    if cuda:
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(seconds=setup_timeout_s))
    group = dist.new_group(backend=backend, timeout=timedelta(seconds=step_timeout_s))
    return Comm(
        rank=dist.get_rank(),
        world=dist.get_world_size(),
        local_rank=local_rank,
        local_world=int(os.environ.get("LOCAL_WORLD_SIZE", str(world))),
        step_group=group,
        device=device,
        step_timeout_s=step_timeout_s,
    )


class SpikeExchange:
    """The per-step exchange of spike ids between ranks, overlapped with the local delivery."""

    def __init__(self, comm: Comm, capacity: int = 256):
        self.comm = comm
        self._resize(capacity)
        self.exchanges = 0

    def _resize(self, capacity: int) -> None:
        self.capacity = capacity
        dev = self.comm.device
        self.buf = torch.zeros(capacity + 1, dtype=torch.int32, device=dev)
        self.out = torch.zeros(self.comm.world * (capacity + 1), dtype=torch.int32, device=dev)

    def _gather(self, out: torch.Tensor, buf: torch.Tensor, step: int, async_op: bool):
        try:
            return _all_gather(out, buf, group=self.comm.step_group, async_op=async_op)
        except Exception as err:  # gloo raises RuntimeError subclasses of several kinds
            raise PeerLost(self._lost(step, err)) from err

    def _lost(self, step: int, err: Exception) -> str:
        return (
            f"rank {self.comm.rank}: the spike exchange of step {step} failed ({type(err).__name__}: {err}). "
            "Another rank has probably died or hung; the run stops."
        )

    def run(self, engine, start: int, stop: int) -> None:
        """Steps ``start`` to ``stop`` of ``engine``: in C++ for the native engine on the CPU (no Python per
        step), else step by step from Python."""
        if hasattr(engine, "run_exchanged") and self.comm.device == "cpu" and _exchange_mode() != "python":
            try:
                self.capacity = engine.run_exchanged(self.comm.step_group, stop - start, self.capacity)
            except RuntimeError as err:
                if "spike exchange" in str(err):
                    raise PeerLost(str(err)) from err
                raise
            self.exchanges += stop - start
            return
        for s in range(start, stop):
            self.step(engine, s)

    def step(self, engine, step: int) -> None:
        """One whole step of ``engine`` (dynamics, exchange, delivery, advance)."""
        n = engine.update_pack(self.buf)
        work = self._gather(self.out, self.buf, step, async_op=True)
        engine.deliver_local()
        try:
            work.wait()
        except Exception as err:
            raise PeerLost(self._lost(step, err)) from err
        most = engine.deliver_gathered(self.out, self.comm.world, self.comm.rank)
        self.exchanges += 1
        if most > self.capacity:  # some rank had more spikes than the buffer holds
            extra = most - self.capacity
            dev = self.comm.device
            buf = torch.zeros(extra + 1, dtype=torch.int32, device=dev)
            mine = engine.last_spikes()[self.capacity :]
            buf[0] = len(mine)
            buf[1 : 1 + len(mine)] = mine.to(dev)
            out = torch.zeros(self.comm.world * (extra + 1), dtype=torch.int32, device=dev)
            self._gather(out, buf, step, async_op=False)
            engine.deliver_gathered(out, self.comm.world, self.comm.rank)
            self._resize(max(2 * self.capacity, 1 << int(most).bit_length()))
        del n
        engine.end_step()


def _exchange_mode() -> str:
    mode = os.environ.get("EVOSPIKENET_EXCHANGE", "shared")
    if mode not in ("shared", "gloo", "python"):
        raise ValueError(f"EVOSPIKENET_EXCHANGE must be shared, gloo or python, got {mode!r}")
    return mode


class SharedSpikeExchange:
    """The per-step exchange among ranks that share one node, through a shared-memory region (the protocol
    is described at ``run_shared`` in ``evospikenet/csrc/popnet/io.cpp``).

    Rank 0 creates the region as a file in ``/dev/shm``, every rank maps it, and rank 0 removes the name once
    all have mapped it, so nothing is left behind however the run ends. Each rank's list holds up to
    ``capacity`` ids: the largest number of neurons any rank owns, so it never overflows.
    """

    def __init__(self, comm: Comm, n_local: int):
        import mmap
        import tempfile

        self.comm = comm
        most = torch.tensor([n_local], dtype=torch.int64)
        dist.all_reduce(most, op=dist.ReduceOp.MAX)
        self.capacity = int(most)
        size = comm.world * 64 + 2 * comm.world * (self.capacity + 1) * 4
        name = [None]
        if comm.rank == 0:
            shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
            fd, name[0] = tempfile.mkstemp(prefix="evospikenet-spikes-", dir=shm)
            os.ftruncate(fd, size)
            os.close(fd)
        dist.broadcast_object_list(name, src=0)
        with open(name[0], "r+b") as f:
            self._map = mmap.mmap(f.fileno(), size)
        dist.barrier()
        if comm.rank == 0:
            os.unlink(name[0])
        self.region = torch.frombuffer(self._map, dtype=torch.uint8)
        self.exchanges = 0

    def run(self, engine, start: int, stop: int) -> None:
        """Steps ``start`` to ``stop`` of the native ``engine``, exchanging through the region."""
        c = self.comm
        try:
            engine.run_shared(self.region, c.world, c.rank, self.capacity, stop - start, c.step_timeout_s)
        except RuntimeError as err:
            if "spike exchange" in str(err):
                raise PeerLost(str(err)) from err
            raise
        self.exchanges += stop - start


def make_exchange(comm: Comm, engine) -> SpikeExchange | SharedSpikeExchange:
    """The exchange a distributed run uses: shared memory when every rank is on this node's CPUs and the
    engine steps natively (``EVOSPIKENET_EXCHANGE`` not ``gloo``/``python``), else the collectives."""
    one_node = comm.local_world == comm.world and comm.device == "cpu"
    if one_node and hasattr(engine, "run_shared") and _exchange_mode() == "shared":
        return SharedSpikeExchange(comm, engine.info()["n_local"])
    return SpikeExchange(comm)
