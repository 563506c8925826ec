"""playbooks/migrate_registries_to_attune.yml against the test Attune API and real HTTPS registries.

Before: Attune's database holds only the standard index, so the config file's indices (static_indices of the test
server) are in force.  The play puts the same registries into the database; attune_pack_info shows each ref
resolving to the same registry and version before and after, and the play fails when it would not.
"""
import os
import sys

import pytest

from conftest import REPO_ROOT
from support.attune_server import AttuneServer
from support.fleet import run_playbook
from support.registry_server import RegistryServer
from testdata import make_entry, make_index

TOKEN = "Bearer mig-TOKEN-19f0c2"
PLAYBOOK = os.path.join(REPO_ROOT, "playbooks", "migrate_registries_to_attune.yml")
CHECK_TASK = "Show that every ref resolves to the same registry"


@pytest.fixture()
def site():
    with RegistryServer() as reg:
        reg.add_json("/corp.json", make_index("corp", [make_entry("slack", "2.1.0"), make_entry("aws", "1.0.0")]),
                     required_headers={"Authorization": TOKEN})
        reg.add_json("/pub.json", make_index("pub", [make_entry("slack", "1.0.0"), make_entry("github", "1.0.0")]))
        file_indices = [
            {"name": "public", "url": reg.url("pub.json"), "priority": 10, "enabled": True, "headers": {}},
            {"name": "corp", "url": reg.url("corp.json"), "priority": 1, "enabled": True, "headers": {"Authorization": TOKEN}},
        ]
        with AttuneServer(static_indices=file_indices) as api:
            api.token = api.add_integration_token("ci")
            api.registry = reg
            api.file_indices = file_indices
            yield api


def run(tmp_path, api, indices, check=False):
    inventory = tmp_path / "inventory.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    extra = {"attune_api_url": api.url(), "attune_api_token": api.token, "attune_api_ca_path": api.ca_path,
             "attune_migrate_refs": ["slack", "github", "aws"], "registry_config_indices": indices}
    result = run_playbook(tmp_path, PLAYBOOK, str(inventory), check=check, verbosity=3, extra_vars=extra)
    for secret in (api.token, TOKEN):
        assert secret not in result.output
    return result


def resolved(result, task):
    event = result.results(task=task)[0]
    return [(p["ref"], p["version"], p["registry_url"], p["registry_id"]) for p in event["result"]["packs"]]


def test_migration_keeps_every_ref_on_its_registry(tmp_path, site):
    reg = site.registry
    corp, pub = reg.url("corp.json"), reg.url("pub.json")
    check = run(tmp_path, site, site.file_indices, check=True)
    assert check.returncode == 0, check.output[-5000:]
    assert len(site.indices) == 1  # check mode: nothing created

    first = run(tmp_path, site, site.file_indices)
    assert first.returncode == 0, first.output[-5000:]
    before = resolved(first, "Resolve the refs while the config file's registries are in force")
    after = resolved(first, "Resolve the refs again")
    assert [r[:3] for r in before] == [("slack", "2.1.0", corp), ("github", "1.0.0", pub), ("aws", "1.0.0", corp)]
    assert [r[:3] for r in after] == [r[:3] for r in before]
    assert [r[3] for r in before] == [None, None, None]            # from the config file
    rows = dict((r["url"], r) for r in site.indices)
    assert [r[3] for r in after] == [rows[corp]["id"], rows[pub]["id"], rows[corp]["id"]]  # from the database now
    assert [(r["name"], r["position"]) for r in site.indices] == [("Attune Standard", 0), ("corp", 2), ("public", 11)]
    assert rows[corp]["headers"] == {"Authorization": TOKEN}
    assert first.results(task=CHECK_TASK)[0]["status"] == "ok"

    again = run(tmp_path, site, site.file_indices)
    assert again.returncode == 0, again.output[-5000:]
    assert not [e["task"] for e in again.events if e.get("changed")]
    assert len(site.indices) == 3


def test_migration_that_would_move_a_ref_fails(tmp_path, site):
    # the same registries with other priorities: slack would come from public afterwards
    indices = [dict(i, priority={"public": 1, "corp": 10}[i["name"]]) for i in site.file_indices]
    result = run(tmp_path, site, indices)
    assert result.returncode != 0
    event = result.results(task=CHECK_TASK)[0]
    assert event["status"] == "failed" and "changed where Attune resolves refs" in event["result"]["msg"]
