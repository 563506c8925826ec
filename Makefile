# attune.packs developer and CI entry points.  `make help` lists the targets.
#
# Everything is built under .build/ and the virtual environments .venv (ansible-core 2.19 on
# $(PYTHON)) and .venv-latest (newest ansible-core on Python 3.13/3.12, for sanity only).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
LATEST_VENV ?= .venv-latest
# Interpreter of .venv-latest: newest of 3.13 / 3.12 from pyenv or PATH (override: make LATEST_PYTHON=/path/python3.12).
LATEST_PYTHON ?= $(shell .ci/find-python 3.13 3.12 2>/dev/null)
# Python versions given to ansible-test (--python); "all" = compile/import on every Python found.
SANITY_PYTHON ?= all
LATEST_SANITY_PYTHON ?= $(shell $(LATEST_PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTEST_ARGS ?= -n 2
LINT_PATHS ?= $(wildcard playbooks roles)
# Extra ansible-playbook arguments for `make demo`.
DEMO_ARGS ?=

BUILD := .build
DIST := $(BUILD)/dist
INSTALLED := $(BUILD)/installed
STAGE := $(BUILD)/src/ansible_collections/attune/packs
LINT_STAGE := $(BUILD)/lint/ansible_collections/attune/packs
VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)
ARTIFACT = $(DIST)/attune-packs-$(VERSION).tar.gz

VENV_STAMP := $(VENV)/.attune-stamp
LATEST_STAMP := $(LATEST_VENV)/.attune-stamp

.PHONY: help venv venv-latest collection demo demo-from-build check-build pytest unit functional \
        sanity sanity-stable sanity-latest compat lint bench test clean

help:
	@echo "make venv             create $(VENV) ($(PYTHON)) with requirements.txt + tests/requirements.txt"
	@echo "make venv-latest      create $(LATEST_VENV) with the newest ansible-core (.ci/requirements-latest.txt)"
	@echo "make pytest           unit + functional tests (pytest $(PYTEST_ARGS)); also: make unit / make functional"
	@echo "make sanity           ansible-test sanity on ansible-core 2.19 (sanity-stable) and the newest one (sanity-latest)"
	@echo "make compat           vermin: module-side code runs on Python 3.8+"
	@echo "make lint             ansible-lint --profile production on playbooks/ and roles/"
	@echo "make collection       build $(DIST)/attune-packs-<version>.tar.gz and install it into $(INSTALLED)"
	@echo "make demo             run playbooks/demo.yml from the installed collection"
	@echo "make demo-from-build  collection + check-build (artifact contents, ansible-doc) + demo"
	@echo "make bench            run bench/*.py"
	@echo "make test             pytest, sanity, compat, lint, demo-from-build (with a summary); CI: .ci/run"
	@echo "make clean            remove $(BUILD) (venvs are kept)"

# --- virtual environments ------------------------------------------------------------------------

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements.txt tests/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "ERROR: PYTHON=$(PYTHON) not found" >&2; exit 2; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements.txt -r tests/requirements.txt
	touch $@

venv-latest: $(LATEST_STAMP)

$(LATEST_STAMP): .ci/requirements-latest.txt
	@if [ -z "$(LATEST_PYTHON)" ]; then \
	    echo "ERROR: no Python 3.13 or 3.12 found (pyenv ~/.pyenv/versions/3.1[23].*, or python3.13/python3.12 on PATH)." >&2; \
	    echo "       The newest ansible-core needs Python >= 3.12; install one or run: make LATEST_PYTHON=/path/to/python3.12 ..." >&2; \
	    exit 2; \
	fi
	test -x $(LATEST_VENV)/bin/python || $(LATEST_PYTHON) -m venv $(LATEST_VENV)
	test -e $(LATEST_VENV)/.gitignore || echo '*' > $(LATEST_VENV)/.gitignore
	$(LATEST_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r .ci/requirements-latest.txt
	touch $@

# --- tests ----------------------------------------------------------------------------------------

pytest: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/unit tests/functional

unit: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/unit

functional: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/functional

sanity: sanity-stable sanity-latest

sanity-stable: venv
	.ci/ansible-test $(VENV) $(SANITY_PYTHON) sanity

sanity-latest: venv-latest
	.ci/ansible-test $(LATEST_VENV) $(LATEST_SANITY_PYTHON) sanity

# Module-side code (modules, module_utils, doc fragments) must run on target Pythons 3.8+:
# vermin flags newer syntax and stdlib APIs (match, functools.cache, "".removeprefix, ...).
compat: venv
	$(VENV)/bin/vermin --no-tips --violations -t=3.8- plugins/modules plugins/module_utils plugins/doc_fragments

# ansible-lint runs on a staged copy of the tracked files (at .../ansible_collections/attune/packs, so that
# attune.packs.* resolves to this collection), keeping its .ansible/ cache out of the checkout.
lint: venv
	@if [ -z "$(LINT_PATHS)" ]; then echo "lint: no playbooks/ or roles/ yet"; exit 0; fi
	.ci/stage $(LINT_STAGE)
	cd $(LINT_STAGE) && env -u ANSIBLE_CONFIG ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD)/lint) NO_COLOR=1 PATH=$(abspath $(VENV))/bin:$$PATH \
	    $(abspath $(VENV))/bin/ansible-lint --offline --profile production $(LINT_PATHS)

# --- build, install, demo --------------------------------------------------------------------------

collection: venv
	.ci/stage $(STAGE)
	rm -rf $(DIST) $(INSTALLED)
	$(VENV)/bin/ansible-galaxy collection build $(STAGE) --output-path $(DIST) --force
	$(VENV)/bin/ansible-galaxy collection install $(ARTIFACT) -p $(INSTALLED) --force

check-build: collection
	$(VENV)/bin/python .ci/check_build.py $(ARTIFACT) $(INSTALLED)

demo: collection
	test -f $(INSTALLED)/ansible_collections/attune/packs/playbooks/demo.yml
	mkdir -p $(BUILD)/demo
	cd $(BUILD)/demo && env -u ANSIBLE_CONFIG \
	    ANSIBLE_COLLECTIONS_PATH=$(abspath $(INSTALLED)) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
	    ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=false \
	    $(abspath $(VENV))/bin/ansible-playbook $(DEMO_ARGS) \
	    $(abspath $(INSTALLED))/ansible_collections/attune/packs/playbooks/demo.yml

demo-from-build: check-build demo

bench: venv
	@shopt -s nullglob; files=(bench/*.py); [ $${#files[@]} -gt 0 ] || { echo "bench: no bench/*.py yet"; exit 0; }; \
	for f in "$${files[@]}"; do echo "== $$f"; $(VENV)/bin/python "$$f"; done

# `make test` runs every step even when one fails, then prints a summary (exit 1 if any failed).
test: venv venv-latest
	MAKE="$(MAKE)" .ci/steps pytest sanity-stable sanity-latest compat lint demo-from-build

clean:
	rm -rf $(BUILD)
