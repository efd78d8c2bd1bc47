# The documented entry points. Every target creates the virtual environment it needs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

CHINWAG_DATA_DIR  ?= .chinwag
CHINWAG_HTTP_PORT ?= 8080
export CHINWAG_DATA_DIR CHINWAG_HTTP_PORT

.PHONY: up test lint fmt bench bench-features soak docs manifests clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## up: run chinwag on the embedded NATS and PostgreSQL (Ctrl-C stops it)
up: $(STAMP)
	$(BIN)/chinwag up --data-dir "$(CHINWAG_DATA_DIR)" --port "$(CHINWAG_HTTP_PORT)"

## test: the whole suite against real nats-server and PostgreSQL
test: $(STAMP)
	$(BIN)/pytest

## bench: the benchmark scenarios on a fresh embedded system (a few minutes); BENCH_ARGS=--quick
bench: $(STAMP)
	$(BIN)/chinwag bench $(BENCH_ARGS)

## bench-features: what search, unread counts and the search index cost (about a minute)
bench-features: $(STAMP)
	$(BIN)/python -m services.bench.features

## soak: fault runs at length, a memory soak and the cost of durability (~15 min); SOAK_ARGS=--minutes 2
soak: $(STAMP)
	$(BIN)/chinwag soak $(SOAK_ARGS)

## lint: ruff, mypy --strict and yamllint
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/yamllint --strict .

## manifests: render the Helm chart into deploy/kustomize/ (after changing the chart)
manifests: $(STAMP)
	$(BIN)/python deploy/render.py

## docs: regenerate the README's settings table from libs/settings.py
docs: $(STAMP)
	$(BIN)/chinwag config --write README.md

fmt: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
