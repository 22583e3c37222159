#!/usr/bin/env bash
# Install the peer simulators that benchmarks/core.py compares against; idempotent (safe to rerun).
#   - norse and spikingjelly go into the main venv with --no-deps (their pins would pull another torch);
#     loguru is the one runtime dependency they need beyond what the venv already has.
#   - Spyx 1.0 (JAX, Flax NNX) installs beside torch in the main venv: none of its dependencies pins torch
#     or moves a package the venv already has.
#   - Brian2 2.9 does not import with numpy 2.4 (ndarray.ptp), so it lives in its own Python 3.11 venv
#     (.venv-brian2) with a numpy it supports and Cython for its runtime code generation;
#     scripts/brian2_cuba.py runs there as a subprocess.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
BVENV="${BVENV:-$ROOT/.venv-brian2}"
PY311="${PY311:-python3.11}"
export PIP_CONSTRAINT="$ROOT/constraints.txt"

if ! "$VENV/bin/python" -c "import norse, spikingjelly.activation_based, loguru" 2>/dev/null; then
    "$VENV/bin/pip" install --no-deps "norse==1.1.0" "spikingjelly==2.0.0"
    "$VENV/bin/pip" install loguru
fi

if ! "$VENV/bin/python" -c "import spyx, jax" 2>/dev/null; then
    "$VENV/bin/pip" install "spyx==1.0.0"
fi

if ! "$BVENV/bin/python" -c "import brian2, Cython" 2>/dev/null; then
    [ -x "$BVENV/bin/python" ] || "$PY311" -m venv "$BVENV"
    # brian2's own venv has no torch, so the repo constraints (torch pins) do not apply here
    PIP_CONSTRAINT= "$BVENV/bin/pip" install "brian2==2.9.0" "numpy<2.3" cython setuptools
fi
echo "bench peers ready: $VENV (norse, spikingjelly, spyx), $BVENV (brian2)"
