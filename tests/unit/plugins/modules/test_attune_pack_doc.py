"""attune_pack documents the defaults that live elsewhere (one place for each number; the docs must follow it)."""
from __future__ import annotations

import re

import yaml

from ansible_collections.attune.packs.plugins.module_utils._pack import _extract
from ansible_collections.attune.packs.plugins.module_utils._registry import _config
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_spec import pack_argument_spec
from ansible_collections.attune.packs.plugins.modules import attune_pack


def documented_default(option):
    options = yaml.safe_load(attune_pack.DOCUMENTATION)["options"]
    text = " ".join(options[option]["description"] if isinstance(options[option]["description"], list) else [options[option]["description"]])
    return int(re.search(r"[Dd]efaults to (?:C\(pack_registry\.\w+\), else )?V\((\d+)\)", text).group(1))


def test_extraction_limits_are_extract_archives_defaults():
    assert documented_default("max_entries") == _extract.DEFAULT_MAX_ENTRIES
    assert documented_default("max_entry_bytes") == _extract.DEFAULT_MAX_ENTRY_BYTES
    # the total limit follows archive_max_bytes (Attune: installer.rs PackInstaller::extract_archive)
    assert "O(archive_max_bytes)" in " ".join(yaml.safe_load(attune_pack.DOCUMENTATION)["options"]["max_total_bytes"]["description"])
    assert _extract.DEFAULT_MAX_TOTAL_BYTES == _config.SECTION_KEYS["archive_max_bytes"][1]
    spec = pack_argument_spec()
    assert [spec[name].get("default") for name in ("max_entries", "max_entry_bytes", "max_total_bytes")] == [None] * 3


def test_archive_max_bytes_is_the_pack_registry_default():
    assert documented_default("archive_max_bytes") == _config.SECTION_KEYS["archive_max_bytes"][1]


def test_private_handoff_arguments_are_documented_as_private():
    # ansible-test validate-modules wants every argument documented (ansible-core keeps copy's _original_basename in
    # an ignore file; this collection has none): the private ones say they are private and never to be set
    spec = pack_argument_spec()
    options = yaml.safe_load(attune_pack.DOCUMENTATION)["options"]
    private = set(name for name in spec if name.startswith("_"))
    assert private == {"_resolved", "_local_copies"} == set(name for name in options if name.startswith("_"))
    for name in private:
        text = " ".join(options[name]["description"])
        assert text.startswith("Private, set by this module's action plugin") and "Do not set it in a task" in text
