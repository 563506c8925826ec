"""Which target each host of a fleet gets (issue 16 item 1, HIGH).

The attack: in the fleet guide's inventory (``ansible_connection: local``, one inventory host per Attune
deployment), one host's ``packs_api_url`` is misspelt (``packs_api_ur1``).  Before the fix the ``packs`` role
omitted ``api_url`` for that host, ``attune_pack`` chose the files target and installed the packs into the
controller's ``packs_base_dir`` (which Attune v0.6 does not read), reported ``changed`` and exited 0, and
``drift_report`` called that deployment "in sync" from the same controller directory.  ``api_url: ""`` on
``attune_pack`` did the same.

Now: an empty ``api_url`` is ``invalid_arguments``; the role (and so ``pin_fleet``) and ``drift_report`` refuse
a host without ``packs_api_url`` in a play whose other hosts have one, and several controller-local hosts that
would share the controller's packs_dir, unless ``packs_target: files`` says so.
"""
import contextlib
import os

import pytest

from support.attune_server import AttuneServerProcess
from support.fleet import Fleet, run_playbook
from support.pack_site import EXPECTED, PACKS, PackSite
from support.play import run_tasks
from support.registry_server import RegistryServer

PACK = "attune.packs.attune_pack"
INSTALLED = "attune.packs.attune_pack_installed"


def tree(path):
    found = []
    for root, dirs, files in os.walk(str(path)):
        found.extend(os.path.relpath(os.path.join(root, name), str(path)) for name in dirs + files)
    return sorted(found)


@pytest.fixture()
def mixed_fleet(tmp_path):
    """Two Attune deployments (worker01, worker02) and worker03 whose URL variable is misspelt."""
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(RegistryServer())
        site = PackSite(server, str(tmp_path / "site"))
        attunes = {}
        for host in ("worker01", "worker02"):
            workdir = tmp_path / host
            workdir.mkdir()
            attunes[host] = stack.enter_context(AttuneServerProcess(
                str(workdir), config={"integration_tokens": ["ci"], "standard_packs": [{"ref": "core"}]}))
        bundle = tmp_path / "ca-bundle.pem"
        with open(str(bundle), "wb") as out:
            for path in [server.ca_path] + [a.ca_path for a in attunes.values()]:
                with open(path, "rb") as handle:
                    out.write(handle.read())
        # the controller's own Attune config: where a files-target host on the controller would install
        controller_packs = tmp_path / "controller-packs"
        config = tmp_path / "controller-config.yaml"
        config.write_text("packs_base_dir: %s\n" % controller_packs)
        fleet = Fleet(tmp_path, 3)
        host_vars = dict((host, {"packs_api_url": a.url(), "packs_api_token": a.tokens["ci"]}) for host, a in attunes.items())
        host_vars["worker03"] = {"packs_api_ur1": attunes["worker01"].url(), "packs_api_token": attunes["worker01"].tokens["ci"]}
        options = site.options(tmp_path / "cache", ca_path=str(bundle))
        group_vars = {"packs_list": PACKS, "packs_lock_file": str(tmp_path / "packs.lock.yml"), "packs_registry_options": options}
        yield dict(site=site, attunes=attunes, fleet=fleet, host_vars=host_vars, group_vars=group_vars,
                   controller_packs=controller_packs, env={"ATTUNE_CONFIG": str(config)})


def test_misspelt_api_url_is_refused_not_pinned_on_the_controller(tmp_path, mixed_fleet):
    f = mixed_fleet
    inventory = f["fleet"].write_inventory(host_vars=f["host_vars"], group_vars=f["group_vars"])
    run = run_playbook(tmp_path, "pin_fleet.yml", inventory, env=f["env"])
    assert run.returncode != 0, run
    refused = [e for e in run.results("ansible.builtin.assert", host="worker03") if e["status"] == "failed"]
    assert refused, run
    msg = refused[0]["result"]["msg"]
    assert "worker03 has no packs_api_url" in msg and "worker01, worker02" in msg and "misspelt" in msg, msg
    # nothing went into the controller's packs_base_dir, and the refused host ran no install task
    assert tree(f["controller_packs"]) == [], tree(f["controller_packs"])
    installs = run.by_host(PACK)
    assert "worker03" not in installs and sorted(installs) == ["worker01", "worker02"], installs
    # the deployments that are configured right are installed as before
    for host in ("worker01", "worker02"):
        assert installs[host]["result"]["changed"] and sorted(installs[host]["result"]["uploaded"]) == sorted(EXPECTED)

    # drift_report refuses the same host instead of reading files that deployment does not read
    report = run_playbook(tmp_path, "drift_report.yml", inventory, env=f["env"])
    assert report.returncode != 0, report
    drifts = report.by_host(INSTALLED)
    assert "worker03" not in drifts and sorted(drifts) == ["worker01", "worker02"], drifts
    assert all(not e["result"]["drift"]["deviates"] for e in drifts.values()), drifts
    assert "worker03 has no packs_api_url" in report.output
    assert tree(f["controller_packs"]) == []


def test_packs_target_files_says_a_mixed_play_is_meant(tmp_path, mixed_fleet):
    f = mixed_fleet
    host_vars = dict(f["host_vars"])
    host_vars["worker03"] = {"packs_target": "files", "packs_dir": str(tmp_path / "worker03-packs")}
    inventory = f["fleet"].write_inventory(host_vars=host_vars, group_vars=f["group_vars"])
    run = run_playbook(tmp_path, "pin_fleet.yml", inventory, env=f["env"])
    assert run.returncode == 0, run
    installs = run.by_host(PACK)
    assert sorted(installs) == ["worker01", "worker02", "worker03"], installs
    assert installs["worker03"]["result"]["packs_dir"] == str(tmp_path / "worker03-packs")
    assert sorted(os.listdir(str(tmp_path / "worker03-packs" / ".attune"))) == sorted("%s.json" % ref for ref in EXPECTED)
    assert all("api_url" in installs[h]["result"] for h in ("worker01", "worker02"))

    # packs_target attune without a URL, and files with one, are refused before anything is installed
    host_vars["worker03"] = {"packs_target": "attune"}
    host_vars["worker02"] = dict(host_vars["worker02"], packs_target="files")
    inventory = f["fleet"].write_inventory(host_vars=host_vars, group_vars=f["group_vars"])
    run = run_playbook(tmp_path, "pin_fleet.yml", inventory, env=f["env"])
    assert run.returncode != 0, run
    failed = dict((e["host"], e["result"]["msg"]) for e in run.results("ansible.builtin.assert") if e["status"] == "failed")
    assert "packs_target is attune but packs_api_url is empty" in failed["worker03"], failed
    assert "packs_target is files but packs_api_url is set" in failed["worker02"], failed
    assert sorted(run.by_host(PACK)) == ["worker01"]


def test_controller_local_hosts_without_url_or_packs_dir_are_refused(tmp_path, mixed_fleet):
    """Every host's URL variable misspelt (e.g. in group_vars): all would share the controller's packs_dir."""
    f = mixed_fleet
    host_vars = dict((host, {"packs_api_ur1": "https://attune.example"}) for host in ("worker01", "worker02", "worker03"))
    inventory = f["fleet"].write_inventory(host_vars=host_vars, group_vars=f["group_vars"])
    run = run_playbook(tmp_path, "pin_fleet.yml", inventory, env=f["env"])
    assert run.returncode != 0, run
    failed = dict((e["host"], e["result"]["msg"]) for e in run.results("ansible.builtin.assert") if e["status"] == "failed")
    assert sorted(failed) == ["worker01", "worker02", "worker03"], failed
    assert "would all install into the controller's packs_dir" in failed["worker01"]
    assert run.by_host(PACK) == {}
    assert tree(f["controller_packs"]) == []


def test_empty_api_url_is_invalid_arguments(tmp_path, mixed_fleet):
    f = mixed_fleet
    attune = f["attunes"]["worker01"]
    for module, args in ((PACK, {"name": "slack"}), (PACK, {"name": "slack", "state": "absent"}), (INSTALLED, {}),
                         ("attune.packs.attune_pack_search", {"query": "slack"})):
        res = run_tasks(tmp_path, [{module: dict(args, api_url="", api_token=attune.tokens["ci"])}], env=f["env"])
        r = res.host()[0]
        assert r.get("failed") and r["changed"] is False and r["error"]["kind"] == "invalid_arguments", (module, r)
        assert "api_url is empty" in r["msg"], r
    assert tree(f["controller_packs"]) == []
    assert attune.read_log() == []
