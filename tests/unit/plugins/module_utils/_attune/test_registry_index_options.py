"""attune_registry's option checks (issue 16 item 11) and keep-what-is-not-given updates (item 6), in _attune_registries.

The same rules as the file target (_config.validate_section): the name rule is checked on both sides here.
"""
import pytest

from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _api_errors, _attune_registries
from ansible_collections.attune.packs.plugins.module_utils._registry import _config
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError, InvalidArguments
from support.attune_server import AttuneServer

GOOD = "https://packs.example/index.json"


@pytest.mark.parametrize("args, words", [
    (dict(url=GOOD, headers={"X-Key": "a\r\nInjected: 1"}), "line break"),
    (dict(url=GOOD, headers={"X-Key\n": "v"}), "invalid header name"),
    (dict(url=GOOD, headers={"X-Key": 5}), "must be a string"),
    (dict(url=GOOD, headers={"X-Key": "caf\u00e9\u20ac"}), "latin-1"),
    (dict(url=GOOD, headers={"Proxy-Authorization": "v"}), "managed by the HTTP client"),
    (dict(url=GOOD, headers={"X-Key": "a", "x-key": "b"}), "given twice"),
    (dict(url=GOOD, position=10 ** 20), "out of range"),
    (dict(url=GOOD, position=2 ** 31), "out of range"),
    (dict(url=GOOD, position=-1), "negative"),
    (dict(url=GOOD, position=True), "expected an integer"),
    (dict(url=GOOD, name="a\x00b"), "U+0000"),
    (dict(url=GOOD, name="a\u202eb"), "U+202E"),
    (dict(url=GOOD, name="a\u200bb"), "U+200B"),
    (dict(url=GOOD, name="  "), "non-empty"),
    (dict(url="http://packs.example/index.json", headers={"Authorization": "Bearer t"}), "plain http://"),
    (dict(url="https://packs.example/index.json?t=1"), "query string"),
    (dict(url="https://u:p@packs.example/index.json"), "credentials"),
    (dict(url="file:///srv/index.json"), "file://"),
    (dict(url="https://[fe80::1%25eth0]/index.json"), "IPv6"),
    (dict(), "url, name or id"),
    (dict(index_id="7"), "expected an integer"),
])
def test_refused(args, words):
    with pytest.raises(InvalidArguments, match=words.replace("+", r"\+").replace("?", r"\?")) as info:
        _attune_registries.check_index_options(**args)
    assert info.value.kind == "invalid_arguments"
    for value in (args.get("headers") or {}).values():
        if isinstance(value, str) and len(value) > 2:
            assert value not in str(info.value)


def test_accepted():
    _attune_registries.check_index_options(url=GOOD, name="Corp packs", position=2 ** 31 - 1, enabled=False,
                                           headers={"Authorization": "Bearer t\tx"})
    _attune_registries.check_index_options(url="http://packs.example/index.json", headers={"Authorization": "Bearer t"},
                                           allow_http=True)
    _attune_registries.check_index_options(index_id=7, state="absent")
    # absent by url: only identifies a row, nothing is sent
    _attune_registries.check_index_options(url="https://legacy.example/index.json?t=1", state="absent")


def test_file_target_refuses_the_same_names():
    for name in ("a\x00b", "a\u202eb", "a\nb"):
        with pytest.raises(ConfigError, match=r"indices\[0\]\.name"):
            _config.validate_section({"indices": [{"url": GOOD, "name": name}]})
    assert _config.validate_section({"indices": [{"url": GOOD, "name": "Corp \u00e9"}]})["indices"][0]["name"] == "Corp \u00e9"


def test_unset_options_keep_attunes_values():
    with AttuneServer() as server:
        token = server.add_integration_token("ci")
        client = _api.AttuneApi(server.url(), token=token, ca_path=server.ca_path)
        out = _attune_registries.ensure_index(client, url=GOOD, name="corp", position=5, enabled=False, headers={"A": "one"})
        assert out["action"] == "create" and out["after"]["enabled"] is False
        out = _attune_registries.ensure_index(client, url=GOOD, headers={"A": "two"}, update_headers="always")
        assert out["changed_fields"] == ["headers"], out
        assert (out["after"]["name"], out["after"]["position"], out["after"]["enabled"]) == ("corp", 5, False)
        out = _attune_registries.ensure_index(client, url=GOOD)
        assert out["action"] == "none" and not out["changed"]
        row = out["after"]["id"]
        out = _attune_registries.ensure_index(client, index_id=row, enabled=True)
        assert out["changed_fields"] == ["enabled"]
        with pytest.raises(_api_errors.ApiNotFound):
            _attune_registries.ensure_index(client, index_id=row + 100, enabled=True)
        # refused before any request
        before = len(server.requests)
        with pytest.raises(InvalidArguments):
            _attune_registries.ensure_index(client, url=GOOD, name="x\u202e")
        assert len(server.requests) == before


def test_ensure_index_plans_without_writing_in_check_mode():
    with AttuneServer() as api:
        client = _api.AttuneApi(api.url(), token=api.add_integration_token("ci"), ca_path=api.ca_path)
        out = _attune_registries.ensure_index(client, url="https://packs.example/index.json", name="x",
                                              headers={"A": "v-secret"}, check_mode=True)
        assert out["changed"] and out["action"] == "create" and out["after"]["headers"] == {"A": "[REDACTED]"}
        assert api.count("/api/v1/pack-indices", "POST") == 0
        out = _attune_registries.ensure_index(client, url="https://PACKS.example:443/index.json", name="x",
                                              headers={"A": "v-secret"})
        assert out["action"] == "create"
        out = _attune_registries.ensure_index(client, url="https://packs.example/index.json", name="x",
                                              headers={"A": "other"})
        assert not out["changed"]
        with pytest.raises(_api_errors.ApiError, match="url is required"):
            _attune_registries.ensure_index(client, name="unknown")
