# Two entry points (README quick start): `make repro` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: setup repro test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: a looser request would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $(STAMP)

# The test tools (pytest, ruff, scikit-survival, Ray) only where tests run: ~30 s of a cold
# `make repro` on 2 cores.
$(DEV_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(DEV_STAMP)

setup: $(DEV_STAMP)

# compileall: where PYTHONDONTWRITEBYTECODE is set (some CI images), each of the ~120 stage
# processes would otherwise compile the project's modules again (~0.3 s CPU each).
repro: $(STAMP)
	$(BIN)/python -m compileall -q amc stages
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto   # pytest-xdist: one worker per core

bench: $(STAMP)
	$(BIN)/python benchmarks/model_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
