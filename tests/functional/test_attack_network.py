"""Issue 8, network and cache attacks, for real through ansible-playbook.

- item 8: ``allow_http: false`` holds for every URL, whatever option it came through: a lock file or the
  ``source`` option naming an http:// or file:// archive is refused before any request;
- item 10: an archive ``src`` with credentials is a named error that never shows the credential;
- item 6: a cookie set by the registry never reaches the archive server (two real servers);
- item 1: a shared (world-writable) ``cache_dir`` is refused with a named error.
"""
import json
import os

import yaml

from support import synth
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

MODULE = "attune.packs.attune_pack"
SECRET = "hunter2-SECRET-x9"


def serve_archive(server, tmp_path, ref="demo", version="1.0.0"):
    files = tmp_path / "files"
    files.mkdir(exist_ok=True)
    path, checksum = synth.make_pack_archive(str(files), ref, version)
    server.add_directory("/files", str(files))
    return server.url("files/" + os.path.basename(path)), path, checksum


def resolution(ref, version, url, checksum):
    return {"ref": ref, "spec": ref, "version": version, "registry": "public", "registry_url": "https://public.example/index.json",
            "source": {"type": "archive", "url": url, "checksum": checksum}, "fallback_source": None}


def write_lock(tmp_path, entry):
    lock = tmp_path / "packs.lock.yml"
    lock.write_text(yaml.safe_dump({"version": 1, "packs": [entry]}, sort_keys=False))
    return str(lock)


def install(tmp_path, args):
    play = run_tasks(tmp_path, [{MODULE: args}])
    assert play.results, play
    return play.host()[0]


def assert_refused(res, packs_dir, *words):
    assert res.get("failed") and res["error"]["kind"] == "source_error", res
    assert "Traceback" not in str(res.get("exception", "")), res  # a named error, not a crash
    for word in words:
        assert word in res["msg"], res
    assert not os.path.exists(os.path.join(packs_dir, "demo")), "installed although refused"


def test_allow_http_false_holds_for_a_lock_file(tmp_path):
    with RegistryServer(tls=False) as plain:
        url, path, checksum = serve_archive(plain, tmp_path)
        packs_dir = str(tmp_path / "packs")
        for bad_url in (url, "file://" + path):
            lock = write_lock(tmp_path, resolution("demo", "1.0.0", bad_url, checksum))
            res = install(tmp_path, {"name": "demo", "lock_file": lock, "packs_dir": packs_dir})
            assert_refused(res, packs_dir, bad_url.split("://")[0] + "://", "allow_http")
        assert plain.count() == 0, plain.requests
        # the same lock installs once allow_http says so: the refusal above is the scheme rule, not a broken setup
        lock = write_lock(tmp_path, resolution("demo", "1.0.0", url, checksum))
        res = install(tmp_path, {"name": "demo", "lock_file": lock, "packs_dir": packs_dir, "allow_http": True})
        assert res["changed"] is True and not res.get("failed"), res


def test_allow_http_false_holds_for_the_source_option(tmp_path):
    with RegistryServer(tls=False) as plain:
        url, path, checksum = serve_archive(plain, tmp_path)
        packs_dir = str(tmp_path / "packs")
        for bad_url in (url, "file://" + path):
            res = install(tmp_path, {"source": resolution("demo", "1.0.0", bad_url, checksum), "packs_dir": packs_dir})
            assert_refused(res, packs_dir, bad_url.split("://")[0] + "://", "allow_http")
        assert plain.count() == 0, plain.requests
        res = install(tmp_path, {"source": resolution("demo", "1.0.0", url, checksum), "packs_dir": packs_dir, "allow_http": True})
        assert res["changed"] is True and not res.get("failed"), res


def test_allow_http_false_holds_for_src(tmp_path):
    with RegistryServer(tls=False) as plain:
        url, _path, checksum = serve_archive(plain, tmp_path)
        packs_dir = str(tmp_path / "packs")
        res = install(tmp_path, {"name": "demo", "src": url, "checksum": checksum, "packs_dir": packs_dir})
        assert_refused(res, packs_dir, "http://", "allow_http")
        assert plain.count() == 0


def test_an_archive_src_with_credentials_is_a_named_error_without_them(tmp_path):
    with RegistryServer() as server:
        url, _path, checksum = serve_archive(server, tmp_path)
        packs_dir = str(tmp_path / "packs")
        for bad in (url.replace("https://", "https://user:%s@" % SECRET), url + "?token=" + SECRET):
            res = install(tmp_path, {"name": "demo", "src": bad, "checksum": checksum, "packs_dir": packs_dir,
                                     "ca_path": server.ca_path})
            assert_refused(res, packs_dir)
            assert SECRET not in json.dumps(res), res
        assert server.count() == 0


def test_a_registry_cookie_never_reaches_the_archive_server(tmp_path):
    with RegistryServer() as registry, RegistryServer() as source:
        url, _path, checksum = serve_archive(source, tmp_path)
        entry = synth.make_entry("demo", "1.0.0", archive_url=url, archive_checksum=checksum)
        registry.add_json("/index.json", make_index("public", [entry]), headers={"Set-Cookie": "registry_session=%s; Path=/" % SECRET})
        packs_dir = str(tmp_path / "packs")
        res = install(tmp_path, {"name": "demo", "registries": [{"name": "public", "url": registry.url("index.json")}],
                                 "ca_path": registry.ca_path, "cache_dir": str(tmp_path / "cache"), "packs_dir": packs_dir})
        assert res["changed"] is True and not res.get("failed"), res
        assert source.count("/files/" + os.path.basename(_path)) == 1
        cookies = [r.headers.get("Cookie") for r in source.requests + registry.requests]
        assert not any(cookies), cookies


def test_a_world_writable_cache_dir_is_refused(tmp_path):
    with RegistryServer() as registry:
        entry = synth.make_entry("demo", "1.0.0", archive_url="https://files.example/demo.tar.gz", archive_checksum="sha256:" + "a" * 64)
        registry.add_json("/index.json", make_index("public", [entry]))
        shared = tmp_path / "shared-cache"
        shared.mkdir()
        os.chmod(str(shared), 0o1777)
        play = run_tasks(tmp_path, [{"attune.packs.attune_pack_info": {
            "name": "demo", "registries": [{"name": "public", "url": registry.url("index.json")}], "ca_path": registry.ca_path,
            "cache_dir": str(shared)}}])
        res = play.host()[0]
        assert res.get("failed") and res["error"]["kind"] == "unsafe_cache", res
        assert str(shared) in res["msg"] and "writable by group or others" in res["msg"], res
        assert os.listdir(str(shared)) == []
        assert registry.count() == 0
