# Two commands do all set-up, and both are idempotent:
#   make demo   - create .venv if missing, install, run the pipeline against the bundled sample IMDb server
#   make test   - create .venv if missing, install, run the tests
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The CPU build of torch on this kind of machine; on a GPU host set TORCH_SPEC to a CUDA build.
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=

export DAGSTER_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE := 1

.PHONY: install demo test bench clean-demo

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet "$(TORCH_SPEC)" -e '.[dev]'
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/mpds demo

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) benchmarks/bench_parse.py
	$(PY) benchmarks/bench_crawl.py
	$(PY) benchmarks/bench_hostile_bodies.py

clean-demo:
	rm -rf data/demo
