# attune.packs developer and CI entry points.  `make help` lists the targets.
#
# Everything is built under .build/ and the virtual environments .venv (ansible-core 2.19 on
# $(PYTHON)), .venv-latest (newest ansible-core on Python 3.13/3.12), .venv-2.17 (oldest supported
# ansible-core on Python 3.10), .venv-docs (antsibull-docs, antsibull-changelog, Sphinx) and .venv-publish
# (galaxy-importer, ansible-builder).  Each tool venv is pinned in .ci/requirements-<name>.txt.

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
# -n auto: one worker per CPU; worksteal: an idle worker takes queued tests from a busy one (the functional tests
# range from 0.1 s to 70 s, so a fixed split leaves one worker alone with the last slow file).
PYTEST_ARGS ?= -n auto --dist worksteal
LINT_PATHS ?= $(wildcard playbooks roles)
# Extra ansible-playbook arguments for `make demo`.
DEMO_ARGS ?=
# Oldest supported ansible-core (.venv-2.17): Python 3.10 (else 3.12 / 3.11) from pyenv or PATH.
OLDEST_VENV ?= .venv-2.17
OLDEST_PYTHON ?= $(shell .ci/find-python 3.10 3.12 3.11 2>/dev/null)
# Tool venvs (Python 3.12 / 3.13 / 3.11).
TOOLS_PYTHON ?= $(shell .ci/find-python 3.12 3.13 3.11 2>/dev/null)
DOCS_VENV ?= .venv-docs
PUBLISH_VENV ?= .venv-publish
# Target Pythons that module-side code is proven on (make targets): every one of these that pyenv has.
TARGET_PYTHONS ?= 3.8 3.9 3.10 3.11 3.12 3.13
# Container engine for make ee-image.
CONTAINER_ENGINE ?= podman

BUILD := .build
DIST := $(BUILD)/dist
INSTALLED := $(BUILD)/installed
STAGE := $(BUILD)/src/ansible_collections/attune/packs
LINT_STAGE := $(BUILD)/lint/ansible_collections/attune/packs
VERSION = $(shell sed -n 's/^version: *//p' galaxy.yml)
ARTIFACT = $(DIST)/attune-packs-$(VERSION).tar.gz

VENV_STAMP := $(VENV)/.attune-stamp
LATEST_STAMP := $(LATEST_VENV)/.attune-stamp
OLDEST_STAMP := $(OLDEST_VENV)/.attune-stamp
DOCS_STAMP := $(DOCS_VENV)/.attune-stamp
PUBLISH_STAMP := $(PUBLISH_VENV)/.attune-stamp
# tests/requirements.txt without the pins that are per-venv (ansible-core) or 2.19-only tools.
MATRIX_TEST_REQS := $(BUILD)/matrix-test-requirements.txt

.PHONY: help venv venv-latest venv-2.17 venv-docs venv-publish collection demo demo-from-build check-build \
        pytest unit contract functional sanity sanity-stable sanity-latest compat lint bench test clean install \
        matrix matrix-2.17 matrix-latest targets ee-context ee-check ee-image docs-lint docs docs-check \
        changelog changelog-lint galaxy-importer publish-check

help:
	@echo "make venv             create $(VENV) ($(PYTHON)) with requirements.txt + tests/requirements.txt"
	@echo "make venv-latest      create $(LATEST_VENV) with the newest ansible-core (.ci/requirements-latest.txt)"
	@echo "make contract         the test Attune API server against attune-sdk's generated client and models"
	@echo "make pytest           unit + contract + functional tests (pytest $(PYTEST_ARGS)); also: make unit / make functional"
	@echo "make sanity           ansible-test sanity on ansible-core 2.19 (sanity-stable) and the newest one (sanity-latest)"
	@echo "make compat           vermin: module-side code runs on Python 3.8+"
	@echo "make lint             ansible-lint --profile production on playbooks/ and roles/"
	@echo "make collection       build $(DIST)/attune-packs-<version>.tar.gz and install it into $(INSTALLED)"
	@echo "make demo             run playbooks/demo.yml from the installed collection"
	@echo "make install          install the built collection where ansible-galaxy installs by default (~/.ansible/collections)"
	@echo "make demo-from-build  collection + check-build (artifact contents, ansible-doc) + demo"
	@echo "make bench            run bench/*.py"
	@echo "make matrix           unit + smoke tests + demo on ansible-core 2.17 (matrix-2.17) and the newest (matrix-latest)"
	@echo "make targets          demo + an archive install with each pyenv Python $(TARGET_PYTHONS) as the target interpreter"
	@echo "make ee-check         ansible-builder create for execution-environment/ and check the context (ee-context)"
	@echo "make ee-image         build the EE image with $(CONTAINER_ENGINE) and run playbooks/demo.yml in it"
	@echo "make docs-lint        antsibull-docs lint-collection-docs --plugin-docs"
	@echo "make docs             docs site (antsibull-docs sphinx-init + Sphinx) in $(BUILD)/docs/project/build/html"
	@echo "make docs-check       docs + headless Chromium renders plugin pages and guides (screenshot: $(BUILD)/docs/screenshot.png)"
	@echo "make changelog        regenerate changelogs/changelog.yaml + CHANGELOG.rst from the fragments (antsibull-changelog)"
	@echo "make changelog-lint   antsibull-changelog lint + the generated changelog is up to date"
	@echo "make galaxy-importer  Galaxy's importer on the built artifact (no warnings allowed)"
	@echo "make test             every CI step: $(TEST_STEPS) (summary with times); CI: .ci/run"
	@echo "make clean            remove $(BUILD) (venvs are kept)"

# --- virtual environments ------------------------------------------------------------------------

venv: $(VENV_STAMP)

$(VENV_STAMP): requirements.txt tests/requirements.txt
	@command -v $(PYTHON) >/dev/null || { echo "ERROR: PYTHON=$(PYTHON) not found" >&2; exit 2; }
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r requirements.txt -r tests/requirements.txt
	touch $@

# $(call make_venv,PYTHON,VENV,PIP ARGS,VARIABLE NAME,what is needed): a tools venv (git-ignored) with pinned requirements
define make_venv
	@[ -n "$(1)" ] || { echo "ERROR: no $(5) (make $(4)=/path/to/python)" >&2; exit 2; }
	test -x $(2)/bin/python || $(1) -m venv $(2)
	test -e $(2)/.gitignore || echo '*' > $(2)/.gitignore
	$(2)/bin/python -m pip install --disable-pip-version-check --quiet $(3)
	touch $@
endef

venv-latest: $(LATEST_STAMP)

$(LATEST_STAMP): .ci/requirements-latest.txt tests/requirements.txt
	@if [ -z "$(LATEST_PYTHON)" ]; then \
	    echo "ERROR: no Python 3.13 or 3.12 found (pyenv ~/.pyenv/versions/3.1[23].*, or python3.13/python3.12 on PATH)." >&2; \
	    echo "       The newest ansible-core needs Python >= 3.12; install one or run: make LATEST_PYTHON=/path/to/python3.12 ..." >&2; \
	    exit 2; \
	fi
	test -x $(LATEST_VENV)/bin/python || $(LATEST_PYTHON) -m venv $(LATEST_VENV)
	test -e $(LATEST_VENV)/.gitignore || echo '*' > $(LATEST_VENV)/.gitignore
	$(LATEST_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r .ci/requirements-latest.txt
	$(MAKE) --no-print-directory $(MATRIX_TEST_REQS)
	$(LATEST_VENV)/bin/python -m pip install --disable-pip-version-check --quiet -r .ci/requirements-latest.txt -r $(MATRIX_TEST_REQS)
	touch $@

$(MATRIX_TEST_REQS): tests/requirements.txt
	mkdir -p $(BUILD)
	grep -vE '^(ansible-core|ansible-lint|pytest-ansible)==' tests/requirements.txt > $@

venv-2.17: $(OLDEST_STAMP)

$(OLDEST_STAMP): .ci/requirements-2.17.txt tests/requirements.txt $(MATRIX_TEST_REQS)
	$(call make_venv,$(OLDEST_PYTHON),$(OLDEST_VENV),-r .ci/requirements-2.17.txt -r $(MATRIX_TEST_REQS),OLDEST_PYTHON,Python 3.10/3.12/3.11 for ansible-core 2.17)

venv-docs: $(DOCS_STAMP)

$(DOCS_STAMP): .ci/requirements-docs.txt
	$(call make_venv,$(TOOLS_PYTHON),$(DOCS_VENV),-r .ci/requirements-docs.txt,TOOLS_PYTHON,Python 3.12/3.13/3.11 for the docs tools)

venv-publish: $(PUBLISH_STAMP)

$(PUBLISH_STAMP): .ci/requirements-publish.txt
	$(call make_venv,$(TOOLS_PYTHON),$(PUBLISH_VENV),-r .ci/requirements-publish.txt,TOOLS_PYTHON,Python 3.12/3.13/3.11 for galaxy-importer)

# --- tests ----------------------------------------------------------------------------------------

pytest: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/unit tests/contract tests/functional

# The Attune API simulator (tests/support/attune_server.py) driven by Attune's own client, attune-sdk.
contract: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/contract

unit: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/unit

functional: venv
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS) tests/functional

sanity: sanity-stable sanity-latest

sanity-stable: venv
	.ci/ansible-test $(VENV) $(SANITY_PYTHON) sanity

# `compile` only asks each target Python to compile the files: the same verdict with any ansible-core, already
# given by sanity-stable on 3.8-3.13.
sanity-latest: venv-latest
	.ci/ansible-test $(LATEST_VENV) $(LATEST_SANITY_PYTHON) sanity --skip-test compile

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
	ANSIBLE_COLLECTIONS_PATH=$(abspath $(INSTALLED)) $(VENV)/bin/ansible-galaxy collection install $(ARTIFACT) -p $(INSTALLED) --force

# The built artifact into the user's collections path, where `ansible-galaxy collection install` puts collections by
# default (the first of COLLECTIONS_PATHS: ~/.ansible/collections unless ansible.cfg or ANSIBLE_COLLECTIONS_PATH say
# otherwise), so that `ansible-playbook attune.packs.demo` and your own playbooks find it.
install: collection
	$(VENV)/bin/ansible-galaxy collection install $(ARTIFACT) --force
	@echo "install: now run playbooks with the .venv's ansible (. .venv/bin/activate), or with your own ansible-core >= 2.17"
	@echo "         whose Python has requests, PyYAML and voluptuous (requirements.txt): ansible-playbook attune.packs.demo"

check-build: collection
	$(VENV)/bin/python .ci/check_build.py $(ARTIFACT) $(INSTALLED)

demo: collection
	.ci/run-demo $(VENV) $(INSTALLED) $(BUILD)/demo $(DEMO_ARGS)

demo-from-build: check-build demo

bench: venv
	@shopt -s nullglob; files=(bench/*.py); [ $${#files[@]} -gt 0 ] || { echo "bench: no bench/*.py yet"; exit 0; }; \
	for f in "$${files[@]}"; do echo "== $$f"; $(VENV)/bin/python "$$f"; done

# --- version matrix ---------------------------------------------------------------------------------
# On the oldest (2.17) and the newest ansible-core: every unit test, the smoke subset of the functional
# tests (.ci/smoke-tests.txt) and the demo from the built collection (2.19 runs everything in `make pytest`).

matrix: matrix-2.17 matrix-latest

matrix-2.17: venv-2.17 collection
	.ci/matrix $(OLDEST_VENV) $(INSTALLED) $(PYTEST_ARGS)

matrix-latest: venv-latest collection
	.ci/matrix $(LATEST_VENV) $(INSTALLED) $(PYTEST_ARGS)

# Module-side code on real target interpreters: the demo (registries/search/info/lookup, a directory install,
# installed+verify) and an archive install + lock, with ansible_python_interpreter = each pyenv Python.
targets: collection
	.ci/targets $(VENV) $(INSTALLED) $(TARGET_PYTHONS)

# --- execution environment ---------------------------------------------------------------------------

ee-context: venv-publish collection
	rm -rf $(BUILD)/ee && mkdir -p $(BUILD)/ee
	cp execution-environment/execution-environment.yml execution-environment/requirements.yml execution-environment/requirements.txt $(BUILD)/ee/
	cp $(ARTIFACT) $(BUILD)/ee/attune-packs.tar.gz
	$(PUBLISH_VENV)/bin/ansible-builder create -f $(BUILD)/ee/execution-environment.yml -c $(BUILD)/ee/context \
	    --output-filename Containerfile -v 2

ee-check: ee-context
	$(PUBLISH_VENV)/bin/python .ci/check_ee.py $(BUILD)/ee/context $(INSTALLED) $(PUBLISH_VENV)/bin/ansible-builder

ee-image: ee-context
	.ci/ee-image $(CONTAINER_ENGINE) $(BUILD)/ee $(PUBLISH_VENV)

# --- docs ------------------------------------------------------------------------------------------
# The guides are collection docs (docs/docsite/rst/*.rst, listed in docs/docsite/extra-docs.yml).

docs-lint: venv-docs
	.ci/stage $(BUILD)/docs-lint/ansible_collections/attune/packs
	cd $(BUILD)/docs-lint/ansible_collections/attune/packs && env -u ANSIBLE_CONFIG PATH=$(abspath $(DOCS_VENV))/bin:$$PATH \
	    ANSIBLE_COLLECTIONS_PATH=$(abspath $(BUILD)/docs-lint) ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false \
	    $(abspath $(DOCS_VENV))/bin/antsibull-docs lint-collection-docs --plugin-docs --validate-collection-refs all .
	$(DOCS_VENV)/bin/python .ci/check_guides.py

docs: venv-docs collection
	.ci/docs-site $(DOCS_VENV) $(INSTALLED) $(BUILD)/docs

docs-check: docs
	.ci/check_docs_browser $(BUILD)/docs

# --- changelog, Galaxy ---------------------------------------------------------------------------------

changelog: venv-docs
	.ci/changelog $(DOCS_VENV) generate

changelog-lint: venv-docs
	.ci/changelog $(DOCS_VENV) check

galaxy-importer: venv-publish collection
	.ci/galaxy-importer $(PUBLISH_VENV) $(ARTIFACT) $(BUILD)/galaxy-importer

publish-check: changelog-lint galaxy-importer

# `make test` runs every step even when one fails, then prints a summary (exit 1 if any failed).
# The first group also creates the venvs of later steps (pip downloads overlap the CPU-bound tests).
# The two sanity runs go together: ansible-test keeps to one CPU, and each run has its own files (.ci/ansible-test).
TEST_STEPS ?= pytest+compat+lint+docs-lint+changelog-lint+venv-2.17+venv-publish sanity-stable+sanity-latest demo-from-build matrix-2.17 matrix-latest targets \
              ee-check docs-check galaxy-importer
# In `make test` the targets step covers the target Pythons that no other step runs modules on: pytest runs every
# module with the 2.19 venv's Python (3.11) as the target, matrix-2.17 with 3.10 and matrix-latest with 3.13.
TEST_TARGET_PYTHONS ?= 3.8 3.9 3.12

test: venv venv-latest venv-docs
	TARGET_PYTHONS="$(TEST_TARGET_PYTHONS)" MAKE="$(MAKE)" .ci/steps $(TEST_STEPS)

clean:
	rm -rf $(BUILD)
