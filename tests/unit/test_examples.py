"""The documentation examples are valid: the example index against the published schema, the config against section 2."""

import json
import os
import re

import pytest
import yaml

from ansible_collections.attune.packs.plugins.module_utils._registry._config import validate_section
from ansible_collections.attune.packs.plugins.module_utils._registry._index import validate_index

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHARED_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared")
SCHEMA_PATH = os.path.join(SHARED_DIR, "fixtures", "index.schema.json")
FORMAT_PATH = os.path.join(SHARED_DIR, "attune-format.md")
EXAMPLES = os.path.join(REPO_ROOT, "docs", "examples")
INDEX_PATH = os.path.join(EXAMPLES, "registry-index.json")
CONFIG_PATH = os.path.join(EXAMPLES, "config.registry-example.yaml")

# attune-format.md section 2: key -> default.  test_section_2_table_matches_spec keeps this in step with the spec.
SECTION_2_DEFAULTS = {
    "enabled": True,
    "indices": [],
    "cache_ttl": 3600,
    "cache_enabled": True,
    "timeout": 120,
    "connect_timeout": 10,
    "index_max_bytes": 10485760,
    "archive_max_bytes": 104857600,
    "verify_checksums": True,
    "allow_http": False,
    "allow_unverified_direct_remote_installs": False,
    "approved_public_hosts": None,  # [] in the seed, GitHub hosts in current Attune: checked separately
    "approved_private_hosts": [],
    "approved_private_cidrs": [],
}
LIST_KEYS = ("indices", "approved_public_hosts", "approved_private_hosts", "approved_private_cidrs")
SEED_PACKS = ("slack", "aws", "github", "monitoring")
needs_shared = pytest.mark.skipif(not os.path.isdir(SHARED_DIR), reason="../shared (Attune spec and fixtures) is absent")


@pytest.fixture(name="index", scope="module")
def index_fixture():
    with open(INDEX_PATH, encoding="utf-8") as f:
        return json.load(f)


@pytest.fixture(name="config", scope="module")
def config_fixture():
    with open(CONFIG_PATH, encoding="utf-8") as f:
        return yaml.safe_load(f)


@needs_shared
def test_example_index_is_valid_against_published_schema(index):
    jsonschema = pytest.importorskip("jsonschema")
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        schema = json.load(f)
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    errors = ["%s: %s" % ("/".join(str(p) for p in e.absolute_path), e.message) for e in validator.iter_errors(index)]
    assert errors == []


def test_example_index_is_accepted_by_the_collection_in_strict_mode(index):
    assert validate_index(index, registry="example", strict=True) is index


def test_example_index_has_the_seed_packs_with_both_source_types(index):
    assert index["registry_url"].startswith("https://")
    refs = {p["ref"] for p in index["packs"]}
    assert set(SEED_PACKS) <= refs
    for pack in index["packs"]:
        kinds = [s["type"] for s in pack["install_sources"]]
        local = pack["ref"] == "hello_registry"  # served by docs/examples/serve_registry.py: one archive, no git
        assert (kinds == ["archive"]) if local else (kinds[0] == "git" and "archive" in kinds), pack["ref"]
        for source in pack["install_sources"]:
            assert source["url"].startswith("https://")
            assert re.match(r"^sha256:[0-9a-f]{64}$", source["checksum"])
            if source["type"] == "git":
                assert re.match(r"^[0-9a-f]{40}$", source["ref"]), pack["ref"]
        assert set(pack["contents"]) == {"actions", "sensors", "triggers", "rules", "workflows"}
        assert pack["contents"]["actions"]
        assert {"attune_version", "python_version", "packs"} <= set(pack["dependencies"])
        assert {"downloads", "stars", "tested_attune_versions"} <= set(pack["meta"])
    checksums = [s["checksum"] for p in index["packs"] for s in p["install_sources"]]
    assert len(checksums) == len(set(checksums)), "every source has its own checksum"


def test_example_index_has_a_slack_version_history(index):
    versions = [p["version"] for p in index["packs"] if p["ref"] == "slack"]
    assert len(versions) == len(set(versions))
    assert {"2.0.0", "2.1.0"} <= set(versions)
    assert any(v.startswith("1.") for v in versions)
    assert any("-" in v for v in versions), "a pre-release demonstrates that ranges skip pre-releases"
    pairs = [(p["ref"], p["version"]) for p in index["packs"]]
    assert len(pairs) == len(set(pairs))


def test_config_example_keeps_other_sections(config):
    assert config["packs_base_dir"] == "/opt/attune/packs"
    assert "database" in config and "security" in config


def test_config_example_has_every_section_2_key(config):
    section = config["pack_registry"]
    assert set(section) == set(SECTION_2_DEFAULTS)
    for key, default in SECTION_2_DEFAULTS.items():
        if key in LIST_KEYS:
            assert isinstance(section[key], list), key
        else:
            assert section[key] == default, key
    assert {"github.com", "codeload.github.com", "raw.githubusercontent.com"} <= set(section["approved_public_hosts"])


def test_config_example_registries(config):
    indices = config["pack_registry"]["indices"]
    for entry in indices:
        assert set(entry) <= {"url", "name", "priority", "enabled", "headers"}
        assert "?" not in entry["url"] and "@" not in entry["url"].split("//", 1)[1].split("/", 1)[0]
    priorities = [e.get("priority", 100) for e in indices]
    assert len(set(priorities)) > 1
    assert any(e["url"].startswith("file://") for e in indices)
    assert any(e.get("enabled") is False for e in indices)
    private = [e for e in indices if e.get("headers", {}).get("Authorization")]
    assert private and "REPLACE_WITH" in private[0]["headers"]["Authorization"], "placeholder token, never a real one"


def test_config_example_is_accepted_by_the_collection(config):
    normalised = validate_section(config["pack_registry"])
    assert [e["name"] for e in sorted(normalised["indices"], key=lambda e: e["priority"])] == [
        "internal", "example", "standard", "local-mirror"]


@needs_shared
def test_section_2_table_matches_spec():
    with open(FORMAT_PATH, encoding="utf-8") as f:
        text = f.read()
    section = text.split("## 2.", 1)[1].split("\n## ", 1)[0]
    keys = re.findall(r"^\| ([a-z_]+) \|", section, re.MULTILINE)
    assert keys and set(keys) - {"key"} == set(SECTION_2_DEFAULTS)


def test_example_index_has_a_pack_served_by_the_example_server(index):
    """issue 18: hello_registry's archives are in docs/examples/packs and serve_registry.py serves them at these URLs."""
    import hashlib  # pylint: disable=import-outside-toplevel

    local = [p for p in index["packs"] if p["ref"] == "hello_registry"]
    assert [p["version"] for p in local] == ["1.0.0", "1.1.0"]
    for pack in local:
        (source,) = pack["install_sources"]
        name = "hello_registry-%s.tar.gz" % pack["version"]
        assert source["url"] == "https://127.0.0.1:8643/packs/" + name
        with open(os.path.join(EXAMPLES, "packs", name), "rb") as f:
            assert source["checksum"] == "sha256:" + hashlib.sha256(f.read()).hexdigest()
