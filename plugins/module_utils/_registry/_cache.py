# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: validated index views and the on-disk index cache (may change without notice).

Cache layout (one directory, mode 0700, shared by runs and by parallel
processes of the same user):

* ``.salt`` — 32 random bytes (0600); header fingerprints are HMACs keyed
  with it, so no header value (nor an unsalted hash of one) is ever stored;
* ``<key>.idx`` — one validated index (0600), written to a temp file and
  renamed.  Line 1 is a JSON header: url, validators (ETag,
  Last-Modified), the index's top-level fields and a *summary* row per pack
  (ref, version, label, description, author, keywords, byte offset, length).
  Every further line is one pack entry.  A search reads line 1 only; a
  resolution then reads the few entries it needs by offset, from the same
  open file the header came from (a refresh by another process renames a
  new file in place and cannot change what an open view reads).  The file's
  mtime is the time it was last fetched or revalidated;
* ``<key>.lock`` — ``flock`` lock serialising refreshes of one key, so
  parallel forks fetch an index once.

``key`` = sha256(url, HMAC(salt, header names and values), strictness).

What the cache trusts (issue 8; docs/security.md): entries are used without
validation while fresh, so only what the running user wrote may be read.

* The directory is **refused** (:class:`CacheUnsafe`, naming the path and
  the reason) when it is a symbolic link, not a directory, owned by another
  user, or writable by group or others (mode bits; an ACL granting write
  shows in the group bits).  Nothing is read from or written to it.  A
  shared directory is a configuration mistake the user must see: bypassing
  it silently would hide that every run fetches everything.
* Inside an accepted directory (which only its owner can change), a file
  that is a symlink, not a regular file, of another owner or writable by
  others can only be a leftover of an earlier unsafe state: it is
  **bypassed** (dropped and fetched again), never read or followed.  Every
  file is opened relative to the directory's descriptor with
  ``O_NOFOLLOW``.
* An entry whose mtime is in the future is stale (revalidated).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import hashlib
import hmac
import json
import os
import stat
import time
import weakref

from ansible_collections.attune.packs.plugins.module_utils._base._errors import CacheUnsafe
from ansible_collections.attune.packs.plugins.module_utils._base._fs import atomic_write

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

CACHE_FORMAT = 2
# one summary row per index entry (a JSON array in the cache file's header): what search needs, and where the entry is
SUMMARY_FIELDS = ("ref", "version", "label", "description", "author", "keywords", "offset", "length")
SummaryRow = collections.namedtuple("SummaryRow", SUMMARY_FIELDS)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_AT = os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd and os.rename in os.supports_dir_fd


def _refuse(path, reason, what="cache directory"):
    error = CacheUnsafe("%s %s %s; refused (use a private directory, mode 0700, owned by the user running the task, "
                        "or disable the cache)" % (what, path, reason))
    error.path = path
    raise error


def _untrusted_reason(info, want_dir):
    """Why a file of these ``os.stat`` results cannot be trusted, or None."""
    if want_dir and not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if not want_dir and not stat.S_ISREG(info.st_mode):
        return "is not a regular file"
    if info.st_uid != os.geteuid():
        return "is owned by uid %d, not by the user running this (uid %d)" % (info.st_uid, os.geteuid())
    if info.st_mode & 0o022:
        return "is writable by group or others (mode %s)" % oct(stat.S_IMODE(info.st_mode))[2:]
    return None


class PrivateDir(object):
    """An open, checked private directory; files are opened relative to it, never through a symlink.

    Shared with the controller's archive cache (plugin_utils/_archive_cache.py).
    """

    def __init__(self, path, create=True, what="cache directory"):
        self.path = path
        if create:
            try:
                os.makedirs(path, mode=0o700)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    _refuse(path, "cannot be created (%s)" % (exc.strerror or exc), what)
        try:
            self.fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
        except OSError as exc:
            if os.path.islink(path):
                _refuse(path, "is a symbolic link", what)
            _refuse(path, "cannot be opened (%s)" % (exc.strerror or exc), what)
        try:
            reason = _untrusted_reason(os.fstat(self.fd), True)
        except OSError as exc:  # pragma: no cover - fstat of an open descriptor
            reason = "cannot be examined (%s)" % exc
        if reason:
            os.close(self.fd)
            _refuse(path, reason, what)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _name(self, name):
        return name if _AT else os.path.join(self.path, name)

    def _at(self):
        return {"dir_fd": self.fd} if _AT else {}

    def open(self, name, flags, mode=0o600):
        """``os.open`` of ``name`` inside the directory, never following a symlink."""
        return os.open(self._name(name), flags | _NOFOLLOW | _CLOEXEC, mode, **self._at())

    def open_trusted(self, name, flags, mode=0o600):
        """A descriptor of ``name`` when it is a regular file of ours not writable by others; else drop it, None.

        ``None`` also when it does not exist (and ``flags`` do not create it).
        """
        try:
            fd = self.open(name, flags, mode)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return None
            if exc.errno in (errno.ELOOP, errno.EMLINK, errno.ENOTDIR, errno.EISDIR, errno.ENXIO):
                self.unlink(name)  # a planted symlink (ELOOP; EMLINK on FreeBSD) or something else: bypassed
                return None
            raise
        if _untrusted_reason(os.fstat(fd), False):
            os.close(fd)
            self.unlink(name)
            return None
        return fd

    def unlink(self, name):
        with contextlib.suppress(OSError):
            os.unlink(self._name(name), **self._at())

    def rename(self, src, dst):
        if _AT:
            os.rename(src, dst, src_dir_fd=self.fd, dst_dir_fd=self.fd)
        else:
            os.rename(self._name(src), self._name(dst))

    def atomic_write(self, name):
        """``_fs.atomic_write`` of ``name`` here: the temporary file (0600, ``O_EXCL``) and the rename stay relative
        to this open directory, never through a symlink."""
        return atomic_write(self._name(name), **self._at())

    @contextlib.contextmanager
    def lock(self, name):
        """Exclusive ``flock`` on ``name`` (created 0600); a planted symlink or foreign file is replaced, never followed."""
        for _attempt in range(5):
            fd = self.open_trusted(name, os.O_RDWR | os.O_CREAT, 0o600)
            if fd is not None:
                break
        else:
            _refuse(os.path.join(self.path, name), "keeps being replaced by an untrusted file", "lock file")
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class IndexView(object):
    """Read access to one validated index: summaries for search, entries by ref."""

    def __init__(self, header, loader):
        self.header = header
        self.summaries = header["summary"]
        self._loader = loader
        self._refs = None

    @classmethod
    def from_index(cls, index, url=None):
        entries = index.get("packs") or []
        header = _header_for(index, url)
        header["summary"] = [_summary_row(entry, position, 0) for position, entry in enumerate(entries)]
        return cls(header, lambda row: entries[row.offset])

    @property
    def registry_name(self):
        return self.header.get("registry_name")

    @property
    def registry_url(self):
        return self.header.get("registry_url")

    @property
    def last_updated(self):
        return self.header.get("last_updated")

    @property
    def pack_count(self):
        return len(self.summaries)

    def refs(self):
        if self._refs is None:
            refs = {}
            for row in self.summaries:
                refs.setdefault(row.ref, []).append(row)
            self._refs = refs
        return self._refs

    def has_ref(self, ref):
        return ref in self.refs()

    def entries(self, ref):
        """Every entry of ``ref`` (its version history in this registry)."""
        return [self._loader(row) for row in self.refs().get(ref, ())]


def _header_for(index, url):
    return {
        "format": CACHE_FORMAT,
        "url": url,
        "registry_name": index.get("registry_name"),
        "registry_url": index.get("registry_url"),
        "version": index.get("version"),
        "last_updated": index.get("last_updated"),
        "extra": dict((k, v) for k, v in index.items() if k not in ("packs", "registry_name", "registry_url", "version", "last_updated")),
    }


def _summary_row(entry, offset, length):
    return SummaryRow(entry.get("ref"), entry.get("version"), entry.get("label"), entry.get("description"), entry.get("author"),
                      entry.get("keywords") or [], offset, length)


class IndexCache(object):
    """Disk cache of validated indices (see the module docstring for what it trusts)."""

    def __init__(self, directory, ttl=3600, enabled=True):
        self.directory = directory
        self.ttl = ttl
        self.enabled = enabled
        self._salt = None

    def _dir(self):
        """The checked cache directory (refused with :class:`CacheUnsafe` when it cannot be trusted)."""
        return PrivateDir(self.directory)

    # -- keys -----------------------------------------------------------------
    def salt(self):
        if self._salt is None:
            with self._dir() as directory:
                self._salt = self._read_salt(directory)
        return self._salt

    @staticmethod
    def _read_salt(directory):
        for _attempt in range(50):
            try:
                fd = directory.open(".salt", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(os.urandom(32).hex())
            fd = directory.open_trusted(".salt", os.O_RDONLY)
            if fd is None:
                continue  # a planted symlink or foreign file: dropped, create our own
            with os.fdopen(fd) as handle:
                value = handle.read().strip()
            if len(value) == 64:
                return value.encode("ascii")
            time.sleep(0.01)  # another process is writing it right now
        raise OSError("cache salt %s is corrupt; delete it" % os.path.join(directory.path, ".salt"))

    def key(self, url, headers=None, strict=False):
        canonical = json.dumps(sorted((k.lower(), v) for k, v in (headers or {}).items()), separators=(",", ":"))
        fingerprint = hmac.new(self.salt(), canonical.encode("utf-8"), hashlib.sha256).hexdigest()
        material = "%s\n%s\n%s\n%d" % (url, fingerprint, "strict" if strict else "lax", CACHE_FORMAT)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path(self, key):
        return os.path.join(self.directory, key + ".idx")

    # -- reading ----------------------------------------------------------------
    def load(self, key):
        """Return ``(view, mtime)`` or ``None``; a corrupt or untrusted entry is deleted.

        The mtime is when the entry was last fetched or revalidated.  The view
        keeps the entry's file open: its entries are read from the file its
        header came from, whatever other processes rename in place meanwhile.
        """
        with self._dir() as directory:
            try:
                fd = directory.open_trusted(key + ".idx", os.O_RDONLY)
            except OSError:
                return None
        if fd is None:
            return None
        try:
            info = os.fstat(fd)
            with os.fdopen(os.dup(fd), "rb") as handle:
                header = json.loads(handle.readline().decode("utf-8"))
                data_start = handle.tell()
            if not isinstance(header, dict) or header.get("format") != CACHE_FORMAT \
                    or info.st_size - data_start != header.get("data_length"):
                raise ValueError("cache entry truncated or of another format")
            header["summary"] = [SummaryRow(*row) for row in header.get("summary") or ()]
        except (ValueError, TypeError, UnicodeDecodeError, OSError):
            os.close(fd)
            self.discard(key)
            return None
        return self._view(header, fd, data_start, key), info.st_mtime

    def _view(self, header, fd, data_start, key):
        path = self.path(key)

        def load(row):
            try:
                raw = os.pread(fd, row.length, data_start + row.offset)
                entry = json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError, OSError):
                entry = None
            # the entry must be the one its summary row describes (a row pointing at another pack's entry is corruption)
            if not isinstance(entry, dict) or entry.get("ref") != row.ref:
                self.discard(key)
                raise CacheCorrupt("cache entry %s is corrupt" % path)
            return entry

        view = IndexView(header, load)
        weakref.finalize(view, os.close, fd)
        return view

    def is_fresh(self, mtime):
        """Younger than ``ttl``; an mtime in the future (clock moved back, or planted) is stale."""
        age = time.time() - mtime
        return self.ttl > 0 and 0 <= age < self.ttl

    # -- writing ------------------------------------------------------------------
    def store(self, key, index, url, etag=None, last_modified=None):
        """Write a validated index atomically; return its :class:`IndexView` (backed by the written file)."""
        header = _header_for(index, url)
        header["etag"] = etag
        header["last_modified"] = last_modified
        lines = []
        summary = []
        offset = 0
        for entry in index.get("packs") or []:
            line = json.dumps(entry, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
            summary.append(_summary_row(entry, offset, len(line)))
            lines.append(line)
            offset += len(line)
        header["summary"] = summary
        header["data_length"] = offset
        head = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8") + b"\n"
        with self._dir() as directory:
            fd = None
            try:
                with directory.atomic_write(key + ".idx") as handle:
                    handle.write(head)
                    handle.writelines(lines)
                    fd = os.dup(handle.fileno())  # the view reads the file it wrote, whatever replaces it later
            except BaseException:
                if fd is not None:
                    os.close(fd)
                raise
        return self._view(header, fd, len(head), key)

    def touch(self, key):
        """Mark an entry fresh again (after a 304)."""
        with self._dir() as directory:
            with contextlib.suppress(OSError):
                fd = directory.open_trusted(key + ".idx", os.O_RDONLY)
                if fd is not None:
                    try:
                        os.utime(fd)
                    finally:
                        os.close(fd)

    def discard(self, key):
        with contextlib.suppress(CacheUnsafe):
            with self._dir() as directory:
                directory.unlink(key + ".idx")

    @contextlib.contextmanager
    def lock(self, key):
        """Exclusive inter-process lock for refreshing ``key``."""
        with self._dir() as directory:
            with directory.lock(key + ".lock"):
                yield


class CacheCorrupt(Exception):
    """A cache entry could not be read back; the caller refetches."""
