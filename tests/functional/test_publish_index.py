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
