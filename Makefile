# imgrec: `make serve` runs the service, `make test` runs every test. Both set themselves up.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
RUNTIME_STAMP := $(VENV)/.stamp-runtime
DEV_STAMP := $(VENV)/.stamp-dev
PYTEST_ARGS ?=

.PHONY: serve test test-instances demo-aws-local lint bench soak test-deps clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -q -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) install -q -e '.[dev]'
	touch $(RUNTIME_STAMP) $@

serve: $(RUNTIME_STAMP)
	$(BIN)/imgrec serve $(ARGS)

test-deps: $(DEV_STAMP)
	bash tools/install-test-deps.sh
	bash tools/install-instance-deps.sh

test: test-deps
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Simulated EC2 instances (root, systemd-nspawn); the rootfs is built first if its script changed.
test-instances: test-deps
	bash tools/build-rootfs.sh >/dev/null
	$(BIN)/python -m pytest tests/instances $(PYTEST_ARGS)

# The elastic AWS stack on this machine without an account: moto + simulated instances (root).
demo-aws-local: test-deps
	bash tools/build-rootfs.sh >/dev/null
	$(BIN)/python -m tests.instances.demo $(ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check src tests tools bench
	$(BIN)/mypy
	$(BIN)/mypy --strict --explicit-package-bases tests

# Re-export the ONNX models from their PyPI weight packages (torch is used there and nowhere else).
include tools/models.mk

# `make bench PEERS=ray` also runs Ray Serve, in its own venv (.venv-ray) so that its pins do not
# touch the project's; onnxruntime, numpy and Pillow are pinned to the project venv's versions.
PEERS ?=
RAY_VERSION ?= 2.60.0
RAY_VENV := .venv-ray
RAY_STAMP := $(RAY_VENV)/.stamp-ray-$(RAY_VERSION)

$(RAY_STAMP): $(DEV_STAMP)
	$(PYTHON) -m venv $(RAY_VENV)
	$(RAY_VENV)/bin/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip freeze | grep -iE '^(onnxruntime|numpy|pillow|python-multipart)==' \
		> $(RAY_VENV)/constraints.txt
	$(RAY_VENV)/bin/python -m pip install -q -c $(RAY_VENV)/constraints.txt \
		"ray[serve]==$(RAY_VERSION)" onnxruntime numpy pillow python-multipart
	touch $@

bench: $(DEV_STAMP) $(if $(filter ray,$(PEERS)),$(RAY_STAMP))
	bash tools/install-bench-deps.sh
	$(BIN)/python bench/run.py $(if $(PEERS),--peers=$(PEERS)) $(ARGS)

# A long soak (not part of `make test`): 30 minutes by default; `make soak SOAK_MINUTES=3` in CI.
SOAK_MINUTES ?= 30
soak: $(DEV_STAMP)
	$(BIN)/python -m tests.reliability.soak --minutes $(SOAK_MINUTES) $(ARGS)

clean:
	rm -rf $(VENV) .imgrec .pytest_cache .mypy_cache .ruff_cache build dist src/*.egg-info
