# The two set-up commands: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test install install-dev lint types deploy-check unit openapi migrate-check bench bench-hardening bench-jobs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installed-marker files make re-runs instant while following changes to pyproject.toml.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[embedded]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Start the API and the worker on the embedded default (or on NSCL_DATABASE_URL / NSCL_REDIS_URL).
run: install
	$(BIN)/nscl serve --host $(HOST) --port $(PORT)

## Lint, type-check, check the layering, then run every test against real PostgreSQL and Redis.
test: install-dev lint types deploy-check
	$(BIN)/pytest

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

types: install-dev
	$(BIN)/mypy

# checkov lives in a virtualenv of its own: its dependencies would constrain the service's.
TOOLS ?= .venv-tools
$(TOOLS)/.installed: deploy/tools.txt
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet -r deploy/tools.txt
	touch $@

## Dockerfile lint, Kubernetes schema validation and security scan, all offline.
deploy-check: install-dev $(TOOLS)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python deploy/check.py --checkov $(TOOLS)/bin/checkov

## Rewrite the committed OpenAPI document from the code.
openapi: install
	$(BIN)/nscl openapi > openapi.json

bench: install-dev
	$(BIN)/python -m bench.rollups

## /health latency at rest, during four worst-case uploads and during bad token requests.
bench-hardening: install-dev
	$(BIN)/python -m bench.hardening

## Kill workers mid-rebuild on a private PostgreSQL and Redis: seconds until the job succeeds.
bench-jobs: install-dev
	$(BIN)/python -m bench.jobs_recovery

clean:
	rm -rf $(VENV) $(TOOLS) .nscl .pytest_cache .mypy_cache .ruff_cache
