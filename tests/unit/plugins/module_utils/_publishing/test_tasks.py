"""The publishing tasks' cores: run_index_entry (_publish), run_index (_index_task), run_mirror (_mirror), without Ansible.

The modules only build the argument spec and call these; the end-to-end runs are in tests/functional.
"""
import json
import os

import pytest
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.attune.packs.plugins.module_utils._base._common import registry_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidArguments, PackNotFound
from ansible_collections.attune.packs.plugins.module_utils._publishing import _index_task, _mirror, _publish
from support.synth import make_archive, make_pack_tree, tree_checksum
from testdata import make_entry, make_index, write_index

COMMIT = "0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2"
GIT = "https://github.com/example-packs/network.git"


def params_of(spec, **args):
    result = ArgumentSpecValidator(spec).validate(args)
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


# -- attune_pack_index_entry ------------------------------------------------------------------------------------

ENTRY_SPEC = dict(path=dict(type="path"), git_url=dict(type="str"), git_ref=dict(type="str"),
                  allow_branch_refs=dict(type="bool", default=False), archive_url=dict(type="str"),
                  archive_path=dict(type="path"), archive_checksum=dict(type="str"),
                  verify_archive_tree=dict(type="bool", default=True), defaults=dict(type="dict"))


def test_run_index_entry_of_a_directory_and_of_its_archive(tmp_path):
    root = make_pack_tree(str(tmp_path / "network"), "network", "1.2.0")
    archive = make_archive(root, str(tmp_path / "network.tar.gz"), top_dir="network-1.2.0")
    result = _publish.run_index_entry(params_of(ENTRY_SPEC, path=root, git_url=GIT, git_ref=COMMIT, archive_path=archive,
                                                archive_url="https://example.com/network.tar.gz", defaults={"repository": "https://example.com/network"}))
    assert result["changed"] is False and (result["ref"], result["version"], result["pack_dir"]) == ("network", "1.2.0", root)
    assert result["tree_checksum"] == tree_checksum(root) and result["entry"]["repository"] == "https://example.com/network"
    alone = _publish.run_index_entry(params_of(ENTRY_SPEC, archive_path=archive, git_url=GIT, git_ref=COMMIT,
                                               archive_url="https://example.com/network.tar.gz", defaults={"repository": "https://example.com/network"}))
    assert alone["entry"] == result["entry"] and alone["pack_dir"] is None


def test_run_index_entry_refuses_an_archive_of_another_tree(tmp_path):
    root = make_pack_tree(str(tmp_path / "network"), "network", "1.2.0")
    other = make_pack_tree(str(tmp_path / "other"), "network", "1.2.0", files={"extra.txt": "different\n"})
    archive = make_archive(other, str(tmp_path / "other.tar.gz"))
    with pytest.raises(_publish.PublishError, match="sources would install different packs") as caught:
        _publish.run_index_entry(params_of(ENTRY_SPEC, path=root, archive_path=archive, archive_url="https://example.com/n.tar.gz"))
    assert caught.value.pack == "network"
    with pytest.raises(_publish.PublishError, match="is not a directory"):
        _publish.run_index_entry(params_of(ENTRY_SPEC, path=str(tmp_path / "nowhere")))


# -- attune_pack_index -------------------------------------------------------------------------------------------

def index_params(path, **args):
    spec = registry_argument_spec()
    spec.update(path=dict(type="path", required=True), registry_name=dict(type="str"), registry_url=dict(type="str"),
                entries=dict(type="list", elements="dict", default=[]), remove=dict(type="list", elements="str", default=[]),
                replace=dict(type="bool", default=True), merge=dict(type="list", elements="str"),
                allow_branch_refs=dict(type="bool", default=False))
    return params_of(spec, path=path, cache_enabled=False, **args)


def test_run_index_check_mode_write_and_rerun(tmp_path):
    path = str(tmp_path / "index.json")
    params = index_params(path, registry_name="corp", registry_url="https://packs.example/index.json",
                          entries=[make_entry("b", "1.0.0"), make_entry("a", "1.0.0")])
    check = _index_task.run_index(params, check_mode=True, diff=True)
    assert check["changed"] is True and check["msg"].startswith("check mode, not written: index %s: added a, b (2 packs)" % path)
    assert not os.path.exists(path) and check["diff"]["before"] == "" and check["diff"]["before_header"] == path
    real = _index_task.run_index(params)
    assert real["changed"] is True and real["added"] == ["a", "b"] and "diff" not in real and real["path"] == path
    with open(path) as handle:
        assert json.load(handle) == real["index"]
    again = _index_task.run_index(params, check_mode=True)
    assert again["changed"] is False and again["unchanged"] == ["a", "b"] and again["msg"].endswith(", up to date")


def test_run_index_merges_files_and_registries_and_warns_about_collapsed_refs(tmp_path):
    first = str(tmp_path / "first.json")
    with open(first, "w") as handle:
        json.dump(make_index("first", [make_entry("a", "1.0.0"), make_entry("a", "2.0.0")]), handle)
    url = write_index(tmp_path, "second", [make_entry("a", "1.5.0"), make_entry("c", "0.1.0")])
    assert _index_task.required_libraries(index_params("x", merge=[first, url])) == ["voluptuous", "requests"]
    warnings = []
    path = str(tmp_path / "index.json")
    with open(path, "w") as handle:
        json.dump(make_index("dup", [make_entry("a", "1.0.0"), make_entry("a", "3.0.0")]), handle)
    collapsed = _index_task.run_index(index_params(path), warn=warnings.append)
    assert collapsed["collapsed"] == ["a"] and [p["version"] for p in collapsed["index"]["packs"]] == ["3.0.0"]
    assert warnings == ["index %s had several entries for a; Attune installs the first entry of a ref, so only the highest "
                        "version of each is kept" % path]
    merged = _index_task.run_index(index_params(str(tmp_path / "merged.json"), merge=[url, str(tmp_path / "second.json")]))
    assert merged["changed"] and merged["msg"].endswith("(2 packs)") and "merged 2 inputs" in merged["msg"]
    with pytest.raises(_publish.PublishError, match="merge input nope is neither a file nor a configured registry"):
        _index_task.run_index(index_params(str(tmp_path / "m.json"), merge=["nope"]))
    assert not os.path.exists(str(tmp_path / "m.json"))


# -- attune_pack_mirror ------------------------------------------------------------------------------------------

def mirror_params(dest, registry_url, **args):
    spec = registry_argument_spec()
    spec.update(dest=dict(type="path", required=True), base_url=dict(type="str", required=True), name=dict(type="raw"),
                lock_file=dict(type="path"), prune=dict(type="bool", default=False), registry_name=dict(type="str"),
                archive_max_bytes=dict(type="int"), on_registry_error=dict(type="str", choices=["fail", "skip"], default="fail"))
    args.setdefault("registries", [{"name": "upstream", "url": registry_url}])
    return params_of(spec, dest=dest, base_url="https://packs.site.internal/mirror", cache_enabled=False, **args)


def test_run_mirror_in_check_mode_reports_what_would_be_fetched(tmp_path):
    url = write_index(tmp_path, "upstream", [make_entry("network", "1.2.0"), make_entry("dns", "0.3.0", "c")])
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    result = _mirror.run_mirror(mirror_params(dest, url, name=["network", "dns@0.3.0"]), check_mode=True, diff=True)
    assert result == {
        "changed": True, "index_path": os.path.join(dest, "index.json"), "added": ["dns", "network"], "updated": [], "kept": [],
        "removed": [], "fetched": ["https://git.example/network.git", "https://files.example/network-1.2.0.tar.gz",
                                   "https://git.example/dns.git", "https://files.example/dns-0.3.0.tar.gz"],
        "files_removed": [], "approved_host": "packs.site.internal",
        "msg": "check mode, nothing written: mirror %s: added dns, network; would fetch 4 sources" % dest,
    }  # no index nor diff: packs would have to be fetched first
    assert os.listdir(dest) == []


def test_run_mirror_refusals(tmp_path):
    url = write_index(tmp_path, "upstream", [make_entry("network", "1.2.0")])
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    with pytest.raises(InvalidArguments, match="pack 'network' is listed twice in name"):
        _mirror.run_mirror(mirror_params(dest, url, name=["network", "network@1.2.0"]), check_mode=True)
    with pytest.raises(PackNotFound):
        _mirror.run_mirror(mirror_params(dest, url, name="nope"), check_mode=True)
    with pytest.raises(InvalidArguments, match="is not a directory"):
        _mirror.run_mirror(mirror_params(str(tmp_path / "missing"), url, name="network"), check_mode=True)
    assert os.listdir(dest) == [] and _mirror.index_path_of(dest) == os.path.join(dest, "index.json")
