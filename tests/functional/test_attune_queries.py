"""attune_pack_registries / search / info and the attune_pack lookup with api_url: Attune's own registries answer.

Real plugins through ansible-playbook / ansible against the test Attune API (tests/support/attune_server.py), whose
pack indices point at real HTTPS registries (tests/support/registry_server.py).
"""
import pytest

from support.attune_server import AttuneServer, connection_args as conn
from support.play import run_adhoc, run_tasks
from support.registry_server import RegistryServer
from testdata import make_entry, make_index

CORP_SECRET = "Bearer corp-5ecret-81ab"


@pytest.fixture()
def attune():
    with RegistryServer() as reg:
        reg.add_json("/corp.json", make_index("corp", [make_entry("slack", "2.1.0"), make_entry("aws", "1.0.0")]),
                     required_headers={"Authorization": CORP_SECRET})
        reg.add_json("/pub.json", make_index("pub", [make_entry("slack", "1.0.0"), make_entry("github", "1.0.0")]))
        reg.add_json("/old.json", make_index("old", [make_entry("slack", "9.0.0"), make_entry("legacy", "1.0.0")]))
        with AttuneServer() as api:
            api.token = api.add_integration_token("ci")
            api.registry = reg
            with api._lock:  # pylint: disable=protected-access
                api.corp = api._add_index_row("corp", reg.url("corp.json"), 1, True, {"Authorization": CORP_SECRET})
                api.old = api._add_index_row("old", reg.url("old.json"), 2, False, {})
                api.pub = api._add_index_row(None, reg.url("pub.json"), 3, True, {})
            yield api


def assert_no_secret(api, res):
    for secret in (api.token, CORP_SECRET):
        assert secret not in res.output
    for secret in api.issued_secrets():
        assert secret not in res.output


@pytest.mark.parametrize("resolve_on", ["host", "controller"])
def test_registries_are_attunes_list(tmp_path, attune, resolve_on):
    res = run_tasks(tmp_path, [{"attune.packs.attune_pack_registries": conn(attune, resolve_on=resolve_on)},
                               {"attune.packs.attune_pack_registries": conn(attune, resolve_on=resolve_on, probe=True)},
                               {"attune.packs.attune_pack_registries": conn(attune, resolve_on=resolve_on, registry="old")}],
                    verbosity=3)
    assert res.returncode == 0, res
    assert_no_secret(attune, res)
    plain, probed, one = res.host()[:3]
    got = [(r["id"], r["name"], r["position"], r["priority"], r["enabled"], r["headers"]) for r in plain["registries"]]
    assert got == [
        (1, "Attune Standard", 0, 0, True, []),
        (attune.corp["id"], "corp", 1, 1, True, ["Authorization"]),
        (attune.old["id"], "old", 2, 2, False, []),
        (attune.pub["id"], attune.registry.url("pub.json"), 3, 3, True, []),  # no name: the URL, as for file registries
    ], plain
    assert plain["api_url"] == attune.url() and plain["config_path"] is None and not plain["changed"]
    assert [r.get("pack_count") for r in probed["registries"]] == [0, 2, None, 2], probed
    assert probed["registries"][0]["reachable"] is None and probed["registries"][2]["error"] == "disabled"
    assert [r["name"] for r in one["registries"]] == ["old"]


def test_search_is_attunes_browse(tmp_path, attune):
    tasks = [{"attune.packs.attune_pack_search": conn(attune, query="slack")},
             {"attune.packs.attune_pack_search": conn(attune)},
             {"attune.packs.attune_pack_search": conn(attune, query="slack", registry=attune.registry.url("pub.json"))},
             {"attune.packs.attune_pack_search": conn(attune, query="slack", dedupe=False, resolve_on="controller")}]
    res = run_tasks(tmp_path, tasks, verbosity=3)
    assert res.returncode == 0, res
    assert_no_secret(attune, res)
    slack, everything, pub, all_entries = res.host()[:4]
    assert [(p["ref"], p["version"], p["registry"], p["registry_id"], p["priority"]) for p in slack["packs"]] == [
        ("slack", "2.1.0", "corp", attune.corp["id"], 1)], slack
    assert set(slack["packs"][0]) >= {"label", "description", "author", "keywords", "registry_url", "also_in"}
    # the disabled registry "old" is never searched: legacy is absent, slack 9.0.0 too
    assert [p["ref"] for p in everything["packs"]] == ["slack", "aws", "github"], everything
    assert [(p["version"], p["registry_id"]) for p in pub["packs"]] == [("1.0.0", attune.pub["id"])]
    assert [(p["version"], p["registry"]) for p in all_entries["packs"]] == [
        ("2.1.0", "corp"), ("1.0.0", attune.registry.url("pub.json"))], all_entries
    # Attune fetched the protected index with its stored header; the collection never did
    assert attune.registry.count("/corp.json") >= 1


def test_info_is_what_attune_installs(tmp_path, attune):
    corp, pub = attune.registry.url("corp.json"), attune.registry.url("pub.json")
    same_in_files = [{"name": "corp", "url": corp, "priority": 1, "headers": {"Authorization": CORP_SECRET},
                      "ca_path": attune.ca_path},
                     {"name": "pub", "url": pub, "priority": 3, "ca_path": attune.ca_path}]
    tasks = [{"attune.packs.attune_pack_info": conn(attune, name=["slack@^2.1", "github", "aws@1.0.0"])},
             {"attune.packs.attune_pack_info": conn(attune, name="slack@^3", resolve_on="controller")},
             {"attune.packs.attune_pack_info": conn(attune, name="nothere")},
             {"attune.packs.attune_pack_info": {"name": ["slack@^2.1", "github"], "registries": same_in_files}},
             {"ansible.builtin.debug": {"msg": "{{ lookup('attune.packs.attune_pack', 'slack@2.1.0', api_url='%s', "
                                               "ca_path='%s') }}" % (attune.url(), attune.ca_path)}}]
    res = run_tasks(tmp_path, tasks, verbosity=3, env={"ATTUNE_API_TOKEN": attune.token})
    assert res.returncode == 0, res
    assert_no_secret(attune, res)
    ok, no_match, missing, files, looked_up = res.host()[:5]
    got = [(p["spec"], p["version"], p["registry"], p["registry_id"], p["registry_priority"], p["attune_source"])
           for p in ok["packs"]]
    assert got == [("slack@^2.1", "2.1.0", "corp", attune.corp["id"], 1, "slack@2.1.0"),
                   ("github", "1.0.0", pub, attune.pub["id"], 3, "github@1.0.0"),
                   ("aws@1.0.0", "1.0.0", "corp", attune.corp["id"], 1, "aws@1.0.0")], ok
    assert ok["packs"][0]["source"]["type"] == "git" and ok["packs"][0]["fallback_source"]["type"] == "archive"
    assert ok["packs"][0]["entry"]["ref"] == "slack"
    # the same registries as files resolve to the same registry and version
    assert [(p["version"], p["registry_url"]) for p in files["packs"]] == [("2.1.0", corp), ("1.0.0", pub)], files
    assert no_match["failed"] and no_match["error"]["kind"] == "pack_not_found", no_match
    assert "2.1.0" in no_match["msg"] and "slack@2.1.0" in no_match["msg"] and "corp" in no_match["msg"]
    assert missing["failed"] and missing["error"]["kind"] == "pack_not_found" and attune.url() in missing["msg"]
    assert looked_up["msg"]["version"] == "2.1.0" and looked_up["msg"]["registry_id"] == attune.corp["id"]


def test_adhoc_search_with_api_url(tmp_path, attune):
    proc, results = run_adhoc(tmp_path, "attune.packs.attune_pack_search",
                              "query=slack api_url=%s ca_path=%s" % (attune.url(), attune.ca_path),
                              env={"ATTUNE_API_TOKEN": attune.token}, extra_args=["-vvv"])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [p["registry"] for p in results["localhost"]["packs"]] == ["corp"]
    assert attune.token not in proc.stdout + proc.stderr and CORP_SECRET not in proc.stdout + proc.stderr


def test_api_url_rules(tmp_path, attune):
    tasks = [{"attune.packs.attune_pack_search": conn(attune, registries=[{"url": "https://x.example/i.json"}])},
             {"attune.packs.attune_pack_registries": conn(attune, api_token="attune_it_wrong-wrong")},
             {"attune.packs.attune_pack_search": conn(attune, registry="nope")},
             # ATTUNE_API_URL alone never switches a query to Attune's registries
             {"attune.packs.attune_pack_registries": {"registries": [{"url": "https://x.example/i.json", "name": "x"}]}}]
    res = run_tasks(tmp_path, tasks, env={"ATTUNE_API_URL": attune.url(), "ATTUNE_API_TOKEN": attune.token}, verbosity=3)
    combined, bad_token, unknown, files = res.host()[:4]
    assert combined["failed"] and "cannot be combined with api_url" in combined["msg"], combined
    assert bad_token["failed"] and bad_token["error"]["kind"] == "api_unauthorized", bad_token
    assert "attune_it_wrong-wrong" not in res.output
    assert unknown["failed"] and "unknown registry 'nope'" in unknown["msg"] and "corp (id 2)" in unknown["msg"]
    assert [r["name"] for r in files["registries"]] == ["x"] and "api_url" not in files, files
    assert_no_secret(attune, res)
