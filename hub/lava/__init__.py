"""Loihi 2 through Lava: ``bridge.py`` (export files, the subprocess bridge), ``ecg.py`` (the trained ECG net's
Loihi form and its verification), ``cost.py`` (what it costs on the chip) run in the main venv;
``runner.py`` runs inside ``.venv-lava``."""
