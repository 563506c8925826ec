# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection's packaging metadata is complete and agrees with the code."""

from __future__ import annotations

import ast
import os
import re

import ansible.galaxy
import pytest
import yaml

from ansible.release import __version__ as ANSIBLE_CORE_VERSION
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GALAXY_META_SCHEMA = os.path.join(os.path.dirname(ansible.galaxy.__file__), "data", "collections_galaxy_meta.yml")


def load_yaml(relpath):
    with open(os.path.join(REPO, relpath), encoding="utf-8") as f:
        return yaml.safe_load(f)


def read_requirements(relpath):
    reqs = []
    with open(os.path.join(REPO, relpath), encoding="utf-8") as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                reqs.append(Requirement(line))
    return reqs


def module_names():
    path = os.path.join(REPO, "plugins", "modules")
    if not os.path.isdir(path):
        return set()
    return set(n[:-3] for n in os.listdir(path) if n.endswith(".py") and not n.startswith("_") and n != "__init__.py")


@pytest.fixture(scope="module")
def galaxy():
    return load_yaml("galaxy.yml")


@pytest.fixture(scope="module")
def runtime():
    return load_yaml("meta/runtime.yml")


# --- galaxy.yml ---------------------------------------------------------------------------------

def test_galaxy_identity(galaxy):
    assert galaxy["namespace"] == "attune"
    assert galaxy["name"] == "packs"
    assert re.match(r"^\d+\.\d+\.\d+$", str(galaxy["version"])), "version must be MAJOR.MINOR.PATCH"


def test_galaxy_keys_are_known_to_ansible_galaxy_and_complete(galaxy):
    with open(GALAXY_META_SCHEMA, encoding="utf-8") as f:
        schema = yaml.safe_load(f)
    known = set(entry["key"] for entry in schema)
    assert not set(galaxy) - known, "keys ansible-galaxy does not know: %s" % sorted(set(galaxy) - known)
    required = set(entry["key"] for entry in schema if entry.get("required"))
    assert required <= set(galaxy)
    for key in ("readme", "authors", "description", "license", "tags", "dependencies",
                "repository", "documentation", "homepage", "issues", "build_ignore"):
        assert key in galaxy, "galaxy.yml lacks %s" % key
        assert galaxy[key] is not None
    for entry in schema:
        key, value = entry["key"], galaxy.get(entry["key"])
        if value is not None and entry.get("type") == "list":
            assert isinstance(value, list), "%s must be a list" % key


def test_galaxy_license_and_license_file(galaxy):
    assert galaxy["license"] == ["GPL-3.0-or-later"]
    assert "license_file" not in galaxy, "license and license_file are mutually exclusive"
    with open(os.path.join(REPO, "LICENSE"), encoding="utf-8") as f:
        text = f.read()
    assert "GNU GENERAL PUBLIC LICENSE" in text and "Version 3, 29 June 2007" in text
    assert "END OF TERMS AND CONDITIONS" in text, "LICENSE must hold the full GPL-3.0 text"


def test_galaxy_descriptive_fields(galaxy):
    assert galaxy["authors"] and all(isinstance(a, str) and a.strip() for a in galaxy["authors"])
    assert 20 <= len(galaxy["description"]) <= 255
    assert os.path.isfile(os.path.join(REPO, galaxy["readme"])) or galaxy["readme"] == "README.md"
    assert galaxy["dependencies"] == {}
    assert 1 <= len(galaxy["tags"]) <= 20
    for tag in galaxy["tags"]:
        assert re.match(r"^[a-z][a-z0-9_]{0,63}$", tag), "galaxy tag %r: lowercase letters, digits, underscore" % tag
    for key in ("repository", "documentation", "homepage", "issues"):
        assert re.match(r"^https://github\.com/attune-system/attune\.packs(/.*)?$", galaxy[key]), key


@pytest.mark.parametrize("pattern", [
    ".build", ".venv", ".venv-*", ".ci", ".git", ".gitignore", ".pytest_cache", "*/.pytest_cache",
    "attune-packs-*.tar.gz", "bench/results", "tests/output", "Makefile",
])
def test_galaxy_build_ignore_excludes_dev_files(galaxy, pattern):
    assert pattern in galaxy["build_ignore"]


def test_galaxy_build_ignore_keeps_collection_content(galaxy):
    import fnmatch

    for path in ("plugins/modules/attune_pack.py", "plugins/module_utils/_pack/_checksum.py", "meta/runtime.yml",
                 "LICENSE", "README.md", "docs/architecture.md", "roles/x/tasks/main.yml", "playbooks/demo.yml",
                 "tests/unit/test_packaging.py", "tests/unit/data/pack.tar.gz", "requirements.txt"):
        hits = [p for p in galaxy["build_ignore"] if fnmatch.fnmatch(path, p)]
        assert not hits, "%s would be left out of the built collection by %s" % (path, hits)


# --- meta/runtime.yml -------------------------------------------------------------------------------

def test_requires_ansible(runtime):
    spec = runtime["requires_ansible"]
    assert spec == ">=2.17.0", "requires_ansible: lower bound only, no spaces"
    assert Version(ANSIBLE_CORE_VERSION) in SpecifierSet(spec)


def test_runtime_has_only_known_top_level_keys(runtime):
    assert set(runtime) <= {"requires_ansible", "action_groups", "plugin_routing", "import_redirection"}


def module_doc(name):
    """DOCUMENTATION of plugins/modules/<name>.py, read without importing the module."""
    with open(os.path.join(REPO, "plugins", "modules", name + ".py"), encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "DOCUMENTATION" for t in node.targets):
            try:
                return yaml.safe_load(node.value.value)
            except yaml.YAMLError as exc:
                raise AssertionError("plugins/modules/%s.py: DOCUMENTATION is not valid YAML: %s" % (name, exc))
    raise AssertionError("plugins/modules/%s.py has no DOCUMENTATION" % name)


def uses_registry_options(name):
    fragments = module_doc(name).get("extends_documentation_fragment") or []
    if isinstance(fragments, str):
        fragments = [fragments]
    return "attune.packs.registry" in fragments


def test_registry_action_group_entries(runtime):
    group = runtime["action_groups"]["registry"]
    assert len(group) == len(set(group)), "duplicates in action group"
    for name in group:
        assert re.match(r"^attune_pack\w*$", name), "action group entries are short module names: %r" % name


def test_registry_action_group_is_the_modules_with_the_registry_options(runtime):
    # module_defaults for group/attune.packs.registry applies the shared registry options
    # (registries, config_path, validate_certs, ...) to every module of the group: every module
    # that takes them must be in it, and no module that does not (it would fail on unsupported
    # parameters).
    group = set(runtime["action_groups"]["registry"])
    modules = module_names()
    takes_registry_options = set(name for name in modules if uses_registry_options(name))
    missing = takes_registry_options - group
    assert not missing, "modules with the attune.packs.registry options missing from action_groups.registry: %s" % sorted(missing)
    wrong = (group & modules) - takes_registry_options
    assert not wrong, "action_groups.registry lists modules without the attune.packs.registry options: %s" % sorted(wrong)


def test_registry_action_group_has_no_unknown_modules(runtime):
    group = set(runtime["action_groups"]["registry"])
    unknown = group - module_names()
    assert not unknown, "action_groups.registry names modules that do not exist: %s" % sorted(unknown)


# --- requirements ---------------------------------------------------------------------------------

def test_plugin_requirements_match_the_library_minimums():
    from ansible_collections.attune.packs.plugins.module_utils._base import _common

    reqs = dict((r.name.lower(), r) for r in read_requirements("requirements.txt"))
    declared = dict((name.lower(), minimum) for name, _error, minimum in _common.REQUIRED_LIBRARIES)
    assert set(reqs) == set(declared)
    for name, minimum in declared.items():
        lower = [s.version for s in reqs[name].specifier if s.operator == ">="]
        assert lower == [minimum], "requirements.txt %s: lower bound must be >=%s" % (name, minimum)
        assert any(s.operator == "<" for s in reqs[name].specifier), "requirements.txt %s: add an upper bound" % name


def test_test_requirements_are_exact_pins_within_the_plugin_ranges():
    pins = read_requirements("tests/requirements.txt")
    for req in pins:
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", "tests/requirements.txt must pin %s with ==" % req.name
    pinned = dict((r.name.lower(), Version(list(r.specifier)[0].version)) for r in pins)
    for name in ("ansible-core", "pytest", "pytest-ansible", "pytest-xdist", "trustme", "jsonschema", "ansible-lint"):
        assert name in pinned, "tests/requirements.txt lacks %s" % name
    assert pinned["ansible-core"] in SpecifierSet(load_yaml("meta/runtime.yml")["requires_ansible"])
    for req in read_requirements("requirements.txt"):
        name = req.name.lower()
        assert name in pinned, "tests/requirements.txt must pin %s" % name
        assert pinned[name] in req.specifier, "%s==%s is outside requirements.txt %s" % (name, pinned[name], req.specifier)


# --- changelog ------------------------------------------------------------------------------------

def test_changelog_config_and_fragments():
    config = load_yaml("changelogs/config.yaml")
    sections = set(s[0] for s in config["sections"]) | {config["prelude_section_name"], config["trivial_section_name"]}
    fragments = os.path.join(REPO, "changelogs", "fragments")
    names = [n for n in os.listdir(fragments) if n.endswith((".yml", ".yaml"))]
    assert names, "add a changelog fragment per change"
    for name in names:
        data = load_yaml(os.path.join("changelogs", "fragments", name))
        assert isinstance(data, dict) and data, name
        assert set(data) <= sections, "%s: unknown sections %s" % (name, sorted(set(data) - sections))
