"""The role attune.packs.packs (playbooks/pin_fleet.yml) and drift_report.yml over a fleet of Attune deployments.

Each inventory host is the name of one Attune deployment (a tests/support/attune_server.py child process with its
own CA, token and request log); the packs go in through each Attune's API from the controller.  Checks the speed
contract of issue 11: index GETs <= number of registries, archive GETs = M, uploads = N x M on the first run and 0
on a converged run, and the same bytes (the digest each simulator keeps of what it received) everywhere.
"""
import contextlib

import pytest

from support.attune_server import AttuneServerProcess
from support.fleet import Fleet, run_playbook
from support.pack_site import EXPECTED, PACKS, REGISTRIES, PackSite
from support.registry_server import RegistryServer

DEPLOYMENTS = 8
INSTALL_TASK = "Install the locked packs"


def uploads_of(log):
    return [entry for entry in log if entry["path"] == "/api/v1/packs/upload" and entry["method"] == "POST"]


@pytest.fixture()
def fleet_of_attunes(tmp_path):
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(RegistryServer())
        site = PackSite(server, str(tmp_path / "site"))
        attunes = {}
        for number in range(1, DEPLOYMENTS + 1):
            workdir = tmp_path / ("attune%02d" % number)
            workdir.mkdir()
            attunes["worker%02d" % number] = stack.enter_context(AttuneServerProcess(
                str(workdir), config={"integration_tokens": ["ci"], "standard_packs": [{"ref": "core"}]}))
        bundle = tmp_path / "ca-bundle.pem"
        with open(str(bundle), "wb") as out:
            for path in [server.ca_path] + [a.ca_path for a in attunes.values()]:
                with open(path, "rb") as handle:
                    out.write(handle.read())
        fleet = Fleet(tmp_path, DEPLOYMENTS)
        options = site.options(tmp_path / "cache", ca_path=str(bundle))
        inventory = fleet.write_inventory(
            host_vars=dict((host, {"packs_api_url": a.url(), "packs_api_token": a.tokens["ci"]}) for host, a in attunes.items()),
            group_vars={"packs_list": PACKS, "packs_lock_file": str(tmp_path / "packs.lock.yml"),
                        "packs_registry_options": options})
        yield site, attunes, inventory


def test_pin_fleet_of_attune_deployments(tmp_path, fleet_of_attunes):
    site, attunes, inventory = fleet_of_attunes
    first = run_playbook(tmp_path, "pin_fleet.yml", inventory)
    assert first.returncode == 0, first
    installs = first.by_host("attune.packs.attune_pack")
    assert sorted(installs) == sorted(attunes)
    for host, event in installs.items():
        assert event["result"]["changed"] and sorted(event["result"]["uploaded"]) == sorted(EXPECTED), event
    # the registries: each index at most once, each archive once for the whole fleet
    assert sum(site.index_gets().values()) <= len(REGISTRIES), site.index_gets()
    assert site.archive_gets() == dict((site.archive_path(ref), 1) for ref in EXPECTED)
    # N x M uploads, one login per deployment, and the same bytes in every deployment
    digests = {}
    for host, attune in attunes.items():
        log = attune.read_log()
        ups = uploads_of(log)
        assert sorted(u["body"]["pack"]["filename"] for u in ups) == sorted("%s.tar.gz" % ref for ref in EXPECTED), host
        assert sum(1 for e in log if e["path"] == "/auth/token-login") == 1, host
        for upload in ups:
            digests.setdefault(upload["body"]["pack"]["filename"], set()).add(upload["body"]["pack"]["sha256"])
    assert len(digests) == len(EXPECTED) and all(len(values) == 1 for values in digests.values()), digests
    token_values = [a.tokens["ci"] for a in attunes.values()]
    assert not any(token in first.output for token in token_values)

    # converged: no upload, no archive download, no index fetched again
    before = dict((host, len(uploads_of(a.read_log()))) for host, a in attunes.items())
    archive_gets = site.archive_gets()
    second = run_playbook(tmp_path, "pin_fleet.yml", inventory)
    assert second.returncode == 0, second
    assert not any(e["result"]["changed"] for e in second.by_host("attune.packs.attune_pack").values())
    assert dict((host, len(uploads_of(a.read_log()))) for host, a in attunes.items()) == before
    assert site.archive_gets() == archive_gets

    # drift across deployments: in sync everywhere, then one deployment drifts
    report = run_playbook(tmp_path, "drift_report.yml", inventory)
    assert report.returncode == 0, report
    drifts = report.by_host("attune.packs.attune_pack_installed")
    assert all(not e["result"]["drift"]["deviates"] for e in drifts.values()), drifts
    assert "0 of %d hosts deviate" % DEPLOYMENTS in report.output

    # someone deletes a pack in one deployment: the report names it
    from ansible_collections.attune.packs.plugins.module_utils._attune import _api

    _api.AttuneApi(attunes["worker03"].url(), token=attunes["worker03"].tokens["ci"],
                   ca_path=str(tmp_path / "ca-bundle.pem")).delete_pack("aws")
    report = run_playbook(tmp_path, "drift_report.yml", inventory)
    drifts = report.by_host("attune.packs.attune_pack_installed")
    assert drifts["worker03"]["result"]["drift"]["missing"] == ["aws"], drifts["worker03"]
    assert "1 of %d hosts deviate" % DEPLOYMENTS in report.output and "worker03" in report.output
