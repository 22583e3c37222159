"""The build lock of the C++ extensions: a build killed midway must not block every later process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from evospikenet._native_build import _exclusive

HOLD = """
import sys, time
from evospikenet._native_build import _exclusive
with _exclusive(sys.argv[1]):
    open(sys.argv[1] + "/lock", "w").close()  # what torch's FileBaton leaves while it builds
    print("in", flush=True)
    time.sleep(120)
"""

ENTER = """
import os, sys
from evospikenet._native_build import _exclusive
print("waiting", flush=True)
with _exclusive(sys.argv[1]):
    print("entered", os.path.exists(sys.argv[1] + "/lock"), flush=True)
"""


def _python(code: str, d) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, str(d)], stdout=subprocess.PIPE, text=True)


def test_stale_torch_lock_is_removed(tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    (d / "lock").touch()  # left by a build whose process died
    with _exclusive(str(d)):
        assert not (d / "lock").exists()


def test_live_build_blocks_and_killed_build_releases(tmp_path):
    d = tmp_path / "ext"
    holder = _python(HOLD, d)
    try:
        assert holder.stdout.readline().strip() == "in"
        waiter = _python(ENTER, d)
        assert waiter.stdout.readline().strip() == "waiting"  # it is at the lock, not still starting
        time.sleep(1.0)
        assert waiter.poll() is None, "entered while a live build held the lock"
        assert (d / "lock").exists(), "the lock file of a live build was removed"
        os.kill(holder.pid, signal.SIGKILL)  # the builder dies midway, its torch lock file stays
        out, _ = waiter.communicate(timeout=60)
        assert out.strip() == "entered False"
        assert not (d / "lock").exists()
    finally:
        holder.kill()
        holder.wait()


def test_each_environment_has_its_own_build(monkeypatch):
    """Two virtual environments must not share (and keep invalidating) one cached build."""
    from evospikenet import _native_build as nb

    a = nb.extension_name("evospikenet_x_v1", ["-mavx2"])
    assert a.startswith("evospikenet_x_v1_avx2_") and a == nb.extension_name("evospikenet_x_v1", ["-mavx2"])
    assert nb.extension_name("evospikenet_x_v1", []).startswith("evospikenet_x_v1_") and "avx2" not in (
        nb.extension_name("evospikenet_x_v1", [])
    )
    monkeypatch.setattr(nb.sys, "prefix", "/somewhere/else/.venv")
    assert nb.extension_name("evospikenet_x_v1", ["-mavx2"]) != a


def test_sources_resolve_inside_the_package():
    from evospikenet import _native_build as nb

    for name in ("native.cpp", "event_ops.cpp", "fused.cpp"):
        path = nb.csrc(name)
        assert os.path.isfile(path) and os.path.dirname(os.path.dirname(path)) == os.path.dirname(nb.__file__)


@pytest.mark.slow
def test_wheel_ships_the_cpp_sources(tmp_path):
    """A built wheel carries every file of evospikenet/csrc (the kernels compile from them on first use)."""
    import shutil
    import zipfile

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    src = tmp_path / "src"
    src.mkdir()
    for f in ("pyproject.toml", "README.md"):
        shutil.copy(os.path.join(root, f), src / f)
    shutil.copytree(os.path.join(root, "evospikenet"), src / "evospikenet",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", str(src),
         "-w", str(tmp_path / "dist")],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PIP_CONSTRAINT": ""},
    )  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = (tmp_path / "dist").glob("evospikenet-*.whl")
    names = set(zipfile.ZipFile(whl).namelist())
    csrc = os.path.join(root, "evospikenet", "csrc")
    want = {
        "evospikenet/csrc/" + os.path.relpath(os.path.join(d, f), csrc)
        for d, _, files in os.walk(csrc)
        for f in files
        if f.endswith((".cpp", ".h"))
    }
    assert want and want <= names, sorted(want - names)
