"""Building the C++ extensions from their sources under ``evospikenet/csrc/`` on first use.

:func:`build_sources` compiles ``.cpp`` files with ``torch.utils.cpp_extension.load`` (``-O3``, no
floating-point contraction, ``-mavx2`` where the CPU has it), cached under torch's extension directory and
rebuilt by ninja when a source changes. Every extension of the package is built this way.

The ``fcntl`` lock stays because torch's ``lock`` file outlives a killed build and blocks every later one.
(The kernel releases an ``fcntl`` lock when its holder dies, so a torch ``lock`` file found while holding
ours belongs to a dead build and is removed.)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sys

__all__ = ["cpu_flags", "build_sources", "csrc", "extension_name"]


def cpu_flags() -> list[str]:
    """``-mavx2`` where this CPU has AVX2 (the extensions are built on, and cached for, this machine)."""
    try:
        with open("/proc/cpuinfo") as f:
            return ["-mavx2"] if "avx2" in f.read().split() else []
    except OSError:
        return []


def extension_name(name: str, flags: list[str]) -> str:
    """The cached extension's name for this Python environment: ``name``, ``_avx2`` with that flag, and a
    short digest of the interpreter prefix and torch's location.

    The compiled module depends on the environment (torch's headers and library paths enter the build
    file), so two environments sharing one name would each find the other's build out of date and rebuild,
    for a minute, on their next first call: a served replica's first request then waits that long.
    """
    import hashlib

    import torch

    env = hashlib.sha1(f"{sys.prefix}|{os.path.dirname(torch.__file__)}".encode()).hexdigest()[:8]
    return f"{name}{'_avx2' if '-mavx2' in flags else ''}_{env}"


def _build_dir(name: str) -> str:
    from torch.utils.cpp_extension import _get_build_directory

    return _get_build_directory(name, False)


@contextlib.contextmanager
def _exclusive(build_dir: str):
    """Hold an ``fcntl`` lock beside ``build_dir`` (released by the kernel if this process dies)."""
    os.makedirs(build_dir, exist_ok=True)
    fd = os.open(build_dir.rstrip(os.sep) + ".flock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        stale = os.path.join(build_dir, "lock")
        if os.path.exists(stale):  # no live build holds our lock, so this one's builder died
            print(f"evospikenet: removing the lock file of an interrupted build ({stale})", file=sys.stderr)
            os.remove(stale)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def csrc(name: str) -> str:
    """Path of a C++ source file under ``evospikenet/csrc/``."""
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), "csrc", name)


def build_sources(
    name: str,
    sources: list[str],
    message: str | None = None,
    openmp: bool = False,
    cflags: tuple[str, ...] = (),
):
    """Compile the C++ files ``sources`` (paths, see :func:`csrc`) into the extension ``name`` and return
    the module; cached, rebuilt when a source changes, under the ``fcntl`` lock of the module docstring.

    ``cflags`` are added to ``-O3 -ffp-contract=off`` (and ``-mavx2`` where the CPU has it). ``message`` is
    printed to stderr before a build that has no cached result yet, so a first call that compiles for a
    minute does not look like a hang. Raises whatever ``cpp_extension.load`` raises (no compiler, no headers,
    a build error).
    """
    from torch.utils.cpp_extension import load

    flags = cpu_flags()
    full = extension_name(name, flags)
    try:
        build_dir = _build_dir(full)
    except Exception:  # a private helper of torch: if it moved, build without our lock
        build_dir = None
    omp = ["-fopenmp"] if openmp else []
    with _exclusive(build_dir) if build_dir else contextlib.nullcontext():
        if message and build_dir and not any(f.endswith(".so") for f in os.listdir(build_dir)):
            print(message, file=sys.stderr, flush=True)
        return load(
            name=full,
            sources=list(sources),
            extra_cflags=["-O3", "-ffp-contract=off", *flags, *omp, *cflags],
            extra_ldflags=omp,
            verbose=bool(os.environ.get("EVOSPIKENET_NATIVE_VERBOSE")),
        )
