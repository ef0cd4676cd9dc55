# Every target does its own set-up: a fresh machine needs only python3 (≥ 3.11) and make.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 0.0.0.0
PORT   ?= 8000
DATA   ?= ../shared/data
DOCKER ?= docker

.DEFAULT_GOAL := help
.PHONY: help serve system-deps test lint audit lock proofs format train-letters train-digits train-graphemes image compose clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.serve: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[cpu]'
	touch $@

$(VENV)/.dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[cpu,train,dev]'
	touch $@ $(VENV)/.serve

serve: $(VENV)/.serve ## install the service and run it on the committed models (http://localhost:8000/docs)
	HWR_HOST=$(HOST) HWR_PORT=$(PORT) $(BIN)/python -m app

system-deps: ## Debian packages for the Bengali renderer (needs root + apt-get; else prints a notice)
	./scripts/install-system-deps.sh

test: $(VENV)/.dev system-deps ## install everything and run lint + the test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: $(VENV)/.dev ## ruff lint + format check, mypy on contract/ and app/
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy contract app

audit: $(VENV)/.dev ## pip-audit: known vulnerabilities in the installed dependencies (as CI runs it)
	$(BIN)/pip-audit --skip-editable --progress-spinner off

# The serving images' dependencies, every package pinned with its hashes (Dockerfile and
# Dockerfile.gpu install them with --require-hashes). One universal resolution per ONNX Runtime
# build, valid on Python 3.11 and 3.12 (the CPU and GPU images), from PyPI only, so the hashes are
# PyPI's whatever index this machine is configured with. Rerun after changing the dependencies in
# pyproject.toml (tests/deploy checks that the two agree).
UV_VERSION ?= 0.13.9
LOCK_FLAGS := --universal --python-version 3.11 --generate-hashes --no-config \
	--index-url https://pypi.org/simple --custom-compile-command "make lock" --quiet
lock: | $(BIN)/python ## recompile requirements/serve-{cpu,gpu}.txt (hash-pinned) from pyproject.toml
	$(BIN)/pip install --quiet uv==$(UV_VERSION)
	$(BIN)/uv pip compile pyproject.toml --extra cpu --extra postgres $(LOCK_FLAGS) -o requirements/serve-cpu.txt
	$(BIN)/uv pip compile pyproject.toml --extra gpu --extra postgres $(LOCK_FLAGS) -o requirements/serve-gpu.txt

proofs: $(VENV)/.dev ## the hardening proofs of docs/reliability.md (~9 min on 2 cores: 10k bodies, 2x2 min schemathesis, 60 s load, image + v2 fuzz, connections, memory)
	$(BIN)/python -m bench.proofs.fuzz_bodies
	$(BIN)/python -m bench.proofs.structure_fuzz
	$(BIN)/python -m bench.proofs.v2_fuzz
	$(BIN)/python -m bench.proofs.schema_fuzz
	$(BIN)/python -m bench.proofs.load_test
	$(BIN)/python -m bench.proofs.hostile_connections
	$(BIN)/python -m bench.proofs.memory_probe

format: $(VENV)/.dev ## apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

train-letters: $(VENV)/.dev ## retrain the letters model and export it to models/letters
	HWR_DATA_DIR=$(DATA) $(BIN)/python -m training train --config training/configs/letters.yaml --export models/letters

train-digits: $(VENV)/.dev ## retrain the digits model and export it to models/digits
	HWR_DATA_DIR=$(DATA) $(BIN)/python -m training train --config training/configs/digits.yaml --export models/digits

MINUTES ?= 7.5
train-graphemes: $(VENV)/.dev system-deps ## build the grapheme pack, train MINUTES (GPU if present), export + int8 to models/graphemes
	HWR_DATA_DIR=$(DATA) $(BIN)/python -m training pack --config training/configs/graphemes.yaml --out runs/pack/a --out runs/pack/b --out runs/pack/c
	$(BIN)/python -m training.packed --pack runs/pack/a --pack runs/pack/b --pack runs/pack/c --run-dir runs/graphemes --minutes $(MINUTES)
	HWR_DATA_DIR=$(DATA) $(BIN)/python -m training export runs/graphemes/best.pt models/graphemes
	HWR_DATA_DIR=$(DATA) $(BIN)/python -m training quantize models/graphemes

image: ## build the serving image hwr:local (CPU; DOCKER=podman works too, add --format docker to keep HEALTHCHECK)
	$(DOCKER) build -t hwr:local .

compose: ## build and run the service with docker compose (monitoring too: make compose PROFILE=monitoring)
	$(DOCKER) compose $(if $(PROFILE),--profile $(PROFILE)) up --build

clean: ## remove the virtualenv, caches and training runs
	rm -rf $(VENV) runs .pytest_cache .ruff_cache .mypy_cache *.egg-info
