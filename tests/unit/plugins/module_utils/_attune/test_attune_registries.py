"""The registry_config role's position plan and removal plan (plugins/module_utils/_attune/_attune_registries.py)."""
import pytest

from ansible_collections.attune.packs.plugins.module_utils._attune import _attune_registries as ar
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError


def test_positions_follow_attunes_static_order():
    indices = [{"url": "https://c/i.json", "priority": 10, "headers": {"Authorization": "x"}},
               {"url": "https://a/i.json", "priority": 1, "name": "a"},
               {"url": "https://b/i.json"},                       # priority 100 by default
               {"url": "https://d/i.json", "priority": 10, "enabled": False}]
    plan = ar.position_plan(indices)
    assert [(p["url"], p["position"], p["index"], p["enabled"]) for p in plan] == [
        ("https://a/i.json", 2, 1, None), ("https://c/i.json", 11, 0, None),
        ("https://d/i.json", 12, 3, False),                      # equal priority: next position, file order kept
        ("https://b/i.json", 101, 2, None)]                      # enabled not set: Attune's value is kept
    assert ar.position_plan([{"url": "https://e/i.json", "enabled": True}])[0]["enabled"] is True
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


def test_removals_match_by_id_when_kept_is_given():
    """Attune's list shows a query-string URL redacted (…?***): only the id can tell whether the row is listed."""
    rows = [{"id": 1, "url": "https://raw.githubusercontent.com/attune-system/index/4c87ca62/index.json", "name": "std"},
            {"id": 2, "url": "https://corp.example/i.json", "name": "corp"},
            {"id": 5, "url": "https://evil.example/i.json?***", "name": "evil"},
            {"id": 6, "url": "https://***@creds.example/i.json", "name": "creds"}]
    indices = [{"url": "https://corp.example/i.json"}]
    put = [{"changed": False, "registry": {"id": 2, "url": "https://corp.example/i.json"}},
           {"changed": True, "registry": {"id": None}}]            # created in check mode: no id yet
    for kept in (put, [2], ["2"]):
        assert [r["id"] for r in ar.removal_plan(rows, indices, kept=kept)] == [5, 6], kept
    # a listed URL never keeps a row that is not the one put into Attune
    assert [r["id"] for r in ar.removal_plan(rows, indices, kept=[])] == [2, 5, 6]
    assert [r["id"] for r in ar.removal_plan(rows, indices, kept=[], remove_standard=True)] == [1, 2, 5, 6]
    with pytest.raises(ConfigError, match="kept"):
        ar.removal_plan(rows, indices, kept=["not-an-id"])


def test_filters_wrap_the_plans():
    from ansible.errors import AnsibleFilterError
    from ansible_collections.attune.packs.plugins.filter import registry_api

    filters = registry_api.FilterModule().filters()
    rows = [{"id": 5, "url": "https://evil.example/i.json?***", "name": "evil"}]
    assert filters["registry_removals"](rows, [{"url": "https://evil.example/i.json"}], kept=[]) == [
        {"id": 5, "url": "https://evil.example/i.json?***", "name": "evil", "position": None}]
    assert filters["registry_positions"]([{"url": "https://a/i.json", "priority": 3}])[0]["enabled"] is None
    with pytest.raises(AnsibleFilterError, match="kept"):
        filters["registry_removals"](rows, [], kept=[{"registry": {"id": "x"}}])
