"""The index cache trusts nothing it did not write itself (issue 8, items 1 and 11).

Every test plants what a hostile local user could plant (a shared 0777/1777 directory, an entry of another user, a
symlinked directory or lock, an mtime far in the future, a refresh between reading the header and the entries) and
checks that the cache refuses or bypasses it.  The tests run as any user; the "another user" cases need root
(chown) and are skipped otherwise.
"""
import multiprocessing
import os
import time

import pytest

from ansible_collections.attune.packs.plugins.module_utils._registry._cache import CacheCorrupt, IndexCache
from ansible_collections.attune.packs.plugins.module_utils._base._errors import CacheUnsafe

URL = "https://registry.example/index.json"
OTHER_UID = 65534  # nobody

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")


def entry(ref, version="1.0.0"):
    return {"ref": ref, "version": version, "label": ref, "description": "pack " + ref, "author": "a", "keywords": [],
            "install_sources": []}


def index(*refs):
    return {"registry_name": "r", "registry_url": "https://r.example", "version": "1.0", "last_updated": "2026-01-01T00:00:00Z",
            "packs": [entry(ref) for ref in refs]}


def planted(directory, refs=("evil",)):
    """What an attacker who can write ``directory`` plants: a salt and an entry for our key (they chose the salt)."""
    cache = IndexCache(str(directory))
    key = cache.key(URL)
    cache.store(key, index(*refs), URL)
    return key


# -- the cache directory --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o702])
def test_a_directory_writable_by_others_is_refused(tmp_path, mode):
    shared = tmp_path / "shared"
    shared.mkdir()
    key = planted(shared)
    os.chmod(str(shared), mode)
    with pytest.raises(CacheUnsafe) as info:
        IndexCache(str(shared)).load(key)
    assert info.value.kind == "unsafe_cache"
    assert str(shared) in str(info.value) and "writable by group or others" in str(info.value), info.value
    assert oct(mode)[2:] in str(info.value)


@needs_root
def test_a_directory_of_another_user_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    key = planted(theirs)
    os.chmod(str(theirs), 0o755)
    os.chown(str(theirs), OTHER_UID, OTHER_UID)
    with pytest.raises(CacheUnsafe) as info:
        IndexCache(str(theirs)).load(key)
    assert str(theirs) in str(info.value) and "owned by uid %d" % OTHER_UID in str(info.value), info.value


def test_a_symlinked_cache_dir_is_refused_and_nothing_is_written_through_it(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "cache"
    link.symlink_to(target)
    cache = IndexCache(str(link))
    with pytest.raises(CacheUnsafe) as info:
        cache.store("k" * 64, index("demo"), URL)
    assert "symbolic link" in str(info.value) and str(link) in str(info.value)
    with pytest.raises(CacheUnsafe):
        cache.key(URL)
    assert os.listdir(str(target)) == []


def test_a_missing_directory_is_created_private(tmp_path):
    cache = IndexCache(str(tmp_path / "a" / "cache"))
    key = cache.key(URL)
    cache.store(key, index("demo"), URL)
    assert os.stat(str(tmp_path / "a" / "cache")).st_mode & 0o777 == 0o700
    assert cache.load(key)[0].entries("demo")[0]["ref"] == "demo"


# -- entries inside our own directory -------------------------------------------------------------------


@needs_root
def test_an_entry_of_another_user_is_bypassed(tmp_path):
    cache = IndexCache(str(tmp_path / "cache"))
    key = cache.key(URL)
    cache.store(key, index("evil"), URL)
    os.chown(cache.path(key), OTHER_UID, OTHER_UID)
    assert cache.load(key) is None
    assert not os.path.exists(cache.path(key))  # dropped: the next store writes our own


def test_an_entry_writable_by_others_is_bypassed(tmp_path):
    cache = IndexCache(str(tmp_path / "cache"))
    key = cache.key(URL)
    cache.store(key, index("evil"), URL)
    os.chmod(cache.path(key), 0o666)
    assert cache.load(key) is None


def test_a_symlinked_entry_is_not_followed(tmp_path):
    cache = IndexCache(str(tmp_path / "cache"))
    elsewhere = IndexCache(str(tmp_path / "other"))
    key = cache.key(URL)
    other_key = elsewhere.key(URL)
    elsewhere.store(other_key, index("evil"), URL)
    os.symlink(elsewhere.path(other_key), cache.path(key))
    assert cache.load(key) is None
    assert os.path.exists(elsewhere.path(other_key))


def test_a_planted_lock_symlink_is_not_followed(tmp_path):
    cache = IndexCache(str(tmp_path / "cache"))
    key = cache.key(URL)
    victim = tmp_path / "victim-file"
    os.symlink(str(victim), os.path.join(str(tmp_path / "cache"), key + ".lock"))
    with cache.lock(key):
        pass
    assert not os.path.lexists(str(victim)), "the lock followed a planted symlink and created its target"
    assert not os.path.islink(os.path.join(str(tmp_path / "cache"), key + ".lock"))


def test_a_symlinked_salt_is_not_followed(tmp_path):
    directory = tmp_path / "cache"
    directory.mkdir(mode=0o700)
    known = tmp_path / "known-salt"
    known.write_text("0" * 64)
    os.symlink(str(known), str(directory / ".salt"))
    cache = IndexCache(str(directory))
    assert cache.salt() != b"0" * 64
    assert known.read_text() == "0" * 64


def test_a_future_mtime_is_stale(tmp_path):
    cache = IndexCache(str(tmp_path / "cache"), ttl=3600)
    key = cache.key(URL)
    cache.store(key, index("demo"), URL)
    ten_years = time.time() + 10 * 365 * 86400
    os.utime(cache.path(key), (ten_years, ten_years))
    view, mtime = cache.load(key)
    assert cache.is_fresh(mtime) is False
    assert cache.is_fresh(time.time() - 10) is True


# -- item 11: a refresh between the header and the entries ------------------------------------------------


def _refresh(directory, key):
    # another process (a fork of the same play) refreshes the entry: same header length, so the offsets of the old
    # header now point at the entry of another pack
    IndexCache(directory).store(key, index("evil", "other"), URL)


def test_entries_come_from_the_file_the_header_was_read_from(tmp_path):
    directory = str(tmp_path / "cache")
    cache = IndexCache(directory)
    key = cache.key(URL)
    cache.store(key, index("demo", "other"), URL)
    view, _mtime = cache.load(key)          # header read (summary rows and offsets of the old file)
    child = multiprocessing.get_context("fork").Process(target=_refresh, args=(directory, key))
    child.start()
    child.join(60)
    assert child.exitcode == 0
    entries = view.entries("demo")          # entries read by offset after the refresh
    assert [e["ref"] for e in entries] == ["demo"], "asked for demo, got entries with ref %s" % [e["ref"] for e in entries]
    # a fresh load sees the refreshed index
    assert cache.load(key)[0].entries("evil")[0]["ref"] == "evil"


def test_an_entry_whose_ref_does_not_match_its_row_is_corrupt(tmp_path):
    cache = IndexCache(str(tmp_path / "cache"))
    key = cache.key(URL)
    view = cache.store(key, index("demo", "evil"), URL)
    first, second = view.summaries
    view.summaries[0] = first._replace(offset=second.offset, length=second.length)
    view.summaries[1] = second._replace(offset=first.offset, length=first.length)
    with pytest.raises(CacheCorrupt):
        view.entries("demo")
