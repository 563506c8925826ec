"""attune.packs.attune_registry through ansible-playbook against the test Attune API (tests/support/attune_server.py)."""
import ast
import os

import pytest
import yaml

from support.attune_server import AttuneServer, connection_args as conn
from support.play import run_adhoc, run_tasks
from support.registry_server import RegistryServer
from testdata import make_entry, make_index

REGISTRY_SECRET = "Bearer reg-5ecret-7f3a9c"
PASSWORD = "pa55-w0rd-q8z7"


@pytest.fixture()
def attune():
    with RegistryServer() as reg:
        reg.add_json("/corp.json", make_index("corp", [make_entry("slack", "1.4.2")]),
                     required_headers={"Authorization": REGISTRY_SECRET})
        with AttuneServer(static_indices=[{"url": "https://static.example/index.json", "priority": 10, "enabled": True}]) as api:
            api.token = api.add_integration_token("ci")
            api.registry = reg
            yield api


def task(api, **args):
    return {"attune.packs.attune_registry": conn(api, **args)}


def secrets_of(api):
    out = [api.token, REGISTRY_SECRET, PASSWORD]
    for entry in api.requests:
        if entry.json and isinstance(entry.json, dict):
            for key in ("access_token", "refresh_token"):
                if entry.json.get(key):
                    out.append(entry.json[key])
    return out


def assert_no_secret(api, res):
    text = res.output
    for secret in secrets_of(api):
        assert secret not in text
    # the JWTs Attune issued never appear either
    for secret in api.issued_secrets():
        assert secret not in text


def jwts_of(api):
    return api.issued_secrets()


def assert_no_jwt_on_disk(api, *roots):
    """The access/refresh tokens Attune issued are never written anywhere (results, ansible temp files...)."""
    jwts = jwts_of(api)
    assert jwts
    for root in roots:
        for dirpath, _dirs, files in os.walk(str(root)):
            for name in files:
                try:
                    with open(os.path.join(dirpath, name), "rb") as handle:
                        data = handle.read()
                except OSError:
                    continue
                for jwt in jwts:
                    assert jwt.encode() not in data, os.path.join(dirpath, name)


def four_steps(tmp_path, api, tasks, diff=False):
    out = []
    for check in (True, False, True, False):
        res = run_tasks(tmp_path, tasks, check=check, diff=diff, verbosity=3)
        assert res.returncode == 0, res
        # run_tasks ignores errors: a failed result has changed=false too (issue 16 item 2), so assert success here
        assert not any(r.get("failed") for r in res.host()), res.host()
        assert_no_secret(api, res)
        out.append(res.host())
    assert_no_jwt_on_disk(api, tmp_path, os.path.expanduser("~/.ansible/tmp"))
    return out


def test_create_four_steps(tmp_path, attune):
    url = attune.registry.url("corp.json")
    tasks = [task(attune, url=url, name="corp", headers={"Authorization": REGISTRY_SECRET})]
    check1, apply1, check2, apply2 = four_steps(tmp_path, attune, tasks, diff=True)
    r = check1[0]
    assert r["changed"] and r["action"] == "create" and r["registry"]["id"] is None, r
    assert r["registry"]["position"] == 1 and r["registry"]["headers"] == {"Authorization": "[REDACTED]"}
    assert r["diff"]["before"] == {} and r["diff"]["after"]["headers"] == {"Authorization": "[REDACTED]"}
    r = apply1[0]
    assert r["changed"] and r["action"] == "create" and r["registry"]["id"] == 2, r
    assert [x["changed"] for x in (check2[0], apply2[0])] == [False, False], (check2, apply2)
    assert check2[0]["action"] == "none"
    rows = attune.indices
    assert [(x["url"], x["position"]) for x in rows] == [(attune.standard_index_url, 0), (url, 1)]
    assert rows[1]["headers"] == {"Authorization": REGISTRY_SECRET}
    # exactly one create; no write in check mode
    assert attune.count("/api/v1/pack-indices", "POST") == 1
    assert attune.count(method="PUT") == 0
    # Attune uses the stored header: its browse finds the pack of the protected registry
    assert attune.registry.count("/corp.json") == 0


def test_update_and_remove_four_steps(tmp_path, attune):
    url = attune.registry.url("corp.json")
    # a second registry, so that removing the first does not bring the config file's indices back (409)
    run = run_tasks(tmp_path, [task(attune, url=url, name="corp"), task(attune, url="https://other.example/index.json")])
    assert [r["changed"] for r in run.host()[:2]] == [True, True]
    tasks = [task(attune, url=url, name="corporate", position=5, enabled=False)]
    steps = four_steps(tmp_path, attune, tasks, diff=True)
    assert [s[0]["changed"] for s in steps] == [True, True, False, False], steps
    assert steps[0][0]["changed_fields"] == ["enabled", "name", "position"]
    assert steps[0][0]["diff"]["before"]["position"] == 1 and steps[0][0]["diff"]["after"]["position"] == 5
    row = [x for x in attune.indices if x["url"] == url][0]
    assert (row["name"], row["position"], row["enabled"]) == ("corporate", 5, False)
    assert attune.count(method="PUT") == 1

    # identified by name only
    res = run_tasks(tmp_path, [task(attune, name="corporate", enabled=True)])
    assert res.host()[0]["changed"] and res.host()[0]["changed_fields"] == ["enabled"]

    tasks = [task(attune, url=url, state="absent")]
    steps = four_steps(tmp_path, attune, tasks)
    assert [s[0]["changed"] for s in steps] == [True, True, False, False], steps
    assert [x["url"] for x in attune.indices] == [attune.standard_index_url, "https://other.example/index.json"]


def test_headers_on_create_and_always(tmp_path, attune):
    url = attune.registry.url("corp.json")
    run_tasks(tmp_path, [task(attune, url=url, headers={"Authorization": REGISTRY_SECRET})])
    # same header names, other value: on_create leaves the stored value (Attune cannot show it back)
    res = run_tasks(tmp_path, [task(attune, url=url, headers={"Authorization": "Bearer other-value-1"})])
    assert not res.host()[0]["changed"]
    assert attune.indices[1]["headers"] == {"Authorization": REGISTRY_SECRET}
    # other header names: updated
    res = run_tasks(tmp_path, [task(attune, url=url, headers={"X-Api-Key": "key-value-2"})])
    assert res.host()[0]["changed"] and res.host()[0]["changed_fields"] == ["headers"]
    assert attune.indices[1]["headers"] == {"X-Api-Key": "key-value-2"}
    # always: sent on every run, reported as a change
    for _unused in range(2):
        res = run_tasks(tmp_path, [task(attune, url=url, headers={"X-Api-Key": "rotated-3"}, update_headers="always")],
                        verbosity=3)
        assert res.host()[0]["changed"]
        assert "rotated-3" not in res.output and "key-value-2" not in res.output
    assert attune.indices[1]["headers"] == {"X-Api-Key": "rotated-3"}


def test_env_and_password_login(tmp_path, attune):
    url = attune.registry.url("corp.json")
    attune.add_user("deploy", password=PASSWORD)
    res = run_tasks(tmp_path, [{"attune.packs.attune_registry": dict(url=url, ca_path=attune.ca_path)}],
                    env={"ATTUNE_API_URL": attune.url(), "ATTUNE_API_TOKEN": attune.token}, verbosity=3)
    assert res.host()[0]["changed"], res
    assert_no_secret(attune, res)
    res = run_tasks(tmp_path, [{"attune.packs.attune_registry": dict(
        api_url=attune.url(), api_username="deploy", api_password=PASSWORD, ca_path=attune.ca_path, url=url, position=3)}],
        env={"ATTUNE_API_TOKEN": attune.token}, verbosity=3)  # explicit username/password win over the env token
    assert res.host()[0]["changed"], res
    assert_no_secret(attune, res)
    # one login per task: two tasks, two logins
    assert attune.count("/auth/token-login") == 1 and attune.count("/auth/login") == 1


def test_forbidden_names_permission_and_token_rule(tmp_path, attune):
    scoped = attune.add_integration_token("scoped", unconstrained=False)
    res = run_tasks(tmp_path, [task(attune, api_token=scoped, url=attune.registry.url("corp.json"))])
    r = res.host()[0]
    assert r["failed"] and r["error"]["kind"] == "api_forbidden", r
    assert attune.url() in r["msg"] and "unconstrained Packs" in r["msg"] and "Access tokens" in r["msg"], r["msg"]
    assert scoped not in res.output
    assert len(attune.indices) == 1


def test_conflict_when_delete_would_reactivate_config_indices(tmp_path, attune):
    url = attune.registry.url("corp.json")
    run_tasks(tmp_path, [task(attune, url=url)])
    res = run_tasks(tmp_path, [task(attune, url=url, state="absent")])
    r = res.host()[0]
    assert r["failed"] and r["error"]["kind"] == "api_conflict", r
    assert "static" in r["msg"] and url in r["msg"] and attune.url() in r["msg"]
    assert [x["url"] for x in attune.indices] == [attune.standard_index_url, url]
    # check mode reports the change but does not ask Attune (no DELETE at all)
    res = run_tasks(tmp_path, [task(attune, url=url, state="absent")], check=True)
    assert res.host()[0]["changed"]


def test_bad_token_and_unreachable(tmp_path, attune):
    res = run_tasks(tmp_path, [task(attune, api_token="attune_it_wrong-token-value", url="https://x.example/i.json"),
                               task(attune, api_url="https://127.0.0.1:1", url="https://x.example/i.json"),
                               task(attune, ca_path=None, url="https://x.example/i.json")], verbosity=3)
    bad, unreachable, tls = res.host()[:3]
    assert bad["failed"] and bad["error"]["kind"] == "api_unauthorized" and attune.url() in bad["msg"], bad
    assert unreachable["failed"] and unreachable["error"]["kind"] == "api_unreachable", unreachable
    assert "https://127.0.0.1:1" in unreachable["msg"]
    assert tls["failed"] and tls["error"]["kind"] == "api_tls_error", tls
    assert "attune_it_wrong-token-value" not in res.output
    assert_no_secret(attune, res)


def test_adhoc(tmp_path, attune):
    url = attune.registry.url("corp.json")
    proc, results = run_adhoc(tmp_path, "attune.packs.attune_registry",
                              "url=%s name=corp ca_path=%s" % (url, attune.ca_path),
                              env={"ATTUNE_API_URL": attune.url(), "ATTUNE_API_TOKEN": attune.token})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert results["localhost"]["changed"] and results["localhost"]["registry"]["name"] == "corp"
    assert attune.token not in proc.stdout + proc.stderr


def test_doc_fragment_matches_argument_spec():
    from ansible_collections.attune.packs.plugins.doc_fragments.attune_api import ModuleDocFragment
    from ansible_collections.attune.packs.plugins.module_utils._attune import _api
    from ansible_collections.attune.packs.plugins.module_utils._base import _common

    doc = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = _common.api_argument_spec()
    assert sorted(doc) == sorted(spec) == sorted(_api.API_OPTION_NAMES)
    for name, option in spec.items():
        assert doc[name]["type"] == option["type"], name
        assert doc[name].get("default") == option.get("default"), name
    for secret in ("api_token", "api_password"):
        assert spec[secret]["no_log"]


def test_module_documentation_parses():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules", "attune_registry.py")
    with open(path) as handle:
        tree = ast.parse(handle.read())
    docs = dict((node.targets[0].id, node.value.value) for node in tree.body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("DOCUMENTATION", "EXAMPLES", "RETURN"))
    options = yaml.safe_load(docs["DOCUMENTATION"])["options"]
    assert set(options) == {"id", "url", "name", "allow_http", "state", "position", "enabled", "headers", "update_headers"}
    assert "default" not in options["enabled"] and "default" not in options["position"]
    yaml.safe_load(docs["EXAMPLES"])
    yaml.safe_load(docs["RETURN"])


# ---------------------------------------------------------------------------
# issue 16: options a task does not set keep Attune's values (item 6); every value is checked before any request
# (item 11); Attune's id identifies a registry (item 5)


def module_docs():
    path = os.path.join(os.path.dirname(__file__), "..", "..", "plugins", "modules", "attune_registry.py")
    with open(path) as handle:
        tree = ast.parse(handle.read())
    return dict((node.targets[0].id, node.value.value) for node in tree.body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) in ("DOCUMENTATION", "EXAMPLES"))


def test_documented_rotation_keeps_disabled_state_name_and_position(tmp_path, attune):
    """The EXAMPLES rotation task (url, headers, update_headers: always) must not re-enable a disabled registry."""
    url = attune.registry.url("corp.json")
    other = "https://other.example/index.json"
    res = run_tasks(tmp_path, [task(attune, url=url, name="corp", position=5, enabled=False,
                                    headers={"Authorization": REGISTRY_SECRET}),
                               task(attune, url=other)])
    assert [r.get("failed", False) for r in res.host()[:2]] == [False, False], res
    examples = yaml.safe_load(module_docs()["EXAMPLES"])
    rotation = [t for t in examples if t["name"].startswith("Rotate")][0]["attune.packs.attune_registry"]
    # the example sets exactly these (no enabled, name or position): the test runs it as documented
    assert sorted(rotation) == ["api_token", "api_url", "headers", "update_headers", "url"], rotation
    args = dict(rotation, api_url=attune.url(), api_token=attune.token, url=url,
                headers={"Authorization": "Bearer rotated-5ecret-99"})
    args["ca_path"] = attune.ca_path
    res = run_tasks(tmp_path, [{"attune.packs.attune_registry": args}], verbosity=3)
    r = res.host()[0]
    assert not r.get("failed") and r["changed"] and r["changed_fields"] == ["headers"], r
    assert r["registry"]["enabled"] is False and r["registry"]["name"] == "corp" and r["registry"]["position"] == 5, r
    row = [x for x in attune.indices if x["url"] == url][0]
    assert (row["name"], row["position"], row["enabled"]) == ("corp", 5, False), row
    assert row["headers"] == {"Authorization": "Bearer rotated-5ecret-99"}
    assert "rotated-5ecret-99" not in res.output
    # the update sent only the headers (Attune's PUT keeps what is left out)
    put = [e for e in attune.requests if e.method == "PUT"][-1]
    assert sorted(k for k in put.json if put.json[k] is not None) == ["headers"], sorted(put.json)
    # a task that sets nothing but the URL changes nothing at all
    res = run_tasks(tmp_path, [task(attune, url=url)])
    assert not res.host()[0].get("failed") and res.host()[0]["changed"] is False, res.host()[0]
    assert [(x["name"], x["position"], x["enabled"]) for x in attune.indices if x["url"] == url] == [("corp", 5, False)]


def test_create_leaves_unset_options_to_attune(tmp_path, attune):
    url = attune.registry.url("corp.json")
    res = run_tasks(tmp_path, [task(attune, url=url)])
    r = res.host()[0]
    assert not r.get("failed") and r["changed"] and r["action"] == "create", r
    assert r["registry"]["enabled"] is True and r["registry"]["name"] is None and r["registry"]["position"] == 1, r
    post = [e for e in attune.requests if e.method == "POST" and e.path == "/api/v1/pack-indices"][0]
    assert sorted(post.json) == ["url"], post.json  # Attune's defaults: enabled, appended, no name, no headers


BAD_VALUES = [
    # (task arguments, words of the message)
    (dict(headers={"X-Api-Key": "v1\r\nX-Injected: yes"}), "line break"),
    (dict(headers={"X-Bad\r\nName": "v2-5ecret"}), "invalid header name"),
    (dict(headers={"X-Api-Key": 5}), "must be a string"),
    (dict(headers={"Host": "evil.example"}), "managed by the HTTP client"),
    (dict(position=10 ** 20), "out of range"),
    (dict(position=2 ** 31), "out of range"),
    (dict(name="corp\x00hidden"), "U+0000"),
    (dict(name="corp\u202egnp.exe"), "U+202E"),
    (dict(url="http://plain.example/index.json", headers={"Authorization": "Bearer cleartext-5ecret"}),
     "plain http:// registry URL refused"),
    (dict(url="https://q.example/index.json?token=query-5ecret"), "query string"),
    (dict(url="https://user:cred-5ecret@c.example/index.json"), "credentials"),
    (dict(url="file:///etc/attune/index.json"), "file://"),
]


def test_invalid_values_refused_before_any_request(tmp_path, attune):
    attune.allow_http = True  # this Attune would accept an http:// index: the module must refuse it itself
    url = attune.registry.url("corp.json")
    tasks = []
    for args, _words in BAD_VALUES:
        values = dict(url=url, name="corp")
        values.update(args)
        tasks.append(task(attune, **values))
    before = len(attune.requests)
    res = run_tasks(tmp_path, tasks, verbosity=3)
    results = res.host()[:len(BAD_VALUES)]
    for (args, words), r in zip(BAD_VALUES, results):
        assert r.get("failed") and r["error"]["kind"] == "invalid_arguments", (args, r)
        assert words in r["msg"], (words, r["msg"])
    assert len(attune.requests) == before, [(e.method, e.path) for e in attune.requests[before:]]
    assert len(attune.indices) == 1
    for secret in ("v1\r\nX-Injected", "cleartext-5ecret", "query-5ecret", "cred-5ecret", "v2-5ecret"):
        assert secret not in res.output, secret
    # allow_http is the explicit opt-in for an http:// index (Attune must allow it too)
    res = run_tasks(tmp_path, [task(attune, url="http://plain.example/index.json", allow_http=True)])
    r = res.host()[0]
    assert not r.get("failed") and r["changed"] and r["registry"]["url"] == "http://plain.example/index.json", r


def test_id_identifies_a_registry_with_a_redacted_url(tmp_path, attune):
    """A row whose URL carries a query string shows redacted (…?***) in attune_pack_registries: remove it by id."""
    secret_url = "https://legacy.example/index.json?token=legacy-5ecret"
    with attune._lock:  # pylint: disable=protected-access
        row = attune._add_index_row("legacy", secret_url, 3, True, {})  # pylint: disable=protected-access
        attune._add_index_row("keep", "https://keep.example/index.json", 4, True, {})  # pylint: disable=protected-access
    listed = run_tasks(tmp_path, [{"attune.packs.attune_pack_registries": conn(attune)}]).host()[0]
    shown = [r for r in listed["registries"] if r["id"] == row["id"]][0]
    assert shown["url"] == "https://legacy.example/index.json?***", shown
    res = run_tasks(tmp_path, [task(attune, id=row["id"], state="absent"), task(attune, id=row["id"], state="absent"),
                               task(attune, id=424242, enabled=False)], verbosity=3)
    first, second, missing = res.host()[:3]
    assert not first.get("failed") and first["changed"] and first["action"] == "delete", first
    assert not second.get("failed") and second["changed"] is False and second["action"] == "none", second
    assert missing.get("failed") and missing["error"]["kind"] == "api_not_found", missing
    assert [x["name"] for x in attune.indices] == ["Attune Standard", "keep"]
    assert "legacy-5ecret" not in res.output
