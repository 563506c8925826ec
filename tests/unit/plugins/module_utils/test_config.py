import os

import pytest
import yaml

from ansible_collections.attune.packs.plugins.module_utils._config import (
    SECTION_KEYS, default_cache_dir, load_settings, redact_url, validate_section,
)
from ansible_collections.attune.packs.plugins.module_utils._errors import ConfigError


def write_config(tmp_path, data, name="config.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_defaults_are_attunes():
    section = validate_section({})
    assert section["cache_ttl"] == 3600 and section["timeout"] == 120 and section["connect_timeout"] == 10
    assert section["index_max_bytes"] == 10485760 and section["archive_max_bytes"] == 104857600
    assert section["enabled"] is True and section["allow_http"] is False and section["verify_checksums"] is True
    assert set(section) == set(SECTION_KEYS)


def test_file_overlay_env_and_options(tmp_path):
    path = write_config(tmp_path, {"database": {"url": "postgres://x"}, "packs_base_dir": "/srv/packs",
                                   "pack_registry": {"cache_ttl": 100, "timeout": 50,
                                                     "indices": [{"url": "https://a.example/i.json", "name": "a"}]}})
    write_config(tmp_path, {"pack_registry": {"timeout": 60, "connect_timeout": 3}}, "config.staging.yaml")
    environ = {"ATTUNE__PACK_REGISTRY__CACHE_TTL": "600", "ATTUNE_ENV": "staging"}
    settings = load_settings({"config_path": path, "index_max_bytes": 1000}, environ=environ)
    assert settings.cache_ttl == 600  # environment beats the file
    assert settings.timeout == 60 and settings.connect_timeout == 3  # overlay beats the base file
    assert settings.index_max_bytes == 1000  # options beat everything
    assert settings.packs_base_dir == "/srv/packs"
    assert settings.indices[0]["name"] == "a" and settings.indices[0]["priority"] == 100


def test_inline_registries_replace_indices(tmp_path):
    path = write_config(tmp_path, {"pack_registry": {"indices": [{"url": "https://a.example/i.json", "name": "a"}]}})
    settings = load_settings({"config_path": path, "registries": [{"url": "file:///x.json", "name": "b", "priority": None}]}, environ={})
    assert [i["name"] for i in settings.indices] == ["b"]


def test_attune_config_env_var_names_the_file(tmp_path):
    path = write_config(tmp_path, {"pack_registry": {"indices": [{"url": "https://a.example/i.json"}]}})
    assert load_settings({}, environ={"ATTUNE_CONFIG": path}).config_path == path


def test_missing_or_unreadable_config(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings({"config_path": str(tmp_path / "nope.yaml")}, environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("pack_registry: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_settings({"config_path": str(bad)}, environ={})
    if os.geteuid() != 0:
        locked = tmp_path / "locked.yaml"
        locked.write_text("pack_registry: {}\n")
        locked.chmod(0)
        with pytest.raises(ConfigError, match="cannot read"):
            load_settings({"config_path": str(locked)}, environ={})
    unreadable = tmp_path / "dir.yaml"
    unreadable.mkdir()
    with pytest.raises(ConfigError, match="cannot read Attune config file"):
        load_settings({"config_path": str(unreadable)}, environ={})


@pytest.mark.parametrize(
    "entry,fragment",
    [
        ({"url": "http://a.example/i.json"}, "plain http:// registry URL refused (set allow_http"),
        ({"url": "https://a.example/i.json?token=x"}, "must not carry a query string"),
        ({"url": "https://user:pw@a.example/i.json"}, "must not carry credentials"),
        ({"url": "ftp://a.example/i.json"}, "must use https://"),
        ({"url": "https://a.example/i.json", "headers": {"Host": "evil"}}, "header 'Host' is managed"),
        ({"url": "https://a.example/i.json", "headers": {"X-Forwarded-For": "1.2.3.4"}}, "X-Forwarded-For"),
        ({"url": "https://a.example/i.json", "headers": {"Proxy-Foo": "1"}}, "Proxy-Foo"),
        ({"url": "https://a.example/i.json", "headers": {"X-Token": "a\r\nHost: x"}}, "line break"),
        ({"url": "https://a.example/i.json", "priority": "high"}, "priority: expected an integer"),
        ({"url": "https://a.example/i.json", "colour": "red"}, "unknown key"),
        ({"name": "x"}, "url: required"),
    ],
)
def test_refused_registries(entry, fragment):
    with pytest.raises(ConfigError) as info:
        validate_section({"indices": [entry]})
    assert fragment in str(info.value)
    assert "pack_registry.indices[0]" in str(info.value)


def test_secret_header_value_not_in_errors():
    with pytest.raises(ConfigError) as info:
        validate_section({"indices": [{"url": "http://a.example/i.json", "headers": {"Authorization": "Bearer s3cr3t-token"}}]})
    assert "s3cr3t-token" not in str(info.value)


def test_http_allowed_when_asked():
    section = validate_section({"allow_http": True, "indices": [{"url": "http://a.example/i.json"}]})
    assert section["indices"][0]["url"].startswith("http://")


def test_duplicate_names_and_types():
    with pytest.raises(ConfigError, match="duplicate registry name 'a'"):
        validate_section({"indices": [{"url": "https://a/i.json", "name": "a"}, {"url": "https://b/i.json", "name": "a"}]})
    with pytest.raises(ConfigError, match="cache_ttl: expected an integer"):
        validate_section({"cache_ttl": "soon"})
    with pytest.raises(ConfigError, match="approved_private_cidrs"):
        validate_section({"approved_private_cidrs": ["10.0.0.0/33"]})


def test_redact_url():
    assert redact_url("https://u:p@host/x?token=1") == "https://***@host/x?***"
    assert redact_url("https://host/x") == "https://host/x"


def test_default_cache_dir_follows_xdg():
    assert default_cache_dir({"XDG_CACHE_HOME": "/tmp/xdg"}) == "/tmp/xdg/attune-packs"
