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
  resolution then reads the few entries it needs by offset.  The file's
  mtime is the time it was last fetched or revalidated;
* ``<key>.lock`` — ``flock`` lock serialising refreshes of one key, so
  parallel forks fetch an index once.

``key`` = sha256(url, HMAC(salt, header names and values), strictness).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import hmac
import json
import os
import tempfile
import time

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

CACHE_FORMAT = 2
SUMMARY_FIELDS = ("ref", "version", "label", "description", "author", "keywords")


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
        return cls(header, lambda row: entries[row[6]])

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
                refs.setdefault(row[0], []).append(row)
            self._refs = refs
        return self._refs

    def has_ref(self, ref):
        return ref in self.refs()

    def entries(self, ref):
        """Every entry of ``ref`` (its version history in this registry)."""
        return [self._loader(row) for row in self.refs().get(ref, ())]

    def all_entries(self):
        return [self._loader(row) for row in self.summaries]


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
    return [entry.get("ref"), entry.get("version"), entry.get("label"), entry.get("description"), entry.get("author"),
            entry.get("keywords") or [], offset, length]


class IndexCache(object):
    """Disk cache of validated indices."""

    def __init__(self, directory, ttl=3600, enabled=True):
        self.directory = directory
        self.ttl = ttl
        self.enabled = enabled
        self._salt = None

    # -- keys -----------------------------------------------------------------
    def _ensure_dir(self):
        try:
            os.makedirs(self.directory, mode=0o700)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise

    def salt(self):
        if self._salt is None:
            self._ensure_dir()
            path = os.path.join(self.directory, ".salt")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
            else:
                with os.fdopen(fd, "w") as handle:
                    handle.write(os.urandom(32).hex())
            for _attempt in range(50):
                with open(path) as handle:
                    value = handle.read().strip()
                if len(value) == 64:
                    break
                time.sleep(0.01)  # another process is writing it right now
            else:
                raise OSError("cache salt %s is corrupt; delete it" % path)
            self._salt = value.encode("ascii")
        return self._salt

    def key(self, url, headers=None, strict=False):
        canonical = json.dumps(sorted((k.lower(), v) for k, v in (headers or {}).items()), separators=(",", ":"))
        fingerprint = hmac.new(self.salt(), canonical.encode("utf-8"), hashlib.sha256).hexdigest()
        material = "%s\n%s\n%s\n%d" % (url, fingerprint, "strict" if strict else "lax", CACHE_FORMAT)
        return hashlib.sha256(material.encode("utf-8")).hexdigest()

    def path(self, key):
        return os.path.join(self.directory, key + ".idx")

    # -- reading ----------------------------------------------------------------
    def load(self, key):
        """Return ``(view, mtime)`` or ``None``; a corrupt entry is deleted.

        The mtime is when the entry was last fetched or revalidated.
        """
        path = self.path(key)
        try:
            handle = open(path, "rb")
        except (IOError, OSError):
            return None
        try:
            with handle:
                info = os.fstat(handle.fileno())
                header = json.loads(handle.readline().decode("utf-8"))
                data_start = handle.tell()
                if header.get("format") != CACHE_FORMAT or info.st_size - data_start != header.get("data_length"):
                    raise ValueError("cache entry truncated or of another format")
        except (ValueError, UnicodeDecodeError, OSError):
            self.discard(key)
            return None
        view = IndexView(header, self._entry_loader(path, data_start, key))
        return view, info.st_mtime

    def _entry_loader(self, path, data_start, key):
        def load(row):
            with open(path, "rb") as handle:
                handle.seek(data_start + row[6])
                raw = handle.read(row[7])
            try:
                return json.loads(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError):
                self.discard(key)
                raise CacheCorrupt("cache entry %s is corrupt" % path)
        return load

    def is_fresh(self, mtime):
        return self.ttl > 0 and time.time() - mtime < self.ttl

    # -- writing ------------------------------------------------------------------
    def store(self, key, index, url, etag=None, last_modified=None):
        """Write a validated index atomically; return its :class:`IndexView` (backed by the file)."""
        self._ensure_dir()
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
        fd, tmp = tempfile.mkstemp(prefix=".%s." % key[:16], suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(head)
                handle.writelines(lines)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, 0o600)
            os.rename(tmp, self.path(key))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return IndexView(header, self._entry_loader(self.path(key), len(head), key))

    def touch(self, key):
        """Mark an entry fresh again (after a 304)."""
        with contextlib.suppress(OSError):
            os.utime(self.path(key), None)

    def discard(self, key):
        with contextlib.suppress(OSError):
            os.unlink(self.path(key))

    @contextlib.contextmanager
    def lock(self, key):
        """Exclusive inter-process lock for refreshing ``key``."""
        self._ensure_dir()
        fd = os.open(os.path.join(self.directory, key + ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


class CacheCorrupt(Exception):
    """A cache entry could not be read back; the caller refetches."""
