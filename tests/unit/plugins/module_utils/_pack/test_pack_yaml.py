"""The pack.yaml rules (plugins/module_utils/_pack/_pack_yaml.py): refs, pack.yaml, identity, archive preparation."""

from __future__ import annotations

import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidPackStructure, UnsafeArchive
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import (check_pack_identity, load_pack_yaml, prepare_archive,
                                                                                    read_pack_yaml, validate_ref)
from support import hostile_archives as hostile
from support.synth import make_archive, make_pack_tree


def _src(tmp_path, version, ref="demo", files=None, name=None):
    return make_pack_tree(str(tmp_path / (name or "%s-%s.src" % (ref, version))), ref, version,
                          files=dict({"data/version.txt": version}, **(files or {})))


# ---------------------------------------------------------------------------
# pack.yaml


def _write_pack_yaml(tmp_path, text):
    root = tmp_path / "tree"
    root.mkdir(exist_ok=True)
    (root / "pack.yaml").write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
    return str(root)


VALID = "ref: demo\nlabel: Demo\ndescription: A demo\nversion: 1.2.3-rc.1+b5\n"


def test_valid_pack_yaml(tmp_path):
    content = read_pack_yaml(_write_pack_yaml(tmp_path, VALID + "extra: [1, 2]\n"), "demo", "1.2.3-rc.1+b5")
    assert content["label"] == "Demo" and content["extra"] == [1, 2]


# Refusals mirror Attune's crates/api/src/routes/packs.rs register_pack_internal (ref: as_str + RefValidator::validate_pack_ref,
# version: as_str) and serde_yaml_ng parsing (invalid YAML, duplicate keys); see tests/functional/test_pack_tree_parity.py.
@pytest.mark.parametrize("text, message", [
    ("ref: demo\nlabel: [unclosed\n", r"pack.yaml is not valid YAML"),
    ("- a\n- b\n", r"pack.yaml must be a mapping with 'ref' and 'version', not list"),
    ("", r"pack.yaml must be a mapping with 'ref' and 'version', not null"),
    ("ref: demo\nlabel: Demo\n", r"missing required field 'version'"),
    ("version: 1.0.0\n", r"missing required field 'ref'"),
    ("ref: demo\nlabel: Demo\ndescription: d\nversion: 1.0\n", r"field 'version' must be a string, got float 1.0 \(quote it in YAML\)"),
    ("ref: demo\nversion: ~\n", r"field 'version' must be a string, got null"),
    ("ref: true\nversion: 1.0.0\n", r"field 'ref' must be a string, got bool True"),
    ("ref: Demo.Pack\nlabel: D\ndescription: d\nversion: 1.0.0\n", r"pack.yaml ref 'Demo.Pack' is invalid"),
    ("ref: demo\nversion: 1.0.0\nref: evil\n", r"pack.yaml is not valid YAML.*duplicate key 'ref'"),
    ("ref: !!python/object/apply:os.system ['true']\n", r"pack.yaml is not valid YAML"),
    (b"ref: d\xe9mo\nversion: 1.0.0\n", r"pack.yaml is not UTF-8 text"),
])
def test_invalid_pack_yaml(tmp_path, text, message):
    with pytest.raises(InvalidPackStructure, match=message) as info:
        load_pack_yaml(_write_pack_yaml(tmp_path, text), pack="demo")
    assert info.value.kind == "invalid_pack_structure"
    assert str(info.value).startswith("pack demo: ")


def test_pack_yaml_missing_symlinked_or_too_big(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidPackStructure, match="no pack.yaml at the top of the pack tree"):
        load_pack_yaml(str(empty))
    linked = tmp_path / "linked"
    linked.mkdir()
    (tmp_path / "real.yaml").write_text(VALID)
    os.symlink(str(tmp_path / "real.yaml"), str(linked / "pack.yaml"))
    with pytest.raises(InvalidPackStructure, match="pack.yaml is a symlink"):
        load_pack_yaml(str(linked))
    with pytest.raises(InvalidPackStructure, match="larger than"):
        load_pack_yaml(_write_pack_yaml(tmp_path, VALID + "# " + "x" * (1024 * 1024) + "\n"))


def test_identity_mismatch_messages(tmp_path):
    content = load_pack_yaml(_write_pack_yaml(tmp_path, VALID))
    with pytest.raises(InvalidPackStructure, match=r"^pack slack: pack.yaml ref 'demo' does not match the resolved entry 'slack'$"):
        check_pack_identity(content, "slack", None, pack="slack")
    with pytest.raises(InvalidPackStructure, match=r"pack.yaml version '1.2.3-rc.1\+b5' does not match the resolved entry version '1.2.3'"):
        check_pack_identity(content, "demo", "1.2.3")
    assert check_pack_identity(content) is content


@pytest.mark.parametrize("ref", ["", None, "../etc", "a/b", "Demo", "1abc", ".attune-old-x-0000aaaa", "a b", "x" * 201, "demo\n", 5])
def test_invalid_refs(ref):
    with pytest.raises(InvalidPackStructure, match="invalid pack ref"):
        validate_ref(ref)


@pytest.mark.parametrize("ref", ["a", "slack", "my_pack-2", "core-"])
def test_valid_refs(ref):
    assert validate_ref(ref) == ref


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
