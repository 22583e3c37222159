"""Tracked text speaks of the software only.

README, docs, code comments, recipes and scripts describe what the software does and how a figure is
measured; how a result was reached belongs in commit messages. This test reads every file ``git ls-files``
lists, except ``tests/`` (which must spell the patterns out), binary files and lock files, and fails naming
``file:line`` for:

* a run-diary heading: an ordinal (a word such as "twelfth" or "twenty-first", or a number such as "3rd")
  followed by "session", or "session" followed by a number ("session 12");
* the word "engineer" or "engineers";
* an issue number ("issue 31", "issue #31").

Matches may span a line break (Markdown wraps lines), so the text is searched whole and the line is that of
the match's first character.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_UNITS = "first second third fourth fifth sixth seventh eighth ninth".split()
_ORDINAL_WORDS = (
    _UNITS
    + (
        "tenth eleventh twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth "
        "twentieth thirtieth fortieth fiftieth sixtieth seventieth eightieth ninetieth hundredth"
    ).split()
)
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
# compound ordinals first, so "twenty-first" is matched whole
_ORDINAL = (
    rf"(?:(?:{'|'.join(_TENS)})[-\s]?(?:{'|'.join(_UNITS)})|{'|'.join(_ORDINAL_WORDS)}|\d+(?:st|nd|rd|th))"
)

PATTERNS: dict[str, re.Pattern[str]] = {
    "run-diary heading": re.compile(rf"\b{_ORDINAL}\s+sessions?\b|\bsessions?\s+#?\d+\b", re.IGNORECASE),
    "the word 'engineer'": re.compile(r"\bengineers?\b", re.IGNORECASE),
    "an issue number": re.compile(r"\bissues?\s+#?\d+\b", re.IGNORECASE),
}

# dependency pins written by tools, not prose
LOCK_NAMES = {"requirements.lock", "poetry.lock", "uv.lock", "Pipfile.lock", "package-lock.json", "yarn.lock"}


def find_violations(text: str) -> list[tuple[int, str, str]]:
    """``(line, what, matched text)`` for every forbidden phrase in ``text``, in order of position."""
    hits = []
    for what, pattern in PATTERNS.items():
        for m in pattern.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            hits.append((m.start(), line, what, " ".join(m.group(0).split())))
    return [(line, what, found) for _, line, what, found in sorted(hits)]


def _is_checked(rel: str) -> bool:
    """Tracked paths this test reads: everything outside ``tests/`` that is not a lock file."""
    name = rel.rsplit("/", 1)[-1]
    return not rel.startswith("tests/") and name not in LOCK_NAMES and not name.endswith(".lock")


def _read_text(path: Path) -> str | None:
    """The file as UTF-8 text, or ``None`` for a binary file (a NUL byte, or not UTF-8)."""
    data = path.read_bytes()
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def scan_repository(root: Path) -> list[str]:
    """``"path:line: what ('matched text')"`` for every violation in the tracked text files under ``root``."""
    out = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z"], capture_output=True, check=True, timeout=60
    ).stdout.decode("utf-8", errors="surrogateescape")
    problems = []
    for rel in sorted(p for p in out.split("\0") if p and _is_checked(p)):
        path = root / rel
        # links, submodules and files deleted in the working tree are not text of this repository
        if path.is_symlink() or not path.is_file():
            continue
        text = _read_text(path)
        if text is None:
            continue
        problems += [f"{rel}:{line}: {what} ({found!r})" for line, what, found in find_violations(text)]
    return problems


def _git_or_skip(root: Path) -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    probe = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "--is-inside-work-tree"], capture_output=True, timeout=60
    )
    if probe.returncode != 0 or probe.stdout.strip() != b"true":
        pytest.skip(f"{root} is not a git work tree (an unpacked release?)")


def test_tracked_text_speaks_of_the_software_only():
    _git_or_skip(ROOT)
    problems = scan_repository(ROOT)
    assert not problems, (
        "tracked text outside tests/ carries run-diary wording (history belongs in commit messages):\n"
        + "\n".join(problems)
    )


@pytest.mark.parametrize(
    "text",
    [
        "## Twelfth session (2026-11-28): leak, rate budget",
        "the 3rd session found",
        "measured in session 12",
        "see Session #4",
        "the eleventh\nsession's rerun",
        "Twenty-first session",
        "the twenty first sessions",
        "for the next engineer",
        "Engineers agree",
        "a reverse-engineer",
        "as issue 31 asks",
        "Issue #7",
    ],
)
def test_matcher_flags_diary_wording(text):
    assert find_violations(text), text


@pytest.mark.parametrize(
    "text",
    [
        'sess = ort.InferenceSession("model.onnx")',
        "async with aiohttp.ClientSession(base_url=url) as c:",
        "/tmp/ray/session_latest",
        "a session token for the Hub",
        "feature engineering is not needed",
        "the first sessions_dir entry",
        "the 10th percentile of the second run",
        "this issue is refused with a clear message",
        "engineered features",
    ],
)
def test_matcher_leaves_software_text_alone(text):
    assert find_violations(text) == [], text


def test_matcher_reports_the_line_of_each_match():
    text = "intro\n## Fifth session: results\nok\nthe next\nengineer\n"
    assert find_violations(text) == [
        (2, "run-diary heading", "Fifth session"),
        (5, "the word 'engineer'", "engineer"),
    ]


def test_scan_reads_tracked_text_and_skips_tests_binaries_and_locks(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    (tmp_path / "docs").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "README.md").write_text("# Tool\n\nIt runs.\n")
    (tmp_path / "docs" / "guide.md").write_text("How to run it.\n\n### Fourteenth session (2026-11-29)\n")
    (tmp_path / "tests" / "test_x.py").write_text("# the fourteenth session\n")  # tests may name it
    (tmp_path / "requirements.lock").write_text("engineer==1.0\n")  # a lock file is not prose
    (tmp_path / "blob.bin").write_bytes(b"\0\x01 Fourteenth session")  # binary
    (tmp_path / "untracked.md").write_text("Fourteenth session\n")  # not tracked, not read
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True, timeout=60)
    subprocess.run(
        ["git", "-C", str(tmp_path), "add", "README.md", "docs", "tests", "requirements.lock", "blob.bin"],
        check=True,
        timeout=60,
    )
    assert scan_repository(tmp_path) == [
        "docs/guide.md:3: run-diary heading ('Fourteenth session')",
    ]
