"""Issue 18 item 2: converging means the locked content, not only the locked version.

``attune_pack verify: true`` (role: ``packs_verify``) reinstalls a managed pack whose tree no longer matches the
``tree_checksum`` of its provenance record (drift ``modified``).  Everything runs through ansible against the HTTPS
test registry (``support.pack_site``): pin_fleet, the drift report, and single tasks; the packs are installed for
real from real archives, then changed on disk as a person would.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from support import synth
from support.fleet import BIN_DIR, Fleet, ansible_env, run_playbook
from support.pack_site import EXPECTED, PACKS, PackSite
from support.play import run_tasks
from support.registry_server import RegistryServer

PACK = "attune.packs.attune_pack"
INSTALL_TASK = "Install the locked packs"


@pytest.fixture
def site(tmp_path):
    with RegistryServer() as server:
        yield PackSite(server, str(tmp_path))


def packs_dir(workdir, host):
    return os.path.join(str(workdir), "hosts", host, "packs")


def make_fleet(workdir, size):
    variables = {
        "packs_list": list(PACKS),
        "packs_lock_file": os.path.join(str(workdir), "packs.lock.yml"),
    }
    fleet = Fleet(workdir, size, python=sys.executable, common_vars=variables)
    for host in fleet.names:
        fleet.hosts[host]["packs_dir"] = packs_dir(workdir, host)
    return fleet


def records(directory):
    """{ref: provenance record} of the packs attune_pack installed in ``directory``."""
    result = {}
    for path in sorted(glob.glob(os.path.join(directory, ".attune", "*.json"))):
        with open(path) as handle:
            data = json.load(handle)
        result[data["pack_ref"]] = data
    return result


def file_digests(root):
    digests = {}
    for directory, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                digests[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def source_tree(site, ref, version=None):
    return site.archives[(ref, version or EXPECTED[ref][1])][2]


def drift(workdir, inventory):
    """{host: drift message} from playbooks/drift_report.yml (read-only)."""
    report = run_playbook(workdir, "drift_report.yml", inventory,
                          extra_vars={"packs_lock_file": os.path.join(str(workdir), "packs.lock.yml")})
    assert report.returncode == 0, report
    assert not any(event["changed"] for event in report.results(action="attune.packs.attune_pack_installed"))
    return dict((event["host"], event["result"]["msg"])
                for event in report.results(action="ansible.builtin.debug", task="Print the drift of each host"))


def pin(workdir, inventory, check=False, diff=False, **extra):
    run = run_playbook(workdir, "pin_fleet.yml", inventory, check=check, diff=diff, extra_vars=extra or None)
    assert run.returncode == 0, run
    events = dict((event["host"], event) for event in run.results(action=PACK, task=INSTALL_TASK))
    return run, events


def actions(event):
    return dict((item["ref"], item["action"]) for item in event["result"]["packs"])


def test_pin_fleet_repairs_every_drift_kind_and_modified_files_only_with_packs_verify(site, tmp_path):
    fleet = make_fleet(tmp_path, 2)
    fleet.group_vars["packs_registry_options"] = site.options(str(tmp_path / "controller-cache"))
    inventory = fleet.write_inventory()
    pin(tmp_path, inventory)
    one, two = packs_dir(tmp_path, "worker01"), packs_dir(tmp_path, "worker02")
    assert sorted(records(one)) == sorted(records(two)) == sorted(EXPECTED)
    assert drift(tmp_path, inventory) == {"worker01": "in sync: 4 locked packs installed as locked",
                                          "worker02": "in sync: 4 locked packs installed as locked"}

    # every drift kind the report knows
    edited = os.path.join(one, "slack", "actions", "hello.py")
    with open(edited, "a") as handle:  # modified
        handle.write("# edited by hand\n")
    os.unlink(os.path.join(one, "internal", "README.md"))  # modified (a file deleted)
    with open(os.path.join(one, ".attune", "aws.json"), "w") as handle:  # unreadable provenance
        handle.write("{not json")
    shutil.rmtree(os.path.join(two, "github"))  # missing
    os.unlink(os.path.join(two, ".attune", "github.json"))
    shutil.rmtree(os.path.join(two, "aws"))  # other source: a tree copied by hand at the locked version
    os.unlink(os.path.join(two, ".attune", "aws.json"))
    synth.make_pack_tree(os.path.join(two, "aws"), "aws", EXPECTED["aws"][1], files={"README.md": "copied by hand\n"})
    old = os.path.join(site.files, "slack-2.0.0.tar.gz")  # other version, installed ad hoc
    adhoc = subprocess.run(
        [os.path.join(BIN_DIR, "ansible"), "-i", inventory, "worker02", "-m", PACK,
         "-a", json.dumps({"name": "slack", "src": old, "checksum": site.checksum("slack", "2.0.0"), "packs_dir": two})],
        cwd=str(tmp_path), env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    assert adhoc.returncode == 0, adhoc.stdout + adhoc.stderr
    lines = drift(tmp_path, inventory)
    assert lines["worker01"] == "DRIFT: unreadable provenance aws; modified files internal, slack", lines
    assert lines["worker02"] == "DRIFT: missing github; other version slack 2.0.0 (locked 2.1.0); other source aws", lines

    # without packs_verify: everything but the modified files is repaired; the modified packs are left as they are
    run, events = pin(tmp_path, inventory)
    assert actions(events["worker01"]) == {"slack": "none", "aws": "reinstall", "github": "none", "internal": "none"}
    assert actions(events["worker02"]) == {"slack": "upgrade", "aws": "reinstall", "github": "install", "internal": "none"}
    with open(edited) as handle:
        assert handle.read().endswith("# edited by hand\n")
    assert not os.path.exists(os.path.join(one, "internal", "README.md"))
    assert file_digests(os.path.join(two, "aws")) == file_digests(source_tree(site, "aws"))  # the hand copy was replaced
    lines = drift(tmp_path, inventory)
    assert lines == {"worker01": "DRIFT: modified files internal, slack",
                     "worker02": "in sync: 4 locked packs installed as locked"}, lines

    # check mode predicts the repair and changes nothing
    gets_before = dict(site.archive_gets())
    before = file_digests(one)
    run, events = pin(tmp_path, inventory, check=True, diff=True, packs_verify=True)
    first = events["worker01"]["result"]
    assert events["worker01"]["changed"] and not first.get("failed"), first
    assert actions(events["worker01"]) == {"slack": "reinstall", "aws": "none", "github": "none", "internal": "reinstall"}
    assert "slack: would reinstall 2.1.0 (modified files: files differ from what was installed" in first["msg"], first["msg"]
    reasons = dict((item["ref"], item["reason"]) for item in first["packs"])
    recorded = records(one)["slack"]["tree_checksum"]
    assert "recorded %s" % recorded in reasons["slack"], reasons
    assert not events["worker02"]["changed"] and actions(events["worker02"]) == dict((ref, "none") for ref in EXPECTED)
    assert file_digests(one) == before  # nothing written
    assert site.archive_gets() == gets_before  # nothing downloaded to find out

    # packs_verify: the modified packs are reinstalled from the lock, the others untouched
    kept = records(one)["aws"]
    run, events = pin(tmp_path, inventory, packs_verify=True)
    assert events["worker01"]["changed"] and not events["worker01"]["result"].get("failed"), events["worker01"]
    assert actions(events["worker01"]) == {"slack": "reinstall", "aws": "none", "github": "none", "internal": "reinstall"}
    assert not events["worker02"]["changed"], events["worker02"]
    for ref in ("slack", "internal"):
        assert file_digests(os.path.join(one, ref)) == file_digests(source_tree(site, ref)), ref
    assert records(one)["aws"] == kept
    assert drift(tmp_path, inventory) == {"worker01": "in sync: 4 locked packs installed as locked",
                                          "worker02": "in sync: 4 locked packs installed as locked"}

    # converged: a second run with packs_verify changes nothing and downloads nothing
    gets_before = dict(site.archive_gets())
    run, events = pin(tmp_path, inventory, packs_verify=True)
    assert all(run.stats[host]["changed"] == 0 for host in fleet.names), run.stats
    assert all(actions(event) == dict((ref, "none") for ref in EXPECTED) for event in events.values()), events
    assert site.archive_gets() == gets_before


def test_verify_with_a_spec_state_present(site, tmp_path):
    """Without a lock: a modified pack that satisfies its spec is reinstalled from the registry (four steps)."""
    target = str(tmp_path / "packs")
    options = dict(site.options(str(tmp_path / "cache")), packs_dir=target)
    task = {PACK: dict(options, name="slack@^2")}
    first = run_tasks(tmp_path, [task]).host()[0]
    assert first["changed"] and not first.get("failed") and first["pack"]["version"] == "2.1.0", first
    config = os.path.join(target, "slack", "pack.yaml")
    with open(config, "a") as handle:
        handle.write("# local edit\n")

    plain = run_tasks(tmp_path, [task]).host()[0]
    assert not plain["changed"] and not plain.get("failed") and plain["packs"][0]["action"] == "none", plain
    with open(config) as handle:
        assert handle.read().endswith("# local edit\n")

    verify = {PACK: dict(options, name="slack@^2", verify=True)}
    gets_before = dict(site.archive_gets())
    check = run_tasks(tmp_path, [verify], check=True).host()[0]
    assert check["changed"] and not check.get("failed") and check["packs"][0]["action"] == "reinstall", check
    assert check["msg"].startswith("slack: would reinstall 2.1.0 (modified files:"), check["msg"]
    assert site.archive_gets() == gets_before
    with open(config) as handle:
        assert handle.read().endswith("# local edit\n")

    real = run_tasks(tmp_path, [verify]).host()[0]
    assert real["changed"] and not real.get("failed") and real["packs"][0]["action"] == "reinstall", real
    assert file_digests(os.path.join(target, "slack")) == file_digests(source_tree(site, "slack"))
    check_again = run_tasks(tmp_path, [verify], check=True).host()[0]
    again = run_tasks(tmp_path, [verify]).host()[0]
    for result in (check_again, again):
        assert not result["changed"] and not result.get("failed") and result["packs"][0]["action"] == "none", result


def test_verify_leaves_a_hand_copied_pack_alone(site, tmp_path):
    """No record, nothing to compare with: verify does not judge it; a spec it satisfies keeps it; force replaces it."""
    target = str(tmp_path / "packs")
    synth.make_pack_tree(os.path.join(target, "slack"), "slack", "2.0.5", files={"README.md": "mine\n"})
    options = dict(site.options(str(tmp_path / "cache")), packs_dir=target, name="slack@^2", verify=True)
    kept = run_tasks(tmp_path, [{PACK: options}]).host()[0]
    assert not kept["changed"] and not kept.get("failed") and kept["packs"][0]["action"] == "none", kept
    with open(os.path.join(target, "slack", "README.md")) as handle:
        assert handle.read() == "mine\n"
    forced = run_tasks(tmp_path, [{PACK: dict(options, force=True)}]).host()[0]
    assert forced["changed"] and not forced.get("failed") and forced["pack"]["version"] == "2.1.0", forced
    assert file_digests(os.path.join(target, "slack")) == file_digests(source_tree(site, "slack"))


def test_verify_is_refused_with_api_url(tmp_path):
    """Attune's pack record has no checksum of its files: the task says so before any request (port 9 is closed)."""
    result = run_tasks(tmp_path, [{PACK: {"name": "slack", "api_url": "https://127.0.0.1:9", "api_token": "attune_it_x",
                                          "verify": True}}]).host()[0]
    assert result.get("failed") and not result["changed"], result
    assert "verify does not go with api_url" in result["msg"] and "GET /api/v1/packs/{ref}" in result["msg"], result
    assert "attune_it_x" not in json.dumps(result)
