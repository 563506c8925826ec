"""Issue 19 item 3: a mirror read by this collection on the controller, with a ``file://`` base_url (no web server).

A lock file is made upstream (an HTTPS registry on 127.0.0.1 whose packs have git and archive sources, from
test_mirror.py); the mirror is built from it with ``base_url: file://<dest>``; with the upstream server stopped,
attune_pack installs from the mirror (its index as a file:// registry, ``fetch_on: controller``) the locked versions
with the locked checksums.  An https base_url stays the only kind for a mirror read by Attune.
"""
import json
import os

import yaml

from ansible_collections.attune.packs.plugins.module_utils._publishing import _mirror, _publish
from functional.test_mirror import MIRROR, INSTALL, mirror_args, run, upstream_index
from functional.test_publish_index import Pack
from support import synth
from support.registry_server import RegistryServer

LOCK = "attune.packs.attune_pack_lock"


def read_lock(path):
    with open(path) as handle:
        return dict((entry["ref"], entry) for entry in yaml.safe_load(handle)["packs"])


def installed_meta(packs_dir, ref):
    with open(os.path.join(packs_dir, ".attune", ref + ".json")) as handle:
        return json.load(handle)


def build_file_mirror(tmp_path):
    """A lock made upstream, a mirror built from it with a file:// base_url; upstream stopped on return."""
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    base_url = "file://" + dest
    lock = str(tmp_path / "packs.lock.yml")
    with RegistryServer() as upstream:
        net = Pack(upstream, str(tmp_path / "up"), "network", "1.2.0")
        dns = Pack(upstream, str(tmp_path / "up"), "dns", "0.3.0")
        upstream_index(upstream, [net, dns])
        lock_args = {"path": lock, "name": ["network@1.2.0", "dns"], "cache_enabled": False, "ca_path": upstream.ca_path,
                     "registries": [{"name": "upstream", "url": upstream.url("index.json")}]}
        task = {MIRROR: mirror_args(upstream, dest, base_url, lock_file=lock)}
        play, results = run(tmp_path, [{LOCK: lock_args}, dict(task, check_mode=True), task, task])
        locked, check, real, again = results
        assert locked["changed"] and not locked.get("failed"), play
        assert check["changed"] is True and not check.get("failed") and check["added"] == ["dns", "network"], play
        assert real["changed"] is True and real["added"] == ["dns", "network"], real
        assert real["approved_host"] is None  # Attune cannot read a file:// mirror
        assert again["changed"] is False and again["kept"] == ["dns", "network"] and again["fetched"] == [], play
    pins = read_lock(lock)
    assert sorted(pins) == ["dns", "network"]

    # every URL of the mirror's index is a file:// URL under base_url, naming a file of the mirror
    with open(os.path.join(dest, "index.json")) as handle:
        mirrored = json.load(handle)
    _publish.validate_publishable(mirrored, allow_file=True)
    assert mirrored["registry_url"] == base_url + "/index.json"
    for pack in mirrored["packs"]:
        assert pack["version"] == pins[pack["ref"]]["version"]
        for source in pack["install_sources"]:
            assert source["type"] == "archive" and source["url"].startswith(base_url + "/packs/" + pack["ref"] + "/")
            assert os.path.isfile(source["url"][len("file://"):])
    return base_url, pins, mirrored, (net, dns)


def test_file_mirror_from_a_lock(tmp_path):
    build_file_mirror(tmp_path)


def test_file_mirror_installs_the_locked_versions_and_checksums(tmp_path):
    base_url, pins, mirrored, packs = build_file_mirror(tmp_path)
    # install from the mirror, upstream stopped: the index as a file:// registry, archives read on the controller
    packs_dir = str(tmp_path / "packs")
    install = {"name": ["%s@%s" % (ref, pin["version"]) for ref, pin in sorted(pins.items())], "packs_dir": packs_dir,
               "registries": [{"name": "mirror", "url": base_url + "/index.json"}], "fetch_on": "controller",
               "cache_dir": str(tmp_path / "cache"), "cache_enabled": False, "strict": True}
    # the same mirror read by the host itself (fetch_on: host): file:// archives of a file:// registry, no allow_http
    on_host = dict(install, fetch_on="host", packs_dir=str(tmp_path / "packs-host"))
    play, results = run(tmp_path, [{INSTALL: install}, {INSTALL: install}, {INSTALL: on_host}])
    first, second, host = results
    assert first["changed"] is True and not first.get("failed"), first.get("msg")
    assert sorted(first["fetched_on_controller"]) == ["dns", "network"], first
    assert second["changed"] is False and not second.get("failed"), play
    assert host["changed"] is True and not host.get("failed"), host.get("msg")
    for pack in packs:
        assert synth.tree_checksum(os.path.join(on_host["packs_dir"], pack.ref)) == synth.tree_checksum(pack.checkout)
    for pack in packs:
        pin = pins[pack.ref]
        meta = installed_meta(packs_dir, pack.ref)
        assert meta["version"] == pin["version"] and meta["registry"] == "mirror", meta
        tree = synth.tree_checksum(os.path.join(packs_dir, pack.ref))
        # the lock pins the upstream git source (its framed tree checksum) and the archive (its sha256)
        locked = [pin["source"]] + ([pin["fallback_source"]] if pin.get("fallback_source") else [])
        for source in locked:
            if source["type"] == "git":
                assert tree == source["checksum"], (pack.ref, source)
            else:
                mirrored_archive = [p for p in mirrored["packs"] if p["ref"] == pack.ref][0]["install_sources"]
                assert source["checksum"] in [s["checksum"] for s in mirrored_archive], (pack.ref, source)
        assert tree == synth.tree_checksum(pack.checkout)


def test_file_base_url_rules(tmp_path):
    assert _mirror.check_base_url("file:///srv/mirror/") == "file:///srv/mirror"
    assert _mirror.check_base_url("https://packs.example/m/") == "https://packs.example/m"
    dest = str(tmp_path / "mirror")
    os.makedirs(dest)
    tasks = []
    for base_url in ("file://host/srv/mirror", "file:///", "file:///srv/mirror?x=1", "file:relative/dir"):
        tasks.append({MIRROR: {"dest": dest, "base_url": base_url, "name": "x",
                               "registries": [{"url": "file:///nonexistent/index.json"}]}})
    play, results = run(tmp_path, tasks)
    for base_url, res in zip(("host", "root", "query", "relative"), results):
        assert res.get("failed") and "base_url" in res["msg"], (base_url, play)
    assert os.listdir(dest) == []
