import hashlib
import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import file_digest, framed_dir_checksum, parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ChecksumError, ChecksumMismatch


def test_attune_test_vector(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "file.txt").write_bytes(b"fixture\n")
    assert framed_dir_checksum(str(tmp_path)) == "e9837162383488cb9b187ea585ce8963634d7d04f75abeb0c43d5456de0d6b13"


def test_git_dirs_and_empty_dirs_are_ignored(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "file.txt").write_bytes(b"fixture\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"ref: refs/heads/main\n")
    (tmp_path / "empty").mkdir()
    assert framed_dir_checksum(str(tmp_path)) == "e9837162383488cb9b187ea585ce8963634d7d04f75abeb0c43d5456de0d6b13"


def test_component_order_differs_from_string_order(tmp_path):
    # 'a/x' is visited before 'a-b' (component order), although 'a-b' < 'a/x' as strings
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    (tmp_path / "a-b").write_bytes(b"2")

    def framed(items):
        digest = hashlib.sha256()
        for rel, data in items:
            digest.update(b"attune-pack-file-v1" + len(rel).to_bytes(8, "big") + rel.encode() + len(data).to_bytes(8, "big") + data)
        return digest.hexdigest()

    assert framed_dir_checksum(str(tmp_path)) == framed([("a/x", b"1"), ("a-b", b"2")])
    assert framed_dir_checksum(str(tmp_path)) != framed([("a-b", b"2"), ("a/x", b"1")])


def test_symlinks_are_refused(tmp_path):
    (tmp_path / "target").write_bytes(b"x")
    os.symlink("target", str(tmp_path / "link"))
    with pytest.raises(ChecksumError, match="link is a symlink"):
        framed_dir_checksum(str(tmp_path))


def test_content_changes_the_checksum(tmp_path):
    (tmp_path / "f").write_bytes(b"one")
    before = framed_dir_checksum(str(tmp_path))
    (tmp_path / "f").write_bytes(b"two")
    assert framed_dir_checksum(str(tmp_path)) != before


def test_parse_accepts_sha256_and_sha512():
    assert str(parse_checksum("sha256:" + "a" * 64)) == "sha256:" + "a" * 64
    assert parse_checksum("SHA512:" + "b" * 128).algorithm == "sha512"


@pytest.mark.parametrize("value,fragment", [("sha1:" + "a" * 40, "too weak"), ("md5:" + "a" * 32, "too weak"),
                                            ("sha256:abc", "64 lowercase hex"), ("sha256:" + "A" * 64, "lowercase hex"),
                                            ("crc32:1234", "unknown checksum algorithm"), ("deadbeef", "expected '<algorithm>:")])
def test_parse_refuses(value, fragment):
    with pytest.raises(ChecksumError, match=fragment):
        parse_checksum(value)


def test_parse_allowed_restricts():
    with pytest.raises(ChecksumError, match="not accepted here"):
        parse_checksum("sha512:" + "b" * 128, allowed=("sha256",))


def test_verify_and_file_digest(tmp_path):
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 3000000)
    digest = file_digest(str(path))
    assert digest == hashlib.sha256(b"x" * 3000000).hexdigest()
    parse_checksum("sha256:" + digest).verify(digest)
    with pytest.raises(ChecksumMismatch, match="checksum mismatch for archive"):
        parse_checksum("sha256:" + "0" * 64).verify(digest, what="archive", pack="slack")
