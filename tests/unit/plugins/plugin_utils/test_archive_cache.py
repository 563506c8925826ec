"""The controller's archive cache applies the index cache's trust rules (issue 8, item 1).

Archives are served by a real HTTPS server on 127.0.0.1; what a hostile local user could plant in a shared
``cache_dir`` is planted for real.
"""
import hashlib
import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._base._errors import CacheUnsafe, SourceError
from ansible_collections.attune.packs.plugins.plugin_utils._archive_cache import ArchiveCache, local_archive
from support.registry_server import RegistryServer

BODY = b"not really an archive, the cache only hashes it\n" * 100
CHECKSUM = "sha256:" + hashlib.sha256(BODY).hexdigest()
OTHER_UID = 65534

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


@pytest.fixture(scope="module")
def server():
    with RegistryServer() as srv:
        srv.add_bytes("/a.tar.gz", BODY)
        yield srv


def get(server, cache_dir, **kwargs):
    cache = ArchiveCache(str(cache_dir))
    return cache.get({"type": "archive", "url": server.url("a.tar.gz"), "checksum": CHECKSUM}, "demo",
                     verify=server.ca_path, **kwargs)


def test_download_then_reuse_in_a_private_directory(server, tmp_path):
    path = get(server, tmp_path / "cache")
    with open(path, "rb") as handle:
        assert handle.read() == BODY
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(str(tmp_path / "cache" / "archives")).st_mode & 0o777 == 0o700
    before = server.count("/a.tar.gz")
    assert get(server, tmp_path / "cache") == path
    assert server.count("/a.tar.gz") == before


@pytest.mark.parametrize("which", ["cache_dir", "archives"])
def test_a_directory_writable_by_others_is_refused(server, tmp_path, which):
    cache_dir = tmp_path / "cache"
    (cache_dir / "archives").mkdir(parents=True, mode=0o700)
    os.chmod(str(cache_dir), 0o700)
    shared = cache_dir if which == "cache_dir" else cache_dir / "archives"
    os.chmod(str(shared), 0o1777)
    before = server.count("/a.tar.gz")
    with pytest.raises(CacheUnsafe) as info:
        get(server, cache_dir)
    assert info.value.kind == "unsafe_cache" and str(shared) in str(info.value) and "writable by group or others" in str(info.value)
    assert server.count("/a.tar.gz") == before


def test_a_symlinked_archives_dir_is_refused(server, tmp_path):
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (cache_dir / "archives").symlink_to(elsewhere)
    with pytest.raises(CacheUnsafe) as info:
        get(server, cache_dir)
    assert "symbolic link" in str(info.value)
    assert os.listdir(str(elsewhere)) == []


@needs_root
def test_a_cache_dir_of_another_user_is_refused(server, tmp_path):
    cache_dir = tmp_path / "cache"
    (cache_dir / "archives").mkdir(parents=True)
    os.chmod(str(cache_dir), 0o755)
    os.chown(str(cache_dir), OTHER_UID, OTHER_UID)
    with pytest.raises(CacheUnsafe) as info:
        get(server, cache_dir)
    assert "owned by uid %d" % OTHER_UID in str(info.value)


def test_planted_lock_and_archive_symlinks_are_not_followed(server, tmp_path):
    cache_dir = tmp_path / "cache"
    archives = cache_dir / "archives"
    archives.mkdir(parents=True, mode=0o700)
    os.chmod(str(cache_dir), 0o700)
    name = CHECKSUM.replace(":", "-")
    victim = tmp_path / "victim"
    # the archive itself: a symlink to a file with the right bytes elsewhere (which could be swapped after hashing)
    outside = tmp_path / "outside.tar.gz"
    outside.write_bytes(BODY)
    os.symlink(str(victim), str(archives / (name + ".lock")))
    os.symlink(str(outside), str(archives / name))
    path = get(server, cache_dir)
    assert not os.path.lexists(str(victim)), "the lock followed a planted symlink"
    assert not os.path.islink(path) and os.path.isfile(path)
    assert outside.read_bytes() == BODY


@needs_root
def test_an_archive_of_another_user_is_replaced(server, tmp_path):
    path = get(server, tmp_path / "cache")
    os.chown(path, OTHER_UID, OTHER_UID)
    before = server.count("/a.tar.gz")
    assert get(server, tmp_path / "cache") == path
    assert os.stat(path).st_uid == os.geteuid()
    assert server.count("/a.tar.gz") == before + 1


def test_http_is_refused_unless_allowed(tmp_path):
    with RegistryServer(tls=False) as plain:
        plain.add_bytes("/a.tar.gz", BODY)
        cache = ArchiveCache(str(tmp_path / "cache"))
        source = {"type": "archive", "url": plain.url("a.tar.gz"), "checksum": CHECKSUM}
        with pytest.raises(SourceError) as info:
            cache.get(source, "demo")
        assert "allow_http" in str(info.value)
        assert plain.count("/a.tar.gz") == 0
        assert os.path.isfile(cache.get(source, "demo", allow_http=True))


# -- issue 19 item 3: file:// archives of the task's own file:// registry, nothing else ----------------------------

def test_the_controller_reads_a_local_archive_only_beside_its_own_file_registry(tmp_path):
    mirror = tmp_path / "mirror"
    (mirror / "packs").mkdir(parents=True)
    (mirror / "packs" / "a.tar.gz").write_bytes(BODY)
    registry = "file://%s/index.json" % mirror
    request = {"ref": "demo", "registry_url": registry,
               "source": {"type": "archive", "url": "file://%s/packs/a.tar.gz" % mirror, "checksum": CHECKSUM}}
    assert local_archive(request, [registry]) is True
    path = ArchiveCache(str(tmp_path / "cache")).get(request["source"], "demo", allow_file=True)
    with open(path, "rb") as handle:
        assert handle.read() == BODY
    # a host naming a registry the controller was not given, or a file outside the registry's directory
    assert local_archive(request, ["https://registry.example/index.json"]) is False
    assert local_archive(dict(request, registry_url=None), [registry]) is False
    outside = dict(request, source=dict(request["source"], url="file://%s/../secret" % mirror))
    assert local_archive(outside, [registry]) is False
    # and without the permission the cache refuses file:// (as without allow_http before)
    with pytest.raises(SourceError) as info:
        ArchiveCache(str(tmp_path / "cache2")).get(request["source"], "demo")
    assert "file://" in str(info.value)
