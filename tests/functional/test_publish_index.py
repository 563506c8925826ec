"""Publishing through ansible-playbook: attune_pack_index_entry and attune_pack_index build an index from real git
repositories and archives; the index is served over HTTPS on 127.0.0.1 and attune_pack installs from it."""
import json
import os

import pytest

from support import gitrepo, synth
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import STANDARD_INDEX

ENTRY = "attune.packs.attune_pack_index_entry"
INDEX = "attune.packs.attune_pack_index"


@pytest.fixture
def server():
    with RegistryServer() as srv:
        yield srv


class Pack(object):
    """A pack repository at a commit, published on ``server`` as a dumb-HTTP git repository and a codeload-like tarball."""

    def __init__(self, server, root, ref, version, **kwargs):
        files = os.path.join(root, "files")
        os.makedirs(files, exist_ok=True)
        if server.route_for("/files") is None:
            server.add_directory("/files", files)
        self.bare, self.commit = gitrepo.make_git_pack_repo(files, ref, version, **kwargs)
        self.checkout = gitrepo.source_dir(self.bare)
        self.archive = synth.make_archive(self.checkout, os.path.join(files, "%s-%s.tar.gz" % (ref, self.commit)),
                                          top_dir="%s-%s" % (ref, self.commit))
        self.git_url = server.url("files/" + os.path.basename(self.bare))
        self.archive_url = server.url("files/" + os.path.basename(self.archive))
        self.ref, self.version = ref, version

    def entry_args(self, **extra):
        args = {"path": self.checkout, "git_url": self.git_url, "git_ref": self.commit, "archive_url": self.archive_url,
                "archive_path": self.archive}
        args.update(extra)
        return args


def run(tmp_path, tasks, **kwargs):
    play = run_tasks(tmp_path, tasks, **kwargs)
    assert play.results, play
    return play, play.host()


def test_entry_of_a_checkout_and_its_archive(server, tmp_path):
    pack = Pack(server, str(tmp_path), "network", "1.2.0", pack_yaml_extra={"tags": ["net", "cli"], "license": "MIT"},
                files={"actions/trace.yaml": "name: network.trace\ndescription: Trace a route\n"})
    play, results = run(tmp_path, [{ENTRY: pack.entry_args()}, {ENTRY: pack.entry_args()}])
    res = results[0]
    assert not res.get("failed") and res["changed"] is False, play
    entry = res["entry"]
    tree = synth.tree_checksum(pack.checkout)
    assert entry["install_sources"] == [
        {"type": "git", "url": pack.git_url, "ref": pack.commit, "checksum": tree},
        {"type": "archive", "url": pack.archive_url, "checksum": synth.sha256_file(pack.archive)},
    ]
    assert res["tree_checksum"] == tree
    assert (entry["ref"], entry["version"], entry["keywords"], entry["license"]) == ("network", "1.2.0", ["cli", "net"], "MIT")
    assert entry["contents"]["actions"] == [{"name": "hello", "description": "Say hello"},
                                            {"name": "trace", "description": "Trace a route"}]
    assert entry["meta"] == {"category": "uncategorized", "commit": pack.commit}
    assert results[1]["entry"] == entry  # same input, same entry


def test_entry_from_the_archive_alone_is_the_same(server, tmp_path):
    pack = Pack(server, str(tmp_path), "network", "1.2.0")
    play, results = run(tmp_path, [{ENTRY: pack.entry_args()}, {ENTRY: pack.entry_args(path=None)}])
    assert not results[1].get("failed"), play
    assert results[1]["entry"] == results[0]["entry"] and results[1]["pack_dir"] is None


def test_entry_refusals_name_the_cause(server, tmp_path):
    pack = Pack(server, str(tmp_path), "network", "1.2.0")
    other = synth.make_pack_archive(str(tmp_path / "other"), "network", "1.2.0", files={"extra.txt": "different\n"})[0]
    play, results = run(tmp_path, [
        {ENTRY: pack.entry_args(git_ref="main")},
        {ENTRY: pack.entry_args(archive_path=other)},
        {ENTRY: pack.entry_args(git_url="https://user:hunter2@example.com/network.git")},
        {ENTRY: {"path": str(tmp_path / "nowhere")}},
    ])
    assert results[0]["failed"] and "not a lowercase 40-hex commit" in results[0]["msg"], play
    assert results[1]["failed"] and "sources would install different packs" in results[1]["msg"]
    assert results[2]["failed"] and "credentials" in results[2]["msg"] and "hunter2" not in json.dumps(results[2])
    assert results[3]["failed"] and "not a directory" in results[3]["msg"]
    assert all("entry" not in res for res in results)


# -- attune_pack_index ------------------------------------------------------------------------------------------

def index_task(path, **args):
    args["path"] = path
    return {INDEX: args}


def test_build_serve_and_install_from_the_published_index(server, tmp_path):
    """Entries from two git repositories and their archives -> index (four runs: check, real, check, real) ->
    served over HTTPS -> attune_pack installs each pack from it (git, and the archive), same checksums."""
    net = Pack(server, str(tmp_path), "network", "1.2.0")
    dns = Pack(server, str(tmp_path), "dns", "0.3.0")
    index_path = str(tmp_path / "site" / "index.json")
    os.makedirs(os.path.dirname(index_path))
    server.add_directory("/site", os.path.dirname(index_path))
    tasks = [{ENTRY: net.entry_args(), "register": "net"}, {ENTRY: dns.entry_args(), "register": "dns"}]
    publish = index_task(index_path, registry_name="corp", registry_url=server.url("site/index.json"),
                         entries=["{{ net.entry }}", "{{ dns.entry }}"])
    play, results = run(tmp_path, tasks + [dict(publish, check_mode=True), publish, dict(publish, check_mode=True), publish],
                        diff=True)
    check1, real1, check2, real2 = results[2:]
    assert check1["changed"] is True and not check1.get("failed"), play
    assert real1["changed"] is True and real1["added"] == ["dns", "network"]
    assert check2["changed"] is False and real2["changed"] is False
    assert real2["unchanged"] == ["dns", "network"]
    assert "network" in real1["diff"]["after"] and real1["diff"]["before"] == ""
    with open(index_path) as handle:
        written = json.load(handle)
    assert [p["ref"] for p in written["packs"]] == ["dns", "network"]
    assert written == real2["index"]
    stamp = written["last_updated"]
    mtime = os.stat(index_path).st_mtime_ns

    # installs from the served index: git source of network, archive source of dns
    packs_dir = str(tmp_path / "packs")
    common = {"registries": [{"name": "corp", "url": server.url("site/index.json")}], "ca_path": server.ca_path,
              "packs_dir": packs_dir, "cache_enabled": False, "strict": True}
    play, results = run(tmp_path, [{"attune.packs.attune_pack": dict(common, name="network@1.2.0")},
                                   {"attune.packs.attune_pack": dict(common, name="dns", prefer_source="archive")}])
    assert all(r["changed"] is True and not r.get("failed") for r in results), play
    assert synth.tree_checksum(os.path.join(packs_dir, "network")) == synth.tree_checksum(net.checkout)
    assert synth.tree_checksum(os.path.join(packs_dir, "dns")) == synth.tree_checksum(dns.checkout)
    record = synth.read_provenance(packs_dir, "dns")
    assert record["installed_from"]["type"] == "archive" and record["checksum"] == synth.sha256_file(dns.archive)

    # remove one ref, then an unchanged rerun leaves the file untouched
    play, results = run(tmp_path, [index_task(index_path, remove=["dns"]), index_task(index_path, remove=["dns"])])
    assert results[0]["changed"] is True and results[0]["removed"] == ["dns"], play
    assert results[1]["changed"] is False and results[1]["removed"] == []
    with open(index_path) as handle:
        after = json.load(handle)
    assert [p["ref"] for p in after["packs"]] == ["network"] and after["last_updated"] >= stamp
    mtime2 = os.stat(index_path).st_mtime_ns
    play, results = run(tmp_path, [index_task(index_path, entries=[after["packs"][0]])])
    assert results[0]["changed"] is False and os.stat(index_path).st_mtime_ns == mtime2 != mtime, play


def test_invalid_input_fails_and_leaves_the_file_as_it_was(server, tmp_path):
    net = Pack(server, str(tmp_path), "network", "1.2.0")
    index_path = str(tmp_path / "index.json")
    play, results = run(tmp_path, [
        {ENTRY: net.entry_args(), "register": "net"},
        index_task(index_path, registry_name="corp", registry_url="https://packs.example/index.json", entries=["{{ net.entry }}"]),
    ])
    assert results[1]["changed"] is True, play
    with open(index_path, "rb") as handle:
        before = handle.read()
    bad = dict(json.loads(before)["packs"][0], ref="aaa", version="1.0")
    branch = dict(json.loads(before)["packs"][0], ref="bbb")
    branch["install_sources"] = [dict(branch["install_sources"][0], ref="main")]
    play, results = run(tmp_path, [
        index_task(index_path, entries=[bad]),
        index_task(index_path, entries=[branch]),
        index_task(index_path, registry_url="http://packs.example/index.json"),
        index_task(index_path, entries=[dict(json.loads(before)["packs"][0], label="Other")], replace=False),
    ])
    assert results[0]["failed"] and "entries[0] (pack 'aaa')" in results[0]["msg"] and "version" in results[0]["msg"], play
    assert results[1]["failed"] and "install_sources[0].ref: 'main' is not an immutable" in results[1]["msg"]
    assert results[2]["failed"] and "registry_url" in results[2]["msg"]
    assert results[3]["failed"] and "already exists" in results[3]["msg"]
    with open(index_path, "rb") as handle:
        assert handle.read() == before
    assert sorted(os.listdir(str(tmp_path))).count("index.json") == 1
    assert not [name for name in os.listdir(str(tmp_path)) if name.startswith(".index.json")]


def test_merge_files_and_an_https_index(server, tmp_path):
    from testdata import make_entry

    first = {"registry_name": "company", "registry_url": "https://packs.example/index.json", "version": "1.0",
             "last_updated": "2026-01-01T00:00:00Z", "packs": [make_entry("a", "1.0.0"), make_entry("b", "2.0.0")]}
    team = {"registry_name": "team", "registry_url": "https://team.example/index.json", "version": "1.0",
            "last_updated": "2026-02-01T00:00:00Z",
            "packs": [make_entry("a", "1.1.0"), make_entry("b", "1.9.0"), make_entry("c", "0.1.0")]}
    with open(str(tmp_path / "company.json"), "w") as handle:
        json.dump(first, handle)
    server.add_json("/team.json", team, required_headers={"Authorization": "Bearer team-secret"})
    out = str(tmp_path / "merged.json")
    task = index_task(out, merge=[str(tmp_path / "company.json"), server.url("team.json")], ca_path=server.ca_path,
                      registries=[{"url": server.url("team.json"), "name": "team", "headers": {"Authorization": "Bearer team-secret"}}])
    play, results = run(tmp_path, [task, task])
    res = results[0]
    assert res["changed"] is True and not res.get("failed"), play
    assert [(p["ref"], p["version"]) for p in res["index"]["packs"]] == [("a", "1.1.0"), ("b", "2.0.0"), ("c", "0.1.0")]
    assert (res["index"]["registry_name"], res["index"]["last_updated"]) == ("company", "2026-02-01T00:00:00Z")
    assert res["duplicates_resolved"] == 2
    assert results[1]["changed"] is False
    assert "team-secret" not in play.output


@pytest.mark.skipif(not os.path.exists(STANDARD_INDEX), reason="../shared/fixtures/attune-standard-index.json is absent")
def test_the_public_index_is_read_and_rewritten_unchanged(tmp_path):
    import shutil

    path = str(tmp_path / "index.json")
    shutil.copy(STANDARD_INDEX, path)
    play, results = run(tmp_path, [index_task(path), index_task(path, remove=["not-there"])])
    assert results[0]["changed"] is False and results[1]["changed"] is False, play
    with open(STANDARD_INDEX, "rb") as a, open(path, "rb") as b:
        assert a.read() == b.read()
