"""Atomic activation, recovery and removal in a real packs_dir (the pack.yaml rules: test_pack_yaml.py)."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack import _packdir
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, InvalidPackStructure, UnsafeArchive
from ansible_collections.attune.packs.plugins.module_utils._pack._extract import prepare_archive
from ansible_collections.attune.packs.plugins.module_utils._pack._packdir import (build_metadata, installed, list_installed, locked,
                                                                                  read_metadata, recover, remove, staging, tree_checksum,
                                                                                  verify_installed)
from support.synth import legacy_provenance_path, make_archive, make_pack_tree, provenance_path, read_provenance
from support.synth import tree_checksum as independent_checksum

COLLECTIONS_ROOT = os.path.abspath(os.path.join(os.path.dirname(_packdir.__file__), *[os.pardir] * 6))
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def activate(packs_dir, ref, tree, metadata, move=False, checkpoint=None, durable=True):
    """One staging area, one activation (what _install does per pack)."""
    with staging(packs_dir, ref, checkpoint=checkpoint) as stage:
        return stage.activate(tree, metadata, move=move, durable=durable)


@pytest.fixture(params=[True, False], ids=["exchange", "two-renames"])
def swap_mode(request, monkeypatch):
    monkeypatch.setattr(_packdir, "USE_RENAME_EXCHANGE", request.param)
    return request.param


@pytest.fixture
def packs_dir(tmp_path):
    path = tmp_path / "packs"
    path.mkdir()
    return str(path)


def _src(tmp_path, version, ref="demo", files=None, name=None):
    return make_pack_tree(str(tmp_path / (name or "%s-%s.src" % (ref, version))), ref, version,
                          files=dict({"data/version.txt": version}, **(files or {})))


def _meta(ref, version, src):
    return build_metadata(ref, version, {"type": "directory", "path": src}, checksum=None, registry=None, spec=ref)


def _install(packs_dir, tmp_path, version, ref="demo", **kwargs):
    src = _src(tmp_path, version, ref)
    return activate(packs_dir, ref, src, _meta(ref, version, src), **kwargs), src


def installed_checksum(path):
    """Independent framed checksum of an installed pack: the whole tree, nothing left out (provenance is outside it)."""
    return independent_checksum(path)


def _only(packs_dir, *names):
    """``packs_dir`` holds exactly ``names`` besides the provenance directory, which holds only committed records."""
    assert sorted(name for name in os.listdir(packs_dir) if name != ".attune") == sorted(names)
    records = os.path.join(packs_dir, ".attune")
    if os.path.isdir(records):
        assert all(re.fullmatch(r"[a-z][a-z0-9_-]*\.json", name) for name in os.listdir(records)), os.listdir(records)


# ---------------------------------------------------------------------------
# activation


def test_fresh_install(tmp_path, packs_dir, swap_mode):
    src = _src(tmp_path, "1.0.0", files={"bin/run": "#!/bin/sh\n", ".git/config": "x"})
    os.chmod(os.path.join(src, "bin", "run"), 0o755)
    metadata = build_metadata("demo", "1.0.0", {"type": "archive", "url": "https://user:pw@example.test/p.tgz?token=1"},
                              checksum="sha256:" + "a" * 64, registry="main", registry_url="https://example.test/index.json", spec="demo@^1")
    result = activate(packs_dir, "demo", src, metadata)
    target = os.path.join(packs_dir, "demo")
    assert result["path"] == target and result["previous"] is None
    _only(packs_dir, "demo")
    assert not os.path.exists(os.path.join(target, ".git"))
    assert installed_checksum(target) == independent_checksum(src)  # .git skipped, nothing added to the tree
    assert not os.path.exists(os.path.join(target, ".attune"))
    stored = read_metadata(packs_dir, "demo")
    assert stored == result["metadata"]
    assert stored["pack_ref"] == "demo" and stored["version"] == "1.0.0" and RFC3339.match(stored["installed_at"])
    assert stored["installed_from"] == {"type": "archive", "url": "https://***@example.test/p.tgz?***"}
    assert stored["checksum"] == "sha256:" + "a" * 64
    assert (stored["registry"], stored["registry_url"], stored["spec"]) == ("main", "https://example.test/index.json", "demo@^1")
    assert stored["tree_checksum"] == independent_checksum(src)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(target, "bin", "run")).st_mode) == 0o755
    record = os.path.join(packs_dir, ".attune", "demo.json")
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o644
    with open(record) as handle:
        assert json.load(handle)["tree_checksum"] == stored["tree_checksum"]
    assert stored["tree_inode"] == os.lstat(target).st_ino
    assert verify_installed(packs_dir, "demo")["ok"] is True


def test_upgrade_replaces_and_reports_previous(tmp_path, packs_dir, swap_mode):
    _install(packs_dir, tmp_path, "1.0.0")
    result, src2 = _install(packs_dir, tmp_path, "2.0.0")
    assert result["previous"]["version"] == "1.0.0"
    assert result["metadata"]["version"] == "2.0.0"
    _only(packs_dir, "demo")
    assert installed_checksum(os.path.join(packs_dir, "demo")) == independent_checksum(src2)
    with open(os.path.join(packs_dir, "demo", "data", "version.txt")) as handle:
        assert handle.read() == "2.0.0"


def test_upgrade_replaces_a_symlinked_pack_dir_without_touching_its_target(tmp_path, packs_dir, swap_mode):
    dev = _src(tmp_path, "0.9.0", name="dev-checkout")
    before = independent_checksum(dev)
    os.symlink(dev, os.path.join(packs_dir, "demo"))
    result, _src2 = _install(packs_dir, tmp_path, "1.0.0")
    assert not os.path.islink(os.path.join(packs_dir, "demo"))
    assert result["metadata"]["version"] == "1.0.0"
    assert independent_checksum(dev) == before
    _only(packs_dir, "demo")


def test_activation_from_extraction_moves_instead_of_copying(tmp_path, packs_dir):
    src = _src(tmp_path, "1.0.0")
    archive = make_archive(src, str(tmp_path / "p.tgz"), fmt="tar.gz", top_dir="top")
    with staging(packs_dir, "demo") as stage:
        root, _content, _stats = prepare_archive(archive, stage.workdir("extract"), "demo", "1.0.0")
        inode = os.stat(os.path.join(root, "pack.yaml")).st_ino
        result = stage.activate(root, _meta("demo", "1.0.0", None))
    assert os.stat(os.path.join(result["path"], "pack.yaml")).st_ino == inode
    _only(packs_dir, "demo")
    assert verify_installed(packs_dir, "demo")["ok"] is True


def test_copy_refuses_symlinks_and_keeps_the_old_version(tmp_path, packs_dir, swap_mode):
    _install(packs_dir, tmp_path, "1.0.0")
    before = independent_checksum(os.path.join(packs_dir, "demo"))
    src = _src(tmp_path, "2.0.0")
    os.symlink("/etc/passwd", os.path.join(src, "actions", "passwd"))
    with pytest.raises(UnsafeArchive, match=r"pack demo: the source tree contains a symlink: actions/passwd"):
        activate(packs_dir, "demo", src, _meta("demo", "2.0.0", src))
    _only(packs_dir, "demo")
    assert independent_checksum(os.path.join(packs_dir, "demo")) == before


def test_moved_tree_with_fifo_is_refused(tmp_path, packs_dir):
    src = _src(tmp_path, "1.0.0")
    os.mkfifo(os.path.join(src, "pipe"))
    with pytest.raises(UnsafeArchive, match="the pack tree contains a special file: pipe"):
        activate(packs_dir, "demo", src, _meta("demo", "1.0.0", src), move=True)
    _only(packs_dir)


def test_a_pack_may_ship_an_attune_directory(tmp_path, packs_dir):
    # Attune accepts any regular file (storage.rs calculate_directory_checksum covers it): provenance is outside the tree now
    src = _src(tmp_path, "1.0.0", files={".attune/metadata.json": "{}"})
    result = activate(packs_dir, "demo", src, _meta("demo", "1.0.0", src))
    assert installed_checksum(result["path"]) == independent_checksum(src)
    assert read_metadata(packs_dir, "demo")["version"] == "1.0.0"
    assert recover(packs_dir) == []  # not mistaken for a 0.1.0 record
    assert os.path.isfile(os.path.join(result["path"], ".attune", "metadata.json"))
    assert verify_installed(packs_dir, "demo")["ok"] is True


def test_installing_packs_dir_into_itself_is_refused(tmp_path, packs_dir):
    _install(packs_dir, tmp_path, "1.0.0")
    with pytest.raises(AttuneError, match="it contains packs_dir"):
        activate(packs_dir, "other", packs_dir, _meta("other", "1.0.0", packs_dir))
    _only(packs_dir, "demo")


def test_staging_is_removed_when_the_caller_fails(tmp_path, packs_dir):
    with pytest.raises(RuntimeError):
        with staging(packs_dir, "demo") as stage:
            os.mkdir(stage.workdir("x"))
            raise RuntimeError("download failed")
    _only(packs_dir)


def test_packs_dir_is_created(tmp_path):
    packs = str(tmp_path / "a" / "b" / "packs")
    _install(packs, tmp_path, "1.0.0")
    assert sorted(os.listdir(packs)) == [".attune", "demo"]


# ---------------------------------------------------------------------------
# listing, verification, removal


def test_list_installed_and_verify(tmp_path, packs_dir):
    _install(packs_dir, tmp_path, "1.0.0")
    _install(packs_dir, tmp_path, "3.1.0", ref="zeta")
    make_pack_tree(os.path.join(packs_dir, "manual"), "manual", "0.1.0")
    make_pack_tree(os.path.join(packs_dir, "broken"), "broken", "0.2.0")
    with open(os.path.join(packs_dir, ".attune", "broken.json"), "w") as handle:
        handle.write("{not json")
    os.mkdir(os.path.join(packs_dir, ".attune-staging-demo-0123abcd"))
    os.mkdir(os.path.join(packs_dir, "Not-A-Ref"))
    with open(os.path.join(packs_dir, "file"), "w") as handle:
        handle.write("x")
    rows = {row["ref"]: row for row in list_installed(packs_dir)}
    assert sorted(rows) == ["broken", "demo", "manual", "zeta"]
    assert rows["demo"]["managed"] and rows["demo"]["version"] == "1.0.0" and rows["demo"]["error"] is None
    assert rows["zeta"]["metadata"]["version"] == "3.1.0"
    assert not rows["manual"]["managed"] and rows["manual"]["version"] == "0.1.0" and rows["manual"]["metadata"] is None
    assert "not valid JSON" in rows["broken"]["error"]
    assert installed(packs_dir, "demo")["version"] == "1.0.0"
    assert installed(packs_dir, "nothere") is None
    assert list_installed(str(tmp_path / "missing")) == []

    assert verify_installed(packs_dir, "demo")["ok"] is True
    assert verify_installed(packs_dir, "manual")["ok"] is None
    assert verify_installed(packs_dir, "nothere")["reason"] == "not installed"
    with open(os.path.join(packs_dir, "demo", "README.md"), "a") as handle:
        handle.write("tampered\n")
    report = verify_installed(packs_dir, "demo")
    assert report["ok"] is False and report["reason"] == "files differ from what was installed"
    assert report["expected"] != report["actual"]
    os.symlink("/etc/passwd", os.path.join(packs_dir, "zeta", "evil"))
    report = verify_installed(packs_dir, "zeta")
    assert report["ok"] is False and "symlink" in report["reason"]


def test_tree_checksum_covers_everything_but_legacy_metadata(tmp_path):
    root = tmp_path / "t"
    (root / "nested").mkdir(parents=True)
    (root / "nested" / "file.txt").write_bytes(b"fixture\n")
    expected = "sha256:e9837162383488cb9b187ea585ce8963634d7d04f75abeb0c43d5456de0d6b13"  # attune-format.md section 4
    assert tree_checksum(str(root)) == expected
    (root / ".attune").mkdir()
    (root / ".attune" / "metadata.json").write_text("{}")
    assert tree_checksum(str(root)) != expected  # Attune's checksum covers it
    assert tree_checksum(str(root), legacy=True) == expected  # a 0.1.0 tree: its own record left out
    (root / "nested" / ".attune").mkdir()
    (root / "nested" / ".attune" / "x").write_text("x")
    assert tree_checksum(str(root), legacy=True) != expected


def test_remove(tmp_path, packs_dir):
    _install(packs_dir, tmp_path, "1.0.0")
    _install(packs_dir, tmp_path, "1.0.0", ref="other")
    previous = remove(packs_dir, "demo")
    assert previous["version"] == "1.0.0" and previous["managed"]
    _only(packs_dir, "other")
    assert remove(packs_dir, "demo") is None
    assert remove(str(tmp_path / "missing"), "demo") is None
    with pytest.raises(InvalidPackStructure, match="invalid pack ref"):
        remove(packs_dir, "../packs")
    _only(packs_dir, "other")
    assert verify_installed(packs_dir, "other")["ok"] is True


def test_remove_a_symlinked_pack_removes_only_the_link(tmp_path, packs_dir):
    dev = _src(tmp_path, "0.9.0", name="dev-checkout")
    os.symlink(dev, os.path.join(packs_dir, "demo"))
    remove(packs_dir, "demo")
    _only(packs_dir)
    assert os.path.isfile(os.path.join(dev, "pack.yaml"))


# ---------------------------------------------------------------------------
# recovery


def _tree(path, version):
    make_pack_tree(path, "demo", version)
    return independent_checksum(path)


def test_recover_restores_missing_pack_from_old(tmp_path, packs_dir):
    checksum = _tree(os.path.join(packs_dir, ".attune-old-demo-0000aaaa"), "1.0.0")
    os.mkdir(os.path.join(packs_dir, ".attune-staging-demo-1111bbbb"))
    actions = recover(packs_dir, "demo")
    assert actions == ["restored demo from .attune-old-demo-0000aaaa", "removed .attune-staging-demo-1111bbbb"]
    _only(packs_dir, "demo")
    assert independent_checksum(os.path.join(packs_dir, "demo")) == checksum


def test_recover_prefers_newest_old_and_cleans_everything_else(tmp_path, packs_dir):
    _tree(os.path.join(packs_dir, ".attune-old-demo-0000aaaa"), "1.0.0")
    newest = _tree(os.path.join(packs_dir, ".attune-old-demo-ffff0000"), "2.0.0")
    old_stat = os.stat(os.path.join(packs_dir, ".attune-old-demo-0000aaaa"))
    os.utime(os.path.join(packs_dir, ".attune-old-demo-ffff0000"))
    os.chmod(os.path.join(packs_dir, ".attune-old-demo-ffff0000"), 0o755)  # bumps ctime
    assert os.stat(os.path.join(packs_dir, ".attune-old-demo-ffff0000")).st_ctime >= old_stat.st_ctime
    os.makedirs(os.path.join(packs_dir, ".attune-trash-demo-22223333", "half", "deleted"))
    recover(packs_dir, "demo")
    _only(packs_dir, "demo")
    assert independent_checksum(os.path.join(packs_dir, "demo")) == newest


def test_recover_with_present_pack_deletes_leftovers_only(tmp_path, packs_dir):
    _install(packs_dir, tmp_path, "2.0.0")
    current = independent_checksum(os.path.join(packs_dir, "demo"))
    _tree(os.path.join(packs_dir, ".attune-old-demo-0000aaaa"), "1.0.0")
    os.mkdir(os.path.join(packs_dir, ".attune-staging-demo-1111bbbb"))
    _tree(os.path.join(packs_dir, ".attune-old-other-0000aaaa"), "1.0.0")
    untouched = [".attune-old-demo-short", ".attune-staging-Demo-0000aaaa", ".attune-misc-demo-0000aaaa", "keep.txt"]
    for name in untouched[:-1]:
        os.mkdir(os.path.join(packs_dir, name))
    with open(os.path.join(packs_dir, "keep.txt"), "w") as handle:
        handle.write("keep")
    recover(packs_dir, "demo")
    _only(packs_dir, "demo", ".attune-old-other-0000aaaa", *untouched)
    assert independent_checksum(os.path.join(packs_dir, "demo")) == current
    recover(packs_dir)
    _only(packs_dir, "demo", "other", *untouched)
    assert recover(str(tmp_path / "missing")) == []


def test_ref_prefixes_do_not_collide(tmp_path, packs_dir):
    """Leftovers of ref ``a-b`` are not mistaken for leftovers of ref ``a``."""
    _tree(os.path.join(packs_dir, ".attune-old-a-b-0000aaaa"), "1.0.0")
    recover(packs_dir, "a")
    _only(packs_dir, ".attune-old-a-b-0000aaaa")
    recover(packs_dir, "a-b")
    _only(packs_dir, "a-b")


# ---------------------------------------------------------------------------
# locking


def test_lock_is_reentrant_and_exclusive_across_processes(packs_dir):
    with locked(packs_dir):
        with locked(packs_dir):
            recover(packs_dir)
        holder = subprocess.run(
            [sys.executable, "-c", "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDONLY); "
             "fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)", packs_dir],
            stderr=subprocess.PIPE, check=False)
        assert holder.returncode != 0 and b"BlockingIOError" in holder.stderr
    fd = os.open(packs_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # released after the outer block
        with pytest.raises(AttuneError, match=r"another operation is still running in .* \(waited 0s for its lock\)"):
            with locked(packs_dir, timeout=0):
                pass
    finally:
        os.close(fd)
    _only(packs_dir)


# ---------------------------------------------------------------------------
# kill tests: SIGKILL at named checkpoints, then check, recover and rerun

_KILL_SCRIPT = textwrap.dedent("""
    import os, sys, time
    sys.path.insert(0, os.environ["X_COLLECTIONS"])
    from ansible_collections.attune.packs.plugins.module_utils._pack import _packdir
    _packdir.USE_RENAME_EXCHANGE = os.environ["X_EXCHANGE"] == "1"
    point = os.environ["X_POINT"]

    def checkpoint(name):
        sys.stdout.write(name + "\\n")
        sys.stdout.flush()
        if name == point:
            time.sleep(3600)

    packs_dir, ref = os.environ["X_PACKS"], os.environ["X_REF"]
    if os.environ["X_ACTION"] == "remove":
        _packdir.remove(packs_dir, ref, checkpoint=checkpoint)
    else:
        src, version = os.environ["X_SRC"], os.environ["X_VERSION"]
        metadata = _packdir.build_metadata(ref, version, {"type": "directory", "path": src})
        with _packdir.staging(packs_dir, ref, checkpoint=checkpoint) as stage:
            stage.activate(src, metadata)
    sys.stdout.write("done\\n")
""")


def _run_and_kill(point, exchange, packs_dir, action="install", src=None, version=None, ref="demo"):
    env = dict(os.environ, X_COLLECTIONS=COLLECTIONS_ROOT, X_EXCHANGE="1" if exchange else "0", X_POINT=point, X_PACKS=packs_dir,
               X_REF=ref, X_ACTION=action, X_SRC=src or "", X_VERSION=version or "")
    proc = subprocess.Popen([sys.executable, "-c", _KILL_SCRIPT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    seen = []
    try:
        for raw in proc.stdout:
            line = raw.decode().strip()
            seen.append(line)
            if line == point:
                os.kill(proc.pid, signal.SIGKILL)
                break
    finally:
        proc.stdout.close()
        proc.wait()
        stderr = proc.stderr.read().decode()
        proc.stderr.close()
    assert point in seen, "checkpoint %s never reached; saw %s; stderr: %s" % (point, seen, stderr)
    assert proc.returncode == -signal.SIGKILL
    return seen


INSTALL_POINTS = ["staging-created", "copied-file", "tree-staged", "metadata-written", "before-swap", "swapped", "provenance-committed", "cleanup"]
FALLBACK_ONLY = ["old-moved", "old-trashed"]
NEW_FROM = "swapped"  # from this checkpoint on, the new version is the installed one


def _kill_cases():
    cases = []
    for exchange in (True, False):
        points = INSTALL_POINTS + ([] if exchange else FALLBACK_ONLY)
        for point in points:
            cases.append(pytest.param(exchange, point, id="%s-%s" % ("exchange" if exchange else "two-renames", point)))
    return cases


def _state_version(packs_dir, versions):
    """Version complete at packs_dir/demo (verified against the source tree), or None if absent."""
    target = os.path.join(packs_dir, "demo")
    if not os.path.lexists(target):
        return None
    checksum = installed_checksum(target)
    matches = [version for version, expected in versions.items() if expected == checksum]
    assert matches, "packs_dir/demo is neither the old nor the new version (half-written?)"
    metadata = read_metadata(packs_dir, "demo")
    assert metadata["version"] == matches[0]
    assert verify_installed(packs_dir, "demo")["ok"] is True
    # the record a reader must take (independent of _packdir) describes exactly this tree: never the other version's
    independent = read_provenance(packs_dir, "demo")
    assert independent["version"] == matches[0] and independent["tree_checksum"] == checksum
    return matches[0]


@pytest.mark.parametrize("exchange, point", _kill_cases())
def test_upgrade_killed_at_any_point_leaves_old_or_new(tmp_path, packs_dir, exchange, point):
    _result, src1 = _install(packs_dir, tmp_path, "1.0.0")
    src2 = _src(tmp_path, "2.0.0", files={"extra/more.txt": "more\n" * 1000})
    versions = {"1.0.0": independent_checksum(src1), "2.0.0": independent_checksum(src2)}
    seen = _run_and_kill(point, exchange, packs_dir, src=src2, version="2.0.0")
    switched = NEW_FROM in seen
    state = _state_version(packs_dir, versions)
    if point == "old-moved":
        # two-rename fallback between its renames: only recover() can put <ref> back
        assert state is None
        assert any(name.startswith(".attune-old-demo-") for name in os.listdir(packs_dir))
    else:
        assert state == ("2.0.0" if switched else "1.0.0")
    leftovers = [name for name in os.listdir(packs_dir) if name.startswith(".attune-")]
    assert leftovers, "the killed run should have left a staging or old directory behind"
    recover(packs_dir)
    _only(packs_dir, "demo")
    assert _state_version(packs_dir, versions) == ("2.0.0" if switched else "1.0.0")
    result = activate(packs_dir, "demo", src2, _meta("demo", "2.0.0", src2))
    assert result["metadata"]["version"] == "2.0.0"
    _only(packs_dir, "demo")
    assert _state_version(packs_dir, versions) == "2.0.0"


@pytest.mark.parametrize("point", ["staging-created", "before-swap", "swapped", "cleanup"])
def test_fresh_install_killed_leaves_nothing_or_new(tmp_path, packs_dir, point):
    src = _src(tmp_path, "1.0.0")
    seen = _run_and_kill(point, True, packs_dir, src=src, version="1.0.0")
    state = _state_version(packs_dir, {"1.0.0": independent_checksum(src)})
    assert state == ("1.0.0" if NEW_FROM in seen else None)
    recover(packs_dir)
    _only(packs_dir, *(["demo"] if state else []))
    activate(packs_dir, "demo", src, _meta("demo", "1.0.0", src))
    _only(packs_dir, "demo")


@pytest.mark.parametrize("point", ["moved-away", "provenance-removed"])
def test_remove_killed_after_rename_is_finished_by_recover(tmp_path, packs_dir, point):
    _install(packs_dir, tmp_path, "1.0.0")
    _install(packs_dir, tmp_path, "1.0.0", ref="other")
    _run_and_kill(point, True, packs_dir, action="remove")
    assert not os.path.lexists(os.path.join(packs_dir, "demo"))
    assert installed(packs_dir, "demo") is None
    recover(packs_dir)
    _only(packs_dir, "other")
    assert not os.path.exists(provenance_path(packs_dir, "demo"))  # no record of a pack that is gone
    assert remove(packs_dir, "demo") is None


# ---------------------------------------------------------------------------
# provenance outside the tree: stale records, 0.1.0 migration (issue 9 item 9)


def test_record_of_a_replaced_tree_is_not_trusted_and_recover_drops_it(tmp_path, packs_dir):
    _install(packs_dir, tmp_path, "1.0.0")
    target = os.path.join(packs_dir, "demo")
    shutil.rmtree(target)
    make_pack_tree(target, "demo", "0.5.0")  # copied by hand over the managed pack
    entry = installed(packs_dir, "demo")
    assert not entry["managed"] and entry["version"] == "0.5.0" and "describes another tree" in entry["error"], entry
    assert verify_installed(packs_dir, "demo")["ok"] is None
    assert recover(packs_dir, "demo") == ["removed the provenance of demo: it describes another tree"]
    assert installed(packs_dir, "demo")["managed"] is False and installed(packs_dir, "demo")["error"] is None


def test_a_tree_made_again_under_the_same_inode_number_is_not_the_recorded_one(tmp_path, packs_dir):
    """Found in CI: ext4 gives a directory made right after ``rm -r`` the same inode number, so the record of the
    deleted tree matched the hand-made one (0.5.0 reported as the managed 1.0.0, never repaired).  Here the reuse is
    made certain: the record is pointed at the new directory's inode number, its generation stays the old tree's."""
    _install(packs_dir, tmp_path, "1.0.0")
    target = os.path.join(packs_dir, "demo")
    old = _packdir._tree_identity(target)
    if old[1] is None:
        pytest.skip("this file system keeps no inode generation (FS_IOC_GETVERSION)")
    shutil.rmtree(target)
    make_pack_tree(target, "demo", "0.5.0")  # copied by hand over the managed pack
    new = _packdir._tree_identity(target)
    if new[1] == old[1]:
        pytest.skip("the file system gave the new directory the old generation too")
    path = provenance_path(packs_dir, "demo")
    with open(path) as handle:
        record = json.load(handle)
    assert record["tree_inode"] == old[0] and record["tree_generation"] == old[1], record
    record["tree_inode"] = new[0]  # what an inode number reused by the file system looks like
    with open(path, "w") as handle:
        json.dump(record, handle)
    entry = installed(packs_dir, "demo")
    assert not entry["managed"] and entry["version"] == "0.5.0" and "describes another tree" in entry["error"], entry
    assert recover(packs_dir, "demo") == ["removed the provenance of demo: it describes another tree"]
    # a record written before the generation was recorded still matches by inode number alone
    _install(packs_dir, tmp_path, "1.0.0")
    with open(path) as handle:
        record = json.load(handle)
    record.pop("tree_generation")
    with open(path, "w") as handle:
        json.dump(record, handle)
    assert installed(packs_dir, "demo")["managed"] is True


def test_record_of_a_tree_copied_back_unchanged_is_relinked(tmp_path, packs_dir):
    _install(packs_dir, tmp_path, "1.0.0")
    target = os.path.join(packs_dir, "demo")
    shutil.copytree(target, target + ".bak")
    shutil.rmtree(target)
    os.rename(target + ".bak", target)  # restored from a backup: same files, another directory
    assert installed(packs_dir, "demo")["managed"] is True
    assert recover(packs_dir, "demo") == ["re-linked the provenance of demo to its tree"]
    assert read_metadata(packs_dir, "demo")["tree_inode"] == os.lstat(target).st_ino
    assert verify_installed(packs_dir, "demo")["ok"] is True


def _legacy_install(packs_dir, tmp_path, version, ref="demo"):
    """A pack as 0.1.0 left it: the record in <ref>/.attune/metadata.json, tree_checksum without that directory."""
    target = os.path.join(packs_dir, ref)
    make_pack_tree(target, ref, version, files={"data/version.txt": version})
    record = dict(_meta(ref, version, "/src"), pack_ref=ref, metadata_format=1, tree_checksum=independent_checksum(target))
    os.mkdir(os.path.join(target, ".attune"))
    with open(legacy_provenance_path(packs_dir, ref), "w") as handle:
        json.dump(record, handle)
    return record


def test_pack_installed_by_0_1_0_is_read_then_migrated(tmp_path, packs_dir):
    record = _legacy_install(packs_dir, tmp_path, "1.0.0")
    target = os.path.join(packs_dir, "demo")
    # read as it is (check mode, attune_pack_installed): managed, verified without its own record
    entry = installed(packs_dir, "demo")
    assert entry["managed"] and entry["version"] == "1.0.0" and entry["error"] is None
    assert verify_installed(packs_dir, "demo")["ok"] is True
    # migrated by the next operation: record moved out, the tree is exactly the verified content again
    assert recover(packs_dir, "demo") == ["moved the provenance of demo out of the pack tree", "removed demo/.attune from the pack tree"]
    assert not os.path.exists(os.path.join(target, ".attune"))
    moved = read_metadata(packs_dir, "demo")
    assert moved["tree_checksum"] == record["tree_checksum"] == independent_checksum(target)
    assert moved["installed_at"] == record["installed_at"] and moved["migrated_from"]
    assert verify_installed(packs_dir, "demo")["ok"] is True
    _only(packs_dir, "demo")
    assert recover(packs_dir) == []
    # an upgrade over a migrated pack records a fresh provenance (no migration marker)
    result, _src2 = _install(packs_dir, tmp_path, "2.0.0")
    assert result["previous"]["version"] == "1.0.0" and "migrated_from" not in read_metadata(packs_dir, "demo")


def test_migration_killed_before_it_cleaned_the_tree_is_finished(tmp_path, packs_dir):
    record = _legacy_install(packs_dir, tmp_path, "1.0.0")
    target = os.path.join(packs_dir, "demo")
    os.mkdir(os.path.join(packs_dir, ".attune"))
    with open(provenance_path(packs_dir, "demo"), "w") as handle:  # written, then killed before removing demo/.attune
        json.dump(dict(record, tree_inode=os.lstat(target).st_ino, migrated_from="0.1.0"), handle)
    assert installed(packs_dir, "demo")["managed"] is True
    assert recover(packs_dir, "demo") == ["removed demo/.attune from the pack tree"]
    assert not os.path.exists(os.path.join(target, ".attune"))
    assert verify_installed(packs_dir, "demo")["ok"] is True
    _only(packs_dir, "demo")


def test_upgrade_of_a_0_1_0_pack_migrates_first(tmp_path, packs_dir, swap_mode):
    _legacy_install(packs_dir, tmp_path, "1.0.0")
    result, src2 = _install(packs_dir, tmp_path, "2.0.0")
    assert result["previous"]["version"] == "1.0.0"
    assert installed_checksum(os.path.join(packs_dir, "demo")) == independent_checksum(src2)
    _only(packs_dir, "demo")


def test_git_checkout_cloned_into_staging_is_moved_without_its_git_dir(tmp_path, packs_dir):
    from ansible_collections.attune.packs.plugins.module_utils._pack._git import clone
    from support.gitrepo import checkout_checksum, make_git_pack_repo

    bare, commit = make_git_pack_repo(str(tmp_path), "demo", "1.0.0", files={"bin/tool": "#!/bin/sh\n"})
    old = os.umask(0o077)
    try:
        with staging(packs_dir, "demo") as stage:
            checkout = clone("file://" + bare, stage.workdir("git"), version=commit, expected_checksum=checkout_checksum(bare),
                             allow_local_git=True)
            inode = os.stat(os.path.join(checkout.tree, "pack.yaml")).st_ino
            metadata = build_metadata("demo", "1.0.0", {"type": "git", "url": "file://" + bare, "ref": commit},
                                      checksum=checkout.checksum, commit=checkout.commit)
            result = stage.activate(checkout.tree, metadata)
    finally:
        os.umask(old)
    target = result["path"]
    assert os.stat(os.path.join(target, "pack.yaml")).st_ino == inode  # moved, not copied
    assert not os.path.exists(os.path.join(target, ".git"))
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(target, "actions")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(target, "pack.yaml")).st_mode) == 0o644
    _only(packs_dir, "demo")
    stored = read_metadata(packs_dir, "demo")
    assert stored["tree_checksum"] == stored["checksum"] == checkout_checksum(bare)
    assert stored["installed_from"] == {"type": "git", "url": "file://" + bare, "ref": commit, "commit": commit}


def test_recover_several_refs_in_one_pass_leaves_the_others(tmp_path, packs_dir):
    for ref in ("alpha", "beta", "gamma"):
        os.mkdir(os.path.join(packs_dir, ".attune-staging-%s-1111bbbb" % ref))
    actions = recover(packs_dir, refs=["beta", "alpha"])
    assert actions == ["removed .attune-staging-alpha-1111bbbb", "removed .attune-staging-beta-1111bbbb"]
    _only(packs_dir, ".attune-staging-gamma-1111bbbb")
    with pytest.raises(InvalidPackStructure):
        recover(packs_dir, refs=["../etc"])
