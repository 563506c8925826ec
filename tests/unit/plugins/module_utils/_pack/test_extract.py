"""Safe extraction: real archives, hostile and benign."""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import stat
import subprocess
import tarfile

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack import _extract
from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidPackStructure, UnsafeArchive
from ansible_collections.attune.packs.plugins.module_utils._pack._extract import (ExtractStats, detect_format, extract_archive, prepare_archive,
                                                                                  split_entry_name)
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import find_pack_root
from support import hostile_archives as hostile
from support.synth import make_archive, make_pack_tree, tree_checksum


def _src(tmp_path, version, ref="demo", files=None, name=None):
    return make_pack_tree(str(tmp_path / (name or "%s-%s.src" % (ref, version))), ref, version,
                          files=dict({"data/version.txt": version}, **(files or {})))


@pytest.fixture
def parent(tmp_path):
    path = tmp_path / "parent"
    path.mkdir()
    return path


@pytest.fixture
def symlink_target():
    """The outside directory the symlink cases point at; must stay empty."""
    target = hostile.SYMLINK_TARGET
    shutil.rmtree(target, ignore_errors=True)
    os.mkdir(target)
    yield target
    assert os.listdir(target) == [], "a hostile archive wrote outside the extraction directory"
    shutil.rmtree(target, ignore_errors=True)


def test_hostile_suite_is_large_enough():
    assert len(hostile.CASES) >= 15
    assert len({case.id for case in hostile.CASES}) == len(hostile.CASES)


@pytest.mark.parametrize("case", hostile.CASES, ids=[case.id for case in hostile.CASES])
def test_hostile_archive_is_refused_and_nothing_is_left(case, tmp_path, parent, symlink_target):
    archive = str(tmp_path / ("%s.archive" % case.id))
    case.build(archive)
    dest = parent / "out"
    outside = tmp_path / "evil.txt"
    with pytest.raises(UnsafeArchive) as info:
        extract_archive(archive, str(dest), pack="demo", **case.limits)
    message = str(info.value)
    assert re.search(case.message, message, re.S), message
    assert message.startswith("pack demo: %s" % os.path.basename(archive)), message
    assert info.value.kind == "unsafe_archive"
    assert os.listdir(str(parent)) == []
    assert not outside.exists()
    assert not os.path.exists("/tmp/attune-evil.txt")


def test_nul_and_control_names_are_shown_escaped(tmp_path, parent):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("demo/\u00e9a\x00b\n", data=b"x")])
    with pytest.raises(UnsafeArchive) as info:
        extract_archive(archive, str(parent / "out"))
    assert "\x00" not in str(info.value) and "\n" not in str(info.value)
    assert "a\\x00b\\n" in str(info.value)


def _pack_tree(tmp_path, name="src", ref="demo", version="1.0.0", files=None):
    return make_pack_tree(str(tmp_path / name), ref, version, files=files)


@pytest.mark.parametrize("fmt", ["tar.gz", "tgz", "zip"])
@pytest.mark.parametrize("top_dir", [None, "demo-1.0.0"])
def test_benign_archives_extract_identically(fmt, top_dir, tmp_path, parent):
    src = _pack_tree(tmp_path, files={"bin/run.sh": "#!/bin/sh\necho hi\n", "deep/a/b/c.txt": "c\n", "empty.txt": ""})
    os.chmod(os.path.join(src, "bin", "run.sh"), 0o755)
    archive = make_archive(src, str(tmp_path / ("pack.%s" % fmt)), fmt=fmt, top_dir=top_dir)
    dest = str(parent / "out")
    stats = extract_archive(archive, dest)
    assert isinstance(stats, ExtractStats)
    assert stats.format == ("zip" if fmt == "zip" else "tar.gz")
    assert stats.files == 7
    root = find_pack_root(dest)
    assert root == (os.path.join(dest, top_dir) if top_dir else dest)
    assert tree_checksum(root) == tree_checksum(src)
    assert stat.S_IMODE(os.stat(os.path.join(root, "bin", "run.sh")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(root, "pack.yaml")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(root, "deep", "a")).st_mode) == 0o755
    assert stats.bytes == sum(os.path.getsize(os.path.join(d, f)) for d, _dirs, fs in os.walk(dest) for f in fs)


def test_format_is_detected_from_content_not_name(tmp_path, parent):
    src = _pack_tree(tmp_path)
    archive = make_archive(src, str(tmp_path / "misleading.zip"), fmt="tar.gz")
    assert detect_format(archive) == "tar.gz"
    extract_archive(archive, str(parent / "out"))
    assert os.path.isfile(str(parent / "out" / "pack.yaml"))


def test_dot_slash_names_setuid_bits_and_implicit_directories(tmp_path, parent):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [
        hostile.member("./", "dir"),
        hostile.member("./pack.yaml", data=hostile.PACK_YAML, mode=0o4755),
        hostile.member("./x//y/./z.txt", data=b"z", mode=0o2644),
        hostile.member("x/", "dir", mode=0o7777),
    ])
    dest = str(parent / "out")
    extract_archive(archive, dest)
    assert sorted(os.listdir(dest)) == ["pack.yaml", "x"]
    assert stat.S_IMODE(os.stat(os.path.join(dest, "pack.yaml")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(os.path.join(dest, "x", "y", "z.txt")).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(os.path.join(dest, "x")).st_mode) == 0o755
    with open(os.path.join(dest, "x", "y", "z.txt"), "rb") as handle:
        assert handle.read() == b"z"


def test_umask_does_not_change_modes(tmp_path, parent):
    src = _pack_tree(tmp_path)
    archive = make_archive(src, str(tmp_path / "p.zip"), fmt="zip", top_dir="top")
    old = os.umask(0o077)
    try:
        extract_archive(archive, str(parent / "out"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(str(parent / "out" / "top" / "actions")).st_mode) == 0o755
    assert stat.S_IMODE(os.stat(str(parent / "out" / "top" / "README.md")).st_mode) == 0o644


def test_git_archive_with_pax_global_header(tmp_path, parent):
    """A real ``git archive`` tarball (what codeload serves) starts with a pax global header."""
    from support.gitrepo import make_git_pack_repo, run_git

    bare, commit = make_git_pack_repo(str(tmp_path), "demo", "1.0.0")
    archive = str(tmp_path / "codeload.tar.gz")
    run_git(["archive", "--format=tar.gz", "--prefix=demo-%s/" % commit, "-o", archive, commit], cwd=bare)
    extract_archive(archive, str(parent / "out"))
    root = find_pack_root(str(parent / "out"))
    assert root == str(parent / "out" / ("demo-%s" % commit))
    assert not os.path.exists(str(parent / "out" / "pax_global_header"))


def test_macosx_resource_directory_is_ignored_for_the_root(tmp_path, parent):
    archive = str(tmp_path / "mac.zip")
    hostile.zip_file(archive, [
        hostile.member("demo/pack.yaml", data=hostile.PACK_YAML),
        hostile.member("__MACOSX/demo/._pack.yaml", data=b"junk"),
    ])
    extract_archive(archive, str(parent / "out"))
    assert find_pack_root(str(parent / "out")) == str(parent / "out" / "demo")


def test_limits_are_inclusive(tmp_path, parent):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=b"x" * 100), hostile.member("b", data=b"y" * 50)])
    stats = extract_archive(archive, str(parent / "out"), max_entries=2, max_entry_bytes=100, max_total_bytes=150)
    assert (stats.files, stats.bytes) == (2, 150)


@pytest.mark.parametrize("value", [0, -1, True, "10", 1.5])
def test_invalid_limits_are_refused(value, tmp_path, parent):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=b"x")])
    with pytest.raises(ValueError):
        extract_archive(archive, str(parent / "out"), max_entries=value)
    assert os.listdir(str(parent)) == []


def test_existing_destination_is_refused(tmp_path, parent):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=b"x")])
    (parent / "out").mkdir()
    (parent / "out" / "keep").write_text("keep")
    with pytest.raises(Exception, match="cannot create extraction directory"):
        extract_archive(archive, str(parent / "out"))
    assert (parent / "out" / "keep").read_text() == "keep"


def test_destination_that_is_a_symlink_is_never_written_through(tmp_path, parent, symlink_target):
    """A pre-existing symlink at the destination path: refused, its target untouched."""
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=b"x")])
    os.symlink(symlink_target, str(parent / "out"))
    with pytest.raises(Exception, match="cannot create extraction directory"):
        extract_archive(archive, str(parent / "out"))
    assert os.path.islink(str(parent / "out"))


def _chunks(*blocks):
    queue = list(blocks)

    def read(_size):
        return queue.pop(0) if queue else b""
    return read


def test_symlink_planted_during_extraction_is_not_followed(tmp_path, symlink_target):
    """A symlink that appears inside the tree (e.g. another process racing us) is detected per component."""
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(symlink_target, str(root / "planted"))
    stats = ExtractStats("tar.gz")
    writer = _extract._TreeWriter(str(root), _extract._Limits(10, 100, 1000), stats)
    try:
        with pytest.raises(UnsafeArchive, match="planted is a symlink; refusing to write through it"):
            writer.add_file(["planted", "evil.txt"], "planted/evil.txt", _chunks(b"evil"), 0o644, declared_size=4)
        with pytest.raises(UnsafeArchive, match="planted is a symlink"):
            writer.add_directory(["planted", "sub"], "planted/sub/")
        os.symlink(os.path.join(symlink_target, "file"), str(root / "leaf"))
        with pytest.raises(UnsafeArchive, match="leaf is a symlink"):
            writer.add_file(["leaf"], "leaf", _chunks(b"evil"), 0o644)
    finally:
        writer.close()


def test_actual_bytes_are_bounded_whatever_the_header_claims(tmp_path):
    """The writer counts what it writes: a reader producing more than declared stops at the limit."""
    root = tmp_path / "root"
    root.mkdir()
    stats = ExtractStats("zip")
    writer = _extract._TreeWriter(str(root), _extract._Limits(10, 1024 * 1024, 10 * 1024 * 1024), stats)
    produced = []

    def endless(size):
        produced.append(size)
        return b"\0" * size

    try:
        with pytest.raises(UnsafeArchive, match="per-entry limit of 1.0 MiB.*archive bomb"):
            writer.add_file(["bomb.bin"], "bomb.bin", endless, 0o644, declared_size=10)
    finally:
        writer.close()
    assert len(produced) <= 2
    assert os.path.getsize(str(root / "bomb.bin")) <= 1024 * 1024


def test_total_limit_counts_actual_bytes_across_entries(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    stats = ExtractStats("zip")
    writer = _extract._TreeWriter(str(root), _extract._Limits(10, 2048, 2560), stats)
    try:
        writer.add_file(["a"], "a", _chunks(b"a" * 1024), 0o644, declared_size=1)
        with pytest.raises(UnsafeArchive, match="expands to more than 2.5 KiB"):
            writer.add_file(["b"], "b", _chunks(b"b" * 1024, b"b" * 1024), 0o644, declared_size=1)
    finally:
        writer.close()


@pytest.mark.parametrize("name, parts", [
    ("pack.yaml", ["pack.yaml"]),
    ("./a/./b/", ["a", "b"]),
    ("a//b", ["a", "b"]),
    ("./", []),
    ("caf\u00e9/na\u00efve.txt", ["caf\u00e9", "na\u00efve.txt"]),
    ("a..b/c..", ["a..b", "c.."]),
])
def test_split_entry_name_accepts(name, parts):
    assert split_entry_name(name) == parts


@pytest.mark.parametrize("name, message", [
    ("../x", "path traversal"),
    ("a/../../x", "path traversal"),
    ("a/..", "path traversal"),
    ("/x", "absolute path"),
    ("a\\b", "backslash"),
    ("a\x00b", "NUL"),
    ("a\tb", "control character"),
    ("a\x7fb", "control character"),
    ("x" * 256, "longer than 255 bytes"),
    ("/".join(["d" * 200] * 25), "path is longer than"),
])
def test_split_entry_name_refuses(name, message):
    with pytest.raises(UnsafeArchive, match=message):
        split_entry_name(name)


def test_drive_letters_are_refused_only_in_zip():
    with pytest.raises(UnsafeArchive, match="drive letter"):
        split_entry_name("c:/x", is_zip=True)
    assert split_entry_name("c:/x") == ["c:", "x"]


def test_write_errors_are_reported_and_cleaned_up(tmp_path, parent, monkeypatch):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=b"x" * 10)])
    real_write = os.write

    def full_disk(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_extract.os, "write", full_disk)
    with pytest.raises(Exception, match="cannot extract a.tgz: .*No space left on device") as info:
        extract_archive(archive, str(parent / "out"), pack="demo")
    monkeypatch.setattr(_extract.os, "write", real_write)
    assert info.value.pack == "demo"
    assert os.listdir(str(parent)) == []


def test_large_archive_matches_tar(tmp_path, parent):
    """A few MiB with many files: same bytes as GNU tar extracts."""
    src = tmp_path / "src"
    for index in range(200):
        sub = src / ("d%02d" % (index % 13))
        sub.mkdir(parents=True, exist_ok=True)
        (sub / ("f%03d.bin" % index)).write_bytes(os.urandom(index * 97) + b"line\n" * index)
    (src / "pack.yaml").write_bytes(hostile.PACK_YAML)
    archive = make_archive(str(src), str(tmp_path / "big.tar.gz"), fmt="tar.gz", top_dir="big")
    extract_archive(archive, str(parent / "ours"))
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    subprocess.run(["tar", "-xzf", archive, "-C", str(theirs)], check=True)
    assert tree_checksum(str(parent / "ours")) == tree_checksum(str(theirs))


def test_tar_members_are_streamed(tmp_path, parent, monkeypatch):
    """Extraction reads the tar in stream mode (no random access, no member list built in advance)."""
    seen = []
    real_open = tarfile.open

    def spy(*args, **kwargs):
        seen.append(kwargs.get("mode"))
        return real_open(*args, **kwargs)

    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=b"x")])
    monkeypatch.setattr(_extract.tarfile, "open", spy)
    extract_archive(archive, str(parent / "out"))
    assert seen == ["r|"]


# -- formats and limits as Attune (issue 9 items 3 and 4) ---------------------------------------------------------------


def _v7_tar(path, members):
    """An old-style (v7, no ``ustar`` magic) tar: Rust's tar crate reads it, so Attune installs it from a .tar URL."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    data = bytearray(raw.getvalue())
    for offset in range(0, len(data), 512):
        block = data[offset:offset + 512]
        if block[257:262] == b"ustar":  # strip the magic, recompute the header checksum
            block[257:265] = b"\0" * 8
            block[148:156] = b" " * 8
            block[148:156] = b"%06o\0 " % sum(block)
            data[offset:offset + 512] = block
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    return path


@pytest.mark.parametrize("kind", ["pax", "gnu", "v7"])
def test_plain_tar_is_extracted(tmp_path, parent, kind):
    # Attune: archive.rs extract_archive -- a name ending in .tar is read as an uncompressed tar (extract_tar(file, ...))
    members = [("demo/pack.yaml", hostile.PACK_YAML), ("demo/README.md", b"readme\n")]
    path = str(tmp_path / "p.tar")
    if kind == "v7":
        _v7_tar(path, members)
    else:
        fmt = tarfile.PAX_FORMAT if kind == "pax" else tarfile.GNU_FORMAT
        with tarfile.open(path, "w", format=fmt) as tar:
            for name, data in members:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    assert detect_format(path) == "tar"
    stats = extract_archive(path, str(parent / "x"))
    assert stats.format == "tar" and stats.files == 2
    assert find_pack_root(str(parent / "x")) == str(parent / "x" / "demo")


def test_text_file_is_not_taken_for_a_tar(tmp_path, parent):
    path = tmp_path / "notes.tar"
    path.write_bytes(b"just text\n" * 100)
    with pytest.raises(UnsafeArchive, match=r"not an archive; supported formats are \.zip, \.tar\.gz, \.tgz, \.gz and \.tar"):
        extract_archive(str(path), str(parent / "x"))
    assert os.listdir(str(parent)) == []


# Attune: installer.rs archive_filename_from_url + archive.rs extract_archive (format chosen by the name's suffix)
@pytest.mark.parametrize("url, expected", [
    ("https://example.test/p.zip", "zip"),
    ("https://example.test/p.ZIP", "zip"),
    ("https://example.test/p.tar.gz", "tar.gz"),
    ("https://example.test/p.tgz", "tar.gz"),
    ("https://example.test/p.gz", "tar.gz"),
    ("https://example.test/p.tar", "tar"),
    ("https://example.test/dl/p.tar/", "tar"),
    ("https://codeload.github.com/o/r/tar.gz/" + "a" * 40, "tar.gz"),
    ("https://codeload.github.com/o/r/tar.gz/main", None),
    ("https://example.test/download", None),
    ("https://example.test/p.tar.bz2", None),
    ("https://example.test/p.zip?x=1#y", "zip"),
])
def test_archive_format_from_url_is_attunes_verdict(url, expected):
    assert _extract.archive_format_from_url(url) == expected


def test_extraction_limits_default_to_attunes(tmp_path, parent):
    # Attune: archive.rs SafeExtractionLimits::default (PackUploadConfig::DEFAULT_MAX_FILE_COUNT = 10,000,
    # DEFAULT_MAX_PER_ENTRY_SIZE_BYTES = 50 MiB); installer.rs PackInstaller::extract_archive: total = archive_max_bytes
    assert (_extract.DEFAULT_MAX_ENTRIES, _extract.DEFAULT_MAX_ENTRY_BYTES) == (10000, 50 * 1024 * 1024)
    assert _extract.DEFAULT_MAX_TOTAL_BYTES == _extract.DEFAULT_ARCHIVE_MAX_BYTES == 104857600
    # a 60 MiB entry of zeros (a small download) is refused by default, accepted when the limit is raised
    path = str(tmp_path / "big.tar.gz")
    hostile.tar_gz(path, [hostile.member("demo/pack.yaml", data=hostile.PACK_YAML), hostile.member("demo/zero.bin", data=b"\0" * (60 << 20))])
    with pytest.raises(UnsafeArchive, match=r"more than the per-entry limit of 50\.0 MiB \(max_entry_bytes\)"):
        extract_archive(path, str(parent / "x"))
    assert os.listdir(str(parent)) == []
    assert extract_archive(path, str(parent / "y"), max_entry_bytes=61 << 20).files == 2


def test_module_defaults_are_the_extractors(tmp_path):
    """One source of the limits' defaults (issue 10 item 4): the attune_pack argument spec and _install.Options agree with _extract."""
    from ansible_collections.attune.packs.plugins.module_utils._pack import _install
    from ansible_collections.attune.packs.plugins.module_utils._pack import _pack_spec

    spec = _pack_spec.pack_argument_spec()
    # unset options are not passed: extract_archive's own defaults apply (the numbers are only documented)
    assert [spec[name].get("default") for name in ("max_entries", "max_entry_bytes", "max_total_bytes")] == [None] * 3
    assert "max_entries" not in _install.Options(str(tmp_path)).limits
    # unset, the total limit is archive_max_bytes (Attune: installer.rs PackInstaller::extract_archive)
    assert _install.Options(str(tmp_path), archive_max_bytes=12345).limits["max_total_bytes"] == 12345
    assert _install.Options(str(tmp_path), archive_max_bytes=12345, max_total_bytes=99).limits["max_total_bytes"] == 99


# ---------------------------------------------------------------------------
# prepare_archive: extraction + root + pack.yaml, nothing left on failure


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_prepare_archive(tmp_path, fmt):
    src = _src(tmp_path, "1.0.0")
    archive = make_archive(src, str(tmp_path / ("p." + fmt)), fmt=fmt, top_dir="demo-abc")
    parent = tmp_path / "parent"
    parent.mkdir()
    root, content, stats = prepare_archive(archive, str(parent / "x"), "demo", "1.0.0", pack="demo")
    assert root == str(parent / "x" / "demo-abc")
    assert content["version"] == "1.0.0"
    assert stats.files == 5


@pytest.mark.parametrize("files, expected, message", [
    ({"pack.yaml": None}, ("demo", "1.0.0"), r"no pack.yaml in the archive: looked at its root, pack/ and each top-level directory"),
    ({}, ("other", "1.0.0"), r"pack.yaml ref 'demo' does not match the resolved entry 'other'"),
    ({}, ("demo", "2.0.0"), r"pack.yaml version '1.0.0' does not match the resolved entry version '2.0.0'"),
    ({"pack.yaml": "ref: demo\nlabel: Demo\n"}, ("demo", "1.0.0"), r"missing required field 'version'"),
])
def test_prepare_archive_refuses_bad_packs_and_leaves_nothing(tmp_path, files, expected, message):
    src = _src(tmp_path, "1.0.0", files=files)
    archive = make_archive(src, str(tmp_path / "p.tgz"), fmt="tar.gz", top_dir="top")
    parent = tmp_path / "parent"
    parent.mkdir()
    with pytest.raises(InvalidPackStructure, match=message):
        prepare_archive(archive, str(parent / "x"), expected[0], expected[1], pack=expected[0])
    assert os.listdir(str(parent)) == []


def test_prepare_archive_unsafe_leaves_nothing(tmp_path):
    archive = str(tmp_path / "a.tgz")
    hostile.tar_gz(archive, [hostile.member("pack.yaml", data=hostile.PACK_YAML), hostile.member("../x", data=b"x")])
    parent = tmp_path / "parent"
    parent.mkdir()
    with pytest.raises(UnsafeArchive, match="path traversal"):
        prepare_archive(archive, str(parent / "x"), "demo", "1.0.0")
    assert os.listdir(str(parent)) == []
