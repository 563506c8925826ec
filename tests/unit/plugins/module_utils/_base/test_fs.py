"""The file-system helpers: atomic replacement (also relative to a directory descriptor) and tree removal."""
import errno
import os
import shutil
import stat
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.attune.packs.plugins.module_utils._base import _fs


def listing(path):
    return sorted(os.listdir(str(path)))


def test_atomic_write_replaces_with_mode_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    with _fs.atomic_write(str(target), mode=0o640) as handle:
        handle.write(b"new")
        assert target.read_bytes() == b"old"  # not visible before the rename
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert listing(tmp_path) == ["file"]


def test_atomic_write_without_mode_is_private(tmp_path):
    target = tmp_path / "secret"
    with _fs.atomic_write(str(target)) as handle:
        handle.write(b"x")
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_atomic_write_error_keeps_the_old_file(tmp_path):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with _fs.atomic_write(str(target)) as handle:
            handle.write(b"half")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old"
    assert listing(tmp_path) == ["file"]


def test_atomic_write_prepare_and_replace_hooks_see_the_temporary_file(tmp_path):
    target = tmp_path / "file"
    seen = []

    def replace(tmp, path):
        seen.append((os.path.dirname(tmp), _fs.is_temp_of(os.path.basename(tmp), "file"), open(tmp, "rb").read()))
        os.rename(tmp, path)

    with _fs.atomic_write(str(target), prepare=lambda tmp: os.chmod(tmp, 0o604), replace=replace) as handle:
        handle.write(b"data")
    assert seen == [(str(tmp_path), True, b"data")]
    assert stat.S_IMODE(target.stat().st_mode) == 0o604


def test_atomic_write_relative_to_a_directory_descriptor_never_follows_a_symlink(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (inside / "link").symlink_to(outside / "victim")
    fd = os.open(str(inside), os.O_RDONLY)
    try:
        with _fs.atomic_write("link", dir_fd=fd) as handle:
            handle.write(b"data")
    finally:
        os.close(fd)
    assert not (outside / "victim").exists()
    assert not (inside / "link").is_symlink()
    assert (inside / "link").read_bytes() == b"data"
    assert listing(inside) == ["link"]


def test_remove_tree_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "file").write_text("x")
    (tree / "dirlink").symlink_to(outside)
    (tree / "sub" / "filelink").symlink_to(outside / "keep")
    _fs.remove_tree(str(tree))
    assert listing(tmp_path) == ["outside"]
    assert (outside / "keep").read_text() == "keep"


def test_remove_tree_of_a_symlink_removes_only_the_link(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    (tmp_path / "link").symlink_to(outside)
    _fs.remove_tree(str(tmp_path / "link"))
    assert listing(tmp_path) == ["outside"]
    assert listing(outside) == ["keep"]


READ_ONLY_TREE = """
import os, sys
sys.path.insert(0, sys.argv[1])
import _fs
tree = os.path.join(sys.argv[2], "tree")
os.makedirs(os.path.join(tree, "ro", "deeper"))
os.makedirs(os.path.join(tree, "closed"))
for name in ("ro/deeper/file", "ro/file", "closed/file"):
    open(os.path.join(tree, name), "w").close()
os.chmod(os.path.join(tree, "ro", "deeper"), 0o555)
os.chmod(os.path.join(tree, "ro"), 0o555)
os.chmod(os.path.join(tree, "closed"), 0o000)
_fs.remove_tree(tree)
print(os.listdir(sys.argv[2]))
"""


@pytest.fixture
def open_dir():
    """A temporary directory anyone may use (pytest's tmp_path is private to its owner)."""
    path = tempfile.mkdtemp(prefix="attune-fs-")
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path)


def test_remove_tree_handles_read_only_and_unreadable_directories(open_dir):
    """Directories of mode 0555 and 0000 inside the tree (shutil.rmtree fails on them as a non-root user)."""
    shutil.copy(_fs.__file__, os.path.join(open_dir, "_fs.py"))
    command = [sys.executable, "-c", READ_ONLY_TREE, open_dir, open_dir]
    if os.geteuid() == 0:  # root ignores directory permissions: run it as nobody
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv")
        os.chmod(os.path.join(open_dir, "_fs.py"), 0o644)
        as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        # a Python nobody can start (a pyenv build under /root with a shared libpython cannot be); _fs is stdlib-only
        usable = [python for python in (sys.executable, "/usr/bin/python3") if os.path.exists(python) and subprocess.run(
            as_nobody + [python, "-c", "pass"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0]
        if not usable:
            pytest.skip("no Python interpreter that user nobody can run")
        command = as_nobody + [usable[0]] + command[1:]
    result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, check=False)
    assert result.returncode == 0, result.stdout
    assert result.stdout.strip() == "['_fs.py']"


def test_remove_tree_of_a_file_and_of_nothing(tmp_path):
    (tmp_path / "file").write_text("x")
    _fs.remove_tree(str(tmp_path / "file"))
    _fs.remove_tree(str(tmp_path / "missing"))
    assert listing(tmp_path) == []


class Calls(list):
    target = None


@pytest.fixture(name="fsyncs")
def fsyncs_fixture(monkeypatch):
    """Every real ``os.fsync`` call, recorded as it happens: ``(kind, inode, target_content, synced_content)``.

    ``kind`` is "dir" or "file" (``fstat`` of the descriptor); ``target_content`` is what the file ``calls.target``
    holds at that moment (None when missing), which shows the order of fsync and rename; ``synced_content`` is what
    the synced file holds (None for a directory).
    """
    real = os.fsync
    calls = Calls()

    def counting(fd):
        info = os.fstat(fd)
        target = calls.target
        holds = target.read_bytes() if target is not None and target.exists() else None
        data = os.pread(fd, 1 << 16, 0) if stat.S_ISREG(info.st_mode) else None
        calls.append(("dir" if stat.S_ISDIR(info.st_mode) else "file", info.st_ino, holds, data))
        return real(fd)

    monkeypatch.setattr(os, "fsync", counting)
    return calls


def test_fsync_dir_syncs_the_directory_by_path_and_descriptor(tmp_path, fsyncs):
    directory = os.stat(str(tmp_path)).st_ino
    _fs.fsync_dir(str(tmp_path))
    assert [(kind, inode) for kind, inode, _holds, _data in fsyncs] == [("dir", directory)]
    fd = os.open(str(tmp_path), os.O_RDONLY)
    try:
        _fs.fsync_dir(fd)
        os.fstat(fd)  # still open: the caller's descriptor is not closed
    finally:
        os.close(fd)
    assert [(kind, inode) for kind, inode, _holds, _data in fsyncs] == [("dir", directory)] * 2


@pytest.mark.parametrize("code, tolerated", [(errno.EINVAL, True), (errno.EIO, False)])
def test_fsync_dir_tolerates_only_file_systems_that_refuse_it(tmp_path, monkeypatch, code, tolerated):
    def refuse(_fd):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    if tolerated:
        _fs.fsync_dir(str(tmp_path))
    else:
        with pytest.raises(OSError):
            _fs.fsync_dir(str(tmp_path))


@pytest.mark.parametrize("relative", [False, True])
def test_atomic_write_syncs_the_data_before_the_rename_and_the_directory_after(tmp_path, fsyncs, relative):
    target = tmp_path / "file"
    target.write_bytes(b"old")
    fsyncs.target = target
    if relative:
        fd = os.open(str(tmp_path), os.O_RDONLY)
        try:
            with _fs.atomic_write("file", dir_fd=fd) as handle:
                handle.write(b"new")
        finally:
            os.close(fd)
    else:
        with _fs.atomic_write(str(target)) as handle:
            handle.write(b"new")
    assert target.read_bytes() == b"new"
    # the new file, complete, while the target still holds the old content; then the directory, after the rename
    assert fsyncs == [("file", target.stat().st_ino, b"old", b"new"), ("dir", tmp_path.stat().st_ino, b"new", None)]


def test_atomic_write_without_sync_dir_syncs_only_the_file(tmp_path, fsyncs):
    target = tmp_path / "file"
    with _fs.atomic_write(str(target), sync_dir=False) as handle:
        handle.write(b"new")
    assert [(kind, inode) for kind, inode, _holds, _data in fsyncs] == [("file", target.stat().st_ino)]
