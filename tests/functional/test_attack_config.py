"""Attacks on registry parsing and on the config writer, run for real through ansible (issue 8 items 3, 4, 5, 9, 13;
issue 9 items 5, 6).

Every config file these tests make the module or the role write is loaded again through
tests/support/attune_config_validator.py (a re-reading of Attune's config.rs): what we write, Attune loads.
"""
import grp
import json
import os
import pwd
import stat

import pytest
import yaml

from support.attune_config_validator import assert_loads, load, problems
from support.fleet import Fleet, run_playbook
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_entry, make_index

MODULE = "attune.packs.attune_registry_config"
OLD_SECRET = "OLD-secret-4c0ffee1"
NEW_SECRET = "NEW-secret-77d1e0a2"
NEW_TOKEN = "Bearer " + NEW_SECRET


def write_registry_config(tmp_path, path, check=False, **section):
    section.setdefault("indices", [{"name": "corp", "url": "https://packs.corp.example/index.json", "priority": 1,
                                    "headers": {"Authorization": NEW_TOKEN}}])
    section.setdefault("approved_private_hosts", ["packs.corp.example"])
    play = run_tasks(tmp_path, [{MODULE: {"path": str(path), "pack_registry": section}}], check=check)
    assert play.results, play
    return play, play.host()[0]


def assert_no_secret(play, *secrets):
    for secret in secrets:
        assert secret not in play.output, "secret in ansible output"
        assert secret not in json.dumps(play.results), "secret in a task result"


# --------------------------------------------------------------------------- issue 8 item 4: exactly one pack_registry

HAND_WRITTEN = (
    "# Attune configuration (hand-written)\n"
    "database:\n  url: postgresql://attune@db.internal/attune   # primary\n\n"
    "# registries\n"
    "{key}\n  indices:\n    - url: https://old.example.com/index.json\n"
    "      headers: {{Authorization: 'Bearer " + OLD_SECRET + "'}}\n"
    "# about security\nsecurity:\n  jwt_secret: keep-me-0123456789abcdef\n"
)


@pytest.mark.parametrize("key, newline, bom", [
    ("pack_registry:", "\r\n", False),
    ("pack_registry:", "\n", True),
    ("? pack_registry\n:", "\r\n", True),
    ('"pack_registry":', "\n", False),
    ("'pack_registry' :", "\r\n", False),
])
def test_module_replaces_the_one_block_whatever_the_file_looks_like(tmp_path, key, newline, bom):
    path = tmp_path / "etc" / "config.yaml"
    path.parent.mkdir()
    text = ("\ufeff" if bom else "") + HAND_WRITTEN.format(key=key).replace("\n", newline)
    path.write_bytes(text.encode("utf-8"))
    os.chmod(str(path), 0o600)
    play, result = write_registry_config(tmp_path, path)
    assert result["changed"] and result["comments_preserved"], result
    new = path.read_bytes().decode("utf-8")
    node = yaml.compose(new)
    assert [k.value for k, _ in node.value] == ["database", "pack_registry", "security"]
    assert OLD_SECRET not in new and "old.example.com" not in new and NEW_TOKEN in new
    for comment in ("# Attune configuration (hand-written)", "# primary", "# registries", "# about security"):
        assert comment in new
    assert new.startswith("\ufeff") == bom
    if newline == "\r\n":
        assert "\n" not in new.replace("\r\n", "")
    else:
        assert "\r" not in new
    assert_no_secret(play, OLD_SECRET, NEW_SECRET)
    assert_loads(str(path))
    _again, second = write_registry_config(tmp_path, path)
    assert not second["changed"], second


# --------------------------------------------------------------------------- issue 8 item 5: no content in errors

BROKEN = ("database:\n  url: postgresql://db/attune\npack_registry:\n  indices:\n    - url: https://packs.corp.example/index.json\n"
          "      headers: {Authorization: \"Bearer " + OLD_SECRET + "\n")


def test_module_error_about_a_malformed_config_quotes_no_content(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(BROKEN)
    before = path.read_bytes()
    play, result = write_registry_config(tmp_path, path)
    assert result["failed"]
    assert "not valid YAML" in result["msg"] and "line " in result["msg"] and "column " in result["msg"], result["msg"]
    assert "Authorization" not in result["msg"]
    assert_no_secret(play, OLD_SECRET)
    assert path.read_bytes() == before


def test_role_fatal_output_about_a_malformed_config_quotes_no_content(tmp_path):
    fleet = Fleet(tmp_path, 1, common_vars={
        "registry_config_indices": [{"name": "corp", "url": "https://packs.corp.example/index.json", "headers": {"Authorization": NEW_TOKEN}}],
        "registry_config_approved_private_hosts": ["packs.corp.example"],
        "registry_config_owner": pwd.getpwuid(os.getuid()).pw_name, "registry_config_group": grp.getgrgid(os.getgid()).gr_name,
        "ansible_become": False,
    })
    host = fleet.names[0]
    path = fleet.config_path(host)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(BROKEN)
    run = run_playbook(tmp_path, "configure_registries.yml", fleet.write_inventory(), verbosity=3)
    assert run.returncode != 0
    assert "fatal:" in run.output and "not valid YAML" in run.output, run
    assert OLD_SECRET not in run.output and NEW_SECRET not in run.output
    for event in run.events:
        assert OLD_SECRET not in repr(event) and NEW_SECRET not in repr(event)
    with open(path) as handle:
        assert handle.read() == BROKEN


# --------------------------------------------------------------------------- issue 8 item 13: mode

@pytest.mark.parametrize("start, expected, tightened", [(0o644, 0o600, True), (0o604, 0o600, True), (0o640, 0o640, False)])
def test_header_values_never_stay_readable_by_others(tmp_path, start, expected, tightened):
    path = tmp_path / "config.yaml"
    path.write_text("database:\n  url: postgresql://db/attune\n")
    os.chmod(str(path), start)
    play, result = write_registry_config(tmp_path, path)
    assert result["changed"] and result["mode_tightened"] is tightened, result
    assert stat.S_IMODE(os.stat(str(path)).st_mode) == expected
    if tightened:
        assert "mode tightened from 0%03o to 0600" % start in result["msg"]
        assert any("readable by others" in warning for warning in result.get("warnings", []))
    assert_loads(str(path))
    # the same content on a file made world-readable again: only the mode changes, and is reported
    os.chmod(str(path), 0o644)
    _again, second = write_registry_config(tmp_path, path)
    assert second["changed"] and second["mode_tightened"] and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o600
    assert not second["content_changed"]


def test_an_explicit_mode_is_obeyed_and_no_headers_no_tightening(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("a: 1\n")
    os.chmod(str(path), 0o644)
    _play, result = write_registry_config(tmp_path, path, indices=[{"url": "https://packs.corp.example/index.json"}])
    assert not result["mode_tightened"] and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644
    play = run_tasks(tmp_path, [{MODULE: {"path": str(path), "mode": "0644", "pack_registry": {
        "indices": [{"url": "https://packs.corp.example/index.json", "headers": {"Authorization": NEW_TOKEN}}]}}}])
    assert not play.host()[0]["mode_tightened"] and stat.S_IMODE(os.stat(str(path)).st_mode) == 0o644
    assert_loads(str(path))


# --------------------------------------------------------------------------- issue 8 item 9 / issue 9 item 6: ranges

@pytest.mark.parametrize("section, key", [
    ({"indices": [{"url": "https://a.example/i.json", "priority": 4294967296}]}, "pack_registry.indices[0].priority"),
    ({"indices": [{"url": "https://a.example/i.json", "priority": 10 ** 20}]}, "pack_registry.indices[0].priority"),
    ({"cache_ttl": 2 ** 64}, "pack_registry.cache_ttl"),
    ({"timeout": 10 ** 20}, "pack_registry.timeout"),
    ({"approved_private_cidrs": ["10.0.0.1"]}, "pack_registry.approved_private_cidrs[0]"),
    ({"indices": [{"url": "https://a.example/i.json", "name": "corp", "headers": {"Authorization": "Bearer \u20ac" + NEW_SECRET}}]},
     "pack_registry.indices[0] (corp).headers.Authorization"),
])
def test_values_attune_would_refuse_are_refused_before_writing(tmp_path, section, key):
    path = tmp_path / "config.yaml"
    path.write_text("database:\n  url: postgresql://db/attune\n")
    before = path.read_bytes()
    play, result = write_registry_config(tmp_path, path, **section)
    assert result["failed"] and key + ":" in result["msg"], result["msg"]
    assert path.read_bytes() == before
    assert_no_secret(play, NEW_SECRET)
    # and the validator that follows config.rs agrees that Attune could not use that value
    data = {"pack_registry": dict(section)}
    assert problems(yaml.safe_dump(data, allow_unicode=True)) or "headers" in key  # a non-latin-1 value loads in Attune


def test_validator_follows_config_rs():
    good = {"database": {"url": "postgresql://db/attune", "max_connections": 20}, "log": {"level": "info"},
            "pack_registry": {"cache_ttl": 60, "approved_private_cidrs": ["10.0.0.0/8", "10.1.2.3/16"],
                              "indices": [{"url": "https://a.example/i.json", "priority": 4294967295, "name": None}]}}
    assert problems(yaml.safe_dump(good)) == []
    for bad, where in (
        ({"pack_registry": {"approved_private_cidrs": ["10.0.0.1"]}}, "pack_registry.approved_private_cidrs[0]"),
        ({"pack_registry": {"indices": [{"url": "https://a/i.json", "priority": 2 ** 32}]}}, "pack_registry.indices[0].priority"),
        ({"pack_registry": {"indices": [{"priority": 1}]}}, "pack_registry.indices[0].url"),
        ({"pack_registry": {"cache_ttl": -1}}, "pack_registry.cache_ttl"),
        ({"pack_registry": {"enabled": "yes"}}, "pack_registry.enabled"),
        ({"pack_registry": {"indices": [{"url": "https://a/i.json", "headers": None}]}}, "pack_registry.indices[0].headers"),
        ({"server": {"port": 70000}}, "server.port"),
    ):
        found = problems(yaml.safe_dump(bad))
        assert found and found[0].startswith(where + ":"), (bad, found)
    assert problems("pack_registry:\n  enabled: on\n")  # YAML 1.1's boolean 'on' is a string for Attune


def test_validator_load_applies_the_environment_overlay_from_the_working_directory(tmp_path):
    (tmp_path / "config.yaml").write_text("pack_registry:\n  timeout: 5\n")
    (tmp_path / "config.development.yaml").write_text("pack_registry:\n  timeout: 6\n")
    (tmp_path / "config.qa.yaml").write_text("pack_registry:\n  timeout: 7\n")
    assert load(None, environ={}, cwd=str(tmp_path))["pack_registry"]["timeout"] == 6
    assert load(None, environ={"ATTUNE__ENVIRONMENT": "qa"}, cwd=str(tmp_path))["pack_registry"]["timeout"] == 7


# --------------------------------------------------------------------------- issue 8 item 3 / issue 9 item 5, end to end

@pytest.fixture(scope="module")
def hostile_registry():
    good_entry = make_entry("demo", "1.0.0", email=None, homepage=None, use_case=None, repository=None, dependencies=None, meta=None)
    other = json.dumps(make_index("bad", [make_entry("other", "1.0.0")]))
    with RegistryServer() as server:
        server.add_json("/good.json", make_index("good", [good_entry]))
        server.add_json("/deep.json", (other[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}").encode())
        server.add_json("/huge.json", make_index("bad", [make_entry("demo", "9" * 5000 + ".0.0"), make_entry("demo", "8" * 5000 + ".0.0")]))
        server.add_json("/surrogate.json", other.replace('"other pack"', '"\\ud800"').encode())
        yield server


@pytest.mark.parametrize("bad", ["deep", "huge", "surrogate"])
def test_a_hostile_lowest_priority_registry_does_not_break_the_good_one(tmp_path, hostile_registry, bad):
    registries = [{"name": "good", "url": hostile_registry.url("good.json"), "priority": 1},
                  {"name": "bad", "url": hostile_registry.url("%s.json" % bad), "priority": 99}]
    common = {"registries": registries, "ca_path": hostile_registry.ca_path, "cache_dir": str(tmp_path / "cache")}
    play = run_tasks(tmp_path, [
        {"attune.packs.attune_pack_search": dict(common, query="")},
        {"attune.packs.attune_pack_info": dict(common, name="demo", on_registry_error="skip")},
        {"attune.packs.attune_pack_info": dict(common, name="absent")},
    ])
    search, info, closed = play.host()
    assert not search.get("failed") and "exception" not in search, search
    assert [p["ref"] for p in search["packs"]] == ["demo"]
    assert [(f["name"], f["error_kind"]) for f in search["failed_registries"]] == [("bad", "invalid_index_format")]
    assert not info.get("failed"), info
    assert info["packs"][0]["registry"] == "good" and info["packs"][0]["entry"]["email"] is None  # null accepted (9.5)
    assert closed["failed"]
    assert closed["error"]["kind"] == "invalid_index_format" and closed["error"]["registry"] == "bad", closed
