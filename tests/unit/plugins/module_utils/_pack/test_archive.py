"""The upload archive of a verified pack tree (plugins/module_utils/_pack/_archive.py): deterministic, exactly the tree."""
import hashlib
import io
import os
import tarfile

import pytest

from support.synth import make_pack_tree

from ansible_collections.attune.packs.plugins.module_utils._pack import _archive


def test_build_archive_is_deterministic(tmp_path):
    a = make_pack_tree(str(tmp_path / "a"), "demo", "1.0.0", files={"actions/run.sh": "#!/bin/sh\necho hi\n"})
    os.chmod(os.path.join(a, "actions", "run.sh"), 0o750)
    os.makedirs(os.path.join(a, ".git"))  # not part of the verified tree (the framed checksum leaves it out)
    with open(os.path.join(a, ".git", "HEAD"), "w") as handle:
        handle.write("ref: refs/heads/main\n")
    first, digest = _archive.build_archive(a)
    b = make_pack_tree(str(tmp_path / "b"), "demo", "1.0.0", files={"actions/run.sh": "#!/bin/sh\necho hi\n"})
    os.chmod(os.path.join(b, "actions", "run.sh"), 0o700)
    os.utime(os.path.join(b, "pack.yaml"), (1, 1))
    second, digest2 = _archive.build_archive(b)
    assert first == second and digest == digest2 == "sha256:" + hashlib.sha256(first).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(first), mode="r:gz") as tar:
        names = tar.getnames()
        modes = dict((m.name, m.mode) for m in tar.getmembers())
    assert "pack.yaml" in names and not any(n.startswith(".git") for n in names)
    assert modes["actions/run.sh"] == 0o755 and modes["pack.yaml"] == 0o644


def test_build_archive_keeps_the_packs_dot_attune(tmp_path):
    # issue 16 item 10: the upload is exactly the verified tree, a top-level .attune/ included
    tree = make_pack_tree(str(tmp_path / "d"), "demo", "1.0.0", files={".attune/config.json": "{}", ".attune/metadata.json": "{}"})
    with tarfile.open(fileobj=io.BytesIO(_archive.build_archive(tree)[0]), mode="r:gz") as tar:
        names = tar.getnames()
    assert ".attune/config.json" in names and ".attune/metadata.json" in names


def test_build_archive_refuses_links(tmp_path):
    tree = make_pack_tree(str(tmp_path / "l"), "demo", "1.0.0")
    os.symlink("/etc/passwd", os.path.join(tree, "passwd"))
    with pytest.raises(_archive.InvalidArchive, match="symbolic link"):
        _archive.build_archive(tree)
    with pytest.raises(_archive.InvalidArchive, match="no pack.yaml"):
        _archive.build_archive(str(tmp_path))


def test_refusals_keep_the_kind_and_result_shape_of_the_upload_error(tmp_path):
    """InvalidArchive has the kind and the error-result keys ApiInvalidArchive had when build_archive was in _api."""
    tree = make_pack_tree(str(tmp_path / "big"), "demo", "1.0.0", files={"data.bin": "x" * 4096})
    with pytest.raises(_archive.InvalidArchive) as err:
        _archive.build_archive(tree, max_bytes=10)
    assert str(err.value).startswith("the pack archive of %s is " % tree) and str(err.value).endswith("accepts at most 10")
    assert err.value.to_dict() == {"kind": "api_invalid_archive", "registry": None, "pack": None,
                                   "message": str(err.value), "api_url": None, "status": None}


def test_excludes_are_exact_relative_paths(tmp_path):
    tree = make_pack_tree(str(tmp_path / "x"), "demo", "1.0.0", files={".attune/a.json": "{}", "docs/.attune": "kept"})
    with tarfile.open(fileobj=io.BytesIO(_archive.build_archive(tree, excludes=(".attune",))[0]), mode="r:gz") as tar:
        names = tar.getnames()
    assert not any(n.startswith(".attune") for n in names) and "docs/.attune" in names
