"""attune.packs.attune_pack / attune_pack_installed with api_url: packs in a running Attune, through ansible-playbook.

The Attune is tests/support/attune_server.py (real HTTPS, Attune's routes, request log, uploaded digests); the
registries are tests/support/pack_site.py on a RegistryServer.  Nothing runs on the inventory host: the action
plugin does the work on the controller.
"""
import json
import os

import pytest

from support import synth
from support.attune_server import AttuneServer, connection_args as conn
from support.pack_site import PackSite
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

PACK = "attune.packs.attune_pack"
INSTALLED = "attune.packs.attune_pack_installed"
UPLOAD = "/api/v1/packs/upload"


@pytest.fixture()
def env(tmp_path):
    with RegistryServer() as server:
        site = PackSite(server, str(tmp_path / "site"))
        with AttuneServer() as api:
            api.token = api.add_integration_token("ci")
            api.site = site
            api.cache = tmp_path / "cache"
            yield api


def pack_task(api, **args):
    options = api.site.options(api.cache)
    options.update(conn(api))
    options.update(args)
    return {PACK: options}


def secrets_of(api):
    return [api.token] + sorted(api.issued_secrets())


def assert_no_secret(api, res):
    for secret in secrets_of(api):
        assert secret not in res.output


def four_steps(tmp_path, api, tasks):
    out = []
    for check in (True, False, True, False):
        res = run_tasks(tmp_path, tasks, check=check, diff=True, verbosity=3)
        assert res.returncode == 0, res
        # run_tasks ignores errors: a failed result has changed=false too (issue 16 item 2), so assert success here
        assert not any(r.get("failed") for r in res.host()), res.host()
        assert_no_secret(api, res)
        out.append(res.host())
    return out


def uploads(api):
    return [r for r in api.requests if r.path == UPLOAD and r.method == "POST"]


def logins(api):
    return api.count("/auth/token-login", "POST") + api.count("/auth/login", "POST")


def test_install_four_steps(tmp_path, env):
    api = env
    check1, apply1, check2, apply2 = four_steps(tmp_path, api, [pack_task(api, name="slack@^2")])
    r = check1[0]
    assert r["changed"] and r["packs"][0]["action"] == "install" and r["pack"]["version"] == "2.1.0", r
    assert "would install" in r["msg"] and r["api_url"] == api.url()
    assert r["diff"]["before"] == "slack: not installed\n" and "slack 2.1.0" in r["diff"]["after"]
    r = apply1[0]
    assert r["changed"] and r["packs"][0]["action"] == "install" and r["pack"]["version"] == "2.1.0", r
    assert r["pack"]["checksum"] == api.site.checksum("slack")
    assert r["uploaded"] == ["slack"]
    assert [x["changed"] for x in (check2[0], apply2[0])] == [False, False], (check2, apply2)
    assert apply2[0]["packs"][0]["action"] == "none"
    # one upload in all four runs (none in check mode), not forced (Attune had no slack), tests not skipped
    ups = uploads(api)
    assert len(ups) == 1, ups
    assert [(name, value) for name, _f, _c, value in ups[0].multipart[1:]] == [("force", "false"), ("skip_tests", "false")]
    rec = api.pack("slack")
    assert rec["version"] == "2.1.0" and rec["sha256"] == ups[0].body["pack"]["sha256"]
    # one login per task run, never one per pack
    assert logins(api) == 4


def test_upgrade_four_steps_forces_the_replacement(tmp_path, env):
    api = env
    res = run_tasks(tmp_path, [pack_task(api, name="slack@2.0.0")])
    assert res.returncode == 0 and res.host()[0]["changed"], res
    check1, apply1, check2, apply2 = four_steps(tmp_path, api, [pack_task(api, name="slack@2.1.0")])
    assert check1[0]["packs"][0]["action"] == "upgrade" and check1[0]["changed"], check1
    assert "would upgrade 2.0.0 -> 2.1.0" in check1[0]["msg"]
    r = apply1[0]
    assert r["changed"] and r["previous"]["version"] == "2.0.0" and r["pack"]["version"] == "2.1.0", r
    assert [x["changed"] for x in (check2[0], apply2[0])] == [False, False]
    ups = uploads(api)
    assert len(ups) == 2
    assert ups[1].multipart[1][3] == "true"  # replacing needs force (Attune answers 409 otherwise)
    assert api.pack("slack")["version"] == "2.1.0"
    # present keeps an installed version that satisfies the spec, without any registry
    res = run_tasks(tmp_path, [pack_task(api, name="slack@^2")])
    assert not res.host()[0]["changed"] and len(uploads(api)) == 2


def test_remove_four_steps(tmp_path, env):
    api = env
    assert run_tasks(tmp_path, [pack_task(api, name="aws")]).returncode == 0
    check1, apply1, check2, apply2 = four_steps(tmp_path, api, [{PACK: dict(conn(api), name="aws", state="absent")}])
    assert check1[0]["changed"] and check1[0]["packs"][0]["action"] == "remove"
    assert apply1[0]["changed"] and apply1[0]["previous"]["version"] == "1.2.0"
    assert [x["changed"] for x in (check2[0], apply2[0])] == [False, False]
    # the second removal succeeds (issue 16 item 2: it failed with a NoneType error)
    assert [(bool(x.get("failed")), x["pack"], x["packs"][0]["action"]) for x in (check2[0], apply2[0])] == [(False, None, "none")] * 2, (check2, apply2)
    assert api.count("/api/v1/packs/aws", "DELETE") == 1
    assert api.pack("aws") is None


def test_lock_file_same_bytes_and_nothing_uploaded_when_one_pack_is_bad(tmp_path, env):
    api = env
    site = api.site
    # tamper with the aws archive after publishing: its checksum no longer matches
    path = os.path.join(site.files, os.path.basename(site.archive_path("aws")))
    with open(path, "ab") as handle:
        handle.write(b"tampered")
    res = run_tasks(tmp_path, [pack_task(api, name=["slack@^2", "aws", "github"])])
    r = res.host()[0]
    assert r["failed"] and "aws" in r["msg"] and api.url() in r["msg"], r
    assert r["error"]["kind"] == "checksum_mismatch", r
    assert uploads(api) == [] and api.packs == {}
    assert not r["changed"]


def test_fetch_on_attune_four_steps(tmp_path, env):
    api = env
    # Attune's own registries: the community index of the site
    api.static_indices.append({"url": api.site.server.url("community.json"), "priority": 1, "enabled": True})
    api.registry_ca_path = api.site.server.ca_path
    check1, apply1, check2, apply2 = four_steps(tmp_path, api, [{PACK: dict(conn(api), name="aws", fetch_on="attune")}])
    assert check1[0]["changed"] and check1[0]["pack"]["version"] == "1.2.0", check1
    assert apply1[0]["changed"] and apply1[0]["pack"]["version"] == "1.2.0", apply1
    assert [x["changed"] for x in (check2[0], apply2[0])] == [False, False]
    installs = [r for r in api.requests if r.path == "/api/v1/packs/install" and r.method == "POST"]
    assert len(installs) == 1 and installs[0].json == {"source": "aws", "ref_spec": "1.2.0", "force": False,
                                                       "skip_tests": False, "skip_deps": False}
    assert uploads(api) == []


# -- errors: each names the Attune API, the pack and the cause; nothing changed ------------------------------


def run_one(tmp_path, api, task):
    res = run_tasks(tmp_path, [task], verbosity=3)
    assert res.returncode == 0, res
    assert_no_secret(api, res)
    return res.host()[0]


def test_error_unreachable(tmp_path, env):
    api = env
    r = run_one(tmp_path, api, pack_task(api, name="aws", api_url="https://127.0.0.1:9"))
    assert r["failed"] and r["error"]["kind"] == "api_unreachable" and "https://127.0.0.1:9" in r["msg"], r


def test_error_tls(tmp_path, env):
    api = env
    # no ca_path: the system trust store does not know the test CA
    r = run_one(tmp_path, api, {PACK: dict(conn(api), name="aws", state="absent", ca_path=None)})
    assert r["failed"] and r["error"]["kind"] == "api_tls_error" and api.url() in r["msg"], r


def test_error_bad_token(tmp_path, env):
    api = env
    r = run_one(tmp_path, api, pack_task(api, name="aws", api_token="attune_it_" + "0" * 40))
    assert r["failed"] and r["error"]["kind"] == "api_unauthorized" and api.url() in r["msg"], r
    assert "attune_it_" + "0" * 40 not in str(r)


def test_error_forbidden_names_the_permission(tmp_path, env):
    api = env
    token = api.add_integration_token("reader", grants=("read",))
    r = run_one(tmp_path, api, pack_task(api, name="aws", api_token=token))
    assert r["failed"] and r["error"]["kind"] == "api_forbidden", r
    assert "Packs:Install" in r["msg"] and "Access tokens" in r["msg"] and "pack aws" in r["msg"], r
    assert api.packs == {}


def test_error_tests_fail_upload_refused(tmp_path, env):
    api = env
    api.set_test_result("aws", passed=2, failed=1)
    r = run_one(tmp_path, api, pack_task(api, name="aws"))
    assert r["failed"] and r["error"]["kind"] == "api_tests_failed", r
    assert "1 of 3 tests failed" in r["msg"] and "pack aws" in r["msg"] and api.url() in r["msg"], r
    assert api.pack("aws") is None  # rolled back by Attune


def test_error_502_attune_cannot_fetch_its_index(tmp_path, env):
    api = env
    site = api.site
    # Attune's registry answers the plan's GET /pack-indices/packs/aws, then fails: the install request that follows
    # gets 502 from Attune (its index fetch failed), and nothing is installed
    body = json.dumps(make_index("flaky", [e for e in site.entries["community"] if e["ref"] == "aws"])).encode("utf-8")
    served = []

    def flaky(handler):
        served.append(handler.path)
        if len(served) == 1:
            handler.send_simple(200, body, {"Content-Type": "application/json"})
        else:
            handler.send_simple(503, b"down for maintenance")

    site.server.add_handler("/flaky.json", flaky)
    api.static_indices.append({"url": site.server.url("flaky.json"), "priority": 1, "enabled": True})
    api.registry_ca_path = site.server.ca_path
    r = run_one(tmp_path, api, {PACK: dict(conn(api), name="aws", fetch_on="attune")})
    assert r["failed"] and r["error"]["kind"] == "api_bad_gateway", r
    assert api.url() in r["msg"] and "pack aws" in r["msg"] and "flaky.json" in r["msg"], r
    assert len(served) == 2 and api.pack("aws") is None and not r["changed"]


def publish_needy(api):
    """A registry of Attune's holding ``needy``, whose pack.yaml depends on a pack that Attune does not have."""
    site = api.site
    path, checksum = synth.make_pack_archive(site.files, "needy", "1.0.0", pack_yaml_extra={"dependencies": ["missingdep"]})
    entry = synth.make_entry("needy", "1.0.0", archive_url=site.server.url("files/" + os.path.basename(path)), archive_checksum=checksum)
    site.server.add_json("/extra.json", make_index("extra", [entry]))
    api.static_indices.append({"url": site.server.url("extra.json"), "priority": 1, "enabled": True})
    api.registry_ca_path = site.server.ca_path


def test_error_400_names_attunes_message(tmp_path, env):
    api = env
    # Attune's dependency validation (routes/packs.rs install_pack, unless skip_deps) answers 400
    publish_needy(api)
    r = run_one(tmp_path, api, {PACK: dict(conn(api), name="needy", fetch_on="attune")})
    assert r["failed"] and r["error"]["kind"] == "api_bad_request", r
    assert "Pack dependency validation failed" in r["msg"] and "missingdep" in r["msg"] and api.url() in r["msg"], r
    assert "pack needy" in r["msg"] and api.pack("needy") is None


def test_skip_deps_passes_through(tmp_path, env):
    api = env
    publish_needy(api)
    check1, apply1, check2, apply2 = four_steps(tmp_path, api, [{PACK: dict(conn(api), name="needy", fetch_on="attune",
                                                                            skip_deps=True)}])
    assert check1[0]["changed"] and apply1[0]["changed"] and apply1[0]["pack"]["version"] == "1.0.0", apply1
    assert [x["changed"] for x in (check2[0], apply2[0])] == [False, False]
    installs = [r for r in api.requests if r.path == "/api/v1/packs/install" and r.method == "POST"]
    assert [r.json["skip_deps"] for r in installs] == [True], [r.json for r in installs]
    assert api.pack("needy")["dependencies"] == ["missingdep"]


def test_error_upload_refused_sync_tests(tmp_path):
    with RegistryServer() as server:
        site = PackSite(server, str(tmp_path / "site"))
        with AttuneServer(tests_mode="sync") as api:
            api.token = api.add_integration_token("ci")
            api.site, api.cache = site, tmp_path / "cache"
            api.set_test_result("aws", passed=1, failed=2)
            r = run_one(tmp_path, api, pack_task(api, name="aws"))
            assert r["failed"] and r["error"]["kind"] == "api_tests_failed", r
            assert "tests did not pass" in r["msg"] and "2 of 3 tests failed" in r["msg"] and "pack aws" in r["msg"], r
            assert api.pack("aws") is None


def test_error_409_race(tmp_path, env):
    api = env
    assert run_tasks(tmp_path, [pack_task(api, name="aws")]).returncode == 0
    before = api.pack("aws")
    # an identity that cannot Read the pack does not see it (Attune answers 404), so the upload meets Attune's 409
    token = api.add_integration_token("blind", grants=("install", "configure"))
    r = run_one(tmp_path, api, pack_task(api, name="aws", api_token=token))
    assert r["failed"] and r["error"]["kind"] == "api_conflict", r
    assert "already exists" in r["msg"] and "run the task again" in r["msg"] and "pack aws" in r["msg"], r
    assert api.pack("aws")["sha256"] == before["sha256"]


def test_error_timeout_while_tests_run(tmp_path, env):
    api = env
    api.set_test_result("aws", passed=3)
    api.hold_installs = True
    r = run_one(tmp_path, api, pack_task(api, name="aws", api_timeout=1))
    # Attune accepted the upload and goes on testing: reported as pending, with its install id (issue 16 item 8)
    assert r["failed"] and r["error"]["kind"] == "api_install_pending", r
    assert "api_timeout=1s" in r["msg"] and "aws: install" in r["msg"] and api.url() in r["msg"], r
    assert r["changed"] is True and r["uploaded"] == ["aws"] and list(r["pending"]) == ["aws"], r


def lock_task(api, path, names):
    options = api.site.options(api.cache)
    options.update(path=str(path), name=names)
    return {"attune.packs.attune_pack_lock": options}


def test_lock_install_list_and_drift(tmp_path, env):
    api = env
    api.add_standard_pack("core", "1.0.0")
    lock = tmp_path / "packs.lock.yml"
    res = run_tasks(tmp_path, [lock_task(api, lock, ["slack@^2", "aws"]),
                               pack_task(api, name=["slack@^2", "aws"], lock_file=str(lock)),
                               {INSTALLED: dict(conn(api), lock_file=str(lock), cache_dir=str(api.cache))}])
    assert res.returncode == 0, res
    locked, installed, listed = res.host()
    assert installed["changed"] and sorted(p["action"] for p in installed["packs"]) == ["install", "install"], installed
    assert sorted(installed["uploaded"]) == ["aws", "slack"]
    by_ref = dict((p["ref"], p) for p in listed["packs"])
    assert sorted(by_ref) == ["aws", "core", "slack"], listed
    assert by_ref["core"]["is_standard"] and not by_ref["core"]["managed"]
    assert by_ref["slack"]["managed"] and by_ref["slack"]["version"] == "2.1.0" and by_ref["slack"]["label"]
    assert by_ref["slack"]["checksum"] == api.site.checksum("slack")
    assert listed["counts"] == {"installed": 3, "standard": 1, "managed": 2}
    assert listed["drift"]["deviates"] is False and listed["drift"]["in_sync"] == ["aws", "slack"], listed["drift"]
    # someone replaces slack behind our back: drift (other version), and the pack is not ours any more
    api.reset_log()
    token = api.add_integration_token("ops")
    res = run_tasks(tmp_path, [pack_task(api, name="slack@2.0.0", api_token=token, force=True),
                               {INSTALLED: dict(conn(api), lock_file=str(lock), cache_dir=str(tmp_path / "other-cache"))},
                               {INSTALLED: dict(conn(api), lock_file=str(lock), cache_dir=str(api.cache))}])
    replaced, _other, listed = res.host()
    assert replaced["changed"], replaced
    assert listed["drift"]["deviates"] and listed["drift"]["other_version"] == ["slack"], listed["drift"]
    # converged again from the lock: slack goes back to the locked version (force, as the version differs)
    res = run_tasks(tmp_path, [pack_task(api, name=["slack@^2", "aws"], lock_file=str(lock))])
    r = res.host()[0]
    assert [(p["ref"], p["action"]) for p in r["packs"]] == [("slack", "upgrade"), ("aws", "none")], r
    assert api.pack("slack")["version"] == "2.1.0"


def test_remove_unlisted_only_what_the_collection_installed(tmp_path, env):
    api = env
    api.add_standard_pack("core", "1.0.0")
    assert run_tasks(tmp_path, [pack_task(api, name=["slack@^2", "aws"])]).returncode == 0
    # github uploaded from another controller (another record): not provably ours here
    other = pack_task(api, name="github")
    other[PACK]["cache_dir"] = str(tmp_path / "other-cache")
    assert run_tasks(tmp_path, [other]).host()[0]["changed"]
    check1, apply1, check2, apply2 = four_steps(tmp_path, api, [pack_task(api, name="aws", remove_unlisted=True)])
    assert [(p["ref"], p["action"]) for p in check1[0]["packs"]] == [("aws", "none"), ("slack", "remove")], check1
    assert apply1[0]["changed"] and [x["changed"] for x in (check2[0], apply2[0])] == [False, False]
    assert sorted(api.packs) == ["aws", "core", "github"]
    assert api.count("/api/v1/packs/slack", "DELETE") == 1 and api.count(method="DELETE") == 1


def test_failed_upload_in_a_list_rolls_back_the_new_packs(tmp_path, env):
    api = env
    api.set_test_result("slack", passed=1, failed=1)
    r = run_one(tmp_path, api, pack_task(api, name=["aws", "slack@^2"]))
    assert r["failed"] and r["error"]["kind"] == "api_tests_failed" and "pack slack" in r["msg"], r
    # aws was uploaded first, then deleted again when slack's upload was refused: Attune is as before
    assert api.packs == {} and api.count("/api/v1/packs/aws", "DELETE") == 1


def _converged_requests(tmp_path, api, count):
    """Requests of a converged rerun of one attune_pack task with ``count`` packs (issue 17)."""
    refs = ["bulk%02d" % number for number in range(count)]
    task = pack_task(api, name=refs)
    res = run_tasks(tmp_path, [task])
    assert res.returncode == 0 and not res.host()[0].get("failed"), res.host()
    assert all(api.pack(ref)["version"] == "1.0.0" for ref in refs)
    api.reset_log()
    res = run_tasks(tmp_path, [task])
    r = res.host()[0]
    assert res.returncode == 0 and not r.get("failed") and not r["changed"], r
    assert [p["action"] for p in r["packs"]] == ["none"] * count, r["packs"]
    return [(x.method, x.path) for x in api.requests]


def test_converged_rerun_requests_do_not_grow_with_the_packs(tmp_path, env):
    """A converged run reads all its packs with one paged listing: login + GET /api/v1/packs, whatever the count."""
    api = env
    for number in range(20):  # published once: the controller caches the registry's index
        api.site.publish("community", "bulk%02d" % number, "1.0.0")
    five = _converged_requests(tmp_path, api, 5)
    twenty = _converged_requests(tmp_path, api, 20)
    assert five == twenty == [("POST", "/auth/token-login"), ("GET", "/api/v1/packs")], (five, twenty)
    # the provenance records still hold: the packs are ours (managed) and remove_unlisted removes nothing else
    res = run_tasks(tmp_path, [pack_task(api, name=["bulk%02d" % n for n in range(20)], remove_unlisted=True)])
    r = res.host()[0]
    assert not r.get("failed") and not r["changed"], r
