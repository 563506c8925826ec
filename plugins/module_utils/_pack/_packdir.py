# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the packs_dir store: layout, provenance records, locking, recovery, activation, removal (may change without notice).

The on-disk install target of ``attune_pack`` (``_install.PacksDirBackend``) and what ``attune_pack_installed``
lists and verifies on a host.  What makes a tree a valid pack (ref, pack.yaml, archive preparation) is not
decided here: those rules are ``_pack_yaml``'s, shared with the upload to a running Attune.

Layout of ``packs_dir``::

    packs_dir/
      <ref>/                         an installed pack: exactly the verified files, nothing added
      .attune/<ref>.json             provenance of <ref> written by this collection
      .attune/<ref>.json.new         provenance of a tree being activated (journal, see below)
      .attune-staging-<ref>-<rand>/  work area of a running operation
      .attune-old-<ref>-<rand>/      previous version during a swap (fallback mode)
      .attune-trash-<ref>-<rand>/    a tree being deleted

Provenance lives *outside* the pack tree, so the tree's framed directory
checksum (what Attune computes when it registers a pack from disk, storage.rs
``calculate_directory_checksum``) is the registry's checksum for a git
source.  Each record holds ``tree_checksum`` (framed checksum of the whole
installed tree) and ``tree_inode`` (inode of the ``<ref>`` directory, which a
rename keeps) with ``tree_generation`` (the file system's generation of that
inode, where it keeps one: a directory deleted and made again at once gets the
same inode number but another generation), so a record can always be matched
with the tree it describes.
Packs installed by 0.1.0 kept the record in ``<ref>/.attune/metadata.json``;
they are read as they are and migrated by :func:`recover` (record moved out,
``<ref>/.attune`` removed from the tree).

Activation (:meth:`Staging.activate`):

1. the new tree is put in ``.attune-staging-<ref>-<rand>/tree`` (renamed there
   when it was extracted into the same staging directory, copied otherwise),
   its checksum and inode recorded in ``.attune/<ref>.json.new`` (written to a
   temporary file, fsynced, renamed), every file and directory fsynced;
2. swap: on Linux ``renameat2(RENAME_EXCHANGE)`` exchanges the staged tree and
   ``<ref>`` in one atomic step, so at every instant ``<ref>`` is either the
   complete old or the complete new version.  Where exchange is unavailable
   the swap is ``<ref>`` -> ``.attune-old-<ref>-<rand>``, staged -> ``<ref>``;
   a process killed between those two renames leaves no ``<ref>`` but a
   complete ``.attune-old-…``, which :func:`recover` renames back;
3. ``.attune/<ref>.json.new`` is renamed over ``.attune/<ref>.json``;
4. the previous version is deleted (renamed to ``.attune-trash-…`` first, so a
   partially deleted tree is never mistaken for a restorable one).

A kill between 2 and 3 leaves the new tree with a pending record: readers
take the pending record when its ``tree_inode`` is the inode of ``<ref>``
(the swap happened), else the committed one, and :func:`recover` commits or
drops it the same way.  A record whose ``tree_inode`` is not the tree's (the
directory was replaced by hand, restored from a backup, or copied) is checked
against the tree's framed checksum: equal, it is re-linked; different, it
describes another tree and is not trusted (readers report it, ``recover``
deletes it, so the pack counts as unmanaged and is reinstalled when named).
A removal renames the tree away first and deletes the record after; a record
without a tree is deleted by ``recover``.

Typical use by a module (archive source; a git source clones into
``stage.workdir('git')`` with ``_git.clone`` and activates ``checkout.tree``)::

    with staging(packs_dir, ref) as stage:                # lock + recover + fresh staging dir
        with open(stage.workdir('download'), 'wb') as f:  # same file system as packs_dir
            download(url, f, hashers=[hasher], ...)
        checksum.verify(hasher.hexdigest(), ...)
        root, pack_yaml, _stats = _extract.prepare_archive(stage.workdir('download'), stage.workdir('extract'),
                                                           ref, version, pack=ref)
        result = stage.activate(root, build_metadata(ref, version, source, checksum, ...))
    # result: {'path', 'metadata', 'previous'}; nothing is left in packs_dir but <ref>

:func:`recover` runs at the start of every operation (under the same lock):
it restores ``<ref>`` from the newest ``.attune-old-<ref>-*`` when ``<ref>`` is
missing, deletes every other leftover of that ref, then reconciles the
provenance record with the tree (see above) and migrates a 0.1.0 record.  All operations hold
an exclusive ``flock`` on ``packs_dir`` itself (no lock file is left behind),
so a concurrent run never deletes another run's staging directory.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import re
import shutil
import stat
import struct
import sys
import time

from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import BLOCK_SIZE, framed_dir_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, InvalidPackStructure, UnsafeArchive
from ansible_collections.attune.packs.plugins.module_utils._base._fs import atomic_write, fsync_dir, is_temp_of, remove_tree
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import load_pack_yaml, read_small_file, validate_ref
from ansible_collections.attune.packs.plugins.module_utils._registry._version import REF_PATTERN

META_DIR = ".attune"  # packs_dir/.attune/<ref>.json; in a tree installed by 0.1.0: <ref>/.attune/metadata.json
METADATA_FILE = "metadata.json"  # name of the 0.1.0 record inside the tree
RECORD_SUFFIX = ".json"
PENDING_SUFFIX = ".json.new"
MIGRATED_FROM = "0.1.0 (inside the pack tree)"
METADATA_FORMAT = 1
METADATA_MAX_BYTES = 1024 * 1024
DEFAULT_LOCK_TIMEOUT = 600
DIR_MODE = 0o755
FILE_MODE = 0o644
FSYNC_THREADS = 8  # threads that fsync the files of a new tree (see _fsync_tree)
EXEC_MODE = 0o755

_LEFTOVER = re.compile(r"^\.attune-(?P<kind>staging|old|trash)-(?P<ref>[a-z][a-z0-9_-]*)-(?P<rand>[0-9a-f]{8})$")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

# Set to False to force the two-rename fallback (tests exercise both paths).
USE_RENAME_EXCHANGE = True


def _noop(_name):
    return None


# --------------------------------------------------------------------------
# checksums


def tree_checksum(root, algorithm="sha256", legacy=False):
    """Framed directory checksum of an installed tree, ``algo:hex`` (Attune: storage.rs ``calculate_directory_checksum``).

    ``legacy``: the tree was installed by 0.1.0 and still holds its record in a top-level ``.attune`` (left out).
    """
    return "%s:%s" % (algorithm, framed_dir_checksum(root, algorithm, exclude_top=(META_DIR,) if legacy else ()))


# --------------------------------------------------------------------------
# low-level file system helpers


def _fsync_file(path):
    fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root):
    """fsync every file and directory below ``root`` (and ``root``), files first.

    Files are synced by a few threads (``fsync`` releases the GIL), so the
    file system commits many of them per journal transaction instead of one
    transaction per file; directories follow once their files are durable.
    """
    files, directories = [], []
    for dirpath, _dirnames, filenames in os.walk(root):
        files.extend(os.path.join(dirpath, name) for name in filenames)
        directories.append(dirpath)
    if len(files) < 2 * FSYNC_THREADS:
        for path in files:
            _fsync_file(path)
    else:
        import concurrent.futures  # pylint: disable=import-outside-toplevel

        with concurrent.futures.ThreadPoolExecutor(max_workers=FSYNC_THREADS) as pool:
            for _done in pool.map(_fsync_file, files):
                pass
    for dirpath in directories:
        fsync_dir(dirpath)


def _new_leftover_name(packs_dir, kind, ref):
    while True:
        name = ".attune-%s-%s-%s" % (kind, ref, os.urandom(4).hex())
        if not os.path.lexists(os.path.join(packs_dir, name)):
            return os.path.join(packs_dir, name)


def _is_within(path, parent):
    path = os.path.realpath(path)
    parent = os.path.realpath(parent)
    return path == parent or path.startswith(parent.rstrip(os.sep) + os.sep)


def _copy_tree(src, dst, checkpoint, rel=""):
    """Copy regular files and directories, skipping ``.git``; refuse anything else."""
    os.mkdir(dst, 0o700)
    with os.scandir(src) as entries:
        items = sorted(entries, key=lambda e: e.name)
    for entry in items:
        if entry.name == ".git":
            continue
        relname = rel + entry.name
        mode = entry.stat(follow_symlinks=False).st_mode
        source = os.path.join(src, entry.name)
        target = os.path.join(dst, entry.name)
        if stat.S_ISDIR(mode):
            _copy_tree(source, target, checkpoint, relname + "/")
        elif stat.S_ISREG(mode):
            in_fd = os.open(source, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
            with os.fdopen(in_fd, "rb") as fsrc:
                out_fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
                with os.fdopen(out_fd, "wb") as fdst:
                    shutil.copyfileobj(fsrc, fdst, BLOCK_SIZE)
                    os.fchmod(fdst.fileno(), EXEC_MODE if mode & stat.S_IXUSR else FILE_MODE)
            checkpoint("copied-file")
        else:
            kind = "a symlink" if stat.S_ISLNK(mode) else "a special file"
            raise UnsafeArchive("the source tree contains %s: %s (only regular files and directories are allowed)" % (kind, relname))
    os.chmod(dst, DIR_MODE)


def copy_tree(src, dst, checkpoint=None, pack=None):
    """Copy a local source tree to ``dst`` (which must not exist) as :meth:`Staging.activate` would copy it."""
    if _is_within(dst, src):
        raise AttuneError("cannot install %s: it contains the destination %s" % (src, dst), pack=pack)
    try:
        _copy_tree(src, dst, checkpoint or _noop)
    except UnsafeArchive as exc:
        raise UnsafeArchive(exc.message, pack=pack)


def _check_tree(root, rel=""):
    """Vet a tree that was moved (not copied) into staging, like :func:`_copy_tree` would.

    Symlinks and special files are refused, ``.git`` entries removed (a git
    checkout's metadata is not part of the pack) and modes normalised
    (directories 0755, files 0644 or 0755 when executable by their owner).
    """
    with os.scandir(root) as entries:
        items = list(entries)
    for entry in items:
        mode = entry.stat(follow_symlinks=False).st_mode
        if entry.name == ".git" and (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
            remove_tree(entry.path)
        elif stat.S_ISDIR(mode):
            _check_tree(entry.path, rel + entry.name + "/")
        elif stat.S_ISREG(mode):
            wanted = EXEC_MODE if mode & stat.S_IXUSR else FILE_MODE
            if stat.S_IMODE(mode) != wanted:
                os.chmod(entry.path, wanted)
        else:
            kind = "a symlink" if stat.S_ISLNK(mode) else "a special file"
            raise UnsafeArchive("the pack tree contains %s: %s%s" % (kind, rel, entry.name))
    os.chmod(root, DIR_MODE)


# renameat2(RENAME_EXCHANGE) ------------------------------------------------

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYSCALL_RENAMEAT2 = {"x86_64": 316, "aarch64": 276, "ppc64le": 357, "s390x": 347}
_exchange_func = None
_exchange_unsupported = False


def _load_exchange():
    global _exchange_func, _exchange_unsupported  # pylint: disable=global-statement
    if _exchange_func is not None or _exchange_unsupported:
        return _exchange_func
    if not sys.platform.startswith("linux"):
        _exchange_unsupported = True
        return None
    try:
        import ctypes
        import platform

        libc = ctypes.CDLL(None, use_errno=True)
        func = getattr(libc, "renameat2", None)
        if func is not None:
            func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
            func.restype = ctypes.c_int

            def call(old, new):
                return func(_AT_FDCWD, old, _AT_FDCWD, new, _RENAME_EXCHANGE)
        else:
            number = _SYSCALL_RENAMEAT2.get(platform.machine())
            if number is None:
                _exchange_unsupported = True
                return None
            syscall = libc.syscall
            syscall.restype = ctypes.c_long

            def call(old, new):
                return syscall(
                    ctypes.c_long(number), ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(old), ctypes.c_int(_AT_FDCWD), ctypes.c_char_p(new),
                    ctypes.c_uint(_RENAME_EXCHANGE)
                )

        def exchange(old, new):
            if call(os.fsencode(old), os.fsencode(new)) == 0:
                return
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), old, None, new)

        _exchange_func = exchange
    except Exception:  # pylint: disable=broad-except  # ctypes may be unusable on hardened hosts
        _exchange_unsupported = True
        return None
    return _exchange_func


def _exchange(old, new):
    """Atomically exchange two paths; False when the platform or file system cannot."""
    global _exchange_unsupported  # pylint: disable=global-statement
    if not USE_RENAME_EXCHANGE:
        return False
    func = _load_exchange()
    if func is None:
        return False
    try:
        func(old, new)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EPERM):
            _exchange_unsupported = True
            return False
        raise
    return True


# locking -------------------------------------------------------------------

_HELD_LOCKS = {}


@contextlib.contextmanager
def locked(packs_dir, timeout=DEFAULT_LOCK_TIMEOUT):
    """Hold an exclusive ``flock`` on ``packs_dir`` (re-entrant within this process)."""
    key = os.path.realpath(packs_dir)
    held = _HELD_LOCKS.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    fd = os.open(packs_dir, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
                if time.monotonic() >= deadline:
                    raise AttuneError("another operation is still running in %s (waited %ds for its lock)" % (packs_dir, timeout))
                time.sleep(0.05)
        _HELD_LOCKS[key] = [fd, 1]
        try:
            yield
        finally:
            del _HELD_LOCKS[key]
    finally:
        os.close(fd)


# --------------------------------------------------------------------------
# metadata


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_metadata(ref, version, source, checksum=None, registry=None, registry_url=None, spec=None, commit=None, installed_at=None):
    """Provenance record (attune-format.md section 5, plus ``spec`` and ``registry_url``).

    ``source`` is an install source mapping (``type`` and ``url``, ``ref`` for
    git, or ``path`` for local sources); URLs are stored without
    credentials or query strings.  ``tree_checksum`` is added on activation.
    """
    installed_from = {"type": source.get("type")}
    if source.get("url"):
        installed_from["url"] = redact_url(source["url"])
    for key in ("ref", "path"):
        if source.get(key):
            installed_from[key] = source[key]
    if commit:
        installed_from["commit"] = commit
    return {
        "pack_ref": ref,
        "version": version,
        "installed_at": installed_at or utc_now(),
        "installed_from": installed_from,
        "checksum": str(checksum) if checksum is not None else None,
        "registry": registry,
        "registry_url": redact_url(registry_url) if registry_url else None,
        "spec": spec,
    }


def metadata_path(packs_dir, ref):
    """Where the provenance of ``ref`` is kept: ``<packs_dir>/.attune/<ref>.json`` (outside the pack tree)."""
    return os.path.join(packs_dir, META_DIR, validate_ref(ref) + RECORD_SUFFIX)


def pending_metadata_path(packs_dir, ref):
    return os.path.join(packs_dir, META_DIR, validate_ref(ref) + PENDING_SUFFIX)


def legacy_metadata_path(packs_dir, ref):
    """Where 0.1.0 kept it: ``<packs_dir>/<ref>/.attune/metadata.json`` (inside the tree)."""
    return os.path.join(packs_dir, validate_ref(ref), META_DIR, METADATA_FILE)


def _read_record(path, shown, ref):
    data = read_small_file(path, METADATA_MAX_BYTES, shown, ref)
    if data is None:
        return None
    try:
        content = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise InvalidPackStructure("%s is not valid JSON: %s" % (shown, exc), pack=ref, cause=exc)
    if not isinstance(content, dict):
        raise InvalidPackStructure("%s is not a JSON object" % shown, pack=ref)
    return content


# _IOR('v', 1, long): the inode's generation number, which the file system changes when it reuses an inode number
FS_IOC_GETVERSION = 0x80087601


def _tree_identity(path):
    """``(inode, generation)`` of the ``<ref>`` directory, or None when it is not a directory.

    An inode number alone does not tell a tree from the one that replaced it: ext4 gives a directory created right
    after ``rm -r`` the same number.  The generation (``FS_IOC_GETVERSION``: ext4, xfs, btrfs, ...) differs then; it is
    None where the file system has none, and the inode number decides alone, as before.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        try:
            st = os.lstat(path)  # a directory this user may not open (mode 0): still a tree, known by its inode
        except OSError:
            return None
        return (st.st_ino, None) if stat.S_ISDIR(st.st_mode) else None
    try:
        try:
            generation = struct.unpack("q", fcntl.ioctl(fd, FS_IOC_GETVERSION, b"\0" * 8))[0]
        except (OSError, struct.error):
            generation = None
        return os.fstat(fd).st_ino, generation
    finally:
        os.close(fd)


def _same_tree(record, identity):
    """Does ``record`` describe the directory whose identity is ``identity`` (records without a generation, written
    before it was recorded or where there is none: by inode number)?"""
    if identity is None or record.get("tree_inode") != identity[0]:
        return False
    recorded = record.get("tree_generation")
    return recorded is None or identity[1] is None or recorded == identity[1]


def _stamp(record, identity):
    record["tree_inode"] = identity[0] if identity else None
    record["tree_generation"] = identity[1] if identity else None
    return record


def _read_pending(packs_dir, ref):
    try:
        return _read_record(pending_metadata_path(packs_dir, ref), "%s/%s%s" % (META_DIR, ref, PENDING_SUFFIX), ref)
    except AttuneError:
        return None  # a torn journal never describes an activated tree (the record is renamed into place complete)


def _same_content(tree, record, legacy=False):
    expected = record.get("tree_checksum")
    if not isinstance(expected, str) or ":" not in expected:
        return False
    try:
        return tree_checksum(tree, expected.partition(":")[0], legacy=legacy) == expected
    except (AttuneError, ValueError, OSError):
        return False


def provenance(packs_dir, ref):
    """``(record, layout)`` for an installed ref without changing anything; layout is 'pending', 'outside', 'legacy' or None.

    Raises :class:`InvalidPackStructure` when the record is unreadable or describes another tree.
    """
    tree = os.path.join(packs_dir, validate_ref(ref))
    identity = _tree_identity(tree)
    if identity is None:
        return None, None
    if os.path.lexists(pending_metadata_path(packs_dir, ref)):
        pending = _read_pending(packs_dir, ref)
        if pending is not None and _same_tree(pending, identity):
            return pending, "pending"  # killed between the swap and the commit of the record
    shown = "%s/%s%s" % (META_DIR, ref, RECORD_SUFFIX)
    record = _read_record(metadata_path(packs_dir, ref), shown, ref)
    if record is not None:
        if not _same_tree(record, identity) and not _same_content(tree, record):
            raise InvalidPackStructure("provenance %s describes another tree than %s (the directory was replaced since it was installed)"
                                       % (shown, tree), pack=ref)
        return record, "outside"
    record = _read_record(legacy_metadata_path(packs_dir, ref), "%s/%s/%s" % (ref, META_DIR, METADATA_FILE), ref)
    if record is not None:
        return record, "legacy"
    return None, None


def read_metadata(packs_dir, ref):
    """Provenance of an installed pack, or None when it has none (or is not installed)."""
    return provenance(packs_dir, ref)[0]


def _write_record(packs_dir, name, record):
    """Write ``packs_dir/.attune/<name>`` atomically and durably (temporary file, fsync, rename, fsync)."""
    directory = os.path.join(packs_dir, META_DIR)
    try:
        os.mkdir(directory, DIR_MODE)
    except FileExistsError:
        pass
    if not stat.S_ISDIR(os.lstat(directory).st_mode):
        raise AttuneError("%s is not a directory" % directory)
    payload = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")
    with atomic_write(os.path.join(directory, name), mode=FILE_MODE) as handle:
        handle.write(payload)


def _remove_empty_records_dir(packs_dir):
    try:
        os.rmdir(os.path.join(packs_dir, META_DIR))
    except OSError:  # records of other packs (ENOTEMPTY), or none at all
        return
    fsync_dir(packs_dir)


def _unlink(path):
    try:
        os.unlink(path)
        return True
    except FileNotFoundError:
        return False


def _installed_entry(packs_dir, ref):
    path = os.path.join(packs_dir, ref)
    entry = {"ref": ref, "path": path, "managed": False, "version": None, "metadata": None, "error": None}
    try:
        entry["metadata"] = read_metadata(packs_dir, ref)
    except AttuneError as exc:
        entry["error"] = exc.message
    if entry["metadata"] is not None:
        entry["managed"] = True
        entry["version"] = entry["metadata"].get("version")
    else:
        try:
            entry["version"] = load_pack_yaml(path, pack=ref).get("version")
        except AttuneError as exc:
            entry["error"] = entry["error"] or exc.message
    return entry


def installed(packs_dir, ref):
    """Entry of :func:`list_installed` for one ref, or None when ``packs_dir/<ref>`` does not exist."""
    validate_ref(ref)
    path = os.path.join(packs_dir, ref)
    if not os.path.isdir(path):
        return None
    return _installed_entry(packs_dir, ref)


def list_installed(packs_dir):
    """Installed packs in ``packs_dir``, sorted by ref.

    Each item: ``ref``, ``path``, ``managed`` (has our metadata), ``version``
    (from the metadata, else from pack.yaml), ``metadata`` and ``error``
    (a problem reading them, or None).  Staging and other leftovers are not
    listed.
    """
    try:
        names = os.listdir(packs_dir)
    except FileNotFoundError:
        return []
    result = []
    for name in sorted(names):
        if not REF_PATTERN.fullmatch(name) or not os.path.isdir(os.path.join(packs_dir, name)):
            continue
        result.append(_installed_entry(packs_dir, name))
    return result


def verify_installed(packs_dir, ref):
    """Recompute the tree checksum of an installed pack and compare it with its metadata.

    Returns ``{"ref", "ok", "expected", "actual", "reason"}``; ``ok`` is None when
    there is nothing to compare with (no metadata or no recorded checksum).
    """
    validate_ref(ref)
    result = {"ref": ref, "ok": None, "expected": None, "actual": None, "reason": None}
    path = os.path.join(packs_dir, ref)
    if not os.path.isdir(path):
        result["reason"] = "not installed"
        return result
    try:
        metadata, layout = provenance(packs_dir, ref)
    except AttuneError as exc:
        result["reason"] = exc.message
        return result
    expected = (metadata or {}).get("tree_checksum")
    if not expected:
        result["reason"] = "no recorded tree checksum"
        return result
    result["expected"] = expected
    algorithm = expected.partition(":")[0] or "sha256"
    try:
        result["actual"] = tree_checksum(path, algorithm, legacy=(layout == "legacy"))
    except (AttuneError, ValueError) as exc:
        result["ok"] = False
        result["reason"] = getattr(exc, "message", str(exc))
        return result
    except OSError as exc:  # unreadable file, path too long, tree replaced while walking: not verified
        result["ok"] = False
        result["reason"] = "cannot read the installed tree: %s" % (exc.strerror or exc)
        return result
    result["ok"] = result["actual"] == expected
    if not result["ok"]:
        result["reason"] = "files differ from what was installed"
    return result


def modified(packs_dir, ref):
    """Why the files of a managed pack differ from its record (``attune_pack verify``), or None.

    None also when there is nothing to compare with (no record, no recorded ``tree_checksum``): such a pack is not
    judged here.  Reads the whole tree (:func:`verify_installed`), never the network.
    """
    check = verify_installed(packs_dir, ref)
    if check["ok"] is not False:
        return None
    if check["actual"]:
        return "%s (tree checksum %s, recorded %s)" % (check["reason"], check["actual"], check["expected"])
    return check["reason"]


# --------------------------------------------------------------------------
# recovery, staging, activation, removal


def recover(packs_dir, ref=None, refs=None):
    """Finish or undo what an interrupted operation left in ``packs_dir``; return the actions taken.

    For each ref (every ref, or only ``ref``, or only those in ``refs``): when
    ``packs_dir/<ref>`` is missing and a ``.attune-old-<ref>-*`` exists, the
    newest one is renamed back; every other staging, old or trash directory of
    the ref is deleted.  Then the provenance record is reconciled with the
    tree (:func:`_reconcile`).  One lock and one directory listing whatever the count.
    """
    wanted = None if ref is None and refs is None else set([ref] if ref is not None else refs)
    for name in wanted or ():
        validate_ref(name)
    actions = []
    if not os.path.isdir(packs_dir):
        return actions
    with locked(packs_dir):
        groups = {}
        listing = os.listdir(packs_dir)
        for name in listing:
            match = _LEFTOVER.fullmatch(name)
            if match is None or (wanted is not None and match.group("ref") not in wanted):
                continue
            groups.setdefault(match.group("ref"), []).append((match.group("kind"), name))
        for group_ref in sorted(groups):
            items = groups[group_ref]
            target = os.path.join(packs_dir, group_ref)
            olds = [name for kind, name in items if kind == "old"]
            restored = None
            if olds and not os.path.lexists(target):
                olds.sort(key=lambda n: os.lstat(os.path.join(packs_dir, n)).st_ctime, reverse=True)
                restored = olds[0]
                os.rename(os.path.join(packs_dir, restored), target)
                fsync_dir(packs_dir)
                actions.append("restored %s from %s" % (group_ref, restored))
            for kind, name in sorted(items):
                if name == restored:
                    continue
                path = os.path.join(packs_dir, name)
                if kind == "old":
                    trash = _new_leftover_name(packs_dir, "trash", group_ref)
                    os.rename(path, trash)
                    path = trash
                remove_tree(path)
                actions.append("removed %s" % name)
        if actions:
            fsync_dir(packs_dir)
        if wanted is None:
            scope = set(name for name in listing if REF_PATTERN.fullmatch(name)) | set(groups)
            try:
                records = os.listdir(os.path.join(packs_dir, META_DIR))
            except OSError:
                records = []
            for name in records:
                base = name[1:].split(".json", 1)[0] if name.startswith(".") else name.split(".json", 1)[0]
                if REF_PATTERN.fullmatch(base):
                    scope.add(base)
        else:
            scope = wanted
        for name in sorted(scope):
            _reconcile(packs_dir, name, actions)
    return actions


def _reconcile(packs_dir, ref, actions):
    """Make ``.attune/<ref>.json`` describe ``<ref>`` (under the lock): commit or drop a pending record, delete a
    record without a tree or describing another tree, re-link a record to a moved tree, migrate a 0.1.0 record."""
    directory = os.path.join(packs_dir, META_DIR)
    tree = os.path.join(packs_dir, ref)
    record_path = metadata_path(packs_dir, ref)
    pending_path = pending_metadata_path(packs_dir, ref)
    if not os.path.isdir(directory):
        if os.path.lexists(legacy_metadata_path(packs_dir, ref)) and not os.path.islink(tree):
            _migrate(packs_dir, ref, actions)
        return
    for name in os.listdir(directory):  # temporary files of a killed write
        if is_temp_of(name, ref + RECORD_SUFFIX) or is_temp_of(name, ref + PENDING_SUFFIX):
            _unlink(os.path.join(directory, name))
    identity = _tree_identity(tree)
    if os.path.lexists(pending_path):
        pending = _read_pending(packs_dir, ref)
        if pending is not None and _same_tree(pending, identity):
            os.rename(pending_path, record_path)
            actions.append("committed the provenance of %s (the swap had happened)" % ref)
        else:
            _unlink(pending_path)
            actions.append("dropped the pending provenance of %s (the swap had not happened)" % ref)
        fsync_dir(directory)
    if os.path.lexists(record_path):
        if identity is None:
            _unlink(record_path)
            fsync_dir(directory)
            _remove_empty_records_dir(packs_dir)
            actions.append("removed the provenance of %s: the pack is not installed" % ref)
            return
        try:
            record = _read_record(record_path, record_path, ref)
        except AttuneError:
            return  # reported by readers; a reinstall replaces it
        if not _same_tree(record, identity):
            if _same_content(tree, record):
                _stamp(record, identity)
                _write_record(packs_dir, ref + RECORD_SUFFIX, record)
                actions.append("re-linked the provenance of %s to its tree" % ref)
            else:
                _unlink(record_path)
                fsync_dir(directory)
                actions.append("removed the provenance of %s: it describes another tree" % ref)
                return
        if record.get("migrated_from") and os.path.lexists(legacy_metadata_path(packs_dir, ref)):
            _drop_legacy(packs_dir, ref, actions)  # a migration killed before it removed the old record
        return
    if identity is not None and os.path.lexists(legacy_metadata_path(packs_dir, ref)):
        _migrate(packs_dir, ref, actions)


def _migrate(packs_dir, ref, actions):
    """0.1.0 -> now: copy ``<ref>/.attune/metadata.json`` to ``.attune/<ref>.json`` then remove ``<ref>/.attune``."""
    try:
        record = _read_record(legacy_metadata_path(packs_dir, ref), "%s/%s/%s" % (ref, META_DIR, METADATA_FILE), ref)
    except AttuneError:
        return  # unreadable: reported by readers, and the pack is reinstalled when named
    if not record or record.get("pack_ref") != ref:
        return
    record = _stamp(dict(record), _tree_identity(os.path.join(packs_dir, ref)))
    record["migrated_from"] = MIGRATED_FROM
    # 0.1.0's tree_checksum left the top-level .attune out: it is the checksum of the tree once that is removed
    _write_record(packs_dir, ref + RECORD_SUFFIX, record)
    actions.append("moved the provenance of %s out of the pack tree" % ref)
    _drop_legacy(packs_dir, ref, actions)


def _drop_legacy(packs_dir, ref, actions):
    inner = os.path.join(packs_dir, ref, META_DIR)
    trash = _new_leftover_name(packs_dir, "trash", ref)
    os.rename(inner, trash)
    fsync_dir(os.path.join(packs_dir, ref))
    remove_tree(trash)
    actions.append("removed %s/%s from the pack tree" % (ref, META_DIR))


class Staging(object):
    """A work area ``packs_dir/.attune-staging-<ref>-<rand>/`` for one install; use :func:`staging`."""

    def __init__(self, packs_dir, ref, path, checkpoint):
        self.packs_dir = packs_dir
        self.ref = ref
        self.path = path
        self.checkpoint = checkpoint
        self.activated = None
        self._previous_tree = None  # after activate(): where the previous version is, False when there was none
        self._previous_record = None  # after the record is committed: the replaced record's copy, False when there was none

    def workdir(self, name="work"):
        """A path inside the staging area (not created) on the same file system as ``packs_dir``."""
        if not name or "/" in name or name in (".", "..", "tree"):
            raise ValueError("invalid work directory name %r" % (name,))
        return os.path.join(self.path, name)

    def activate(self, tree, metadata, move=False, durable=True):
        """Install ``tree`` as ``packs_dir/<ref>`` with ``metadata``; return a result dict.

        ``tree`` is renamed into place when it lies inside this staging area
        (e.g. extracted or cloned into :meth:`workdir`) or ``move`` is true,
        else copied.  Either way only regular files and directories are
        accepted, ``.git`` entries are left out and modes are normalised.  Returns ``{"path", "metadata", "previous"}`` where
        ``previous`` is the metadata of the replaced version (or None).
        """
        if self.activated is not None:
            raise AttuneError("this staging area was already activated", pack=self.ref)
        checkpoint = self.checkpoint
        ref = self.ref
        try:
            mode = os.lstat(tree).st_mode
        except OSError as exc:
            raise AttuneError("pack tree %s: %s" % (tree, exc.strerror or exc), pack=ref, cause=exc)
        if not stat.S_ISDIR(mode):
            raise InvalidPackStructure("pack tree %s is not a directory" % tree, pack=ref)
        final = os.path.join(self.path, "tree")
        moved = False
        if move or _is_within(tree, self.path):
            try:
                os.rename(tree, final)
                moved = True
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        if not moved:
            if _is_within(self.path, tree):
                raise AttuneError("cannot install %s: it contains packs_dir %s" % (tree, self.packs_dir), pack=ref)
            try:
                _copy_tree(tree, final, checkpoint)
            except UnsafeArchive as exc:
                raise UnsafeArchive(exc.message, pack=ref)
        else:
            try:
                _check_tree(final)
            except UnsafeArchive as exc:
                raise UnsafeArchive(exc.message, pack=ref)
        checkpoint("tree-staged")
        record = dict(metadata)
        record["pack_ref"] = ref
        record["metadata_format"] = METADATA_FORMAT
        record.setdefault("installed_at", utc_now())
        record.pop("migrated_from", None)
        record["tree_checksum"] = "sha256:" + framed_dir_checksum(final)
        _stamp(record, _tree_identity(final))
        _write_record(self.packs_dir, ref + PENDING_SUFFIX, record)  # journal: committed right after the swap
        checkpoint("metadata-written")
        if durable:
            _fsync_tree(final)
            fsync_dir(self.path)
        checkpoint("before-swap")
        target = os.path.join(self.packs_dir, ref)
        previous = None
        if os.path.lexists(target):
            try:
                previous = read_metadata(self.packs_dir, ref)
            except AttuneError:
                previous = None
            if _exchange(final, target):
                # ``final`` now holds the previous version; the staging cleanup deletes it (or rollback() swaps it back).
                self._previous_tree = final
                fsync_dir(self.packs_dir)
                checkpoint("swapped")
                self._commit_record()
            else:
                old = _new_leftover_name(self.packs_dir, "old", ref)
                os.rename(target, old)
                fsync_dir(self.packs_dir)
                checkpoint("old-moved")
                os.rename(final, target)
                self._previous_tree = old
                fsync_dir(self.packs_dir)
                checkpoint("swapped")
                self._commit_record()
                # the previous version stays in this staging area (deleted with it) until the run is over, for rollback()
                os.rename(old, final)
                self._previous_tree = final
                checkpoint("old-trashed")
        else:
            os.rename(final, target)
            self._previous_tree = False  # nothing was there: rolling back removes the new tree
            fsync_dir(self.packs_dir)
            checkpoint("swapped")
            self._commit_record()
        self.activated = {"path": target, "metadata": record, "previous": previous}
        return self.activated

    def _commit_record(self):
        """Move the pending provenance record into place; the replaced record is kept in the staging area for rollback()."""
        directory = os.path.join(self.packs_dir, META_DIR)
        current = metadata_path(self.packs_dir, self.ref)
        saved = os.path.join(self.path, "previous-record.json")
        try:
            os.link(current, saved)
            self._previous_record = saved
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            self._previous_record = False  # no record before (new pack, or a 0.1.0 record inside the old tree)
        os.rename(pending_metadata_path(self.packs_dir, self.ref), current)
        fsync_dir(directory)
        self.checkpoint("provenance-committed")

    def rollback(self):
        """Undo :meth:`activate` while this staging area is still open; False when there is nothing to undo.

        The previous version is still in this staging area and is swapped back (atomically where exchange
        works); a pack that was not installed before is moved into the staging area (and deleted with it).
        The provenance record is put back as it was (or removed for a pack that was not there); a kill in between
        is repaired by recover() (a record that does not describe its tree is detected).
        """
        previous = self._previous_tree
        if previous is None:  # not swapped in (activate failed before the swap, or was not called)
            return False
        target = os.path.join(self.packs_dir, self.ref)
        if previous is False:
            os.rename(target, os.path.join(self.path, "tree"))
        elif not _exchange(previous, target):
            # without exchange: previous -> .attune-old-…, new -> here, old -> <ref>; killed in between, recover()
            # restores the old one (there is no <ref>) or deletes it (the new one is still in place)
            old = _new_leftover_name(self.packs_dir, "old", self.ref)
            os.rename(previous, old)
            fsync_dir(self.packs_dir)
            os.rename(target, os.path.join(self.path, "new"))
            fsync_dir(self.packs_dir)
            os.rename(old, target)
        fsync_dir(self.packs_dir)
        record = metadata_path(self.packs_dir, self.ref)
        # the pending record (activate failed before committing it); the new record of a pack that had none before
        for stale in (pending_metadata_path(self.packs_dir, self.ref),) + ((record,) if self._previous_record is False else ()):
            try:
                os.unlink(stale)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        if self._previous_record:
            os.rename(self._previous_record, record)
        fsync_dir(os.path.join(self.packs_dir, META_DIR))
        self.activated = None
        self._previous_tree = None
        self._previous_record = None
        return True

    def cleanup(self):
        self.checkpoint("cleanup")
        if self._previous_tree is None:
            # never swapped in (failed before the swap, or rolled back): a pending record must not outlive the run
            try:
                os.unlink(pending_metadata_path(self.packs_dir, self.ref))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        remove_tree(self.path)
        fsync_dir(self.packs_dir)


@contextlib.contextmanager
def staging(packs_dir, ref, checkpoint=None, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Lock ``packs_dir``, run :func:`recover` for ``ref``, and yield a fresh :class:`Staging`.

    The staging directory is removed on exit, whatever happens; leftovers of
    a killed process are removed by the next :func:`recover`.
    """
    validate_ref(ref)
    if not os.path.isdir(packs_dir):
        os.makedirs(packs_dir, DIR_MODE)
    with locked(packs_dir, lock_timeout):
        recover(packs_dir, ref)
        path = _new_leftover_name(packs_dir, "staging", ref)
        os.mkdir(path, 0o700)
        stage = Staging(packs_dir, ref, path, checkpoint or _noop)
        stage.checkpoint("staging-created")
        try:
            yield stage
        finally:
            stage.cleanup()


def remove(packs_dir, ref, checkpoint=None, lock_timeout=DEFAULT_LOCK_TIMEOUT):
    """Remove ``packs_dir/<ref>`` atomically (rename away, then delete).

    Returns the :func:`installed` entry of what was removed, or None when the
    pack was not installed.  Only that directory is touched.
    """
    validate_ref(ref)
    checkpoint = checkpoint or _noop
    if not os.path.isdir(packs_dir):
        return None
    with locked(packs_dir, lock_timeout):
        recover(packs_dir, ref)
        target = os.path.join(packs_dir, ref)
        if not os.path.lexists(target):
            return None
        previous = _installed_entry(packs_dir, ref) if os.path.isdir(target) else {"ref": ref, "path": target}
        trash = _new_leftover_name(packs_dir, "trash", ref)
        os.rename(target, trash)
        fsync_dir(packs_dir)
        checkpoint("moved-away")
        # the tree first, then its record: a kill in between leaves a record without a tree, which recover() deletes
        if _unlink(metadata_path(packs_dir, ref)) | _unlink(pending_metadata_path(packs_dir, ref)):
            fsync_dir(os.path.join(packs_dir, META_DIR))
        _remove_empty_records_dir(packs_dir)
        checkpoint("provenance-removed")
        remove_tree(trash)
        fsync_dir(packs_dir)
    return previous
