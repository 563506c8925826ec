"""The read-only plugins run for real through ansible against a real HTTPS registry on 127.0.0.1."""
import os
import socket
import stat

import pytest

from functional.conftest import TOKEN
from support.play import run_adhoc, run_tasks, target_python
from testdata import STANDARD_INDEX


def registries(server, *names, **extra):
    items = []
    for priority, name in enumerate(names):
        item = {"name": name, "url": server.url("%s.json" % name), "priority": priority + 1}
        if name == "corp":
            item["headers"] = {"Authorization": TOKEN}
        items.append(item)
    return items


def opts(server, tmp_path, *names, **extra):
    options = {"registries": registries(server, *names), "ca_path": server.ca_path, "cache_dir": str(tmp_path / "cache")}
    options.update(extra)
    return options


def one(tmp_path, module, args, **kwargs):
    play = run_tasks(tmp_path, [{module: args}], **kwargs)
    assert play.results, play
    return play, play.host()[0]


def assert_no_secret(play, tmp_path):
    secret = TOKEN.split()[-1]
    assert secret not in play.output
    for root, _dirs, files in os.walk(str(tmp_path)):
        for name in files:
            if name.endswith((".yml", ".ini")):
                continue  # the playbook itself holds the token, as a vault would
            with open(os.path.join(root, name), "rb") as handle:
                assert secret.encode() not in handle.read(), os.path.join(root, name)


def test_registries_lists_in_search_order_without_header_values(registry, tmp_path):
    options = opts(registry, tmp_path, "public", "corp")
    options["registries"][1]["priority"] = 0
    play, result = one(tmp_path, "attune.packs.attune_pack_registries", dict(options, probe=True))
    assert not result.get("failed"), result
    assert [r["name"] for r in result["registries"]] == ["corp", "public"]
    corp = result["registries"][0]
    assert corp["headers"] == ["Authorization"] and corp["reachable"] is True and corp["pack_count"] == 2
    assert corp["registry_name"] == "corp" and corp["last_updated"] == "2026-01-01T00:00:00Z"
    assert result["changed"] is False
    assert_no_secret(play, tmp_path)


def test_search_dedupes_and_reports_failed_registries(registry, tmp_path):
    play, result = one(tmp_path, "attune.packs.attune_pack_search",
                       dict(opts(registry, tmp_path, "corp", "broken", "public"), query="SLACK"))
    assert not result.get("failed"), result
    assert [(p["ref"], p["registry"], p["version"], p["also_in"]) for p in result["packs"]] == [("slack", "corp", "1.4.2", ["public"])]
    assert result["failed_registries"][0]["name"] == "broken"
    assert "HTTP 503" in result["failed_registries"][0]["error"]
    assert any("broken" in w for w in result.get("warnings", []))
    assert_no_secret(play, tmp_path)


def test_search_fails_when_no_registry_answers(registry, tmp_path):
    _play, result = one(tmp_path, "attune.packs.attune_pack_search", dict(opts(registry, tmp_path, "broken", "missing"), query=""))
    assert result["failed"] and "no registry could be searched" in result["msg"]


def test_info_resolves_ranges_and_lists(registry, tmp_path):
    _play, result = one(tmp_path, "attune.packs.attune_pack_info",
                        dict(opts(registry, tmp_path, "public"), name=["slack@>=2.0,<2.1", "aws@1.2.0", "github"], prefer_source="archive"))
    assert not result.get("failed"), result
    assert [(p["ref"], p["version"]) for p in result["packs"]] == [("slack", "2.0.0"), ("aws", "1.2.0"), ("github", "3.0.0")]
    assert result["packs"][0]["source"]["type"] == "archive"
    single = one(tmp_path, "attune.packs.attune_pack_info", dict(opts(registry, tmp_path, "public"), name="slack@>= 2.0, < 3"))[1]
    assert single["packs"][0]["version"] == "2.1.0"


def test_info_is_fail_closed(registry, tmp_path):
    _play, result = one(tmp_path, "attune.packs.attune_pack_info", dict(opts(registry, tmp_path, "broken", "public"), name="aws"))
    assert result["failed"] and "fail-closed" in result["msg"] and "registry broken" in result["msg"]
    _play, result = one(tmp_path, "attune.packs.attune_pack_info",
                        dict(opts(registry, tmp_path, "broken", "public"), name="aws", on_registry_error="skip"))
    assert result["packs"][0]["registry"] == "public" and result["packs"][0]["skipped_registries"][0]["name"] == "broken"


def test_no_fall_through_to_lower_registry(registry, tmp_path):
    _play, result = one(tmp_path, "attune.packs.attune_pack_info", dict(opts(registry, tmp_path, "corp", "public"), name="slack@^2"))
    assert result["failed"] and "it has: 1.4.2" in result["msg"] and result["error"]["kind"] == "pack_not_found"


@pytest.mark.skipif(not os.path.exists(STANDARD_INDEX), reason="../shared/fixtures is absent")
def test_standard_index_over_https_and_lookup(registry, tmp_path):
    import json
    with open(STANDARD_INDEX) as handle:
        vault = [p for p in json.load(handle)["packs"] if p["ref"] == "vault"][0]
    options = opts(registry, tmp_path, "std")
    play = run_tasks(tmp_path, [
        {"attune.packs.attune_pack_info": dict(options, name="vault")},
        {"ansible.builtin.set_fact": {"via_lookup": "{{ lookup('attune.packs.attune_pack', 'vault@latest', registries=regs, "
                                                    "ca_path=ca, cache_dir=cache) }}"}},
        {"ansible.builtin.debug": {"var": "via_lookup"}},
    ], play_vars={"regs": options["registries"], "ca": registry.ca_path, "cache": options["cache_dir"]})
    info, _fact, debug = play.host()
    assert info["packs"][0]["source"] == vault["install_sources"][0]
    assert info["packs"][0]["fallback_source"] == vault["install_sources"][1]
    assert info["packs"][0]["entry"] == vault
    assert debug["via_lookup"]["version"] == vault["version"]
    assert debug["via_lookup"]["source"]["ref"] == vault["install_sources"][0]["ref"]


def test_lookup_error_is_clear(registry, tmp_path):
    play = run_tasks(tmp_path, [{"ansible.builtin.debug": {
        "msg": "{{ lookup('attune.packs.attune_pack', 'nope', registries=regs, ca_path=ca, cache_dir=cache) }}"}}],
        play_vars={"regs": registries(registry, "public"), "ca": registry.ca_path, "cache": str(tmp_path / "c")})
    result = play.host()[0]
    assert result["failed"] and "pack 'nope' not found in any registry" in result["msg"]


def test_cache_revalidates_with_etag(registry, tmp_path):
    registry.reset_log()
    options = opts(registry, tmp_path, "public")
    one(tmp_path, "attune.packs.attune_pack_search", dict(options, query="aws"))
    one(tmp_path, "attune.packs.attune_pack_search", dict(options, query="aws"))
    assert registry.count("/public.json") == 1  # second run: fresh cache, no request
    _play, result = one(tmp_path, "attune.packs.attune_pack_search", dict(options, query="aws", refresh=True))
    assert registry.count("/public.json") == 2 and registry.count("/public.json", status=304) == 1
    assert result["packs"][0]["ref"] == "aws"
    last = registry.requests[-1]
    assert last.headers.get("If-None-Match")


def closed_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


FAILURES = [
    ("unreachable", lambda s: "https://127.0.0.1:%d/index.json" % closed_port(), {}, "connection refused"),
    ("dns", lambda s: "https://no-such-registry.invalid/index.json", {}, "host name does not resolve"),
    ("unauthorized", lambda s: s.url("corp.json"), {}, "authentication failed: HTTP 401"),
    ("wrong-token", lambda s: s.url("corp.json"), {"headers": {"Authorization": "Bearer wrong-token-value"}}, "HTTP 403"),
    ("forbidden", lambda s: s.url("forbidden.json"), {}, "authentication failed (access forbidden): HTTP 403"),
    ("not-found", lambda s: s.url("missing.json"), {}, "not found at https://127.0.0.1"),
    ("server-error", lambda s: s.url("broken.json"), {}, "server error HTTP 503"),
    ("redirect", lambda s: s.url("moved.json"), {}, "redirecting to https://elsewhere.example/index.json"),
    ("malformed", lambda s: s.url("malformed.json"), {}, "malformed JSON"),
    ("schema", lambda s: s.url("invalid.json"), {}, "packs[0].install_sources[1].checksum"),
    ("too-big", lambda s: s.url("huge.json"), {"index_max_bytes": 1000}, "larger than index_max_bytes"),
    ("too-big-chunked", lambda s: s.url("chunked.json"), {"index_max_bytes": 1048576}, "larger than index_max_bytes"),
]


@pytest.mark.parametrize("case,url,extra,fragment", FAILURES, ids=[f[0] for f in FAILURES])
def test_registry_failures_are_named(registry, tmp_path, case, url, extra, fragment):
    entry = {"name": "reg-" + case, "url": url(registry)}
    entry.update(extra.get("headers") and {"headers": extra["headers"]} or {})
    args = {"registries": [entry], "ca_path": registry.ca_path, "cache_dir": str(tmp_path / "cache"), "name": "slack"}
    args.update(dict((k, v) for k, v in extra.items() if k != "headers"))
    play, result = one(tmp_path, "attune.packs.attune_pack_info", args)
    assert result["failed"], result
    assert fragment in result["msg"], result["msg"]
    assert "registry reg-%s" % case in result["msg"]
    if "HTTP 40" in fragment:
        assert result["error"]["kind"] == "authentication_failed" and "not found" not in result["msg"]
    assert "wrong-token-value" not in play.output


def test_untrusted_certificate(tmp_path):
    from support.registry_server import RegistryServer
    with RegistryServer(untrusted=True) as server:
        server.add_json("/index.json", {"x": 1})
        _play, result = one(tmp_path, "attune.packs.attune_pack_search",
                            {"registries": [{"url": server.url("index.json"), "name": "evil"}], "ca_path": server.ca_path,
                             "cache_dir": str(tmp_path / "c")})
    assert result["failed"] and "TLS certificate not trusted" in result["msg"] and "registry evil" in result["msg"]


CONFIG_ERRORS = [
    ({"registries": [{"url": "https://r.example/i.json", "headers": {"Host": "x"}}]}, "header 'Host' is managed"),
    ({"registries": [{"url": "https://r.example/i.json?token=abc"}]}, "must not carry a query string"),
    ({"registries": [{"url": "http://r.example/i.json"}]}, "plain http:// registry URL refused"),
    ({"config_path": "/nonexistent/attune/config.yaml"}, "config.yaml not found"),
    ({"registries": [{"url": "https://r.example/i.json", "name": "a"}], "registry": "b"}, "unknown registry 'b' (configured: a)"),
    ({"registries": [{"url": "https://r.example/i.json"}], "name": "Bad.Spec"}, "invalid pack spec 'Bad.Spec'"),
]


@pytest.mark.parametrize("args,fragment", CONFIG_ERRORS)
def test_configuration_errors(tmp_path, args, fragment):
    args = dict(args, cache_dir=str(tmp_path / "c"))
    args.setdefault("name", "slack")
    _play, result = one(tmp_path, "attune.packs.attune_pack_info", args)
    assert result["failed"] and fragment in result["msg"], result


def test_config_file_disabled_and_unreadable(registry, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("pack_registry:\n  enabled: false\n  indices:\n    - url: %s\n" % registry.url("public.json"))
    _play, result = one(tmp_path, "attune.packs.attune_pack_search", {"config_path": str(config)})
    assert result["failed"] and "pack registry disabled" in result["msg"]
    _play, listed = one(tmp_path, "attune.packs.attune_pack_registries", {"config_path": str(config)})
    assert listed["enabled"] is False and "pack registry disabled" in listed["msg"] and len(listed["registries"]) == 1
    config.write_text("pack_registry: [oops\n")
    _play, result = one(tmp_path, "attune.packs.attune_pack_search", {"config_path": str(config)})
    assert result["failed"] and "is not valid YAML" in result["msg"]
    config.write_text("pack_registry: {}\n")
    config.chmod(0)
    if os.geteuid() != 0:
        _play, result = one(tmp_path, "attune.packs.attune_pack_search", {"config_path": str(config)})
        assert result["failed"] and "cannot read" in result["msg"]
    config.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_http_registry_when_allowed(tmp_path):
    from support.registry_server import RegistryServer
    from testdata import make_entry, make_index
    with RegistryServer(tls=False) as server:
        server.add_json("/i.json", make_index("plain", [make_entry("slack", "1.0.0")]))
        _play, result = one(tmp_path, "attune.packs.attune_pack_info",
                            {"registries": [{"url": server.url("i.json")}], "allow_http": True, "name": "slack",
                             "cache_dir": str(tmp_path / "c")})
    assert not result.get("failed"), result
    assert result["packs"][0]["registry"] == server.url("i.json")


def test_adhoc_search_reads_the_config_file(registry, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(
        "database: {url: 'postgres://db'}\npack_registry:\n  indices:\n    - name: corp\n      url: %s\n      headers:\n"
        "        Authorization: '%s'\n    - name: public\n      url: %s\n      priority: 200\n"
        "  approved_private_hosts: ['127.0.0.1']\n"  # the outbound policy applies to config files
        % (registry.url("corp.json"), TOKEN, registry.url("public.json"))
    )
    proc, results = run_adhoc(tmp_path, "attune.packs.attune_pack_search", "query=slack ca_path=%s cache_dir=%s" % (
        registry.ca_path, tmp_path / "cache"), env={"ATTUNE_CONFIG": str(config)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p["registry"] for p in results["localhost"]["packs"]] == ["corp"]
    assert TOKEN.split()[-1] not in proc.stdout + proc.stderr


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_modules_on_other_target_interpreters(registry, tmp_path, version):
    python = target_python(version)
    if python is None:
        pytest.skip("pyenv has no Python %s" % version)
    inventory = tmp_path / "inv.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % python)
    play = run_tasks(tmp_path, [
        {"attune.packs.attune_pack_info": dict(opts(registry, tmp_path, "corp", "public"), name="aws@^1")},
        {"attune.packs.attune_pack_search": dict(opts(registry, tmp_path, "corp", "public"), query="")},
        {"ansible.builtin.command": "%s -c 'import sys; print(sys.version_info[:2])'" % python},
    ], inventory=str(inventory))
    info, search, version_check = play.host()
    assert version_check["stdout"] == str(tuple(int(x) for x in version.split(".")))
    assert info["packs"][0]["version"] == "1.2.0", info
    assert sorted(p["ref"] for p in search["packs"]) == ["aws", "github", "internal", "slack"]


def test_missing_libraries_are_named(tmp_path):
    python = target_python("3.10", with_requirements=False)
    if python is None:
        pytest.skip("pyenv has no Python 3.10")
    inventory = tmp_path / "inv.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % python)
    _play = run_tasks(tmp_path, [{"attune.packs.attune_pack_search": {"registries": [{"url": "file:///nonexistent.json"}]}}],
                      inventory=str(inventory))
    result = _play.host()[0]
    assert result["failed"]
    for name in ("requests", "PyYAML", "voluptuous"):
        assert name in result["msg"], result["msg"]


def test_every_module_names_a_missing_library_the_same_way(tmp_path):
    """Issue 17 (write each rule once): one missing-library message (``_common.check_libraries``) for every module."""
    python = target_python("3.10", with_requirements=False)
    if python is None:
        pytest.skip("pyenv has no Python 3.10")
    inventory = tmp_path / "inv.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % python)
    tasks = [
        {"attune.packs.attune_registry_config": {"path": str(tmp_path / "config.yaml"), "pack_registry": {"indices": []}}},
        {"attune.packs.attune_pack_installed": {"packs_dir": str(tmp_path / "packs")}},
        {"attune.packs.attune_pack_lock": {"path": str(tmp_path / "packs.lock.yml"), "name": []}},
        {"attune.packs.attune_registry": {"api_url": "https://attune.invalid", "api_token": "attune_it_x", "url": "https://r.invalid/index.json"}},
    ]
    results = run_tasks(tmp_path, tasks, inventory=str(inventory)).host()
    for task, result, library in zip(tasks, results, ("PyYAML>=5.1", "PyYAML>=5.1", "PyYAML>=5.1", "requests>=2.25")):
        assert result.get("failed") and result["changed"] is False, (task, result)
        assert result["msg"].startswith("Failed to import the required Python library (%s) on " % library), (task, result["msg"])
    assert not (tmp_path / "config.yaml").exists() and not (tmp_path / "packs.lock.yml").exists()
