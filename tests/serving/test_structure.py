"""The shape of ``serving/``: no import cycle between its files, no file over 400 lines, and the UI package
free of Ray (it runs alone against any server)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PKG = ROOT / "serving"


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Modules ``path`` imports (absolute names), at any depth of the file (lazy imports count too)."""
    mod = _module(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}  # `from . import x` names a module
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PKG.rglob("*.py")}
    return {m: {i for i in _imports(p) if i in files and i != m} for m, p in files.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n) :] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle_between_serving_files():
    graph = _graph()
    assert len(graph) > 20 and "serving.ui.app" in graph["serving.ui"]
    assert _cycle(graph) is None, " -> ".join(_cycle(graph))


def test_a_cycle_is_found_when_there_is_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_ui_package_reaches_no_ray():
    graph = _graph()
    seen, todo = set(), [m for m in graph if m.startswith("serving.ui")]
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo.extend(graph[m])
    assert not seen & {"serving.deployments", "serving.cli", "serving.raynet"}, seen
    for m in seen:
        path = ROOT / (m.replace(".", "/") + ".py")
        path = path if path.exists() else ROOT / m.replace(".", "/") / "__init__.py"
        assert not any(i == "ray" or i.startswith("ray.") for i in _imports(path)), m


def test_no_file_over_400_lines():
    files = [*PKG.rglob("*.py"), *(ROOT / "tests" / "serving").glob("*.py"), *(ROOT / "tests" / "security").glob("*.py"),
             ROOT / "benchmarks" / "serve.py"]  # fmt: skip
    long = {str(f.relative_to(ROOT)): n for f in files if (n := len(f.read_text().splitlines())) > 400}
    assert not long, long
