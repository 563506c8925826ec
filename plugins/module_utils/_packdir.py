# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: pack.yaml validation and atomic activation in packs_dir (may change without notice).

Layout of ``packs_dir``::

    packs_dir/
      <ref>/                         an installed pack (a real directory)
        pack.yaml ...                the pack's files
        .attune/metadata.json        provenance written by this collection
      .attune-staging-<ref>-<rand>/  work area of a running operation
      .attune-old-<ref>-<rand>/      previous version during a swap (fallback mode)
      .attune-trash-<ref>-<rand>/    a tree being deleted

Where the provenance lives: ``<ref>/.attune/metadata.json``, *inside* the
pack directory.  That is the only place that is swapped atomically together
with the tree it describes (a file next to the directory could be killed
half-way between the two renames and then describe the wrong version), and a
dedicated hidden directory cannot collide with a file of the pack itself
(some packs ship their own ``metadata.json``).  The name ``.attune`` at the top
of a pack is therefore reserved: a source tree that contains it is refused.
The ``tree_checksum`` recorded in the metadata is Attune's framed directory
checksum of the installed tree with the top-level ``.attune`` directory (and,
as always, ``.git``) excluded, so it can be recomputed later to detect drift.

Activation (:meth:`Staging.activate`):

1. the new tree is put in ``.attune-staging-<ref>-<rand>/tree`` (renamed there
   when it was extracted into the same staging directory, copied otherwise),
   its metadata written, every file and directory fsynced;
2. swap: on Linux ``renameat2(RENAME_EXCHANGE)`` exchanges the staged tree and
   ``<ref>`` in one atomic step, so at every instant ``<ref>`` is either the
   complete old or the complete new version.  Where exchange is unavailable
   the swap is ``<ref>`` -> ``.attune-old-<ref>-<rand>``, staged -> ``<ref>``;
   a process killed between those two renames leaves no ``<ref>`` but a
   complete ``.attune-old-…``, which :func:`recover` renames back;
3. the previous version is deleted (renamed to ``.attune-trash-…`` first, so a
   partially deleted tree is never mistaken for a restorable one).

Typical use by a module (archive source; a git source clones into
``stage.workdir('git')`` with ``_git.clone`` and activates ``checkout.tree``)::

    with staging(packs_dir, ref) as stage:                # lock + recover + fresh staging dir
        with open(stage.workdir('download'), 'wb') as f:  # same file system as packs_dir
            download(url, f, hashers=[hasher], ...)
        checksum.verify(hasher.hexdigest(), ...)
        root, pack_yaml, _stats = prepare_archive(stage.workdir('download'), stage.workdir('extract'),
                                                  ref, version, pack=ref)
        result = stage.activate(root, build_metadata(ref, version, source, checksum, ...))
    # result: {'path', 'metadata', 'previous'}; nothing is left in packs_dir but <ref>

:func:`recover` runs at the start of every operation (under the same lock):
it restores ``<ref>`` from the newest ``.attune-old-<ref>-*`` when ``<ref>`` is
missing, and deletes every other leftover of that ref.  All operations hold
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
import secrets
import shutil
import stat
import sys
import time
import traceback

from ansible_collections.attune.packs.plugins.module_utils._checksum import BLOCK_SIZE, framed_dir_checksum
from ansible_collections.attune.packs.plugins.module_utils._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._errors import AttuneError, InvalidPackStructure, UnsafeArchive
from ansible_collections.attune.packs.plugins.module_utils._version import REF_PATTERN, VERSION_PATTERN

try:
    import yaml
except ImportError:  # pragma: no cover - exercised on hosts without PyYAML
    yaml = None
    HAS_YAML = False
    YAML_IMPORT_ERROR = traceback.format_exc()
else:
    HAS_YAML = True
    YAML_IMPORT_ERROR = None

PACK_FILE = "pack.yaml"
META_DIR = ".attune"
METADATA_FILE = "metadata.json"
METADATA_FORMAT = 1
PACK_YAML_MAX_BYTES = 1024 * 1024
METADATA_MAX_BYTES = 1024 * 1024
REQUIRED_PACK_FIELDS = ("ref", "label", "description", "version")
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
# refs, pack.yaml


def validate_ref(ref, pack=None):
    """Return ``ref`` if it is a valid pack ref (which also rules out any path traversal)."""
    if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref) or len(ref) > 200:
        raise InvalidPackStructure("invalid pack ref %r: expected lowercase letters, digits, '_' and '-', starting with a letter" % (ref,), pack=pack)
    return ref


def _read_small_file(path, limit, what, pack):
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidPackStructure("%s is a symlink" % what, pack=pack)
        raise AttuneError("cannot read %s: %s" % (what, exc.strerror or exc), pack=pack, cause=exc)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InvalidPackStructure("%s is not a regular file" % what, pack=pack)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InvalidPackStructure("%s is larger than %d bytes" % (what, limit), pack=pack)
    return data


def _describe_value(value):
    if isinstance(value, str):
        return "an empty string"
    return "%s %r" % (type(value).__name__, value)


def load_pack_yaml(tree, pack=None):
    """Read and validate ``tree/pack.yaml``; return the mapping.

    Raises :class:`InvalidPackStructure` with a message naming the problem.
    """
    if not HAS_YAML:
        raise AttuneError("PyYAML is required to read pack.yaml", pack=pack)
    data = _read_small_file(os.path.join(tree, PACK_FILE), PACK_YAML_MAX_BYTES, PACK_FILE, pack)
    if data is None:
        raise InvalidPackStructure("no %s at the top of the pack tree" % PACK_FILE, pack=pack)
    loader = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader
    try:
        content = yaml.load(data, Loader=loader)  # nosec - safe loader
    except yaml.YAMLError as exc:
        raise InvalidPackStructure("%s is not valid YAML: %s" % (PACK_FILE, exc), pack=pack, cause=exc)
    if not isinstance(content, dict):
        raise InvalidPackStructure("%s must be a mapping, not %s" % (PACK_FILE, type(content).__name__), pack=pack)
    missing = [field for field in REQUIRED_PACK_FIELDS if field not in content]
    if missing:
        raise InvalidPackStructure("%s is missing required field(s): %s" % (PACK_FILE, ", ".join(missing)), pack=pack)
    for field in REQUIRED_PACK_FIELDS:
        value = content[field]
        if not isinstance(value, str) or not value.strip():
            hint = " (quote it in YAML)" if field == "version" and isinstance(value, (int, float)) else ""
            raise InvalidPackStructure(
                "%s field '%s' must be a non-empty string, got %s%s" % (PACK_FILE, field, _describe_value(value), hint), pack=pack
            )
    if not REF_PATTERN.fullmatch(content["ref"]):
        raise InvalidPackStructure(
            "%s ref %r is invalid: expected lowercase letters, digits, '_' and '-', starting with a letter" % (PACK_FILE, content["ref"]), pack=pack
        )
    if not VERSION_PATTERN.fullmatch(content["version"]):
        raise InvalidPackStructure("%s version %r is not a semantic version (MAJOR.MINOR.PATCH)" % (PACK_FILE, content["version"]), pack=pack)
    return content


def check_pack_identity(content, expected_ref=None, expected_version=None, pack=None):
    """Raise unless pack.yaml's ``ref``/``version`` equal the resolved entry's."""
    if expected_ref is not None and content.get("ref") != expected_ref:
        raise InvalidPackStructure("%s ref '%s' does not match the resolved entry '%s'" % (PACK_FILE, content.get("ref"), expected_ref), pack=pack)
    if expected_version is not None and content.get("version") != expected_version:
        raise InvalidPackStructure(
            "%s version '%s' does not match the resolved entry version '%s'" % (PACK_FILE, content.get("version"), expected_version), pack=pack
        )
    return content


def read_pack_yaml(tree, expected_ref=None, expected_version=None, pack=None):
    """:func:`load_pack_yaml` then :func:`check_pack_identity`."""
    return check_pack_identity(load_pack_yaml(tree, pack=pack), expected_ref, expected_version, pack=pack)


def prepare_archive(archive, dest, expected_ref=None, expected_version=None, pack=None, **limits):
    """Extract ``archive`` into the new directory ``dest``, find the pack root and validate its pack.yaml.

    Returns ``(root, pack_yaml, stats)``.  ``limits`` are passed to
    ``_extract.extract_archive`` (max_entries, max_entry_bytes,
    max_total_bytes).  On any failure ``dest`` is removed.
    """
    # imported here: tarfile/zipfile/gzip and the extractor are needed only when something is installed
    from ansible_collections.attune.packs.plugins.module_utils._extract import extract_archive, find_pack_root  # pylint: disable=import-outside-toplevel

    stats = extract_archive(archive, dest, pack=pack, **limits)
    try:
        root = find_pack_root(dest, pack=pack)
        content = read_pack_yaml(root, expected_ref, expected_version, pack=pack)
    except BaseException:
        _remove_tree(dest)
        raise
    return root, content, stats


# --------------------------------------------------------------------------
# checksums


def tree_checksum(root, algorithm="sha256"):
    """Framed directory checksum of an installed tree, ``algo:hex``, ignoring the top-level ``.attune``."""
    return "%s:%s" % (algorithm, framed_dir_checksum(root, algorithm, exclude_top=(META_DIR,)))


# --------------------------------------------------------------------------
# low-level file system helpers


def _fsync_dir(path):
    try:
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems refuse fsync on directories
        if exc.errno not in (errno.EINVAL, errno.EBADF, errno.ENOTSUP):
            raise
    finally:
        os.close(fd)


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
        _fsync_dir(dirpath)


def _remove_tree(path):
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _new_leftover_name(packs_dir, kind, ref):
    while True:
        name = ".attune-%s-%s-%s" % (kind, ref, secrets.token_hex(4))
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
            _remove_tree(entry.path)
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
    return os.path.join(packs_dir, validate_ref(ref), META_DIR, METADATA_FILE)


def read_metadata(packs_dir, ref):
    """Provenance of an installed pack, or None when it has none (or is not installed)."""
    data = _read_small_file(metadata_path(packs_dir, ref), METADATA_MAX_BYTES, "%s/%s/%s" % (ref, META_DIR, METADATA_FILE), ref)
    if data is None:
        return None
    try:
        content = json.loads(data.decode("utf-8"))
    except ValueError as exc:
        raise InvalidPackStructure("%s/%s is not valid JSON: %s" % (META_DIR, METADATA_FILE, exc), pack=ref, cause=exc)
    if not isinstance(content, dict):
        raise InvalidPackStructure("%s/%s is not a JSON object" % (META_DIR, METADATA_FILE), pack=ref)
    return content


def _write_metadata(tree, metadata):
    meta_dir = os.path.join(tree, META_DIR)
    os.mkdir(meta_dir, 0o700)
    payload = (json.dumps(metadata, indent=2, sort_keys=True) + "\n").encode("utf-8")
    fd = os.open(os.path.join(meta_dir, METADATA_FILE), os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC, 0o600)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fchmod(fd, FILE_MODE)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(meta_dir, DIR_MODE)
    _fsync_dir(meta_dir)


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
        metadata = read_metadata(packs_dir, ref)
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
        result["actual"] = tree_checksum(path, algorithm)
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


# --------------------------------------------------------------------------
# recovery, staging, activation, removal


def recover(packs_dir, ref=None, refs=None):
    """Finish or undo what an interrupted operation left in ``packs_dir``; return the actions taken.

    For each ref (every ref, or only ``ref``, or only those in ``refs``): when
    ``packs_dir/<ref>`` is missing and a ``.attune-old-<ref>-*`` exists, the
    newest one is renamed back; every other staging, old or trash directory of
    the ref is deleted.  One lock and one directory listing whatever the count.
    """
    wanted = None if ref is None and refs is None else set([ref] if ref is not None else refs)
    for name in wanted or ():
        validate_ref(name)
    actions = []
    if not os.path.isdir(packs_dir):
        return actions
    with locked(packs_dir):
        groups = {}
        for name in os.listdir(packs_dir):
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
                _fsync_dir(packs_dir)
                actions.append("restored %s from %s" % (group_ref, restored))
            for kind, name in sorted(items):
                if name == restored:
                    continue
                path = os.path.join(packs_dir, name)
                if kind == "old":
                    trash = _new_leftover_name(packs_dir, "trash", group_ref)
                    os.rename(path, trash)
                    path = trash
                _remove_tree(path)
                actions.append("removed %s" % name)
        if actions:
            _fsync_dir(packs_dir)
    return actions


class Staging(object):
    """A work area ``packs_dir/.attune-staging-<ref>-<rand>/`` for one install; use :func:`staging`."""

    def __init__(self, packs_dir, ref, path, checkpoint):
        self.packs_dir = packs_dir
        self.ref = ref
        self.path = path
        self.checkpoint = checkpoint
        self.activated = None
        self._previous_tree = None  # after activate(): where the previous version is, False when there was none

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
        if os.path.lexists(os.path.join(tree, META_DIR)):
            raise InvalidPackStructure("the pack tree contains '%s', a name reserved for installation metadata" % META_DIR, pack=ref)
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
        record["tree_checksum"] = "sha256:" + framed_dir_checksum(final)
        _write_metadata(final, record)
        checkpoint("metadata-written")
        if durable:
            _fsync_tree(final)
            _fsync_dir(self.path)
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
                _fsync_dir(self.packs_dir)
                checkpoint("swapped")
            else:
                old = _new_leftover_name(self.packs_dir, "old", ref)
                os.rename(target, old)
                _fsync_dir(self.packs_dir)
                checkpoint("old-moved")
                os.rename(final, target)
                self._previous_tree = old
                _fsync_dir(self.packs_dir)
                checkpoint("swapped")
                # kept in this staging area (deleted with it) until the run is over, for rollback()
                os.rename(old, final)
                self._previous_tree = final
                checkpoint("old-trashed")
        else:
            os.rename(final, target)
            self._previous_tree = False  # nothing was there: rolling back removes the new tree
            _fsync_dir(self.packs_dir)
            checkpoint("swapped")
        self.activated = {"path": target, "metadata": record, "previous": previous}
        return self.activated

    def rollback(self):
        """Undo :meth:`activate` while this staging area is still open; False when there is nothing to undo.

        The previous version is still in this staging area and is swapped back (atomically where exchange
        works); a pack that was not installed before is moved into the staging area (and deleted with it).
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
            _fsync_dir(self.packs_dir)
            os.rename(target, os.path.join(self.path, "new"))
            _fsync_dir(self.packs_dir)
            os.rename(old, target)
        _fsync_dir(self.packs_dir)
        self.activated = None
        self._previous_tree = None
        return True

    def cleanup(self):
        self.checkpoint("cleanup")
        _remove_tree(self.path)
        _fsync_dir(self.packs_dir)


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


def activate(packs_dir, ref, tree, metadata, move=False, checkpoint=None, durable=True):
    """One-shot :func:`staging` + :meth:`Staging.activate`."""
    with staging(packs_dir, ref, checkpoint=checkpoint) as stage:
        return stage.activate(tree, metadata, move=move, durable=durable)


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
        _fsync_dir(packs_dir)
        checkpoint("moved-away")
        _remove_tree(trash)
        _fsync_dir(packs_dir)
    return previous
