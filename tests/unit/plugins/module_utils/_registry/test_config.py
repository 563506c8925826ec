import os

import pytest
import yaml

from ansible_collections.attune.packs.plugins.module_utils._registry._config import (
    SECTION_KEYS, default_cache_dir, load_settings, redact_url, validate_section,
)
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError


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


# -- issue 8 item 9 / issue 9 item 6: values Attune's config model (crates/common/src/config.rs @03eeaa5) refuses ------
@pytest.mark.parametrize("section, path, fragment", [
    # RegistryIndexConfig.priority: u32
    ({"indices": [{"url": "https://a.example/i.json", "priority": 4294967296}]}, "pack_registry.indices[0].priority", "4294967295"),
    ({"indices": [{"url": "https://a.example/i.json", "priority": 10 ** 20}]}, "pack_registry.indices[0].priority", "4294967295"),
    # PackRegistryConfig.cache_ttl / timeout / connect_timeout / index_max_bytes / archive_max_bytes: u64 (read as i64)
    ({"cache_ttl": 2 ** 64}, "pack_registry.cache_ttl", "9223372036854775807"),
    ({"index_max_bytes": 2 ** 63}, "pack_registry.index_max_bytes", "9223372036854775807"),
    ({"archive_max_bytes": 10 ** 30}, "pack_registry.archive_max_bytes", "9223372036854775807"),
    ({"timeout": 10 ** 20}, "pack_registry.timeout", "at most"),
    ({"connect_timeout": 10 ** 12}, "pack_registry.connect_timeout", "at most"),
    # outbound.rs @5e1b952 IpCidr::parse: "address/prefix", prefix a u8 no larger than 32/128
    ({"approved_private_cidrs": ["10.0.0.1"]}, "pack_registry.approved_private_cidrs[0]", "missing prefix"),
    ({"approved_private_cidrs": ["10.0.0.0/8", "fd00::"]}, "pack_registry.approved_private_cidrs[1]", "missing prefix"),
    ({"approved_private_cidrs": ["10.0.0.0/255.0.0.0"]}, "pack_registry.approved_private_cidrs[0]", "bad prefix"),
    ({"approved_private_cidrs": ["10.0.0.0/33"]}, "pack_registry.approved_private_cidrs[0]", "prefix too large"),
    ({"approved_private_cidrs": ["::/129"]}, "pack_registry.approved_private_cidrs[0]", "prefix too large"),
    ({"approved_private_cidrs": ["fe80::1%eth0/64"]}, "pack_registry.approved_private_cidrs[0]", "bad address"),
    ({"approved_private_cidrs": ["10.0.0/8"]}, "pack_registry.approved_private_cidrs[0]", "bad address"),
    ({"approved_private_cidrs": [8]}, "pack_registry.approved_private_cidrs[0]", "expected a string"),
    # header values: HashMap<String, String>, sent by reqwest (HeaderValue) and by us (latin-1 on the wire)
    ({"indices": [{"url": "https://a.example/i.json", "name": "corp", "headers": {"Authorization": "Bearer \u20ac-s3cr3t"}}]},
     "pack_registry.indices[0] (corp).headers.Authorization", "latin-1"),
    ({"indices": [{"url": "https://a.example/i.json", "headers": {"X-T": "a\x7fb"}}]}, "pack_registry.indices[0].headers.X-T", "control"),
    ({"indices": [{"url": "https://a.example/i.json", "headers": {"X-T": "a\x01b"}}]}, "pack_registry.indices[0].headers.X-T", "control"),
])
def test_values_attune_cannot_load_are_refused_naming_the_key(section, path, fragment):
    with pytest.raises(ConfigError) as info:
        validate_section(section)
    message = str(info.value)
    assert message.startswith(path + ":") and fragment in message, message
    assert getattr(info.value, "path", None) == path
    assert "s3cr3t" not in message


@pytest.mark.parametrize("cidr", ["10.0.0.0/8", " 10.20.0.0/16 ", "10.0.0.5/8", "fd00::/8", "::/0", "192.168.1.1/32", "10.0.0.0/+8"])
def test_cidrs_attune_accepts_are_accepted(cidr):
    assert validate_section({"approved_private_cidrs": [cidr]})["approved_private_cidrs"] == [cidr]


def test_range_limits_themselves_are_accepted():
    section = validate_section({"cache_ttl": 2 ** 63 - 1, "index_max_bytes": 2 ** 63 - 1, "timeout": 10 ** 9, "connect_timeout": 1,
                                "indices": [{"url": "https://a.example/i.json", "priority": 2 ** 32 - 1,
                                             "headers": {"X-Latin": "caf\u00e9\tok"}}]})
    assert section["indices"][0]["priority"] == 4294967295


# -- issue 9 item 7: ATTUNE__ENVIRONMENT, default development (config.rs @03eeaa5 Config::load) -----------------------
def _overlaid(tmp_path, environ, options=None):
    path = write_config(tmp_path, {"pack_registry": {"timeout": 50, "indices": [{"url": "https://a.example/i.json"}]}})
    write_config(tmp_path, {"pack_registry": {"timeout": 61}}, "config.development.yaml")
    write_config(tmp_path, {"pack_registry": {"timeout": 62}}, "config.staging.yaml")
    write_config(tmp_path, {"pack_registry": {"timeout": 63}}, "config.production.yaml")
    opts = {"config_path": path}
    opts.update(options or {})
    return load_settings(opts, environ=environ).timeout


def test_environment_overlay_follows_attune(tmp_path):
    assert _overlaid(tmp_path, {}) == 61  # no variable: Attune's default environment, development
    assert _overlaid(tmp_path, {"ATTUNE__ENVIRONMENT": "staging"}) == 62
    assert _overlaid(tmp_path, {"ATTUNE__ENVIRONMENT": "staging", "ATTUNE_ENV": "production"}) == 62  # Attune's variable wins
    assert _overlaid(tmp_path, {"ATTUNE_ENV": "production"}) == 63  # the collection's 0.1.0 variable still works
    assert _overlaid(tmp_path, {"ATTUNE__ENVIRONMENT": "staging"}, {"environment": "production"}) == 63  # the option wins
    assert _overlaid(tmp_path, {"ATTUNE__ENVIRONMENT": "qa"}) == 50  # no config.qa.yaml: the base file alone


def test_overlay_name_is_always_config_env_yaml(tmp_path):
    path = tmp_path / "attune.yml"
    path.write_text(yaml.safe_dump({"pack_registry": {"timeout": 50, "indices": [{"url": "https://a.example/i.json"}]}}))
    write_config(tmp_path, {"pack_registry": {"timeout": 70}}, "config.development.yml")  # not Attune's name
    assert load_settings({"config_path": str(path)}, environ={}).timeout == 50
    write_config(tmp_path, {"pack_registry": {"timeout": 71}}, "config.development.yaml")
    assert load_settings({"config_path": str(path)}, environ={}).timeout == 71


# -- issue 8 item 5: errors about a malformed config quote no file content -------------------------------------------
def test_yaml_error_quotes_no_content(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text('pack_registry:\n  indices:\n    - url: https://a.example/i.json\n      headers: {Authorization: "Bearer SECRET-abc\n')
    with pytest.raises(ConfigError) as info:
        load_settings({"config_path": str(bad)}, environ={})
    message = str(info.value)
    assert "SECRET" not in message and "Bearer" not in message and "Authorization" not in message
    assert "line " in message and "column " in message
