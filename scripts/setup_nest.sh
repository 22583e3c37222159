#!/usr/bin/env bash
# Build .venv-nest: NEST 3.10 (the PyPI wheel nest-simulator) for the PD14 reference, scripts/pd14_nest.py.
# Its own venv: the wheel brings its own numpy/matplotlib pins and the project's torch constraints do not
# apply there. Nothing of the project is installed in it; benchmarks and tests call it by subprocess.
# Idempotent: a venv that already imports nest 3.10 is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${NEST_VENV:-.venv-nest}"
PY311="${PY311:-python3.11}"
command -v "$PY311" >/dev/null || PY311=python3
if "$VENV/bin/python" -c 'import nest, sys; sys.exit(nest.__version__ != "3.10.0")' >/dev/null 2>&1; then
  echo "nest venv ready: $VENV"
  touch "$VENV/.installed"
  exit 0
fi
"$PY311" -c 'import sys; assert sys.version_info[:2] >= (3, 10), "NEST 3.10 wheels need Python >= 3.10"'
[ -x "$VENV/bin/python" ] || "$PY311" -m venv "$VENV"
export PIP_CONSTRAINT=
"$VENV/bin/python" -m pip install --upgrade pip >/dev/null
# Versions pinned to a set seen to install and run together on Python 3.11 (x86_64).
"$VENV/bin/python" -m pip install "nest-simulator==3.10.0" "numpy==2.4.6" "matplotlib==3.11.2" "cython==3.3.1"
"$VENV/bin/python" -c 'import nest; assert nest.__version__ == "3.10.0", nest.__version__; print("nest ok:", nest.__version__)' 2>&1 | tail -n 1
touch "$VENV/.installed"
