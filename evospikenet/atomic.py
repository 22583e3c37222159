"""Atomic writes: a reader sees the old file or directory or the complete new one, never a half-written one.

* :func:`atomic_write_bytes` writes to a temporary file beside the target, fsyncs it and ``os.replace``-s it
  into place (atomic on POSIX within one file system).
* :func:`atomic_directory` yields an empty temporary directory beside the target; when the block finishes
  the directory is fsynced and swapped into place: with ``renameat2(RENAME_EXCHANGE)`` (Linux) the old and the
  new directory trade places in one step, elsewhere the old one is renamed aside first (a reader then
  briefly finds no directory, never a partial one). If the block raises, the temporary directory is removed
  and the target is untouched.
* :class:`AtomicSaveMixin` gives a ``transformers`` model an atomic ``save_pretrained``; files of the old
  directory that the new save does not write (cards, metrics, recipes, tokenizer files) are carried over,
  except weights, manifests and ``exports/``, which belong to the old weights.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "atomic_directory", "AtomicSaveMixin", "STALE_AFTER_SAVE"]

_RENAME_EXCHANGE = 2
# Names of an old model directory that a new save_pretrained makes stale (never carried over).
STALE_AFTER_SAVE = ("*.safetensors", "*.safetensors.index.json", "*.bin", "*.bin.index.json", "exports")


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically with ``renameat2(RENAME_EXCHANGE)``; False where it is unavailable."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    libc = ctypes.CDLL(name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE)
    return rc == 0


def _fsync_tree(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for f in files:
            with contextlib.suppress(OSError), open(os.path.join(dirpath, f), "rb") as fh:
                os.fsync(fh.fileno())
        _fsync_dir(Path(dirpath))


@contextlib.contextmanager
def atomic_directory(target):
    """Yield a temporary directory that replaces ``target`` in one step when the block completes."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
        _fsync_tree(tmp)
        if target.exists() and not target.is_dir():
            raise NotADirectoryError(f"{str(target)!r} exists and is not a directory")
        if target.exists() and _exchange(tmp, target):
            shutil.rmtree(tmp)  # now holds the old directory
        elif target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
            os.rmdir(old)
            os.rename(target, old)
            os.rename(tmp, target)
            shutil.rmtree(old)
        else:
            os.rename(tmp, target)
        _fsync_dir(target.parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _carry_over(old: Path, new: Path) -> None:
    """Copy entries of ``old`` that ``new`` lacks, except those :data:`STALE_AFTER_SAVE` names."""
    if not old.is_dir():
        return
    for entry in old.iterdir():
        if (new / entry.name).exists() or any(entry.match(p) for p in STALE_AFTER_SAVE):
            continue
        if entry.name.startswith(".") or entry.name == "evospikenet_manifest.json":
            continue
        if entry.is_dir():
            shutil.copytree(entry, new / entry.name, symlinks=True)
        else:
            shutil.copy2(entry, new / entry.name)


class AtomicSaveMixin:
    """``save_pretrained`` into a temporary directory swapped into place (see the module docstring)."""

    def save_pretrained(self, save_directory, *args, **kwargs):
        if kwargs.get(
            "push_to_hub"
        ):  # the Hub upload names the repo after the folder: keep transformers' path
            return super().save_pretrained(save_directory, *args, **kwargs)
        target = Path(save_directory)
        with atomic_directory(target) as tmp:
            out = super().save_pretrained(tmp, *args, **kwargs)
            _carry_over(target, tmp)
        return out
