"""_drift.compare on lock entries validated by _lockfile and items as attune_pack_installed reports them."""
from __future__ import annotations

import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack import _drift, _lockfile, _packdir
from support.synth import make_pack_tree

GOOD = "sha256:" + "a" * 64
FALLBACK = "sha256:" + "b" * 64
OTHER = "sha256:" + "c" * 64

LOCK = """version: 1
packs:
%s
"""
ENTRY = """  - ref: %s
    spec: %s
    version: 1.0.0
    registry: public
    registry_url: https://registry.example/index.json
    source: {type: git, url: "https://git.example/%s.git", ref: v1.0.0, checksum: "%s"}
    fallback_source: {type: archive, url: "https://files.example/%s.tgz", checksum: "%s"}
"""


def lock(*refs):
    return _lockfile.parse(LOCK % "".join(ENTRY % (ref, ref, ref, GOOD, ref, FALLBACK) for ref in refs), "packs.lock.yml")


def item(ref, version="1.0.0", checksum=GOOD, managed=True, installed=True, error=None):
    return {"ref": ref, "installed": installed, "managed": managed, "version": version, "checksum": checksum, "error": error}


@pytest.mark.parametrize("installed, verified, status", [
    (item("p"), True, "in-sync"),
    (item("p", checksum=FALLBACK), True, "in-sync"),  # the fallback source is accepted too
    (None, None, "missing"),
    (item("p", version="0.9.0"), True, "other-version"),
    (item("p", checksum=OTHER), True, "other-source"),
    (item("p", managed=False, checksum=None), None, "other-source"),  # copied by hand
    (item("p", managed=False, checksum=None, error=".attune/metadata.json is not valid JSON"), None, "unreadable-provenance"),
    (item("p"), False, "modified"),
    (item("p", version="0.9.0", checksum=OTHER), False, "other-version"),  # the first that applies
])
def test_status_of_each_locked_pack(installed, verified, status):
    items = [installed] if installed else []
    result = _drift.compare(lock("p").entries(), items, {"p": verified}, "packs.lock.yml")
    assert [pack["status"] for pack in result["packs"]] == [status]
    assert result[status.replace("-", "_")] == ["p"]
    assert result["deviates"] is (status != "in-sync")
    others = [name for name in ("in_sync", "missing", "unreadable_provenance", "other_version", "other_source", "modified")
              if name != status.replace("-", "_")]
    assert all(result[name] == [] for name in others), result


def test_report_line_and_unlisted_packs():
    items = [item("a"), item("b", version="0.9.0"), item("d", checksum=OTHER), item("e"), item("extra"), item("hand", managed=False)]
    result = _drift.compare(lock("a", "b", "c", "d", "e").entries(), items, {"a": True, "b": True, "d": True, "e": False}, "x")
    assert result["msg"] == ("DRIFT: missing c; other version b 0.9.0 (locked 1.0.0); other source d; modified files e; "
                             "unlisted packs: extra")
    assert result["unlisted"] == ["extra"]  # managed only: a pack copied by hand is not ours to list
    in_sync = _drift.compare(lock("a").entries(), [item("a")], {"a": True}, "x")
    assert (in_sync["msg"], in_sync["deviates"]) == ("in sync: 1 locked packs installed as locked", False)


# ---------------------------------------------------------------------------
# the report of attune_pack_installed (installed_report / on_host), on real pack directories and lock files


class Warnings(list):
    def __call__(self, text):
        self.append(text)


def install(tmp_path, packs_dir, ref, version="1.0.0", checksum=GOOD):
    """A pack installed as attune_pack installs it: verified tree in packs_dir, provenance in .attune/<ref>.json."""
    src = make_pack_tree(str(tmp_path / "src" / ("%s-%s" % (ref, version))), ref, version)
    metadata = _packdir.build_metadata(ref, version, {"type": "archive", "url": "https://files.example/%s.tgz" % ref},
                                       checksum=checksum, registry="public",
                                       registry_url="https://registry.example/index.json", spec=ref)
    with _packdir.staging(packs_dir, ref) as stage:
        stage.activate(src, metadata)


@pytest.fixture
def fleet_host(tmp_path):
    """One packs_dir with a pack per drift status of lock("a", "b", "c", "d", "e"), an unlisted one, and a copy."""
    packs_dir = str(tmp_path / "packs")
    install(tmp_path, packs_dir, "a")                       # in sync
    install(tmp_path, packs_dir, "b", version="0.9.0")      # other version
    install(tmp_path, packs_dir, "d", checksum=OTHER)       # other source
    install(tmp_path, packs_dir, "e")                       # modified below
    install(tmp_path, packs_dir, "extra")                   # managed, not locked
    make_pack_tree(os.path.join(packs_dir, "manual"), "manual", "1.0.0")  # copied by hand
    with open(os.path.join(packs_dir, "e", "README.md"), "a") as handle:
        handle.write("changed on the host\n")
    lock_file = tmp_path / "packs.lock.yml"
    lock_file.write_text(LOCK % "".join(ENTRY % (ref, ref, ref, GOOD, ref, FALLBACK) for ref in "abcde"))
    return packs_dir, str(lock_file)


def host_params(packs_dir, **params):
    base = dict(name=None, packs_dir=packs_dir, verify=False, lock_file=None, _lock_text=None, config_path=None, environment=None)
    base.update(params)
    return base


DRIFT_LINE = "DRIFT: missing c; other version b 0.9.0 (locked 1.0.0); other source d; modified files e; unlisted packs: extra"


def test_host_report_with_a_lock_verifies_the_locked_packs_only(fleet_host):
    packs_dir, lock_file = fleet_host
    warnings = Warnings()
    result = _drift.on_host(host_params(packs_dir, lock_file=lock_file), warnings)
    assert result["changed"] is False and "failed" not in result
    assert [item["ref"] for item in result["packs"]] == ["a", "b", "d", "e", "extra", "manual"]
    assert result["missing"] == [] and result["packs_dir"] == packs_dir and "modified" not in result
    assert result["msg"] == "6 packs in %s (5 managed); %s" % (packs_dir, DRIFT_LINE)
    drift = result["drift"]
    assert drift["msg"] == DRIFT_LINE and drift["deviates"] is True and drift["lock_file"] == lock_file
    assert [(pack["ref"], pack["status"], pack["installed_version"]) for pack in drift["packs"]] == [
        ("a", "in-sync", "1.0.0"), ("b", "other-version", "0.9.0"), ("c", "missing", None), ("d", "other-source", "1.0.0"),
        ("e", "modified", "1.0.0")]
    # without verify=true the items carry no verification: the drift verified the locked packs on its own
    assert all(item["verified"] is None and item["current_tree_checksum"] is None for item in result["packs"])
    by_ref = dict((item["ref"], item) for item in result["packs"])
    assert by_ref["a"]["checksum"] == GOOD and by_ref["d"]["checksum"] == OTHER and by_ref["a"]["spec"] == "a"
    assert by_ref["a"]["installed_from"] == {"type": "archive", "url": "https://files.example/a.tgz"}
    assert by_ref["a"]["path"] == os.path.join(packs_dir, "a") and by_ref["a"]["tree_checksum"].startswith("sha256:")
    assert by_ref["manual"]["managed"] is False and by_ref["manual"]["version"] == "1.0.0" and by_ref["manual"]["checksum"] is None
    assert warnings == []


def test_host_report_of_named_packs_with_verification(fleet_host):
    packs_dir, _lock_file = fleet_host
    with open(os.path.join(packs_dir, ".attune", "extra.json"), "w") as handle:
        handle.write("{not json")  # an unreadable provenance record
    warnings = Warnings()
    result = _drift.on_host(host_params(packs_dir, name=[" e", "a", "e", "nosuch", "", "extra", "manual"], verify=True), warnings)
    assert [item["ref"] for item in result["packs"]] == ["e", "a", "nosuch", "extra", "manual"]  # as given, once each
    assert result["missing"] == ["nosuch"] and result["modified"] == ["e"]
    assert result["msg"] == "4 packs in %s (2 managed); not installed: nosuch; verified: 1 modified (e)" % packs_dir
    e, a, nosuch, extra, manual = result["packs"]
    assert (e["verified"], e["verify_reason"]) == (False, "files differ from what was installed")
    assert e["current_tree_checksum"].startswith("sha256:") and e["current_tree_checksum"] != e["tree_checksum"]
    assert (a["verified"], a["verify_reason"], a["current_tree_checksum"]) == (True, None, a["tree_checksum"])
    assert nosuch == dict(_drift.pack_item("nosuch", None))
    assert nosuch["installed"] is False and nosuch["path"] is None and nosuch["verified"] is None
    assert extra["managed"] is False and "not valid JSON" in extra["error"] and extra["checksum"] is None
    assert manual["managed"] is False and manual["verified"] is None and manual["error"] is None
    assert "drift" not in result
    assert warnings == ["pack extra in %s: %s" % (packs_dir, extra["error"])]


def test_host_report_reads_the_lock_text_from_the_controller(fleet_host):
    packs_dir, lock_file = fleet_host
    with open(lock_file) as handle:
        text = handle.read()
    os.unlink(lock_file)  # the host never reads the file: the action plugin passed its text
    result = _drift.on_host(host_params(packs_dir, lock_file=lock_file, _lock_text=text), Warnings())
    assert result["drift"]["msg"] == DRIFT_LINE and result["drift"]["lock_file"] == lock_file
    assert [pack["status"] for pack in result["drift"]["packs"]] == ["in-sync", "other-version", "missing", "other-source", "modified"]


def test_host_report_of_a_packs_dir_that_does_not_exist(tmp_path):
    packs_dir = str(tmp_path / "nowhere")
    lock_file = tmp_path / "packs.lock.yml"
    lock_file.write_text(lock("a", "b").text)
    result = _drift.on_host(host_params(packs_dir, lock_file=str(lock_file), name=["a"]), Warnings())
    assert result["packs"] == [_drift.pack_item("a", None)] and result["missing"] == ["a"]
    assert result["drift"]["missing"] == ["a", "b"] and result["drift"]["deviates"] is True
    assert result["msg"] == "no packs: %s does not exist; not installed: a; DRIFT: missing a, b" % packs_dir
    assert not os.path.exists(packs_dir)  # read-only: the lock of packs_dir is not taken, nothing is created


def test_host_report_failures_name_the_packs_dir(fleet_host, tmp_path):
    packs_dir, _lock_file = fleet_host
    result = _drift.on_host(host_params(packs_dir, name=["a", "../etc"]), Warnings())
    assert result["failed"] is True and result["changed"] is False and result["packs_dir"] == packs_dir
    assert result["error"]["kind"] == "invalid_pack_structure" and "invalid pack ref '../etc'" in result["msg"], result
    assert "packs" not in result
    bad_lock = tmp_path / "bad.lock.yml"
    bad_lock.write_text("version: 1\npacks: 5\n")
    result = _drift.on_host(host_params(packs_dir, lock_file=str(bad_lock)), Warnings())
    assert result["failed"] is True and result["packs_dir"] == packs_dir and str(bad_lock) in result["msg"], result
    assert result["error"]["kind"] == "lock_file_error" and "'packs' must be a list" in result["msg"], result


def test_verify_with_a_lock_verifies_the_locked_packs_the_task_does_not_name(fleet_host):
    """verify=true and name=[a]: e is locked but not named; its modified files must still show as drift."""
    packs_dir, lock_file = fleet_host
    result = _drift.on_host(host_params(packs_dir, lock_file=lock_file, name=["a"], verify=True), Warnings())
    statuses = dict((pack["ref"], pack["status"]) for pack in result["drift"]["packs"])
    assert statuses["e"] == "modified" and statuses["a"] == "in-sync", result["drift"]
    assert result["modified"] == [] and [pack["ref"] for pack in result["packs"]] == ["a"]
