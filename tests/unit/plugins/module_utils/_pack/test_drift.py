"""_drift.compare on lock entries validated by _lockfile and items as attune_pack_installed reports them."""
from __future__ import annotations

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack import _drift, _lockfile

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
