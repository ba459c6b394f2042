#################################################################################
# GLOBALS                                                                       #
#################################################################################

VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
DEMO_DIR ?= build/demo
# How `make demo` builds the image: build-offline (debootstrap base + wheelhouse, no registry) or build.
DEMO_BUILD ?= build-offline
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help venv system-deps test test-fast lint format demo clean

#################################################################################
# COMMANDS                                                                      #
#################################################################################

## Show this help
help:
	@awk '/^## /{doc=substr($$0,4)} /^[a-z-]+:/{if(doc){split($$1,t,":");printf "  \033[36m%-12s\033[0m %s\n",t[1],doc;doc=""}}' $(MAKEFILE_LIST)

## Create the virtualenv with the template's pinned tools
venv: $(BIN)/activate
$(BIN)/activate: requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

## Install the system packages the offline image build needs (debootstrap; root or sudo)
system-deps:
	@command -v debootstrap >/dev/null 2>&1 || { \
		SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq debootstrap; }

## Run every template test: hooks, the option matrix, and the generated project's own checks (two lanes at once)
test: venv system-deps
	@$(BIN)/python tests/lanes.py $(PYTEST_ARGS)

## Run the quick template tests (no generated-project install)
test-fast: venv
	$(BIN)/pytest -m "not slow" $(PYTEST_ARGS)

## Lint the hooks and tests
lint: venv
	$(BIN)/ruff check hooks tests
	$(BIN)/ruff format --check hooks tests

## Format the hooks and tests
format: venv
	$(BIN)/ruff format hooks tests
	$(BIN)/ruff check --fix hooks tests

#################################################################################
# PROJECT RULES                                                                 #
#################################################################################

## Bake the default project into build/demo and run its main job: the whole pipeline offline
demo: venv system-deps
	rm -rf $(DEMO_DIR)
	$(BIN)/cookiecutter . --no-input --output-dir $(DEMO_DIR)
	$(MAKE) -C $(DEMO_DIR)/ml-pipeline-demo install data
	@if docker info >/dev/null 2>&1; then $(MAKE) -C $(DEMO_DIR)/ml-pipeline-demo $(DEMO_BUILD); fi
	$(MAKE) -C $(DEMO_DIR)/ml-pipeline-demo local-pipeline

## Remove the virtualenv, demo projects and caches
clean:
	rm -rf $(VENV) build .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
