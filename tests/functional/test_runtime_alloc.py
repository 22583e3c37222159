"""``evospikenet.runtime``: the allocator setting and its error paths, kernel loading, and the heap freeze."""

import ctypes
import ctypes.util
import sys

import pytest

import evospikenet.runtime as rt


@pytest.fixture(autouse=True)
def fresh_cache():
    rt.retain_freed_memory.cache_clear()
    yield
    rt.retain_freed_memory.cache_clear()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_both_settings(monkeypatch):
    calls = []

    class Libc:
        def __init__(self, real):
            self.real = real

        @property
        def mallopt(self):
            fn = self.real.mallopt

            def spy(param, value):
                calls.append((param, value))
                return fn(param, value)

            return spy

    real = ctypes.CDLL(ctypes.util.find_library("c"))
    monkeypatch.setattr(rt.ctypes, "CDLL", lambda name: Libc(real))
    assert rt.retain_freed_memory() is True
    assert calls == [(rt._M_MMAP_THRESHOLD, 32 * 1024 * 1024), (rt._M_TRIM_THRESHOLD, 1 << 30)]
    assert rt.retain_freed_memory() is True and len(calls) == 2  # the first call decides, once


def test_no_mallopt_changes_nothing(monkeypatch):
    class NoMallopt:
        pass

    monkeypatch.setattr(rt.ctypes, "CDLL", lambda name: NoMallopt())
    assert rt.retain_freed_memory() is False


def test_a_rejected_setting_reports_false(monkeypatch):
    class Refuses:
        def __init__(self):
            self.mallopt = lambda param, value: 0  # a function object: ctypes attributes can be set on it

    monkeypatch.setattr(rt.ctypes, "CDLL", lambda name: Refuses())
    assert rt.retain_freed_memory() is False


def test_bad_trim_size_is_an_error():
    with pytest.raises(ValueError, match="trim_bytes must be positive"):
        rt.retain_freed_memory(0)


def test_load_kernels_reports_what_each_loader_reports():
    """``load_kernels`` loads the three C++ extensions through their own loaders and says which work."""
    from evospikenet.core.native import native_available
    from evospikenet.functional.event_ops import event_kernels_enabled
    from evospikenet.functional.fused import fused_available
    from evospikenet.runtime import load_kernels

    got = load_kernels()
    assert got == {
        "event_ops": event_kernels_enabled(),
        "fused": fused_available(),
        "core": native_available(),
    }


def test_freeze_heap_collects_then_hides_the_live_heap_from_later_scans():
    """Garbage cycles alive at the call are collected, not frozen; live objects leave the generations that
    collections scan; objects made afterwards are scanned as usual."""
    import gc
    import weakref

    class Node:
        pass

    garbage = Node()
    garbage.self = garbage  # a reference cycle: only the collector can free it
    gone = weakref.ref(garbage)
    del garbage
    kept = [Node() for _ in range(3)]
    try:
        frozen = rt.freeze_heap()
        assert gone() is None
        assert frozen == gc.get_freeze_count() and frozen > 0
        scanned = gc.get_objects()
        assert not any(o is kept for o in scanned)
        later = [Node()]
        assert any(o is later for o in gc.get_objects())
    finally:
        gc.unfreeze()
    assert any(o is kept for o in gc.get_objects())
