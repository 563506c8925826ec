"""The registry_config role's position plan and removal plan (plugins/module_utils/_attune_registries.py)."""
import pytest

from ansible_collections.attune.packs.plugins.module_utils import _attune_registries as ar
from ansible_collections.attune.packs.plugins.module_utils._errors import ConfigError


def test_positions_follow_attunes_static_order():
    indices = [{"url": "https://c/i.json", "priority": 10, "headers": {"Authorization": "x"}},
               {"url": "https://a/i.json", "priority": 1, "name": "a"},
               {"url": "https://b/i.json"},                       # priority 100 by default
               {"url": "https://d/i.json", "priority": 10, "enabled": False}]
    plan = ar.position_plan(indices)
    assert [(p["url"], p["position"], p["index"], p["enabled"]) for p in plan] == [
        ("https://a/i.json", 2, 1, True), ("https://c/i.json", 11, 0, True),
        ("https://d/i.json", 12, 3, False),                      # equal priority: next position, file order kept
        ("https://b/i.json", 101, 2, True)]
    assert all("headers" not in p for p in plan)                # no secret in the plan (loop items are printed)


def test_positions_offset_and_errors():
    assert [p["position"] for p in ar.position_plan([{"url": "https://a/", "priority": 0}], offset=5)] == [5]
    with pytest.raises(ConfigError, match=r"registry_config_indices\[0\]: url is required"):
        ar.position_plan([{"name": "x"}])


def test_removals_keep_wanted_and_standard():
    rows = [{"id": 1, "url": "https://raw.githubusercontent.com/attune-system/index/4c87ca62/index.json", "name": "std"},
            {"id": 2, "url": "https://CORP.example:443/i.json", "name": "corp"},
            {"id": 3, "url": "https://old.example/i.json", "name": "old"}]
    indices = [{"url": "https://corp.example/i.json"}]
    assert ar.removal_plan(rows, indices) == [{"id": 3, "url": "https://old.example/i.json", "name": "old", "position": None}]
    assert [r["id"] for r in ar.removal_plan(rows, indices, remove_standard=True)] == [1, 3]
    assert [r["id"] for r in ar.removal_plan(rows, indices, standard_pattern=r"old\.example")] == [1]
