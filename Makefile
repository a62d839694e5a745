# Two commands set up everything on a fresh Debian machine with Python 3.11:
#   make reproduce   — venv + system packages + embedded data, then the papermill batch (quick profile)
#   make test        — the same setup, then the whole test suite, notebooks included (smoke profile)
# Both are idempotent: the venv is rebuilt only when requirements.lock or pyproject.toml change.

SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.bimodal-installed
# FluidR3 renders SynthMUSIC-21; csound's sf_GMbank is a second SoundFont for the surrogate's corpus (4 MB)
SYS_PACKAGES := fluidsynth libfluidsynth3 fluid-soundfont-gm csound-soundfont
PROFILE ?= quick
# notebooks run in parallel after 00 and 01 (one per core; each kernel gets its share of the cores)
JOBS ?= 0  # 0 = one per CPU this process may use (affinity and cgroup quota)

# Never touch the network for models; headless plotting.
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export MPLBACKEND := Agg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: setup system-deps venv data lint test tree-snapshot test-fast reproduce benchmarks clean-runs help

help:
	@echo "make reproduce  # set up, then run every notebook (quick profile) and render the tables"
	@echo "make test       # set up, then run the test suite and the notebooks (smoke profile)"

setup: system-deps venv

system-deps:
	@if [ -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] && [ -f /usr/share/sounds/sf2/sf_GMbank.sf2 ] && ldconfig -p | grep -q libfluidsynth.so.3; then \
		echo "system packages: present ($(SYS_PACKAGES))"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "system packages: installing $(SYS_PACKAGES)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYS_PACKAGES); \
	else \
		echo "Missing system packages. Run:  sudo apt-get install -y $(SYS_PACKAGES)"; exit 1; \
	fi

venv: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	@start=$$(date +%s); fresh=0; \
	test -x $(PY) || { $(PYTHON) -m venv $(VENV) && fresh=1; }; \
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock && \
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . && \
	if [ $$fresh = 1 ]; then $(PY) -m bimodal report --time "venv setup from scratch (pip install -r requirements.lock)" \
	  "make setup" $$(( $$(date +%s) - start )); fi  # an update of an existing venv is not a setup time
	@touch $@

data: setup
	$(PY) -m bimodal data build --profile $(PROFILE)

# ruff (pinned in requirements.lock, configured in pyproject.toml): lint, and the layout the formatter would write
lint: setup
	$(PY) -m ruff check . && $(PY) -m ruff format --check .

# The smoke data is built first (loading never renders data). tests/test_notebooks.py executes every notebook with
# papermill in the smoke profile into outputs/notebooks-smoke; nbval then re-runs those executed copies (their
# injected parameters keep them in the smoke profile).
# One torch thread per process (kernels inherit it): on a loaded 2-core machine two threads made smoke runs 4x slower.
test: tree-snapshot setup lint
	@start=$$(date +%s); export OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1}; \
	$(PY) -m bimodal data build --profile smoke --no-record && \
	$(PY) -m pytest -v --durations=15 tests -p no:cacheprovider && \
	BIMODAL_RESULTS=outputs/results-smoke BIMODAL_FIGURES=outputs/figures-smoke \
	  $(PY) -m pytest -v --durations=10 --nbval-lax --nbval-current-env --nbval-cell-timeout=600 -p no:cacheprovider outputs/notebooks-smoke && \
	$(PY) -m bimodal report --time "test suite + notebooks (after setup)" "make test" $$(( $$(date +%s) - start )) && \
	$(PYTHON) tests/tracked_tree.py check outputs/tree-before.json

# the state of the files git tracks before `make test` (checked after it: the run must leave them alone)
tree-snapshot:
	@$(PYTHON) tests/tracked_tree.py save outputs/tree-before.json

test-fast: setup
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -q tests -m "not slow" -p no:cacheprovider

reproduce: setup
	@start=$$(date +%s); \
	$(PY) -m bimodal reproduce --profile $(PROFILE) -j $(JOBS); status=$$?; \
	$(PY) -m bimodal report --time "notebook batch, $(PROFILE) profile (after setup)" "make reproduce" \
	  $$(( $$(date +%s) - start )); $(PY) -m bimodal report; exit $$status

benchmarks: setup
	$(PY) benchmarks/unet.py && $(PY) benchmarks/sdr.py && $(PY) benchmarks/embedding.py

clean-runs:
	rm -rf runs outputs
