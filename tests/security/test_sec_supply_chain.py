"""Item 10: the dependencies are pinned. torch by constraints.txt (>= 2.6: older releases run code from a
crafted checkpoint even with ``weights_only=True``), everything else by requirements.lock, which ``make
install`` and the Dockerfile both install through; Gradio's analytics are off."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ("lm", "train", "serve", "export", "dev")


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-\[\]]+)==([^\s;]+)", line)
        assert m, f"{path.name}: not an exact pin: {line!r}"
        pins[canonicalize_name(m.group(1))] = m.group(2)
    return pins


def _version(v: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", v.split("+")[0])[:2])


def _installed_tree() -> set[str]:
    """Every distribution ``evospikenet[EXTRAS]`` needs here, recursively (markers evaluated)."""
    seen, todo = set(), [("evospikenet", set(EXTRAS))]
    while todo:
        name, extras = todo.pop()
        dist = metadata.distribution(name)
        for raw in dist.requires or []:
            req = Requirement(raw)
            env_ok = [req.marker is None or req.marker.evaluate({"extra": e}) for e in (extras or {""})]
            if not any(env_ok):
                continue
            key = canonicalize_name(req.name)
            if key == "evospikenet":
                todo.append(("evospikenet", set(req.extras)))
                continue
            if (key, frozenset(req.extras)) in seen:
                continue
            seen.add((key, frozenset(req.extras)))
            todo.append((req.name, set(req.extras)))
    return {k for k, _ in seen}


def test_lock_pins_every_dependency_and_matches_this_environment():
    lock = _pins(ROOT / "requirements.lock")
    assert "torch" not in lock, "torch is pinned by constraints.txt alone"
    missing = sorted(_installed_tree() - set(lock) - {"torch"})
    assert not missing, f"not in requirements.lock (run `make lock`): {missing}"
    for name, version in lock.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue  # a package another platform needs
        assert have.split("+")[0] == version, (
            f"{name} {have} installed, {version} locked (run `make install`)"
        )


def test_torch_is_pinned_at_or_above_2_6():
    text = (ROOT / "constraints.txt").read_text()
    m = re.search(r"^torch==(\S+)$", text, re.M)
    assert m and _version(m.group(1)) >= (2, 6), m
    import torch

    assert _version(torch.__version__) >= (2, 6)


def test_make_and_docker_install_through_the_lock_and_the_constraints():
    make = (ROOT / "Makefile").read_text()
    assert "export PIP_CONSTRAINT := $(CURDIR)/constraints.txt" in make
    install = [ln for ln in make.splitlines() if "pip install" in ln and "-e" in ln and "$(EXTRAS)" in ln]
    assert install and all("-c $(LOCK)" in ln for ln in install) and "LOCK := requirements.lock" in make
    docker = (ROOT / "Dockerfile").read_text()
    assert "PIP_CONSTRAINT=/opt/evospikenet/constraints.txt" in docker
    assert "COPY pyproject.toml README.md constraints.txt requirements.lock" in docker
    pip = [ln for ln in docker.splitlines() if "pip install" in ln]
    assert pip and all("-c requirements.lock" in ln for ln in pip)
    assert "GRADIO_ANALYTICS_ENABLED=False" in docker and "USER evospikenet" in docker
    base = re.search(r"^FROM (\S+)", docker, re.M).group(1)
    torch_base = re.match(r"pytorch/pytorch:(\d+\.\d+)", base)
    assert torch_base is None or _version(torch_base.group(1)) >= (2, 6), base


def test_gradio_analytics_are_off_in_the_ui():
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_ANALYTICS_ENABLED"}
    code = "import serving.ui, os; print(os.environ['GRADIO_ANALYTICS_ENABLED'])"
    r = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr[-2000:]
