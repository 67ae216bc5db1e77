# The two set-up commands: `make run` and `make test`. Everything else is a helper of those.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
NPM ?= npm
NODE_BIN := contract/node_modules/.bin
# The contract checks run offline: no usage reports, no update checks.
export REDOCLY_TELEMETRY := off
export REDOCLY_SUPPRESS_UPDATE_NOTICE := true

.PHONY: run test install install-dev lint types contract deploy-check unit openapi migrate-check bench bench-hardening bench-jobs bench-webhooks bench-exports bench-writes clean

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

# The Node tools of the contract checks, at the versions of the lock file. No install
# scripts: none of the tools needs one (the one there only reports downloads).
contract/node_modules/.installed: contract/package.json contract/package-lock.json
	$(NPM) ci --prefix contract --ignore-scripts --no-audit --no-fund
	touch $@

## Start the API and the worker on the embedded default (or on NSCL_DATABASE_URL / NSCL_REDIS_URL).
run: install
	$(BIN)/nscl serve --host $(HOST) --port $(PORT)

## Lint, type-check, check the layering, then run every test against real PostgreSQL and Redis.
test: install-dev lint types deploy-check contract
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

## Check openapi.json with the tools of the teams who build on it (docs/contract.md): both
## linters with no finding, a TypeScript client that compiles, a Python client generated
## without a warning (tests/contract drives it against the service).
contract: install-dev contract/node_modules/.installed
	$(NODE_BIN)/spectral lint --ruleset .spectral.yaml --fail-severity=warn openapi.json
	$(NODE_BIN)/redocly lint --config redocly.yaml openapi.json
	rm -rf contract/generated
	@# Required means `required` alone: a default makes a field optional in a request body.
	$(NODE_BIN)/openapi-typescript openapi.json --default-non-nullable false \
		--output contract/generated/schema.ts
	$(NODE_BIN)/tsc --project contract
	$(BIN)/openapi-python-client generate --path openapi.json --meta none --overwrite \
		--config contract/python-client.yaml --fail-on-warning \
		--output-path .contract/python-client/nscl_client

## Rewrite the committed OpenAPI document from the code.
openapi: install
	$(BIN)/nscl openapi > openapi.json

# wrk is the load generator: without it the figures would be the Python generator's own.
# The series at 1×, 3× and 10× the national scale takes 35–45 minutes on a quiet machine
# (10× needs about 6 GB of disk); `make bench BENCH_ARGS="--scale 1"` is the 4-minute run.
BENCH_ARGS ?= --scale 1,3,10
bench: install-dev
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m bench.rollups $(BENCH_ARGS)

## /health latency at rest, during four worst-case uploads and during bad token requests.
bench-hardening: install-dev
	$(BIN)/python -m bench.hardening

## Kill workers mid-rebuild on a private PostgreSQL and Redis: seconds until the job succeeds.
bench-jobs: install-dev
	$(BIN)/python -m bench.jobs_recovery

## Webhooks: events per second to a loopback receiver (one worker), outbox lag under a burst.
bench-webhooks: install-dev
	$(BIN)/python -m bench.webhooks

## The audit trail exported as CSV and XLSX, 10,000 and 100,000 events: seconds and the
## server's peak memory (flat: it does not grow with the events).
bench-exports: install-dev
	$(BIN)/python -m bench.exports

## Write paths: draft PUTs with If-Match under wrk, a 20,000-row import (seconds, memory),
## /health while four imports run.
bench-writes: install-dev
	command -v wrk >/dev/null || apt-get install -y wrk
	$(BIN)/python -m bench.writes

clean:
	rm -rf $(VENV) $(TOOLS) .nscl .pytest_cache .mypy_cache .ruff_cache .contract contract/node_modules contract/generated
