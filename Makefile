# EvoSpikeNet — every set-up step lives here; a fresh clone needs only `make demo` and `make test`.
#
#   make demo        the main job (installs first)
#   make test        create .venv/, install everything the tests use, run the tests (not the `slow` ones)
#   make test-slow   the longer checks (marker `slow`)
#   make bench       peer benchmarks (installs the benchmark peers first)
#   make lint        ruff check + format check

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Our constraints file replaces pip's global one (it pins torch to the CPU wheel and keeps the torchvision cap).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
EXTRAS ?= lm,train,serve,export,dev
PYTEST_ARGS ?=

.PHONY: install demo test test-slow bench lint format clean

$(VENV)/.installed: pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "EvoSpikeNet needs Python >= 3.10 (set PYTHON=...)"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(PY) -m evospikenet.demo --out artifacts/demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench: install
	bash scripts/setup_bench.sh
	$(PY) benchmarks/core.py --quick

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) artifacts .pytest_cache
