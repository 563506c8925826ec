"""Attacks on attune.packs.attune_pack with api_url (issue 16 items 7, 8, 10 and 12), through ansible-playbook.

The Attune is tests/support/attune_server.py (Attune's routes and answers, attune-sdk's models) or, for answers
Attune would not give, tests/support/hostile_attune.py; registries are tests/support/pack_site.py.
"""
import gzip
import io
import json
import os
import tarfile

import pytest

from support import synth
from support.attune_server import AttuneServer, connection_args as conn
from support.hostile_attune import TOKEN, answer, hostile_attune
from support.pack_site import PackSite
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

PACK = "attune.packs.attune_pack"
UPLOAD = "/api/v1/packs/upload"
INSTALL = "/api/v1/packs/install"


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


def run_one(tmp_path, api, task, check=False):
    res = run_tasks(tmp_path, [task], check=check, verbosity=3)
    assert res.returncode == 0, res
    for secret in [api.token] + sorted(api.issued_secrets()):
        assert secret not in res.output
    return res.host()[0]


def posts(api, path):
    return [r for r in api.requests if r.path == path and r.method == "POST"]


def make_lock(tmp_path, api, names):
    lock = tmp_path / "packs.lock.yml"
    options = api.site.options(api.cache)
    options.update(path=str(lock), name=names)
    res = run_tasks(tmp_path, [{"attune.packs.attune_pack_lock": options}])
    assert res.returncode == 0 and not res.host()[0].get("failed"), res
    return lock


def locked_registry(api, ref):
    """(registry name, index path) of the site registry the lock takes ``ref`` from (the first holding it)."""
    for registry in ("corp", "community", "public"):
        if any(e["ref"] == ref for e in api.site.entries.get(registry, [])):
            return registry, "/%s.json" % registry
    raise AssertionError(ref)


def other_archive(api, ref, version):
    """Another archive of ``ref`` ``version`` (same identity, other bytes): (url, checksum)."""
    out = os.path.join(api.site.files, "other")
    os.makedirs(out, exist_ok=True)
    path, checksum = synth.make_pack_archive(out, ref, version, files={"EVIL": "not the locked pack\n"})
    return api.site.server.url("files/other/" + os.path.basename(path)), checksum


def attune_registry(api, url):
    api.static_indices.append({"url": url, "priority": 1, "enabled": True})
    api.registry_ca_path = api.site.server.ca_path


# -- item 7: fetch_on: attune with a lock ---------------------------------------------------------------------


def test_lock_attune_offers_a_shadow_registry_refused_before_anything(tmp_path, env):
    api = env
    lock = make_lock(tmp_path, api, ["aws"])
    # Attune's only registry is "shadow": aws 1.2.0 (the locked version) with other bytes, another checksum
    url, checksum = other_archive(api, "aws", "1.2.0")
    api.site.server.add_json("/shadow.json", make_index("shadow", [synth.make_entry("aws", "1.2.0", archive_url=url,
                                                                                    archive_checksum=checksum)]))
    attune_registry(api, api.site.server.url("shadow.json"))
    task = {PACK: dict(conn(api), name="aws", fetch_on="attune", lock_file=str(lock))}
    for check in (True, False):
        r = run_one(tmp_path, api, task, check=check)
        assert r["failed"] and r["error"]["kind"] == "api_provenance_mismatch", r
        assert "shadow" in r["msg"] and checksum in r["msg"] and "nothing was installed" in r["msg"], r
        assert r["changed"] is False
    assert posts(api, INSTALL) == [] and api.pack("aws") is None


def test_lock_attune_same_registry_other_checksum_refused(tmp_path, env):
    api = env
    lock = make_lock(tmp_path, api, ["aws"])
    registry, path = locked_registry(api, "aws")
    url, checksum = other_archive(api, "aws", "1.2.0")
    entries = [e for e in api.site.entries[registry] if e["ref"] != "aws"]
    api.site.server.add_json(path, make_index(registry, entries + [synth.make_entry("aws", "1.2.0", archive_url=url,
                                                                                    archive_checksum=checksum)]))
    attune_registry(api, api.site.server.url(path.lstrip("/")))
    r = run_one(tmp_path, api, {PACK: dict(conn(api), name="aws", fetch_on="attune", lock_file=str(lock))})
    assert r["failed"] and r["error"]["kind"] == "api_provenance_mismatch" and checksum in r["msg"], r
    assert posts(api, INSTALL) == [] and api.pack("aws") is None and r["changed"] is False


def test_lock_attune_provenance_checked_after_install_and_not_kept(tmp_path, env):
    api = env
    lock = make_lock(tmp_path, api, ["aws"])
    registry, path = locked_registry(api, "aws")
    good = json.dumps(make_index(registry, api.site.entries[registry])).encode("utf-8")
    url, checksum = other_archive(api, "aws", "1.2.0")
    entries = [e for e in api.site.entries[registry] if e["ref"] != "aws"]
    bad = json.dumps(make_index(registry, entries + [synth.make_entry("aws", "1.2.0", archive_url=url,
                                                                      archive_checksum=checksum)])).encode("utf-8")
    # the index Attune reads for the plan is the locked one; the one it reads when installing is not
    served = []

    def switching(handler):
        served.append(handler.path)
        body = good if len(served) == 1 or mode["good"] else bad
        handler.send_simple(200, body, {"Content-Type": "application/json"})

    mode = {"good": False}
    api.site.server.add_handler(path, switching)
    attune_registry(api, api.site.server.url(path.lstrip("/")))
    task = {PACK: dict(conn(api), name="aws", fetch_on="attune", lock_file=str(lock))}
    r = run_one(tmp_path, api, task)
    assert r["failed"] and r["error"]["kind"] == "api_provenance_mismatch", r
    assert checksum in r["msg"] and "Attune was changed" in r["msg"], r
    assert r["changed"] is True, r  # Attune installed something
    assert api.pack("aws")["sha256"] == checksum
    # the next run does not keep it as the locked pack: it puts the locked one back
    mode["good"] = True
    r = run_one(tmp_path, api, task)
    assert not r.get("failed") and r["changed"] and r["packs"][0]["action"] == "reinstall", r
    assert api.pack("aws")["sha256"] == api.site.checksum("aws")
    r = run_one(tmp_path, api, task)
    assert not r.get("failed") and not r["changed"] and r["packs"][0]["action"] == "none", r
    assert len(posts(api, INSTALL)) == 2


# -- item 8: changed and check mode ---------------------------------------------------------------------------


def test_standard_pack_in_absent_list_refused_before_any_deletion(tmp_path, env):
    api = env
    api.add_standard_pack("core", "0.6.0")
    assert not run_one(tmp_path, api, pack_task(api, name="aws")).get("failed")
    task = {PACK: dict(conn(api), name=["aws", "core"], state="absent")}
    for check in (True, False):
        r = run_one(tmp_path, api, task, check=check)
        assert r["failed"] and r["error"]["kind"] == "invalid_arguments" and "core is a standard pack" in r["msg"], r
        assert r["changed"] is False
    assert api.count(method="DELETE") == 0 and api.pack("aws") and api.pack("core")


def test_failed_list_reports_the_accepted_upload_and_deletion(tmp_path, env):
    api = env
    api.set_test_result("slack", passed=1, failed=1)
    r = run_one(tmp_path, api, pack_task(api, name=["aws", "slack@^2"]))
    assert r["failed"] and r["error"]["kind"] == "api_tests_failed", r
    # aws was accepted then deleted again: Attune was changed twice
    assert r["changed"] is True and r["uploaded"] == ["aws"] and r["deleted"] == ["aws"], r
    assert api.packs == {}


def test_upload_pending_at_the_deadline_is_reported_and_finished_next_run(tmp_path, env):
    api = env
    api.set_test_result("aws", passed=3)
    api.hold_installs = True
    task = pack_task(api, name="aws", api_timeout=1)
    r = run_one(tmp_path, api, task)
    assert r["failed"] and r["error"]["kind"] == "api_install_pending", r
    install_id = r["error"]["install_ids"]["aws"]
    assert isinstance(install_id, int) and r["pending"] == {"aws": install_id}, r
    assert "install %d" % install_id in r["msg"] and r["changed"] is True and r["uploaded"] == ["aws"], r
    # still running: the next run says so, and uploads nothing again (check mode too)
    for check in (True, False):
        r = run_one(tmp_path, api, task, check=check)
        assert r["failed"] and r["error"]["kind"] == "api_install_pending" and "earlier run" in r["msg"], r
        assert r["changed"] is False
    assert len(posts(api, UPLOAD)) == 1
    # Attune finishes: the next run records it as installed, and nothing is uploaded again
    api.hold_installs = False
    api.settle_installs()
    r = run_one(tmp_path, api, task)
    assert not r.get("failed") and not r["changed"] and r["packs"][0]["action"] == "none", r
    assert len(posts(api, UPLOAD)) == 1 and api.pack("aws")["version"] == "1.2.0"


def test_pending_upload_rolled_back_is_reported_next_run(tmp_path, env):
    api = env
    api.set_test_result("aws", passed=1, failed=1)
    api.hold_installs = True
    task = pack_task(api, name="aws", api_timeout=1)
    r = run_one(tmp_path, api, task)
    assert r["failed"] and r["error"]["kind"] == "api_install_pending" and r["changed"], r
    api.hold_installs = False
    api.settle_installs()
    assert api.pack("aws") is None  # Attune rolled it back
    r = run_one(tmp_path, api, task)
    # reported (a warning naming the install), then the upload is tried again and its tests fail again
    assert r["failed"] and r["error"]["kind"] == "api_tests_failed", r
    assert any("ended rolled_back" in w for w in r.get("warnings", [])), r
    assert len(posts(api, UPLOAD)) == 2


def test_non_integer_install_id_is_an_api_error(tmp_path):
    with RegistryServer() as server:
        site = PackSite(server, str(tmp_path / "site"))
        with hostile_attune() as bad:
            answer(bad, "/api/v1/packs/aws", '{"error": "Pack \'aws\' not found", "code": 404}', status=404)
            pack = {"id": 1, "ref": "aws", "version": "1.2.0", "updated": "2026-01-01T00:00:00Z"}
            answer(bad, UPLOAD, json.dumps({"data": {"pack": pack, "install_id": "7; DROP TABLE", "install_status": "pending",
                                                     "tests_skipped": False}}), status=201)
            options = site.options(tmp_path / "cache")
            options.update(name="aws", api_url=bad.base_url, api_token=TOKEN, ca_path=server.ca_path)
            res = run_tasks(tmp_path, [{PACK: options}], verbosity=3)
            assert res.returncode == 0, res
            r = res.host()[0]
            assert r["failed"] and r["error"]["kind"] == "api_error" and "install_id" in r["msg"], r
            assert "Traceback" not in res.output and TOKEN not in res.output
            assert r["changed"] is True and r["uploaded"] == ["aws"], r  # Attune accepted the upload


# -- item 10: the upload is exactly the verified tree -----------------------------------------------------------


def uploaded_names(api, ref):
    raw = gzip.decompress(api.pack(ref)["archive"])
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        return sorted(m.name for m in tar.getmembers() if m.isfile())


def test_upload_keeps_the_packs_own_dot_attune(tmp_path, env):
    api = env
    files = {".attune/config.json": '{"setting": 1}\n', ".attune/metadata.json": '{"pack_ref": "dotted"}\n',
             "docs/.attune/note.txt": "nested\n"}
    path, checksum = synth.make_pack_archive(api.site.files, "dotted", "1.0.0", files=files)
    src = api.site.server.url("files/" + os.path.basename(path))
    r = run_one(tmp_path, api, pack_task(api, name="dotted", src=src, checksum=checksum))
    assert not r.get("failed") and r["changed"] and r["uploaded"] == ["dotted"], r
    names = uploaded_names(api, "dotted")
    for name in files:
        assert name in names, names
    tree = os.path.join(api.site.files, "dotted-1.0.0.src")
    expected = sorted(os.path.relpath(os.path.join(d, f), tree).replace(os.sep, "/") for d, _s, fs in os.walk(tree) for f in fs)
    assert names == expected


# -- item 12 ----------------------------------------------------------------------------------------------------


def test_packs_dir_with_api_url_refused_before_any_connection(tmp_path, env):
    api = env
    r = run_one(tmp_path, api, pack_task(api, name="aws", packs_dir=str(tmp_path / "packs")))
    assert r["failed"] and r["error"]["kind"] == "invalid_arguments" and "packs_dir" in r["msg"], r
    assert api.requests == [] and not (tmp_path / "packs").exists()


def test_local_archive_src_with_api_url(tmp_path, env):
    api = env
    path = os.path.join(api.site.files, os.path.basename(api.site.archive_path("aws")))
    r = run_one(tmp_path, api, pack_task(api, name="aws", src=path, checksum=api.site.checksum("aws")))
    assert not r.get("failed") and r["changed"] and r["uploaded"] == ["aws"], r
    assert api.pack("aws")["version"] == "1.2.0"


def test_cache_disabled_keeps_no_archive(tmp_path, env):
    api = env
    r = run_one(tmp_path, api, pack_task(api, name="aws", cache_enabled=False))
    assert not r.get("failed") and r["changed"] and api.pack("aws")["version"] == "1.2.0", r
    archives = api.cache / "archives"
    assert not archives.exists() or os.listdir(str(archives)) == []
    # the upload record is state (remove_unlisted, drift), kept whatever cache_enabled says
    assert (api.cache / "attune-api").is_dir()


def test_source_host_that_does_not_resolve_is_a_source_error(tmp_path, env):
    api = env
    # the outbound policy applies (a policy key is given) and approves the host, which has no DNS answer
    source = {"ref": "aws", "version": "1.2.0", "spec": "aws",
              "source": {"type": "archive", "url": "https://no-such-pack-host.invalid/aws-1.2.0.tar.gz",
                         "checksum": api.site.checksum("aws")}}
    task = {PACK: dict(conn(api), source=source, cache_dir=str(api.cache), approved_private_hosts=["no-such-pack-host.invalid"])}
    r = run_one(tmp_path, api, task)
    assert r["failed"] and r["error"]["kind"] == "source_error", r
    assert r["error"]["pack"] == "aws" and "does not resolve" in r["msg"] and "no-such-pack-host.invalid" in r["msg"], r
    assert r["changed"] is False and posts(api, UPLOAD) == []
