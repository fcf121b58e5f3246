# Two entry points (README quick start): `make repro` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup repro test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: a looser request would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

setup: $(STAMP)

repro: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" dvc repro

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto   # pytest-xdist: one worker per core

bench: $(STAMP)
	$(BIN)/python benchmarks/model_throughput.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
