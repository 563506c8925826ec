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

from ansible_collections.attune.packs.plugins.module_utils import _api
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
