"""Process-wide settings for long-running inference (servers, evaluation loops); nothing here runs on import.

:func:`retain_freed_memory` keeps the C allocator from handing large freed blocks back to the operating
system. A forward pass of the spiking LM allocates its per-step tensors afresh (a (T, B, L, 1024) hidden
layer of 4 x 2 x 64 tokens is 2 MiB); glibc serves blocks that large with ``mmap`` and unmaps them on
free, so every call pays page faults to touch fresh zeroed pages again. With the blocks kept in the heap
the next call reuses them: 40 batch-16 forward passes of the SST-2 student took 15-22 % less time in four
pairs of runs (1.27 and 1.33 s against 1.50 and 1.70 s with ``mallopt``; 1.06 and 1.16 s against 1.34 and
1.38 s with glibc's ``MALLOC_*_`` variables; one thread, the 2-core machine of docs/serving.md), most of it
in the fused LayerNorm-LIF kernel, whose outputs are such fresh blocks. The price is a resident size that
stays at its peak. If ``mallopt`` takes the first setting and refuses the second, the first stays.

:func:`load_kernels` loads the C++ kernels (building them on an environment's first run, about a minute
each) so that a server pays for it while it starts, not inside its first request.

:func:`freeze_heap` moves every object alive after start-up out of the garbage collector's reach. A process
that has imported torch, transformers and Ray tracks about 480,000 objects, and one full collection scans
them all: 0.28 s on the machine of docs/serving.md. CPython runs a full collection once the objects that
survived its younger collections since the last full one reach a quarter of those it already holds. A
server's start-up leaves many such survivors, so one comes soon after it starts taking requests, and it
stalls every request the process holds for those 0.28 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc

__all__ = ["retain_freed_memory", "load_kernels", "freeze_heap"]

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_MAX = 32 * 1024 * 1024  # the largest mmap threshold glibc accepts on 64-bit systems


@functools.cache
def retain_freed_memory(trim_bytes: int = 1 << 30) -> bool:
    """Serve blocks up to 32 MiB from the heap and keep up to ``trim_bytes`` of freed heap memory.

    Returns True when the allocator took both settings (glibc), False where there is no ``mallopt`` (musl,
    macOS, Windows): nothing changes there. Repeated calls with the same ``trim_bytes`` do nothing more
    (cached); ``trim_bytes`` above 2 GiB - 1 is capped there (``mallopt`` takes an ``int``).
    """
    if trim_bytes <= 0:
        raise ValueError(f"trim_bytes must be positive, got {trim_bytes}")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_MAX) == 1
    return bool(ok and mallopt(_M_TRIM_THRESHOLD, min(trim_bytes, 2**31 - 1)) == 1)


def load_kernels() -> dict:
    """Load (or build) the event-driven inference, fused LIF and core simulation kernels now; returns which
    are usable. Each loader caches its result per process, so later calls cost nothing."""
    from .core.native import native_available
    from .functional.event_ops import event_kernels_enabled
    from .functional.fused import fused_available

    return {"event_ops": event_kernels_enabled(), "fused": fused_available(), "core": native_available()}


def freeze_heap() -> int:
    """Collect once, then move every object alive now into the collector's permanent generation
    (``gc.freeze``), so later collections scan only what was created after this call; returns how many
    objects that generation holds.

    Call it when a long-running process has finished starting (its imports and models loaded). Frozen
    objects are still freed by reference counting; a reference cycle among them is never collected, which
    costs nothing for modules and model weights that live as long as the process.
    """
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
