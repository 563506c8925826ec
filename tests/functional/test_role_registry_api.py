"""The registry_config role's API target: registry_config_indices into a running Attune's database.

ansible-playbook runs the role on two local hosts (file target on each) with the API target against the test
Attune API (tests/support/attune_server.py), whose registries are real HTTPS registries
(tests/support/registry_server.py).  Four steps (check, apply, check, apply) with ``changed`` exactly right; no
token (integration token, registry header value, Attune's JWTs) in any output, -vvv included.
"""
import grp
import os
import pwd
import sys

import pytest
import yaml

from ansible_collections.attune.packs.plugins.module_utils._attune import _api
from support.attune_server import AttuneServer
from support.fleet import run_playbook
from support.registry_server import RegistryServer
from testdata import make_entry, make_index

REGISTRY_TOKEN = "Bearer reg-api-TOKEN-4d2f9e"
ROLE_TASK = "Put each registry into Attune's database"
REMOVE_TASK = "Remove the registries that are not listed"
FILE_TASK = "Write the pack_registry section of the Attune config file"


@pytest.fixture()
def site():
    with RegistryServer() as reg:
        reg.add_json("/corp.json", make_index("corp", [make_entry("slack", "2.1.0")]),
                     required_headers={"Authorization": REGISTRY_TOKEN})
        reg.add_json("/pub.json", make_index("pub", [make_entry("slack", "1.0.0"), make_entry("github", "1.0.0")]))
        reg.add_json("/paused.json", make_index("paused", [make_entry("jira", "1.0.0")]))
        reg.add_json("/stale.json", make_index("stale", [make_entry("legacy", "1.0.0")]))
        static = [{"url": reg.url("pub.json"), "priority": 5, "enabled": True, "name": "from-file"}]
        with AttuneServer(static_indices=static) as api:
            api.token = api.add_integration_token("ci")
            api.registry = reg
            yield api


def write_play(tmp_path, hosts=("w1", "w2")):
    inventory = tmp_path / "inventory.ini"
    lines = ["[workers]"]
    for host in hosts:
        (tmp_path / host).mkdir(exist_ok=True)
        lines.append("%s ansible_connection=local ansible_python_interpreter=%s registry_config_path=%s"
                     % (host, sys.executable, tmp_path / host / "config.yaml"))
    lines.append("[all:vars]")
    lines.append("ansible_python_interpreter=%s" % sys.executable)
    inventory.write_text("\n".join(lines) + "\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "registries", "hosts": "workers", "gather_facts": False,
                                         "roles": [{"role": "attune.packs.registry_config"}]}]))
    return str(playbook), str(inventory)


def role_vars(api, **extra):
    reg = api.registry
    values = {
        "registry_config_indices": [
            {"name": "corp", "url": reg.url("corp.json"), "priority": 1, "headers": {"Authorization": REGISTRY_TOKEN}},
            {"name": "public", "url": reg.url("pub.json"), "priority": 10},
            {"name": "paused", "url": reg.url("paused.json"), "priority": 10, "enabled": False},
        ],
        "registry_config_owner": pwd.getpwuid(os.getuid()).pw_name,
        "registry_config_group": grp.getgrgid(os.getgid()).gr_name,
        "registry_config_approved_private_hosts": ["127.0.0.1"],
        "registry_config_api_url": api.url(),
        "registry_config_api_token": api.token,
        "registry_config_api_ca_path": api.ca_path,
        # the test server's standard index is served by itself, not from raw.githubusercontent.com
        "registry_config_api_standard_pattern": r"/_sim/standard-index\.json$",
    }
    values.update(extra)
    return values


def secrets_of(api):
    return {api.token, REGISTRY_TOKEN, REGISTRY_TOKEN.split()[-1]} | api.issued_secrets()


def four_steps(tmp_path, api, extra_vars):
    playbook, inventory = write_play(tmp_path)
    runs = []
    for check in (True, False, True, False):
        run = run_playbook(tmp_path, playbook, inventory, check=check, diff=True, verbosity=3, extra_vars=extra_vars)
        assert run.returncode == 0, run.output[-6000:]
        for secret in secrets_of(api):
            assert secret not in run.output, secret[:6]
            for event in run.events:
                assert secret not in yaml.safe_dump(event), secret[:6]
        runs.append(run)
    return runs


def changed(run, task):
    """[(item url or host, changed)] of a task; a loop's items are in its aggregate result."""
    out = []
    for event in run.results(task=task):
        if event["status"] == "skipped":
            continue
        if "results" in event["result"]:
            out.extend((r["item"]["url"], bool(r.get("changed"))) for r in event["result"]["results"])
        else:
            out.append((event["host"], event["changed"]))
    return out


def test_api_target_four_steps_exclusive(tmp_path, site):
    reg = site.registry
    with site._lock:  # pylint: disable=protected-access
        site._add_index_row("stale", reg.url("stale.json"), 7, True, {})
    runs = four_steps(tmp_path, site, role_vars(site, registry_config_api_exclusive=True))
    check1, apply1, check2, apply2 = runs
    wanted = [(reg.url("corp.json"), True), (reg.url("pub.json"), True), (reg.url("paused.json"), True)]
    assert changed(check1, ROLE_TASK) == wanted and changed(apply1, ROLE_TASK) == wanted
    assert changed(check1, REMOVE_TASK) == [(reg.url("stale.json"), True)] == changed(apply1, REMOVE_TASK)
    for run in (check2, apply2):
        assert [c for _u, c in changed(run, ROLE_TASK)] == [False, False, False]
        assert changed(run, REMOVE_TASK) == []
        assert not [e for e in run.events if e.get("changed")], [e["task"] for e in run.events if e.get("changed")]
    # the file target ran on both hosts, changed exactly once each
    assert sorted(changed(apply1, FILE_TASK)) == [("w1", True), ("w2", True)]
    assert sorted(changed(apply2, FILE_TASK)) == [("w1", False), ("w2", False)]
    # Attune's database: standard kept, the list in priority order behind it (1 + priority, ties consecutive)
    rows = [(r["name"], r["url"], r["position"], r["enabled"]) for r in site.indices]
    assert rows == [("Attune Standard", site.standard_index_url, 0, True), ("corp", reg.url("corp.json"), 2, True),
                    ("public", reg.url("pub.json"), 11, True), ("paused", reg.url("paused.json"), 12, False)], rows
    assert site.indices[1]["headers"] == {"Authorization": REGISTRY_TOKEN}
    # the API tasks ran once (both hosts name the same Attune), not once per host
    assert [e["status"] for e in apply1.results(task=ROLE_TASK)].count("skipped") == 1
    assert len([e for e in apply1.results(task=ROLE_TASK) if e["status"] != "skipped"]) == 1
    # Attune now resolves from its database: slack comes from corp (through the stored header)
    api = _api.AttuneApi(site.url(), token=site.token, ca_path=site.ca_path)
    assert api.get_indexed_pack("slack")["registry"]["name"] == "corp"


def test_api_target_keeps_others_unless_exclusive_and_removes_standard_when_asked(tmp_path, site):
    reg = site.registry
    with site._lock:  # pylint: disable=protected-access
        site._add_index_row("stale", reg.url("stale.json"), 7, True, {})
    playbook, inventory = write_play(tmp_path, hosts=("w1",))
    values = role_vars(site, registry_config_write_file=False)
    run = run_playbook(tmp_path, playbook, inventory, extra_vars=values, verbosity=1)
    assert run.returncode == 0, run.output[-4000:]
    assert run.results(task=FILE_TASK)[0]["status"] == "skipped"
    assert not os.path.exists(str(tmp_path / "w1" / "config.yaml"))
    assert [r["name"] for r in site.indices] == ["Attune Standard", "corp", "stale", "public", "paused"]
    values.update(registry_config_api_exclusive=True, registry_config_api_remove_standard=True)
    run = run_playbook(tmp_path, playbook, inventory, extra_vars=values, verbosity=1)
    assert run.returncode == 0, run.output[-4000:]
    assert changed(run, REMOVE_TASK) == [(site.standard_index_url, True), (reg.url("stale.json"), True)]
    assert [r["name"] for r in site.indices] == ["corp", "public", "paused"]
    for secret in secrets_of(site):
        assert secret not in run.output


# ---------------------------------------------------------------------------
# issue 16: exclusive removals by Attune's id (item 5), entries without enabled keep Attune's value (item 6), one
# run per distinct registry_config_api_url (item 12)

PUT_TASK = ROLE_TASK
API_VARS = ("registry_config_api_url", "registry_config_api_token", "registry_config_api_ca_path")


def write_yaml_play(tmp_path, hostvars):
    """Hosts with their own variables (an API per host): a YAML inventory, the role over every host."""
    hosts = {}
    for host, values in hostvars.items():
        (tmp_path / host).mkdir(exist_ok=True)
        hosts[host] = dict(values, ansible_connection="local", ansible_python_interpreter=sys.executable,
                           registry_config_path=str(tmp_path / host / "config.yaml"))
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"workers": {"hosts": hosts}}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"name": "registries", "hosts": "workers", "gather_facts": False,
                                         "roles": [{"role": "attune.packs.registry_config"}]}]))
    return str(playbook), str(inventory)


def split_vars(api, **extra):
    """(the variables every host shares, the API variables of ``api``): API variables go to the inventory host."""
    values = role_vars(api, registry_config_write_file=False, **extra)
    return dict((k, v) for k, v in values.items() if k not in API_VARS), dict((k, values[k]) for k in API_VARS)


def test_exclusive_removes_a_registry_whose_url_has_a_query_string(tmp_path, site):
    """Attune's list shows ``…?***``: the role must remove the unlisted row by its id, not report "ok"."""
    reg = site.registry
    hidden = reg.url("stale.json") + "?token=query-5ecret-8812"
    with site._lock:  # pylint: disable=protected-access
        hidden_id = site._add_index_row("hidden", hidden, 7, True, {})["id"]  # pylint: disable=protected-access
        # listed in registry_config_indices without `enabled`: disabled in Attune, it must stay disabled
        site._add_index_row("public", reg.url("pub.json"), 11, False, {})  # pylint: disable=protected-access
    shared, api_vars = split_vars(site, registry_config_api_exclusive=True)
    playbook, inventory = write_yaml_play(tmp_path, {"w1": api_vars})
    run = run_playbook(tmp_path, playbook, inventory, extra_vars=shared, verbosity=3)
    assert run.returncode == 0, run.output[-6000:]
    removed = [r for e in run.results(task=REMOVE_TASK) if e["status"] != "skipped" for r in e["result"]["results"]]
    assert [(r["item"]["id"], r["changed"], r.get("failed", False)) for r in removed] == [(hidden_id, True, False)], removed
    assert [r["name"] for r in site.indices] == ["Attune Standard", "corp", "public", "paused"]
    assert all(r["url"] != hidden for r in site.indices)
    public = [r for r in site.indices if r["name"] == "public"][0]
    assert public["enabled"] is False, public  # not re-enabled: the entry does not set enabled
    paused = [r for r in site.indices if r["name"] == "paused"][0]
    assert paused["enabled"] is False
    assert "query-5ecret-8812" not in run.output
    for secret in secrets_of(site):
        assert secret not in run.output
    # a second run: nothing left to remove, nothing changed
    run = run_playbook(tmp_path, playbook, inventory, extra_vars=shared)
    assert run.returncode == 0, run.output[-4000:]
    assert not [e for e in run.events if e.get("changed")], [e["task"] for e in run.events if e.get("changed")]


@pytest.fixture()
def second_site(site):
    with AttuneServer() as api:
        api.token = api.add_integration_token("ci-b")
        api.registry = site.registry
        yield api


def test_each_distinct_api_url_is_configured(tmp_path, site, second_site):
    """w1 and w3 name Attune A, w2 names Attune B: both get the registries, A once."""
    shared, vars_a = split_vars(site)
    _shared, vars_b = split_vars(second_site)
    playbook, inventory = write_yaml_play(tmp_path, {"w1": vars_a, "w2": vars_b, "w3": vars_a})
    for step in range(2):
        run = run_playbook(tmp_path, playbook, inventory, extra_vars=shared, verbosity=1)
        assert run.returncode == 0, run.output[-6000:]
        ran = sorted(e["host"] for e in run.results(task=PUT_TASK) if e["status"] != "skipped")
        assert ran == ["w1", "w2"], ran
        for event in run.results(task=PUT_TASK):
            if event["status"] != "skipped":
                assert [bool(r["changed"]) for r in event["result"]["results"]] == [step == 0] * 3, event
        for secret in secrets_of(site) | secrets_of(second_site):
            assert secret not in run.output
    for api in (site, second_site):
        rows = [(r["name"], r["position"], r["enabled"]) for r in api.indices]
        assert rows == [("Attune Standard", 0, True), ("corp", 2, True), ("public", 11, True), ("paused", 12, False)], rows
        assert api.count("/api/v1/pack-indices", "POST") == 3  # each Attune configured once, not once per host
        assert api.indices[1]["headers"] == {"Authorization": REGISTRY_TOKEN}


def test_hosts_naming_one_attune_with_different_registries_are_refused(tmp_path, site):
    shared, vars_a = split_vars(site)
    indices = shared.pop("registry_config_indices")
    playbook, inventory = write_yaml_play(tmp_path, {
        "w1": dict(vars_a, registry_config_indices=indices),
        "w2": dict(vars_a, registry_config_indices=indices[:1])})
    run = run_playbook(tmp_path, playbook, inventory, extra_vars=shared, verbosity=1)
    assert run.returncode != 0
    refused = run.results(task="Refuse hosts that name the same Attune")
    assert sorted((e["host"], e["status"]) for e in refused) == [("w1", "failed"), ("w2", "failed")], refused
    message = refused[0]["result"]["msg"]
    assert "w1, w2" in message and "same Attune API" in message and "nothing was changed" in message, message
    assert [r["name"] for r in site.indices] == ["Attune Standard"]
    assert site.count(method="POST", path="/api/v1/pack-indices") == 0
    for secret in secrets_of(site):
        assert secret not in run.output
