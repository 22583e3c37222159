#!/usr/bin/env bash
# Build .venv-lava: a Python 3.10 venv with lava-nc (Lava needs Python < 3.11).
# The interpreter is $PYTHON310, default: the newest 3.10 that pyenv provides.
# Our code drives this venv through a subprocess (hub/lava/runner.py); nothing else of the project runs in it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${LAVA_VENV:-.venv-lava}"
if [ -z "${PYTHON310:-}" ]; then
  root="$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"
  PYTHON310="$(ls -d "$root"/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -n 1 || true)"
fi
if [ -z "${PYTHON310:-}" ] || ! "$PYTHON310" -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
  echo "setup_lava.sh: no Python 3.10 found (set PYTHON310=/path/to/python3.10)" >&2
  exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON310" -m venv "$VENV"
fi
# lava-nc 0.10 pins numpy < 2 and scipy; our constraints file (torch pins) does not apply to this venv.
PIP_CONSTRAINT= "$VENV/bin/python" -m pip install --upgrade pip >/dev/null
PIP_CONSTRAINT= "$VENV/bin/python" -m pip install "lava-nc==0.10.0"
"$VENV/bin/python" -c 'import lava.magma.core.run_configs as r; print("lava ok:", r.__file__)'
touch "$VENV/.installed"
