"""Publishing core (_publish): one pack -> one entry, index validation, update and merge, as Attune's tools do."""

import json
import os

import pytest
import yaml

from ansible_collections.attune.packs.plugins.module_utils._publishing import _publish
from ansible_collections.attune.packs.plugins.module_utils._base._errors import IndexFormatError, InvalidArguments, InvalidPackStructure
from support.synth import make_archive, make_pack_tree, sha256_file, tree_checksum
from testdata import INDEX_SCHEMA, make_entry

COMMIT = "0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2"
GIT = "https://github.com/example-packs/network.git"


def write(root, rel, data):
    path = os.path.join(root, *rel.split("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def pack(tmp_path, manifest, files=None, name="pack"):
    root = str(tmp_path / name)
    os.makedirs(root)
    write(root, "pack.yaml", manifest)
    for rel, data in (files or {}).items():
        write(root, rel, data)
    return root


def build(root, **kwargs):
    kwargs.setdefault("git_url", GIT)
    kwargs.setdefault("git_ref", COMMIT)
    return _publish.build_entry(root, **kwargs)


# -- field precedence (build_index.py build_entry; pack_index.rs build_index_entry) ---------------------------

def test_entry_follows_the_builders_precedence(tmp_path):
    root = pack(tmp_path, {
        "ref": "network", "version": "1.2.0", "label": "Network", "name": "ignored name", "tags": ["b", "a", "b"],
        "keywords": ["ignored"], "runtime_deps": ["python", 3, 1.5], "license": "MIT",
        "meta": {"license": "ignored", "documentation_url": "https://docs.example/network", "keywords": ["ignored"],
                 "category": "networking", "repository_url": "https://ignored.example/x"},
        "email": "team@example.com", "dependencies": ["core@1.0.0", "base"],
    })
    entry, tree = build(root)
    assert entry["label"] == "Network"
    assert entry["keywords"] == ["a", "b"]
    assert entry["runtime_deps"] == ["1.5", "3", "python"]  # numbers rendered as JSON, sorted, unique
    assert entry["license"] == "MIT"
    assert entry["homepage"] == "https://docs.example/network"
    assert entry["dependencies"] == {"packs": ["base", "core@1.0.0"]}
    assert entry["repository"] == "https://github.com/example-packs/network"  # the builder: the repository indexed
    assert entry["author"] == "example-packs"  # the builder: the repository owner
    assert entry["description"] == ""
    assert entry["meta"] == {"license": "ignored", "documentation_url": "https://docs.example/network", "keywords": ["ignored"],
                             "category": "networking", "repository_url": "https://ignored.example/x", "commit": COMMIT}
    assert entry["install_sources"] == [{"type": "git", "url": GIT, "ref": COMMIT, "checksum": tree}]
    assert tree == tree_checksum(root)  # independent implementation of the framed checksum
    assert list(entry) == [key for key in _publish.ENTRY_KEY_ORDER if key in entry]


def test_entry_fallbacks(tmp_path):
    root = pack(tmp_path, {"ref": "plain", "version": "0.1.0", "name": "Plain pack", "meta": {"keywords": ["x", "y"],
                                                                                              "license": "BSD-3-Clause"},
                           "dependencies": {"attune_version": ">=0.6.0", "python_version": 3.11}})
    entry, _tree = _publish.build_entry(root, archive_url="https://files.example/plain-0.1.0.tar.gz",
                                        archive_checksum="sha256:" + "c" * 64,
                                        defaults={"description": "from the repository", "author": "Team"})
    assert entry["label"] == "Plain pack"
    assert entry["keywords"] == ["x", "y"]
    assert entry["license"] == "BSD-3-Clause"
    assert entry["description"] == "from the repository"
    assert entry["author"] == "Team"
    assert entry["dependencies"] == {"attune_version": ">=0.6.0", "python_version": "3.11", "packs": []}
    assert entry["meta"] == {"keywords": ["x", "y"], "license": "BSD-3-Clause", "category": "uncategorized"}  # no commit: no git
    assert "repository" not in entry
    root2 = pack(tmp_path, {"ref": "bare", "version": "0.1.0"}, name="bare")
    entry2, _tree = build(root2, defaults={"license": "Apache-2.0"})
    assert (entry2["label"], entry2["license"]) == ("bare", "Apache-2.0")
    root3 = pack(tmp_path, {"ref": "bare3", "version": "0.1.0"}, name="bare3")
    assert build(root3)[0]["license"] == "NOASSERTION"


def test_contents_from_component_files_with_inline_fallback(tmp_path):
    root = pack(tmp_path, {
        "ref": "network", "version": "1.0.0",
        "actions": {"inline_only": {"description": "not used: actions/ has files"}},
        "sensors": {"watch": {"label": "Watch links"}, "alpha": {"description": ""}},
        "rules": {"r1": {}},
    }, files={
        "actions/ping.yaml": {"name": "ping", "description": "Ping a host"},
        "actions/network.trace.yml": {"ref": "network.trace", "label": "Trace"},
        "actions/deploy.yaml": {"name": "deploy", "workflow_file": "workflows/deploy.yaml", "description": "Deploy"},
        "actions/noname.yaml": {"runner_type": "shell"},
        "actions/ping.py": "print('not a component')\n",
        "actions/nested/deep.yaml": {"name": "deep"},
        "workflows/flow.yaml": {"name": "flow"},
        "triggers/README.md": "no yaml here\n",
    })
    contents = build(root)[0]["contents"]
    assert contents["actions"] == [{"name": "noname", "description": ""}, {"name": "ping", "description": "Ping a host"},
                                   {"name": "trace", "description": "Trace"}]
    assert contents["workflows"] == [{"name": "deploy", "description": "Deploy"}, {"name": "flow", "description": ""}]
    assert contents["sensors"] == [{"name": "alpha", "description": ""}, {"name": "watch", "description": "Watch links"}]
    assert contents["triggers"] == []
    assert contents["rules"] == [{"name": "r1", "description": ""}]


@pytest.mark.parametrize("manifest, files, message", [
    ({"version": "1.0.0"}, {}, "must declare ref"),
    ({"ref": "x"}, {}, "must declare version"),
    ({"ref": "Bad.Ref", "version": "1.0.0"}, {}, "must match"),
    ({"ref": "x", "version": "1.0"}, {}, "not a semantic version"),
    ({"ref": "x", "version": 1}, {}, "version must be a string"),
    ({"ref": "x", "version": "1.0.0", "tags": [True]}, {}, "tags values must be strings or finite numbers"),
    ({"ref": "x", "version": "1.0.0", "label": 5}, {}, "label must be a string"),
    ({"ref": "x", "version": "1.0.0", "meta": []}, {}, "meta must be an object"),
    ({"ref": "x", "version": "1.0.0", "dependencies": "core"}, {}, "dependencies must be an array or object"),
    ({"ref": "x", "version": "1.0.0"}, {"actions/a.yaml": {"name": 3}}, "component actions/a.yaml name must be a string"),
    ({"ref": "x", "version": "1.0.0"}, {"actions/a.yaml": "- a list\n"}, "actions/a.yaml must contain a YAML object"),
    ({"ref": "x", "version": "1.0.0", "sensors": ["s"]}, {}, "pack.yaml sensors must be an object"),
])
def test_bad_pack_yaml_is_refused_naming_the_field(tmp_path, manifest, files, message):
    root = pack(tmp_path, manifest, files)
    with pytest.raises(InvalidPackStructure) as info:
        build(root)
    assert message in str(info.value)


@pytest.mark.parametrize("kwargs, message", [
    ({"git_ref": "main"}, "not a lowercase 40-hex commit"),
    ({"git_ref": COMMIT.upper()}, "not a lowercase 40-hex commit"),
    ({"git_url": "http://github.com/x/y.git"}, "must use https://"),
    ({"git_url": "https://user:secret@github.com/x/y.git"}, "must not carry credentials"),
    ({"git_url": "https://github.com/x/y.git?token=secret"}, "query string"),
    ({"git_url": None, "git_ref": None}, "at least one install source"),
    ({"git_url": None, "git_ref": None, "archive_url": "https://f.example/x.tar.gz"}, "needs archive_path"),
    ({"archive_url": "https://f.example/x.tar.gz", "archive_checksum": "sha512:" + "a" * 128}, "sha256"),
    ({"archive_url": "https://f.example/x.tar.gz", "archive_checksum": "sha256:" + "A" * 64}, "lowercase"),
    ({"archive_url": "https://f.example/download", "archive_checksum": "sha256:" + "a" * 64}, "does not name an archive"),
    ({"archive_checksum": "sha256:" + "a" * 64}, "require archive_url"),
])
def test_sources_attune_refuses_are_refused(tmp_path, kwargs, message):
    root = pack(tmp_path, {"ref": "x", "version": "1.0.0"})
    with pytest.raises(Exception) as info:
        build(root, **kwargs)
    assert message in str(info.value)
    assert "secret" not in str(info.value)
    assert "pack x" in str(info.value)


def test_branch_refs_only_when_asked(tmp_path):
    root = pack(tmp_path, {"ref": "x", "version": "1.0.0"})
    entry, _tree = build(root, git_ref="main", allow_branch=True)
    assert entry["install_sources"][0]["ref"] == "main"
    assert "commit" not in entry["meta"]
    with pytest.raises(Exception, match="refused: it starts with"):
        build(root, git_ref="-oops", allow_branch=True)


def test_archive_checksum_is_the_sha256_of_the_file_and_must_agree(tmp_path):
    root = make_pack_tree(str(tmp_path / "tree"), "slack", "2.1.0")
    archive = make_archive(root, str(tmp_path / "slack.tar.gz"), top_dir="slack-%s" % COMMIT)
    url = "https://codeload.github.com/example-packs/slack/tar.gz/" + COMMIT
    entry, tree = build(root, archive_url=url, archive_path=archive)
    assert entry["install_sources"][1] == {"type": "archive", "url": url, "checksum": sha256_file(archive)}
    with pytest.raises(Exception, match="does not match archive_path"):
        build(root, archive_url=url, archive_path=archive, archive_checksum="sha256:" + "0" * 64)
    # the pack inside the archive is the same tree as the directory (what attune_pack_index_entry verifies)
    _root, archive_tree = _publish.archive_tree_checksum(archive, str(tmp_path / "x"))
    assert archive_tree == tree


# -- validation (validate_pack_index + validate_policy) -------------------------------------------------------

def index_of(*packs, **top):
    index = {"registry_name": "corp", "registry_url": "https://packs.example/index.json", "version": "1.0",
             "last_updated": "2026-01-01T00:00:00Z", "packs": list(packs)}
    index.update(top)
    return index


BRANCH_SOURCE = {"type": "git", "url": "https://g.example/a.git", "ref": "main", "checksum": "sha256:" + "a" * 64}
FRAGMENT_SOURCE = {"type": "archive", "url": "https://f.example/a.tar.gz#x", "checksum": "sha256:" + "a" * 64}
DUPLICATE_CONTENTS = {"actions": [{"name": "x", "description": ""}, {"name": "x", "description": ""}],
                      "sensors": [], "triggers": [], "rules": [], "workflows": []}


@pytest.mark.parametrize("index, message", [
    (index_of(make_entry("b", "1.0.0"), make_entry("a", "1.0.0")), "packs[1] (pack 'a'): ref: pack refs must be unique and sorted"),
    (index_of(make_entry("a", "1.0.0"), make_entry("a", "2.0.0")), "packs[1] (pack 'a'): ref: pack refs must be unique and sorted"),
    (index_of(make_entry("a", "01.0.0")), "packs[0] (pack 'a'): version"),
    (index_of(make_entry("a", "1.0.0", author=" ")), "packs[0] (pack 'a'): author: must not be empty"),
    (index_of(make_entry("a", "1.0.0", repository="http://x.example/a")), "packs[0].repository: URL must use https://"),
    (index_of(make_entry("a", "1.0.0", install_sources=[BRANCH_SOURCE])),
     "packs[0] (pack 'a'): install_sources[0].ref: 'main' is not an immutable"),
    (index_of(make_entry("a", "1.0.0", install_sources=[FRAGMENT_SOURCE])),
     "packs[0].install_sources[0].url: URL must not carry a query string or fragment (pack 'a')"),
    (index_of(make_entry("a", "1.0.0", contents=DUPLICATE_CONTENTS)),
     "packs[0] (pack 'a'): contents.actions: component names must be non-empty and unique"),
    (index_of(registry_name=" "), "registry_name: must not be empty"),
    (index_of(last_updated="2026-13-01T00:00:00Z"), "last_updated"),
    (index_of(make_entry("a", "1.0.0", extra_key=1)), "packs[0].extra_key: unknown key"),
])
def test_validation_names_the_entry_and_the_field(index, message):
    with pytest.raises(IndexFormatError) as info:
        _publish.validate_publishable(index, label="corp.json")
    assert message in str(info.value)
    assert "corp.json" in str(info.value)


def test_the_public_index_validates_and_is_written_byte_for_byte(standard_index_path):
    with open(standard_index_path, encoding="utf-8") as handle:
        text = handle.read()
    data = json.loads(text)
    _publish.validate_publishable(data)
    assert _publish.dump_index(data) == text
    change = _publish.update_index(data)
    assert not change.changed and change.text == text


def test_written_index_passes_the_published_schema(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    if not os.path.exists(INDEX_SCHEMA):
        pytest.skip("../shared/fixtures/index.schema.json is absent")
    root = pack(tmp_path, {"ref": "network", "version": "1.0.0", "description": "d"}, files={"actions/a.yaml": {"name": "a"}})
    entry, _tree = build(root)
    change = _publish.update_index(None, "corp", "https://packs.example/index.json", entries=[entry])
    with open(INDEX_SCHEMA) as handle:
        schema = json.load(handle)
    jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER).validate(
        json.loads(change.text))


# -- update ---------------------------------------------------------------------------------------------------

def clock(value="2026-05-05T05:05:05Z"):
    return lambda: value


def test_update_adds_replaces_removes_sorted_and_bumps_only_on_change():
    start = index_of(make_entry("b", "1.0.0"), make_entry("d", "1.0.0"))
    change = _publish.update_index(start, entries=[make_entry("c", "1.0.0"), make_entry("a", "1.0.0"), make_entry("b", "1.1.0")],
                                   remove=["d", "zzz"], clock=clock())
    assert [p["ref"] for p in change.index["packs"]] == ["a", "b", "c"]
    assert (change.added, change.replaced, change.removed) == (["a", "c"], ["b"], ["d"])
    assert change.index["last_updated"] == "2026-05-05T05:05:05Z" and change.changed
    again = _publish.update_index(json.loads(change.text), entries=[make_entry("a", "1.0.0")], clock=clock("2030-01-01T00:00:00Z"))
    assert not again.changed and again.index["last_updated"] == "2026-05-05T05:05:05Z"
    assert again.unchanged == ["a"]


def test_replace_false_refuses_other_content_and_keeps_same_content():
    start = index_of(make_entry("a", "1.0.0"))
    assert not _publish.update_index(start, entries=[make_entry("a", "1.0.0")], replace=False).changed
    with pytest.raises(_publish.PublishError, match="already exists"):
        _publish.update_index(start, entries=[make_entry("a", "1.1.0")], replace=False)


def test_new_index_needs_identity_and_entries_are_validated():
    with pytest.raises(InvalidArguments, match="registry_name and registry_url"):
        _publish.update_index(None, entries=[make_entry("a", "1.0.0")])
    with pytest.raises(_publish.PublishError, match=r"entries\[0\] \(pack 'a'\): .*install_sources\[0\].ref: 'A+' is not an immutable"):
        _publish.update_index(None, "corp", "https://p.example/i.json", entries=[make_entry("a", "1.0.0", digit="A")])
    with pytest.raises(_publish.PublishError, match="given twice"):
        _publish.update_index(None, "corp", "https://p.example/i.json", entries=[make_entry("a", "1.0.0")] * 2)


def test_a_version_history_is_collapsed_to_the_highest_version():
    start = index_of(make_entry("a", "1.0.0"), make_entry("a", "2.0.0"), make_entry("a", "1.5.0"))
    change = _publish.update_index(start, clock=clock())
    assert [p["version"] for p in change.index["packs"]] == ["2.0.0"]
    assert change.collapsed == ["a"] and change.changed


# -- merge (handle_index_merge) -------------------------------------------------------------------------------

def test_merge_highest_semver_wins_identity_from_first_latest_timestamp():
    first = index_of(make_entry("a", "1.0.0"), make_entry("b", "2.0.0-rc.1"), last_updated="2026-01-01T00:00:00Z")
    second = index_of(make_entry("a", "1.10.0"), make_entry("b", "2.0.0-rc.1", label="second"), make_entry("c", "0.1.0"),
                      registry_name="other", registry_url="https://other.example/index.json",
                      last_updated="2026-03-01T10:00:00+02:00")
    merged = _publish.merge_indices([("first", first), ("second", second)])
    name, url, stamp, packs, duplicates = merged
    assert (name, url, stamp) == ("corp", "https://packs.example/index.json", "2026-03-01T10:00:00+02:00")
    assert [(p["ref"], p["version"]) for p in packs] == [("a", "1.10.0"), ("b", "2.0.0-rc.1"), ("c", "0.1.0")]
    assert packs[1]["label"] == "B"  # an equal version keeps the first input's entry
    assert duplicates == 2
    change = _publish.update_index(None, merged=merged, clock=clock())
    assert change.index["last_updated"] == "2026-03-01T10:00:00+02:00"  # merge only: the latest input's time


def test_merge_validates_every_input_and_names_it():
    bad = index_of(make_entry("b", "1.0.0"), make_entry("a", "1.0.0"))
    with pytest.raises(IndexFormatError, match="second.json.*unique and sorted"):
        _publish.merge_indices([("first.json", index_of()), ("second.json", bad)])


def test_write_text_is_atomic_and_keeps_the_mode(tmp_path):
    path = str(tmp_path / "index.json")
    _publish.write_text(path, "one\n")
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    os.chmod(path, 0o640)
    _publish.write_text(path, "two\n")
    assert open(path).read() == "two\n" and oct(os.stat(path).st_mode & 0o777) == "0o640"
    assert sorted(os.listdir(str(tmp_path))) == ["index.json"]
    with pytest.raises(_publish.PublishError, match="does not exist"):
        _publish.write_text(str(tmp_path / "missing" / "index.json"), "x")


# -- parity with the public index (offline: pack repositories rebuilt from the shared fixture) --------------------

GITHUB_ONLY_META = ("commit", "default_branch", "stars", "repository_id")  # the builder takes these from GitHub's API


def rebuild_pack_repository(root, entry):
    """A pack repository whose pack.yaml and component files say what the public index says about ``entry``."""
    manifest = {"ref": entry["ref"], "label": entry["label"], "description": entry["description"], "version": entry["version"],
                "author": entry["author"], "license": entry["license"], "tags": list(reversed(entry["keywords"])),
                "runtime_deps": entry["runtime_deps"]}
    for key in ("email", "homepage", "use_case", "dependencies"):
        if key in entry:
            manifest[key] = entry[key]
    meta = dict((k, v) for k, v in entry.get("meta", {}).items() if k not in GITHUB_ONLY_META)
    if meta:
        manifest["meta"] = meta
    os.makedirs(root)
    write(root, "pack.yaml", manifest)
    for kind, components in entry["contents"].items():
        for position, component in enumerate(components):
            body = {"ref": "%s.%s" % (entry["ref"], component["name"])}
            if component["description"]:
                body["description"] = component["description"]
            write(root, "%s/c%03d.yaml" % (kind, position), body)
    write(root, "README.md", "# %s\n" % entry["label"])
    return root


def test_public_index_entries_are_given_back_from_their_pack_repositories(tmp_path, standard_index):
    """Every entry of the public index (44 packs) is reproduced from a pack repository holding the same pack.yaml and
    component files: fields, keywords, contents, meta and sources, with the checksum of the tree that was read.

    The real repositories at the pinned commits are not reachable from this machine (no network but package
    registries), so their trees are rebuilt from the fixture; the git checksum is then the rebuilt tree's."""
    for entry in standard_index["packs"]:
        root = rebuild_pack_repository(str(tmp_path / entry["ref"]), entry)
        git, archive = entry["install_sources"]
        github_meta = dict((k, v) for k, v in entry["meta"].items() if k in GITHUB_ONLY_META and k != "commit")
        built, tree = _publish.build_entry(root, git_url=git["url"], git_ref=git["ref"], archive_url=archive["url"],
                                           archive_checksum=archive["checksum"], defaults={"meta": github_meta})
        assert tree == tree_checksum(root)
        expected = json.loads(json.dumps(entry))
        expected["install_sources"][0]["checksum"] = tree
        assert built == expected, entry["ref"]
        # the builder's key order, as in the published file (meta too)
        assert json.dumps(_publish.ordered_entry(built)) == json.dumps(expected), entry["ref"]
