# Two commands do all the setup on a fresh machine: `make demo` and `make test`.
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PYTHON ?= python3

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: a bare `torch` pulls a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[rl,ray,dev]"
	touch $(STAMP)

.PHONY: install demo test test-fast lint bench results lab notebooks prometheus
install: $(STAMP)

# The live tests prime a controller from a real Prometheus server: Debian's package (needs root, as CI runs).
prometheus:
	@command -v prometheus >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
		apt-get install -y -q --no-install-recommends prometheus >/dev/null; } || { echo "make test needs a \
	prometheus binary on PATH: apt-get install prometheus (as root), or install one by hand" >&2; exit 1; }

demo: $(STAMP)
	$(BIN)/autotune whatif --scenario default --out results/default.csv --plot results/default.png

lint: $(STAMP)
	$(BIN)/ruff check .

test: $(STAMP) prometheus
	$(BIN)/ruff check .
	RAY_AUTH_MODE=disabled $(BIN)/pytest -q

# The inner loop: everything but real Ray/Prometheus (integration) and training (slow).
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q -m "not integration and not slow"

# docs/results.md and the README's tables, from the committed results in bench/results/.
results: $(STAMP)
	$(BIN)/python -m autotune.benchmark.report

# JupyterLab is the `lab` extra, not part of the default install.
lab: $(STAMP)
	$(BIN)/pip install -q -e ".[lab]"
	$(BIN)/jupyter lab notebooks/

# Re-execute the notebooks and save them with their outputs and figures (what a code host shows).
notebooks: $(STAMP)
	$(BIN)/python notebooks/execute.py

bench: $(STAMP)
	$(BIN)/python bench/sim_throughput.py
