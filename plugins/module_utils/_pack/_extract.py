# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: safe in-process archive extraction (may change without notice).

``extract_archive(archive, dest)`` unpacks a zip, gzip-compressed tar
(``.tar.gz``, ``.tgz``, ``.gz``) or plain ``.tar`` file into ``dest``, a
directory that must not exist yet and is created (mode 0700) by the call.

Formats.  Attune picks the format from the file name it derives from the URL
(``archive.rs`` ``extract_archive``: ``.zip``; ``.tar.gz``/``.tgz``/``.gz``;
``.tar``; and ``installer.rs`` ``archive_filename_from_url``: a code-host
tarball URL ``.../tar.gz/<40-hex commit>`` counts as ``.tar.gz``).  Here the
format is detected from the first bytes of the file (gzip magic, zip magic,
a tar header with a valid header checksum), which accepts every archive
Attune accepts and also an archive whose URL has no extension (``/tar.gz/main``)
or a misleading one; :func:`archive_format_from_url` gives Attune's verdict on
a URL for callers that must decide "archive or git" before downloading.

Rules (attune-format.md section 5), each violation raising
:class:`UnsafeArchive` with a message that names the entry:

* only regular files and directories: symlinks, hard links, character and
  block devices, FIFOs, sparse files and unknown entry types are refused;
* names must be relative, without ``..`` components, NUL bytes, control
  characters, backslashes or drive letters; ``.`` and empty components are
  dropped (``./pack.yaml`` is ``pack.yaml``);
* every entry is written once: duplicates, and a file that is also used as a
  directory, are refused;
* bounded entry count, per-entry size and total size.  The limits are
  enforced on the bytes actually decompressed and written (an archive bomb
  stops at the limit whatever its headers claim), and also on the sizes the
  headers announce, so an honest oversized archive fails before writing;
* files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW`` relative to a
  directory descriptor opened with ``O_NOFOLLOW`` for every component, so no
  write can go through a symlink, even one planted while extracting.
* modes are normalised: directories 0755, files 0644, or 0755 when the
  archive marks the file executable by its owner; setuid/setgid/sticky bits,
  ownership and timestamps from the archive are ignored.

On any failure ``dest`` is removed completely, so nothing is left behind.
Data is streamed in 1 MiB blocks; gzip integrity (CRC and length of every
member) is checked by reading the compressed stream to its end.

:func:`prepare_archive` extracts an archive, finds the pack root (``_pack_yaml.find_pack_root``, Attune's
order) and reads its pack.yaml (``_pack_yaml.read_pack_yaml``); nothing is left behind on failure.
"""

from __future__ import annotations

import errno
import gzip
import os
import re
import stat
import tarfile
import zipfile
import zlib

from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import BLOCK_SIZE
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, UnsafeArchive
from ansible_collections.attune.packs.plugins.module_utils._base._fs import remove_tree
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import find_pack_root, read_pack_yaml

# Extraction limits: the single source of their defaults (the module options and the docs name these).
# Attune: archive.rs SafeExtractionLimits::default() = PackUploadConfig::DEFAULT_MAX_FILE_COUNT (10,000 entries) and
# DEFAULT_MAX_PER_ENTRY_SIZE_BYTES (50 MiB); installer.rs PackInstaller::extract_archive sets max_total_bytes to
# pack_registry.archive_max_bytes, whose default is 104857600 (100 MiB).
DEFAULT_MAX_ENTRIES = 10000
DEFAULT_MAX_ENTRY_BYTES = 50 * 1024 * 1024
DEFAULT_ARCHIVE_MAX_BYTES = 104857600
DEFAULT_MAX_TOTAL_BYTES = DEFAULT_ARCHIVE_MAX_BYTES  # = archive_max_bytes when the caller does not pass max_total_bytes
MAX_TRAILING_BYTES = 1024 * 1024
MAX_NAME_BYTES = 255
MAX_PATH_BYTES = 4000

FORMAT_ZIP = "zip"
FORMAT_TAR_GZ = "tar.gz"
FORMAT_TAR = "tar"
_COMMIT_SEGMENT = re.compile(r"^[0-9A-Fa-f]{40}$")

DIR_MODE = 0o755
FILE_MODE = 0o644
EXEC_MODE = 0o755


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DRIVE = re.compile(r"^[A-Za-z]:")
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | _O_DIRECTORY | _O_NOFOLLOW | _O_CLOEXEC
_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_NOFOLLOW | _O_CLOEXEC


class ExtractStats(object):
    """What :func:`extract_archive` wrote."""

    __slots__ = ("format", "files", "directories", "bytes")

    def __init__(self, fmt):
        self.format = fmt
        self.files = 0
        self.directories = 0
        self.bytes = 0

    def to_dict(self):
        return {"format": self.format, "files": self.files, "directories": self.directories, "bytes": self.bytes}

    def __repr__(self):
        return "ExtractStats(%r)" % (self.to_dict(),)


def show_name(name, limit=200):
    """Printable, bounded form of an entry name for messages."""
    text = repr(name)
    if text[:1] in ("'", '"') and text[-1:] == text[:1]:
        text = text[1:-1]
    if len(text) > limit:
        text = text[:limit] + "..."
    return "'%s'" % text


def _human(size):
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            if unit == "bytes":
                return "%d bytes" % size
            return "%.1f %s" % (size, unit)
        size /= 1024.0
    return "%d" % size  # pragma: no cover


def _is_tar_header(block):
    """True when ``block`` (512 bytes) is a tar header with a valid header checksum (ustar, GNU or old v7)."""
    if len(block) < 512 or not block[:100].strip(b"\x00"):
        return False
    field = block[148:156].replace(b"\x00", b" ").strip()
    try:
        recorded = int(field, 8)
    except ValueError:
        return False
    unsigned = sum(block[:148]) + 8 * 32 + sum(block[156:512])
    signed = sum((b - 256 if b > 127 else b) for b in block[:148]) + 8 * 32 + sum((b - 256 if b > 127 else b) for b in block[156:512])
    return recorded in (unsigned, signed)


def detect_format(path):
    """Return ``'zip'``, ``'tar.gz'`` or ``'tar'`` from the first bytes of ``path``.

    Raises :class:`UnsafeArchive` for anything else.
    """
    with open(path, "rb") as handle:
        head = handle.read(512)
    if head[:2] == b"\x1f\x8b":
        return FORMAT_TAR_GZ
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return FORMAT_ZIP
    if not head:
        raise UnsafeArchive("%s is empty, not an archive" % os.path.basename(path))
    if _is_tar_header(head):
        return FORMAT_TAR
    if head[:3] == b"BZh":
        kind = "a bzip2 file"
    elif head[:6] == b"\xfd7zXZ\x00":
        kind = "an xz file"
    else:
        kind = "not an archive"
    raise UnsafeArchive("%s is %s; supported formats are .zip, .tar.gz, .tgz, .gz and .tar" % (os.path.basename(path), kind))


def archive_format_from_url(url):
    """Attune's verdict on an archive URL: ``'zip'``, ``'tar.gz'``, ``'tar'`` or None (Attune would refuse it).

    Mirrors installer.rs ``archive_filename_from_url`` (last non-empty path
    segment; ``.../tar.gz/<40-hex>`` gets ``.tar.gz``) and archive.rs
    ``extract_archive`` (``.zip``; ``.tar.gz``/``.tgz``/``.gz``; ``.tar``,
    case-insensitive).  Query and fragment are ignored.
    """
    if not isinstance(url, str):
        return None
    rest = url.split("://", 1)[-1]
    path = rest.split("?", 1)[0].split("#", 1)[0]
    segments = [segment for segment in path.split("/")[1:] if segment]
    if len(segments) >= 2 and segments[-2] == "tar.gz" and _COMMIT_SEGMENT.match(segments[-1]):
        return FORMAT_TAR_GZ
    name = segments[-1].lower() if segments else ""
    if name.endswith(".zip"):
        return FORMAT_ZIP
    if name.endswith((".tar.gz", ".tgz", ".gz")):
        return FORMAT_TAR_GZ
    if name.endswith(".tar"):
        return FORMAT_TAR
    return None


def split_entry_name(name, is_zip=False):
    """Validate an archive member name and return its components.

    ``.`` and empty components are dropped; an empty list is the archive
    root itself.
    """
    if not isinstance(name, str):
        raise UnsafeArchive("entry %s: name is not text" % show_name(name))
    if "\x00" in name:
        raise UnsafeArchive("entry %s: name contains a NUL byte" % show_name(name))
    if "\\" in name:
        raise UnsafeArchive("entry %s: name contains a backslash (possible Windows path traversal)" % show_name(name))
    if _CONTROL.search(name):
        raise UnsafeArchive("entry %s: name contains a control character" % show_name(name))
    if name.startswith("/"):
        raise UnsafeArchive("entry %s: absolute path" % show_name(name))
    if is_zip and _DRIVE.match(name):
        raise UnsafeArchive("entry %s: name starts with a drive letter" % show_name(name))
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive("entry %s: path traversal ('..' component)" % show_name(name))
    total = 0
    for part in parts:
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > MAX_NAME_BYTES:
            raise UnsafeArchive("entry %s: a path component is longer than %d bytes" % (show_name(name), MAX_NAME_BYTES))
        total += size + 1
    if total > MAX_PATH_BYTES:
        raise UnsafeArchive("entry %s: path is longer than %d bytes" % (show_name(name), MAX_PATH_BYTES))
    return parts


class _Limits(object):
    def __init__(self, max_entries, max_entry_bytes, max_total_bytes):
        for label, value in (("max_entries", max_entries), ("max_entry_bytes", max_entry_bytes), ("max_total_bytes", max_total_bytes)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError("%s must be a positive integer, not %r" % (label, value))
        self.max_entries = max_entries
        self.max_entry_bytes = max_entry_bytes
        self.max_total_bytes = max_total_bytes


class _TreeWriter(object):
    """Creates directories and files below a root without ever following a symlink."""

    def __init__(self, root, limits, stats):
        self.root = root
        self.limits = limits
        self.stats = stats
        self.entries = 0
        self.seen = {}  # tuple(parts) -> "file" | "dir" | "implicit"
        self.root_fd = os.open(root, _DIR_FLAGS)
        self._cache_key = None
        self._cache_fd = None

    def close(self):
        self._drop_cache()
        if self.root_fd is not None:
            os.close(self.root_fd)
            self.root_fd = None

    def _drop_cache(self):
        if self._cache_fd is not None:
            os.close(self._cache_fd)
        self._cache_key = None
        self._cache_fd = None

    def count_entry(self, name):
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise UnsafeArchive("entry %s: the archive has more than %d entries (max_entries)" % (show_name(name), self.limits.max_entries))

    def _claim(self, parts, kind, name):
        key = tuple(parts)
        previous = self.seen.get(key)
        if previous is not None:
            if kind == "dir" and previous == "implicit":
                self.seen[key] = "dir"
                return
            raise UnsafeArchive("entry %s: duplicate entry (%s appears more than once)" % (show_name(name), "/".join(parts)))
        for depth in range(1, len(parts)):
            prefix = tuple(parts[:depth])
            seen = self.seen.get(prefix)
            if seen == "file":
                raise UnsafeArchive("entry %s: %s is a file in this archive and cannot be a directory" % (show_name(name), "/".join(prefix)))
            if seen is None:
                self.seen[prefix] = "implicit"
        self.seen[key] = kind

    def _open_component(self, parent_fd, component, parts, name):
        try:
            return os.open(component, _DIR_FLAGS, dir_fd=parent_fd)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self._component_error(exc, parent_fd, component, parts, name)
        try:
            os.mkdir(component, 0o700, dir_fd=parent_fd)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
        try:
            fd = os.open(component, _DIR_FLAGS, dir_fd=parent_fd)
        except OSError as exc:
            self._component_error(exc, parent_fd, component, parts, name)
        os.fchmod(fd, DIR_MODE)
        self.stats.directories += 1
        return fd

    def _component_error(self, exc, parent_fd, component, parts, name):
        try:
            mode = os.stat(component, dir_fd=parent_fd, follow_symlinks=False).st_mode
        except OSError:
            mode = 0
        where = "/".join(parts)
        if stat.S_ISLNK(mode) or exc.errno == errno.ELOOP:
            raise UnsafeArchive("entry %s: %s is a symlink; refusing to write through it" % (show_name(name), where))
        if exc.errno == errno.ENOTDIR:
            raise UnsafeArchive("entry %s: %s exists and is not a directory" % (show_name(name), where))
        raise exc

    def _dir_fd(self, parts, name):
        """Borrowed descriptor of the directory ``parts`` (created if needed); do not close it."""
        key = tuple(parts)
        if not key:
            return self.root_fd
        if key == self._cache_key:
            return self._cache_fd
        self._drop_cache()
        fd = os.dup(self.root_fd)
        try:
            for index, component in enumerate(parts):
                child = self._open_component(fd, component, parts[:index + 1], name)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        self._cache_key = key
        self._cache_fd = fd
        return fd

    def add_directory(self, parts, name):
        if not parts:
            return
        self._claim(parts, "dir", name)
        self._dir_fd(parts, name)

    def add_file(self, parts, name, reader, mode, declared_size=None):
        if not parts:
            raise UnsafeArchive("entry %s: a file cannot be the archive root" % show_name(name))
        limits = self.limits
        if declared_size is not None:
            if declared_size > limits.max_entry_bytes:
                raise UnsafeArchive(
                    "entry %s: %s, more than the per-entry limit of %s (max_entry_bytes)"
                    % (show_name(name), _human(declared_size), _human(limits.max_entry_bytes))
                )
            if self.stats.bytes + declared_size > limits.max_total_bytes:
                raise UnsafeArchive(
                    "entry %s: the archive holds more than %s of files (max_total_bytes)" % (show_name(name), _human(limits.max_total_bytes))
                )
        self._claim(parts, "file", name)
        parent = self._dir_fd(parts[:-1], name)
        try:
            fd = os.open(parts[-1], _FILE_FLAGS, 0o600, dir_fd=parent)
        except OSError as exc:
            if exc.errno == errno.EEXIST:
                if stat.S_ISLNK(os.stat(parts[-1], dir_fd=parent, follow_symlinks=False).st_mode):
                    raise UnsafeArchive("entry %s: %s is a symlink; refusing to write through it" % (show_name(name), "/".join(parts)))
                raise UnsafeArchive("entry %s: %s already exists" % (show_name(name), "/".join(parts)))
            self._component_error(exc, parent, parts[-1], parts, name)
        written = 0
        try:
            while True:
                block = reader(BLOCK_SIZE)
                if not block:
                    break
                written += len(block)
                if written > limits.max_entry_bytes:
                    raise UnsafeArchive(
                        "entry %s: more than the per-entry limit of %s (max_entry_bytes); archive bomb?"
                        % (show_name(name), _human(limits.max_entry_bytes))
                    )
                if self.stats.bytes + written > limits.max_total_bytes:
                    raise UnsafeArchive(
                        "entry %s: the archive expands to more than %s (max_total_bytes); archive bomb?"
                        % (show_name(name), _human(limits.max_total_bytes))
                    )
                view = memoryview(block)
                while view:
                    count = os.write(fd, view)
                    view = view[count:]
            os.fchmod(fd, EXEC_MODE if mode & stat.S_IXUSR else FILE_MODE)
        finally:
            os.close(fd)
        self.stats.files += 1
        self.stats.bytes += written


def _tar_kind(member):
    if member.issym():
        return "a symlink (to %s)" % show_name(member.linkname)
    if member.islnk():
        return "a hard link (to %s)" % show_name(member.linkname)
    if member.ischr():
        return "a character device"
    if member.isblk():
        return "a block device"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    return "an unsupported entry type %r" % (member.type,)


_TAR_FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)


def _extract_tar(path, writer, compressed=True):
    with open(path, "rb", buffering=BLOCK_SIZE) as raw:
        gz = gzip.GzipFile(fileobj=raw, mode="rb") if compressed else raw
        archive = tarfile.open(fileobj=gz, mode="r|", bufsize=BLOCK_SIZE)
        try:
            for member in archive:
                writer.count_entry(member.name)
                parts = split_entry_name(member.name)
                if member.issparse():
                    raise UnsafeArchive("entry %s is a sparse file; only regular files and directories are allowed" % show_name(member.name))
                if member.type == tarfile.DIRTYPE:
                    writer.add_directory(parts, member.name)
                elif member.type in _TAR_FILE_TYPES:
                    handle = archive.extractfile(member)
                    writer.add_file(parts, member.name, handle.read, member.mode, declared_size=member.size)
                else:
                    raise UnsafeArchive("entry %s is %s; only regular files and directories are allowed" % (show_name(member.name), _tar_kind(member)))
            # Read the (compressed) stream to its end: this checks the gzip
            # trailer (CRC-32 and length) and bounds what follows the tar data.
            trailing = 0
            while True:
                block = gz.read(BLOCK_SIZE)
                if not block:
                    break
                trailing += len(block)
                if trailing > MAX_TRAILING_BYTES:
                    raise UnsafeArchive("more than %s of data after the end of the tar archive" % _human(MAX_TRAILING_BYTES))
        finally:
            archive.close()
            if compressed:
                gz.close()


def _zip_mode(info):
    """Unix mode stored in a zip entry, or 0."""
    return (info.external_attr >> 16) & 0xFFFF


def _zip_kind(mode):
    kind = stat.S_IFMT(mode)
    if kind == stat.S_IFLNK:
        return "a symlink"
    if kind == stat.S_IFCHR:
        return "a character device"
    if kind == stat.S_IFBLK:
        return "a block device"
    if kind == stat.S_IFIFO:
        return "a FIFO"
    if kind == stat.S_IFSOCK:
        return "a socket"
    return "an unsupported file type (mode %o)" % mode


def _extract_zip(path, writer):
    limits = writer.limits
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            first_extra = infos[limits.max_entries].filename
            raise UnsafeArchive(
                "entry %s: the archive has %d entries, more than %d (max_entries)" % (show_name(first_extra), len(infos), limits.max_entries)
            )
        declared = 0
        for info in infos:
            declared += info.file_size
            if declared > limits.max_total_bytes:
                raise UnsafeArchive(
                    "entry %s: the archive declares more than %s of files (max_total_bytes)" % (show_name(info.filename), _human(limits.max_total_bytes))
                )
        for info in infos:
            name = info.filename
            writer.count_entry(name)
            parts = split_entry_name(name, is_zip=True)
            mode = _zip_mode(info)
            kind = stat.S_IFMT(mode)
            if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                raise UnsafeArchive("entry %s is %s; only regular files and directories are allowed" % (show_name(name), _zip_kind(mode)))
            if info.flag_bits & 0x1:
                raise UnsafeArchive("entry %s is encrypted" % show_name(name))
            if name.endswith("/") or kind == stat.S_IFDIR:
                writer.add_directory(parts, name)
                continue
            with archive.open(info) as handle:
                writer.add_file(parts, name, handle.read, mode, declared_size=info.file_size)


def extract_archive(archive, dest, max_entries=DEFAULT_MAX_ENTRIES, max_entry_bytes=DEFAULT_MAX_ENTRY_BYTES,
                    max_total_bytes=DEFAULT_MAX_TOTAL_BYTES, pack=None):
    """Extract ``archive`` into the new directory ``dest``; return :class:`ExtractStats`.

    ``dest`` must not exist; its parent must.  On failure ``dest`` is
    removed and the error (:class:`UnsafeArchive`, or :class:`AttuneError`
    for I/O problems such as a full disk) is raised with ``pack`` as context.
    """
    limits = _Limits(max_entries, max_entry_bytes, max_total_bytes)
    label = os.path.basename(archive)
    try:
        fmt = detect_format(archive)
    except UnsafeArchive as exc:
        raise UnsafeArchive(exc.message, pack=pack)
    except OSError as exc:
        raise AttuneError("cannot read archive %s: %s" % (label, exc.strerror or exc), pack=pack, cause=exc)
    try:
        os.mkdir(dest, 0o700)
    except OSError as exc:
        raise AttuneError("cannot create extraction directory %s: %s" % (dest, exc.strerror or exc), pack=pack, cause=exc)
    stats = ExtractStats(fmt)
    writer = None
    try:
        writer = _TreeWriter(dest, limits, stats)
        if fmt == FORMAT_ZIP:
            _extract_zip(archive, writer)
        else:
            _extract_tar(archive, writer, compressed=(fmt == FORMAT_TAR_GZ))
    except BaseException as exc:
        if writer is not None:
            writer.close()
            writer = None
        remove_tree(dest)
        if isinstance(exc, UnsafeArchive):
            raise UnsafeArchive("%s: %s" % (label, exc.message), pack=exc.pack or pack, cause=exc.cause)
        if isinstance(exc, (tarfile.TarError, zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, NotImplementedError)):
            raise UnsafeArchive("%s is not a valid %s archive (corrupt or truncated): %s" % (label, fmt, exc or type(exc).__name__), pack=pack, cause=exc)
        if isinstance(exc, OSError):
            raise AttuneError("cannot extract %s: %s" % (label, exc), pack=pack, cause=exc)
        raise
    finally:
        if writer is not None:
            writer.close()
    return stats


def prepare_archive(archive, dest, expected_ref=None, expected_version=None, pack=None, **limits):
    """Extract ``archive`` into the new directory ``dest``, find the pack root and validate its pack.yaml.

    Returns ``(root, pack_yaml, stats)``.  ``limits`` are passed to
    ``_extract.extract_archive`` (max_entries, max_entry_bytes,
    max_total_bytes).  On any failure ``dest`` is removed.
    """
    stats = extract_archive(archive, dest, pack=pack, **limits)
    try:
        root = find_pack_root(dest, pack=pack)
        content = read_pack_yaml(root, expected_ref, expected_version, pack=pack)
    except BaseException:
        remove_tree(dest)
        raise
    return root, content, stats
