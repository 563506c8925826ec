"""The pack.yaml rules (plugins/module_utils/_pack/_pack_yaml.py): refs, pack.yaml, identity, the pack root."""

from __future__ import annotations

import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidPackStructure
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import (check_pack_identity, find_pack_root, load_pack_yaml,
                                                                                    read_pack_yaml, validate_ref)


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
# find_pack_root: Attune's order


def test_find_pack_root_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InvalidPackStructure, match="the archive is empty"):
        find_pack_root(str(empty))
    single = tmp_path / "single"
    (single / "top").mkdir(parents=True)
    (single / "top" / "README.md").write_text("x")
    with pytest.raises(InvalidPackStructure, match=r"no pack.yaml in the archive: looked at its root, pack/ and each top-level directory"):
        find_pack_root(str(single))
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(str(single / "top"), str(linked / "top"))
    (single / "top" / "pack.yaml").write_text("ref: x\n")
    with pytest.raises(InvalidPackStructure):
        find_pack_root(str(linked))
    nested = tmp_path / "nested"
    (nested / "top" / "inner").mkdir(parents=True)
    (nested / "top" / "inner" / "pack.yaml").write_text("x")
    with pytest.raises(InvalidPackStructure, match="each top-level directory"):  # one level down only, as Attune
        find_pack_root(str(nested))


# Attune: installer.rs PackInstaller::find_pack_directory -- root pack.yaml, then pack/pack.yaml, then the first
# subdirectory (read_dir order there; byte order of names here) that has one.
@pytest.mark.parametrize("layout, expected", [
    ({"pack.yaml": "r", "pack/pack.yaml": "p", "a/pack.yaml": "a"}, "."),
    ({"pack/pack.yaml": "p", "a/pack.yaml": "a"}, "pack"),
    ({"pack/README": "p", "b/pack.yaml": "b", "a/pack.yaml": "a", "A/x": ""}, "a"),
    ({"__MACOSX/._x": "", "demo-1.0.0/pack.yaml": "d"}, "demo-1.0.0"),
    ({"docs/x": "", "z/pack.yaml": "z"}, "z"),
])
def test_find_pack_root_follows_attunes_order(tmp_path, layout, expected):
    for rel, text in layout.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    root = find_pack_root(str(tmp_path))
    assert os.path.relpath(root, str(tmp_path)) == expected


def test_pack_yaml_symlink_at_root_is_not_a_pack_file(tmp_path):
    root = tmp_path / "r"
    root.mkdir()
    (tmp_path / "real.yaml").write_text("ref: x\n")
    os.symlink(str(tmp_path / "real.yaml"), str(root / "pack.yaml"))
    with pytest.raises(InvalidPackStructure):
        find_pack_root(str(root))
