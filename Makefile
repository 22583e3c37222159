# EvoSpikeNet — every set-up step lives here; a fresh clone needs only `make demo` and `make test`.
#
#   make demo        the main job (installs first): simulate a plastic network on the integer core, train the
#                    spiking LM's demo recipe (about two minutes) and print a sample, save it, serve it on
#                    127.0.0.1, send one request of each kind, stop
#   make test        create .venv/, install everything the tests use, run every test (slow ones included:
#                    the whole suite fits in about 15 minutes here)
#   make test-fast   everything but the `slow` marker
#   make test-slow   only the longer checks (marker `slow`)
#   make serve       the Ray Serve application and Insight UI on 127.0.0.1 until interrupted
#   make bench       peer benchmarks (installs the benchmark peers first, NEST among them)
#   make browser-deps  Debian's Chromium for the browser tests (root; apt)
#   make lint        ruff check + format check
#   make lock        re-resolve every dependency into requirements.lock (a fresh venv, then pip freeze)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Our constraints file replaces pip's global one (it pins torch to the CPU wheel and keeps the torchvision cap).
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt
# Every other dependency is installed at the version resolved in the lock file (make lock writes it).
LOCK := requirements.lock
EXTRAS ?= lm,train,serve,export,dev
PYTEST_ARGS ?=

HF_ORG ?=
PYTHON310 ?= $(shell ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.10.*/bin/python 2>/dev/null | sort -V | tail -n 1)

.PHONY: lock release lava-venv nest-venv olah-venv ecg sst2 sst2-twin multimodal bench-setup bench-full test-fast install demo demo-core demo-train demo-serve serve test test-slow bench browser-deps lint format clean

$(VENV)/.installed: pyproject.toml constraints.txt $(LOCK)
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 10), "EvoSpikeNet needs Python >= 3.10 (set PYTHON=...)"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.13.0"
	$(PY) -m pip install -c $(LOCK) -e ".[$(EXTRAS)]"
	touch $@

lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/python -m pip install "torch==2.13.0"
	.venv-lock/bin/python -m pip install -e ".[lm,train,serve,export,dev]"
	{ sed -n '1,3p' $(LOCK); .venv-lock/bin/python -m pip freeze --all --exclude-editable | grep -v '^torch==\|^pip==' | sed 's/+cpu$$//'; } > $(LOCK).new
	mv $(LOCK).new $(LOCK) && rm -rf .venv-lock

install: $(VENV)/.installed

demo: demo-core demo-train demo-serve

demo-core: install
	$(PY) -m evospikenet.demo --out artifacts/demo

demo-train: install
	OMP_NUM_THREADS=1 $(PY) -m training.cli fit --config recipes/lm/demo.yaml

demo-serve: install
	$(PY) -m serving.demo --model artifacts/spiking_lm_debug $(if $(wildcard artifacts/sst2/student_distilled/config.json),--sentiment artifacts/sst2/student_distilled)

serve: install
	$(PY) -m serving.cli $(if $(wildcard artifacts/spiking_lm_debug/config.json),--model artifacts/spiking_lm_debug) $(SERVE_ARGS)

release: install
	$(VENV)/bin/evospikenet-hub release --org $(HF_ORG)

# The Loihi toolchain (lava-nc) needs Python 3.10: its own venv, driven from hub/lava by subprocess.
lava-venv: .venv-lava/.installed
.venv-lava/.installed: scripts/setup_lava.sh
	PYTHON310=$(PYTHON310) bash scripts/setup_lava.sh

# NEST 3.10 (PyPI wheel) in its own venv: the PD14 reference simulator (scripts/pd14_nest.py) by subprocess.
nest-venv: .venv-nest/.installed
.venv-nest/.installed: scripts/setup_nest.sh
	bash scripts/setup_nest.sh

# olah, a Hub mirror, in its own venv: the download tests pull through it over 127.0.0.1.
olah-venv:
	test -x .venv-olah/bin/olah-cli || ($(PYTHON) -m venv .venv-olah && PIP_CONSTRAINT= .venv-olah/bin/pip install olah==0.5.4)

# ECG arrhythmia on MIT-BIH: trains the spiking classifier, its float twin and ResNet-18-1D on the first 80 % of
# every record, scores them once on the last 20 % (artifacts/ecg/results.json, docs/ecg.md).
ecg: install
	OMP_NUM_THREADS=1 $(PY) -m training.ecg_run --out artifacts/ecg

# SST-2 sentiment: fine-tunes the MiniLM teacher, labels the training set, trains the spiking student from
# scratch and with distillation, evaluates both on dev (artifacts/sst2/).
sst2: install
	HF_HUB_OFFLINE=1 $(PY) -m training.sst2_run

# make sst2 plus the distilled student's float twin (the ANN baseline of the same sizes, about 8 min more).
sst2-twin: install
	HF_HUB_OFFLINE=1 $(PY) -m training.sst2_run --float-twin

# The multimodal spiking LM on digits and MIT-BIH beats (compares with artifacts/ecg/model when present).
multimodal: install
	OMP_NUM_THREADS=1 $(PY) -m training.multimodal_run --recipe recipes/multimodal/full.yaml --out artifacts/multimodal

browser-deps:
	bash scripts/install_chromium.sh

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

test-slow: install
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

bench-setup: install nest-venv
	bash scripts/setup_bench.sh

bench: bench-setup
	$(PY) benchmarks/core.py --quick

bench-full: bench-setup
	$(PY) benchmarks/core.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf $(VENV) artifacts .pytest_cache
