"""Self-tests of tests/support/synth.py and tests/support/gitrepo.py."""

import json
import os
import shutil
import tarfile
import zipfile

import pytest
import yaml

from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import framed_dir_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._index import validate_index
from support.gitrepo import add_commit, head_commit, make_git_pack_repo
from support.synth import (index_bytes, make_archive, make_entry, make_index, make_pack_archive, make_pack_tree, sha256_file,
                           tree_checksum, wrap_index)

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
SCHEMA_PATH = os.path.join(os.path.dirname(REPO_ROOT), "shared", "fixtures", "index.schema.json")


def test_make_index_is_deterministic_realistic_and_valid():
    index = make_index(60, versions_per_ref=3)
    assert index_bytes(index) == index_bytes(make_index(60, versions_per_ref=3))
    assert index_bytes(index) != index_bytes(make_index(60, versions_per_ref=3, seed=1))
    assert len(index["packs"]) == 180 and len({p["ref"] for p in index["packs"]}) == 60
    assert 3500 < len(index_bytes(index)) / 180 < 4500, "about 4 KB per entry, like the standard index"
    assert validate_index(index, strict=True) is index
    slack_like = [p for p in index["packs"] if p["ref"] == index["packs"][0]["ref"]]
    versions = [tuple(int(x) for x in p["version"].split(".")) for p in slack_like]
    assert versions == sorted(versions) and len(set(versions)) == 3


@pytest.mark.skipif(not os.path.exists(SCHEMA_PATH), reason="../shared/fixtures/index.schema.json is absent")
def test_make_index_matches_published_schema():
    jsonschema = pytest.importorskip("jsonschema")
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        validator = jsonschema.Draft202012Validator(json.load(f))
    docs = [make_index(25, versions_per_ref=2), wrap_index([make_entry("x", "1.0.0", archive_url="https://h/x.tgz",
                                                                       archive_checksum="sha256:" + "0" * 64)])]
    for doc in docs:
        assert [e.message for e in validator.iter_errors(doc)] == []


def test_make_pack_tree_writes_a_valid_pack(tmp_path):
    root = make_pack_tree(str(tmp_path / "p"), "slack", "2.1.0", files={"README.md": None, "extra/x.txt": "x"},
                          pack_yaml_extra={"email": None, "runner": "python"})
    with open(os.path.join(root, "pack.yaml"), encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    assert {k: meta[k] for k in ("ref", "label", "description", "version")} == {
        "ref": "slack", "label": "Slack", "description": "Test pack slack", "version": "2.1.0"}
    assert "email" not in meta and meta["runner"] == "python"
    assert not os.path.exists(os.path.join(root, "README.md"))
    assert os.path.isfile(os.path.join(root, "extra", "x.txt"))


@pytest.mark.parametrize("fmt", ["tar.gz", "tgz", "zip"])
def test_make_archive_is_reproducible_and_nests_top_dir(tmp_path, fmt):
    src = make_pack_tree(str(tmp_path / "src"), "aws", "1.0.0")
    one = make_archive(src, str(tmp_path / ("one." + fmt)), fmt=fmt, top_dir="aws-1.0.0")
    os.utime(os.path.join(src, "pack.yaml"), (0, 0))
    two = make_archive(src, str(tmp_path / ("two." + fmt)), fmt=fmt, top_dir="aws-1.0.0")
    assert sha256_file(one) == sha256_file(two)
    if fmt == "zip":
        with zipfile.ZipFile(one) as zf:
            names = zf.namelist()
    else:
        with tarfile.open(one) as tar:
            names = tar.getnames()
            assert all(m.uid == 0 and m.mtime == 1704067200 for m in tar.getmembers())
    assert "aws-1.0.0/pack.yaml" in names and "aws-1.0.0/actions/hello.py" in names
    assert all(n.startswith("aws-1.0.0") for n in names)


def test_make_archive_refuses_symlinks(tmp_path):
    src = make_pack_tree(str(tmp_path / "src"), "aws", "1.0.0")
    os.symlink("/etc/passwd", os.path.join(src, "link"))
    with pytest.raises(ValueError, match="regular files"):
        make_archive(src, str(tmp_path / "a.tar.gz"))


def test_make_pack_archive_root_layout(tmp_path):
    path, checksum = make_pack_archive(str(tmp_path), "github", "0.1.0", fmt="tar.gz", top_dir=False)
    assert checksum == sha256_file(path)
    with tarfile.open(path) as tar:
        assert "pack.yaml" in tar.getnames()


def test_tree_checksum_vector_and_verifier_order(tmp_path):
    (tmp_path / "nested").mkdir()
    (tmp_path / "nested" / "file.txt").write_bytes(b"fixture\n")
    assert tree_checksum(str(tmp_path)) == "sha256:e9837162383488cb9b187ea585ce8963634d7d04f75abeb0c43d5456de0d6b13"
    # 'a-b' sorts before 'a/x' as whole strings but after it component by component (the verifier's order).
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_bytes(b"1")
    (tmp_path / "a-b").write_bytes(b"2")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_bytes(b"ignored")
    assert tree_checksum(str(tmp_path)) == "sha256:" + framed_dir_checksum(str(tmp_path))


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_git_pack_repos_are_reproducible(tmp_path):
    bare_a, sha_a = make_git_pack_repo(str(tmp_path / "a"), "slack", "2.1.0")
    bare_b, sha_b = make_git_pack_repo(str(tmp_path / "b"), "slack", "2.1.0")
    assert sha_a == sha_b == head_commit(bare_a) == head_commit(bare_b)
    assert os.path.isfile(os.path.join(bare_a, "info", "refs"))
    sha_pack = make_git_pack_repo(str(tmp_path / "c"), "slack", "2.1.0", subdir="pack")[1]
    assert sha_pack != sha_a
    new = add_commit(bare_a, version="2.2.0")
    assert new != sha_a and head_commit(bare_a) == new
    with pytest.raises(FileExistsError):
        make_git_pack_repo(str(tmp_path / "a"), "slack", "2.1.0")
