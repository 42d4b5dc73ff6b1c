# wanx: one entry point for people and CI. `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
WANX := $(VENV)/bin/wanx
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

# Topic makefiles (mk/*.mk) add their checks and benchmarks to these lists.
LINT_TARGETS := lint-python
BENCH_TARGETS :=

-include mk/*.mk

.PHONY: help venv test lint lint-python bench clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | sort | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

venv: $(STAMP) ## create .venv with wanx and the test tools (pinned in pyproject.toml)

test: $(STAMP) lint ## run every check and the test suite (what CI runs)
	$(PY) -m pytest

lint: $(LINT_TARGETS) ## static checks: ruff, mypy, and each topic's linters

lint-python: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy

bench: $(STAMP) $(BENCH_TARGETS) ## benchmarks under bench/, each printing ratios against a reference

clean: ## remove the virtual environments and caches
	rm -rf $(VENV) .venv-* .pytest_cache .mypy_cache .ruff_cache
