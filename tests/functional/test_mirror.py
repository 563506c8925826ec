"""attune_pack_mirror through ansible-playbook: an upstream HTTPS registry with git and archive sources on 127.0.0.1 is
mirrored into a directory; a second HTTPS server serves the mirror; with the upstream server stopped, packs install
from the mirror with the upstream tree checksums and archive bytes."""
import json
import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._publishing import _publish
from functional.test_publish_index import Pack
from support import synth
from support.attune_server import AttuneServer, connection_args
from support.play import run_tasks
from support.registry_server import RegistryServer

MIRROR = "attune.packs.attune_pack_mirror"
INSTALL = "attune.packs.attune_pack"


def run(tmp_path, tasks, **kwargs):
    play = run_tasks(tmp_path, tasks, **kwargs)
    assert play.results, play
    return play, play.host()


def upstream_index(server, packs):
    entries = []
    for pack in packs:
        entry, _tree = _publish.build_entry(pack.checkout, git_url=pack.git_url, git_ref=pack.commit, archive_url=pack.archive_url,
                                            archive_path=pack.archive)
        entries.append(entry)
    index = _publish.update_index(None, "upstream", server.url("index.json"), entries=entries).index
    server.add_json("/index.json", index)
    return index


def mirror_args(upstream, dest, base_url, **extra):
    args = {"dest": dest, "base_url": base_url, "registries": [{"name": "upstream", "url": upstream.url("index.json")}],
            "ca_path": upstream.ca_path, "cache_enabled": False}
    args.update(extra)
    return args


def fetches(server):
    """Requests for archives and git objects (everything but the index)."""
    return [r.path for r in server.requests if not r.path.endswith("index.json")]


def test_mirror_then_install_with_upstream_stopped(tmp_path):
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    with RegistryServer() as mirror_server:
        mirror_server.add_directory("/m", dest)
        base_url = mirror_server.url("m")
        with RegistryServer() as upstream:
            net = Pack(upstream, str(tmp_path / "up"), "network", "1.2.0")
            dns = Pack(upstream, str(tmp_path / "up"), "dns", "0.3.0")
            index = upstream_index(upstream, [net, dns])
            args = mirror_args(upstream, dest, base_url, name=["network@1.2.0", "dns"])
            task = {MIRROR: args}
            play, results = run(tmp_path, [dict(task, check_mode=True), task], diff=True)
            check1, real1 = results
            assert check1["changed"] is True and not check1.get("failed") and check1["added"] == ["dns", "network"], play
            assert "index" not in check1  # the real run follows in the same play
            assert real1["changed"] is True and real1["added"] == ["dns", "network"] and len(real1["fetched"]) == 4, play
            assert real1["approved_host"] == "127.0.0.1"
            upstream.reset_log()
            play, results = run(tmp_path, [dict(task, check_mode=True), task])
            assert [r["changed"] for r in results] == [False, False], play
            assert results[1]["kept"] == ["dns", "network"] and results[1]["fetched"] == []
            assert fetches(upstream) == []  # incremental: only the index was read
            upstream_entries = dict((p["ref"], p) for p in index["packs"])

        # the mirror's index: every source under base_url; archives byte-identical; git turned into an archive
        with open(os.path.join(dest, "index.json")) as handle:
            mirrored = json.load(handle)
        _publish.validate_publishable(mirrored)
        assert mirrored["registry_url"] == base_url + "/index.json"
        for pack in mirrored["packs"]:
            sources = pack["install_sources"]
            assert [s["type"] for s in sources] == ["archive", "archive"]
            assert all(s["url"].startswith(base_url + "/packs/" + pack["ref"] + "/") for s in sources)
            upstream_sources = upstream_entries[pack["ref"]]["install_sources"]
            assert sources[1]["checksum"] == upstream_sources[1]["checksum"]
            assert dict(pack, install_sources=None) == dict(upstream_entries[pack["ref"]], install_sources=None)
        with open(net.archive, "rb") as a, open(os.path.join(dest, "/".join(
                [p for p in mirrored["packs"] if p["ref"] == "network"][0]["install_sources"][1]["url"].split("/")[-3:])), "rb") as b:
            assert a.read() == b.read()

        # install from the mirror, upstream stopped: the git-built archive gives the upstream tree checksum
        packs_dir = str(tmp_path / "packs")
        common = {"registries": [{"name": "mirror", "url": base_url + "/index.json"}], "ca_path": mirror_server.ca_path,
                  "packs_dir": packs_dir, "cache_enabled": False, "strict": True}
        play, results = run(tmp_path, [{INSTALL: dict(common, name=["network@1.2.0", "dns"])}])
        assert results[0]["changed"] is True and not results[0].get("failed"), play
        for pack in (net, dns):
            installed = synth.tree_checksum(os.path.join(packs_dir, pack.ref))
            assert installed == upstream_entries[pack.ref]["install_sources"][0]["checksum"]

        # the same mirror read as file:// on the controller (archives from the mirror's HTTPS server)
        packs2 = str(tmp_path / "packs2")
        file_args = dict(common, registries=[{"name": "mirror", "url": "file://" + dest + "/index.json"}], packs_dir=packs2,
                         name="dns", fetch_on="controller", cache_dir=str(tmp_path / "cache"))
        play, results = run(tmp_path, [{INSTALL: file_args}])
        assert results[0]["changed"] is True and not results[0].get("failed"), play
        assert synth.tree_checksum(os.path.join(packs2, "dns")) == synth.tree_checksum(dns.checkout)

        # and into a running Attune (the API test server), from the mirror, upstream still stopped
        with AttuneServer() as api:
            api.token = api.add_integration_token("ci")
            task = dict(common, name="network@1.2.0", cache_dir=str(tmp_path / "cache"), **connection_args(api))
            del task["packs_dir"]
            play, results = run(tmp_path, [{INSTALL: task}])
            assert results[0]["changed"] is True and not results[0].get("failed") and results[0]["uploaded"] == ["network"], play
            assert api.pack("network")["version"] == "1.2.0"


def test_lock_prune_and_failure_leave_a_consistent_mirror(tmp_path):
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    base_url = "https://packs.site.internal/mirror"
    with RegistryServer() as upstream:
        net = Pack(upstream, str(tmp_path / "up"), "network", "1.2.0")
        dns = Pack(upstream, str(tmp_path / "up"), "dns", "0.3.0")
        upstream_index(upstream, [net, dns])
        lock = str(tmp_path / "packs.lock.yml")
        lock_args = {"path": lock, "name": ["network", "dns"], "registries": [{"name": "upstream", "url": upstream.url("index.json")}],
                     "ca_path": upstream.ca_path, "cache_enabled": False}
        play, results = run(tmp_path, [{"attune.packs.attune_pack_lock": lock_args},
                                       {MIRROR: mirror_args(upstream, dest, base_url, lock_file=lock)}])
        assert results[1]["changed"] is True and results[1]["added"] == ["dns", "network"], play
        files = sorted(os.listdir(os.path.join(dest, "packs", "dns")))
        assert len(files) == 2

        # prune: dns is no longer listed -> out of the index, its files deleted
        play, results = run(tmp_path, [{MIRROR: mirror_args(upstream, dest, base_url, name="network", prune=True)}])
        res = results[0]
        assert res["changed"] is True and res["removed"] == ["dns"] and res["kept"] == ["network"], play
        assert sorted(res["files_removed"]) == ["packs/dns/" + name for name in files]
        assert not os.path.exists(os.path.join(dest, "packs", "dns"))
        with open(os.path.join(dest, "index.json"), "rb") as handle:
            before = handle.read()

        # a pack whose upstream archive no longer matches its checksum fails, naming it; the index is untouched
        with open(dns.archive, "ab") as handle:
            handle.write(b"tampered")
        play, results = run(tmp_path, [{MIRROR: mirror_args(upstream, dest, base_url, name=["network", "dns"])}])
        res = results[0]
        assert res["failed"] and "checksum mismatch" in res["msg"] and "dns" in res["msg"], play
        with open(os.path.join(dest, "index.json"), "rb") as handle:
            assert handle.read() == before
        assert not os.path.exists(os.path.join(dest, "packs", "dns")) or not [
            name for name in os.listdir(os.path.join(dest, "packs", "dns")) if not name.startswith("git-")]
        assert not [name for name in os.listdir(dest) if name.startswith(".")]
        # changed is exact in the failed result: true when an archive was written before the failure (dns's git build)
        written = os.path.exists(os.path.join(dest, "packs", "dns")) and os.listdir(os.path.join(dest, "packs", "dns"))
        assert res["changed"] is bool(written), (written, play)


@pytest.mark.parametrize("base_url, message", [("http://packs.example", "must use https"),
                                               ("https://u:p@packs.example", "credentials")])
def test_bad_base_url_is_refused(tmp_path, base_url, message):
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    args = {"dest": dest, "base_url": base_url, "name": "x", "registries": [{"url": "file:///nonexistent/index.json"}]}
    play, results = run(tmp_path, [{MIRROR: args}])
    assert results[0]["failed"] and message in results[0]["msg"], play
    assert os.listdir(dest) == []
