"""Lava (Loihi 2) export: bridge.py runs in the main venv, runner.py inside .venv-lava."""
