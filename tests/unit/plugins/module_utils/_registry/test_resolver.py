"""Resolution rules over real index files (file:// registries) and the real disk cache."""
import json
import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings
from ansible_collections.attune.packs.plugins.module_utils._base._errors import (
    ConfigError, IndexFormatError, PackNotFound, RegistryDisabled, RegistryUnreachable,
)
from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient
from testdata import make_entry, make_index, write_index


@pytest.fixture
def fleet(tmp_path):
    """Three registries: corp (priority 1), public (10), mirror (10, after public)."""
    corp = write_index(tmp_path, "corp", [make_entry("slack", "1.4.2", "c"), make_entry("internal", "0.1.0", "d")])
    public = write_index(tmp_path, "public", [make_entry("slack", "2.1.0"), make_entry("slack", "2.0.0"),
                                              make_entry("aws", "1.2.0"), make_entry("github", "3.0.0"),
                                              make_entry("internal", "9.9.9", "e", description="typo-squat")])
    mirror = write_index(tmp_path, "mirror", [make_entry("aws", "1.3.0", "f"), make_entry("monitoring", "1.0.0")])
    registries = [
        {"url": public, "name": "public", "priority": 10},
        {"url": corp, "name": "corp", "priority": 1},
        {"url": mirror, "name": "mirror", "priority": 10},
    ]
    return {"registries": registries, "cache_dir": str(tmp_path / "cache"), "tmp": tmp_path}


def client(fleet, **options):
    opts = {"registries": fleet["registries"], "cache_dir": fleet["cache_dir"]}
    opts.update(options)
    return RegistryClient(load_settings(opts, environ={}))


def test_priority_order_keeps_config_order_on_ties(fleet):
    assert [r.label for r in client(fleet).registries()] == ["corp", "public", "mirror"]


def test_first_registry_holding_the_ref_wins(fleet):
    result = client(fleet).resolve("internal")
    assert (result["registry"], result["version"]) == ("corp", "0.1.0")
    assert result["shadowed_in"] == ["public"]


def test_no_fall_through_when_the_winner_lacks_the_version(fleet):
    with pytest.raises(PackNotFound) as info:
        client(fleet).resolve("slack@^2.1")
    message = str(info.value)
    assert "registry corp" in message and "it has: 1.4.2" in message and "not consulted" in message


def test_version_history_and_ranges(fleet):
    c = client(fleet, registry="public")
    assert c.resolve("slack@^2.0")["version"] == "2.1.0"
    assert c.resolve("slack@~2.0.0")["version"] == "2.0.0"
    assert c.resolve("slack@>=2.0,<2.1")["version"] == "2.0.0"
    assert c.resolve("slack")["version"] == "2.1.0"


def test_resolution_result_shape(fleet):
    result = client(fleet).resolve("aws@1.2.0", prefer_source="archive")
    assert result["source"]["type"] == "archive" and result["fallback_source"] is None
    assert [s["type"] for s in result["sources"]] == ["git", "archive"]
    assert result["entry"]["ref"] == "aws" and result["shadowed_in"] == ["mirror"]
    git = client(fleet).resolve("aws@1.2.0")
    assert git["source"]["type"] == "git" and git["fallback_source"]["type"] == "archive"


def test_not_found_anywhere(fleet):
    with pytest.raises(PackNotFound, match="pack 'nope' not found in any registry"):
        client(fleet).resolve("nope")


def test_fail_closed_when_a_higher_registry_fails(fleet):
    fleet["registries"][1]["url"] = "file://" + str(fleet["tmp"] / "missing.json")
    with pytest.raises(RegistryUnreachable) as info:
        client(fleet).resolve("aws")
    assert "registry corp" in str(info.value) and "fail-closed" in str(info.value)
    skipped = client(fleet).resolve("aws", on_registry_error="skip")
    assert skipped["registry"] == "public" and skipped["skipped_registries"][0]["name"] == "corp"


def test_lower_registry_failure_does_not_matter(fleet):
    fleet["registries"][2]["url"] = "file://" + str(fleet["tmp"] / "missing.json")
    assert client(fleet).resolve("aws")["registry"] == "public"


def test_search_dedupes_first_registry_wins(fleet):
    packs, failed = client(fleet).search("")
    by_ref = dict((p["ref"], p) for p in packs)
    assert failed == []
    assert by_ref["slack"]["registry"] == "corp" and by_ref["slack"]["also_in"] == ["public"]
    assert by_ref["aws"]["version"] == "1.2.0" and by_ref["aws"]["also_in"] == ["mirror"]
    assert len(packs) == len(by_ref)


def test_search_without_dedupe_returns_every_entry(fleet):
    packs, _failed = client(fleet).search("slack", dedupe=False)
    assert sorted((p["registry"], p["version"]) for p in packs) == [("corp", "1.4.2"), ("public", "2.0.0"), ("public", "2.1.0")]


def test_search_matches_keywords_and_description_case_insensitively(fleet):
    assert [p["ref"] for p in client(fleet).search("TYPO-SQUAT", dedupe=False)[0]] == ["internal"]
    assert [p["ref"] for p in client(fleet).search("Monitoring")[0]] == ["monitoring"]


def test_search_is_best_effort(fleet):
    (fleet["tmp"] / "public.json").write_text("{not json")
    packs, failed = client(fleet).search("aws")
    assert [p["registry"] for p in packs] == ["mirror"]
    assert failed[0]["name"] == "public" and "malformed JSON" in failed[0]["error"]


def test_registry_option(fleet):
    assert [p["registry"] for p in client(fleet, registry="mirror").search("")[0]] == ["mirror", "mirror"]
    with pytest.raises(ConfigError, match="unknown registry 'nope' \\(configured: corp, public, mirror\\)"):
        client(fleet, registry="nope").search("")


def test_disabled(fleet):
    fleet["registries"][1]["enabled"] = False
    assert client(fleet).resolve("slack")["registry"] == "public"
    with pytest.raises(RegistryDisabled, match="pack registry disabled"):
        client(fleet, enabled=False).search("")


def test_cache_hit_skips_fetch_and_validation(fleet):
    first = client(fleet)
    first.search("")
    assert first.stats["fetched"] == 3
    second = client(fleet)
    assert second.resolve("slack")["version"] == "1.4.2"
    second.search("")
    assert second.stats == {"fetched": 0, "revalidated": 0, "cache_hits": 3}


def test_file_registry_revalidates_when_stale(fleet):
    client(fleet).search("")
    stale = client(fleet, cache_ttl=0)
    stale.search("")
    assert stale.stats["revalidated"] == 3 and stale.stats["fetched"] == 0
    write_index(fleet["tmp"], "corp", [make_entry("slack", "1.5.0", "c")])
    changed = client(fleet, refresh=True)
    assert changed.resolve("slack")["version"] == "1.5.0"
    assert changed.stats["fetched"] == 1


def test_corrupt_cache_entry_is_dropped_and_refetched(fleet):
    client(fleet).search("")
    cache_dir = fleet["cache_dir"]
    for name in os.listdir(cache_dir):
        if name.endswith(".idx"):
            with open(os.path.join(cache_dir, name), "r+b") as handle:
                handle.write(b"garbage")
    again = client(fleet)
    packs, failed = again.search("")
    assert not failed and packs and again.stats["fetched"] == 3


def test_cache_files_are_private_and_hold_no_header_values(fleet):
    fleet["registries"][0]["headers"] = {"Authorization": "Bearer top-secret-value"}
    client(fleet).search("")
    cache_dir = fleet["cache_dir"]
    assert os.stat(cache_dir).st_mode & 0o777 == 0o700
    for name in os.listdir(cache_dir):
        path = os.path.join(cache_dir, name)
        assert os.stat(path).st_mode & 0o777 == 0o600, name
        with open(path, "rb") as handle:
            assert b"top-secret-value" not in handle.read()


def test_header_change_gets_its_own_cache_entry(fleet):
    client(fleet).search("")
    fleet["registries"][0]["headers"] = {"Authorization": "Bearer other"}
    other = client(fleet)
    other.search("")
    assert other.stats["fetched"] == 1 and other.stats["cache_hits"] == 2


def test_cache_disabled_always_fetches(fleet):
    for dummy in range(2):
        c = client(fleet, cache_enabled=False)
        c.search("")
        assert c.stats["fetched"] == 3
    assert not os.path.exists(fleet["cache_dir"])


def test_invalid_index_names_registry_and_field(fleet):
    data = json.loads((fleet["tmp"] / "corp.json").read_text())
    data["packs"][0]["install_sources"][0]["checksum"] = "sha1:" + "a" * 40
    (fleet["tmp"] / "corp.json").write_text(json.dumps(data))
    with pytest.raises(IndexFormatError) as info:
        client(fleet).resolve("slack")
    assert "registry corp" in str(info.value) and "packs[0].install_sources[0].checksum" in str(info.value)


def test_standard_index_vault(standard_index_path, tmp_path):
    c = RegistryClient(load_settings({"registries": [{"url": "file://" + standard_index_path, "name": "std"}],
                                      "cache_dir": str(tmp_path)}, environ={}))
    with open(standard_index_path) as handle:
        expected = [p for p in json.load(handle)["packs"] if p["ref"] == "vault"][0]
    result = c.resolve("vault")
    assert result["version"] == expected["version"]
    assert result["source"] == expected["install_sources"][0]
    assert result["fallback_source"] == expected["install_sources"][1]


def test_search_shows_the_latest_release_not_a_prerelease(tmp_path):
    url = write_index(tmp_path, "pre", [make_entry("slack", "2.1.0"), make_entry("slack", "3.0.0-beta.1"), make_entry("new", "0.1.0-rc.1")])
    c = RegistryClient(load_settings({"registries": [{"url": url}], "cache_dir": str(tmp_path / "c")}, environ={}))
    versions = dict((p["ref"], p["version"]) for p in c.search("")[0])
    assert versions == {"slack": "2.1.0", "new": "0.1.0-rc.1"}
    assert c.resolve("slack")["version"] == versions["slack"]


# -- issue 8 item 3: one malformed registry must not break the others ---------------------------------------------
def _hostile_bodies():
    good = json.dumps(make_index("bad", [make_entry("other", "1.0.0")]))
    deep = good[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}"
    huge = json.dumps(make_index("bad", [make_entry("slack", "1" * 5000 + ".0.0"), make_entry("slack", "2" * 5000 + ".0.0")]))
    surrogate = good.replace('"other pack"', '"other \\ud800 pack"')
    assert surrogate != good
    return {"deep": deep, "huge_major": huge, "lone_surrogate": surrogate}


@pytest.mark.parametrize("case", sorted(_hostile_bodies()))
def test_a_malformed_lowest_priority_registry_is_invalid_index_format_for_itself_only(tmp_path, case):
    good = write_index(tmp_path, "good", [make_entry("slack", "1.0.0")])
    bad_path = tmp_path / "bad.json"
    bad_path.write_text(_hostile_bodies()[case])
    registries = [{"url": good, "name": "good", "priority": 1}, {"url": "file://%s" % bad_path, "name": "bad", "priority": 99}]
    for cache in (True, False):
        fleet = {"registries": registries, "cache_dir": str(tmp_path / ("cache-%s" % cache))}
        c = client(fleet, cache_enabled=cache)
        packs, failed = c.search("")  # best-effort: the good registry still answers
        assert [p["ref"] for p in packs] == ["slack"]
        assert [(f["name"], f["error_kind"]) for f in failed] == [("bad", "invalid_index_format")]
        assert c.resolve("slack")["registry"] == "good"
        with pytest.raises(PackNotFound) as info:  # skip: the bad registry is skipped, and said so
            client(fleet, cache_enabled=cache).resolve("absent", on_registry_error="skip")
        assert client(fleet, cache_enabled=cache).resolve("slack", on_registry_error="skip")["registry"] == "good"
        with pytest.raises(IndexFormatError) as info:
            client(fleet, cache_enabled=cache).resolve("absent")
        assert info.value.registry == "bad" and "invalid index format" in str(info.value)
