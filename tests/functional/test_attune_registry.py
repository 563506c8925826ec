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
    from ansible_collections.attune.packs.plugins.module_utils import _api, _common

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
    assert set(options) == {"url", "name", "state", "position", "enabled", "headers", "update_headers"}
    yaml.safe_load(docs["EXAMPLES"])
    yaml.safe_load(docs["RETURN"])
