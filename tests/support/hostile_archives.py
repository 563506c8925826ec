"""Hostile archives built for real, for extraction and install tests.

``CASES`` is a list of :class:`HostileCase`: ``build(path)`` writes the archive
(``.tar.gz`` or ``.zip`` bytes, whatever the name), ``message`` is a regular
expression the resulting ``UnsafeArchive`` message must match, and
``limits`` are the extraction limits to use (small ones keep bomb tests
fast).  Every archive also carries a valid ``demo/pack.yaml``, so the only
reason to refuse it is the hostile entry.

Low-level builders: ``tar_gz(path, members)`` and ``zip_file(path, members)``
where a member is a :func:`member` dict.  ``SYMLINK_TARGET`` is the absolute
path the symlink cases point at; tests create it and check nothing was
written there.
"""

from __future__ import annotations

import collections
import gzip
import io
import os
import stat
import struct
import tarfile
import tempfile
import warnings
import zipfile

PACK_YAML = b"ref: demo\nlabel: Demo\ndescription: A demo pack\nversion: 1.0.0\n"
SYMLINK_TARGET = os.path.join(tempfile.gettempdir(), "attune-hostile-symlink-target-%d" % os.getpid())  # per process (xdist)
MIB = 1024 * 1024

HostileCase = collections.namedtuple("HostileCase", "id build message limits")


def member(name, kind="file", data=b"", mode=None, linkname="", size=None):
    """One archive member: ``kind`` is file, dir, symlink, hardlink, chr, blk, fifo or a raw tar type byte."""
    return {"name": name, "kind": kind, "data": data, "mode": mode, "linkname": linkname, "size": size}


_TAR_TYPES = {
    "file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE,
    "chr": tarfile.CHRTYPE, "blk": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE,
}


def tar_bytes(members):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in members:
            info = tarfile.TarInfo(item["name"])
            info.type = _TAR_TYPES.get(item["kind"], item["kind"])
            info.mode = item["mode"] if item["mode"] is not None else (0o755 if item["kind"] == "dir" else 0o644)
            info.linkname = item["linkname"]
            info.mtime = 1704067200
            data = item["data"]
            if item["kind"] == "file" or item["kind"] not in _TAR_TYPES:
                info.size = len(data) if item["size"] is None else item["size"]
                tar.addfile(info, io.BytesIO(data))
            else:
                tar.addfile(info)
    return raw.getvalue()


def tar_gz(path, members):
    payload = tar_bytes(members)
    with open(path, "wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
            gz.write(payload)
    return path


def zip_file(path, members):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in members:
            is_dir = item["kind"] == "dir"
            info = zipfile.ZipInfo(item["name"] + ("/" if is_dir and not item["name"].endswith("/") else ""), (2024, 1, 1, 0, 0, 0))
            info.create_system = 3
            if item["mode"] is not None:
                mode = item["mode"]
            elif is_dir:
                mode = stat.S_IFDIR | 0o755
            elif item["kind"] == "symlink":
                mode = stat.S_IFLNK | 0o777
            elif item["kind"] == "fifo":
                mode = stat.S_IFIFO | 0o644
            elif item["kind"] == "chr":
                mode = stat.S_IFCHR | 0o644
            else:
                mode = stat.S_IFREG | 0o644
            info.external_attr = (mode << 16) | (0x10 if is_dir else 0)
            info.compress_type = zipfile.ZIP_STORED if is_dir else zipfile.ZIP_DEFLATED
            data = item["linkname"].encode() if item["kind"] == "symlink" else item["data"]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # duplicate names are the point of some cases
                zf.writestr(info, data)
    return path


def _pack(*extra, **kwargs):
    prefix = kwargs.get("prefix", "demo/")
    return [member(prefix.rstrip("/"), "dir"), member(prefix + "pack.yaml", data=PACK_YAML)] + list(extra) if prefix else \
        [member("pack.yaml", data=PACK_YAML)] + list(extra)


def _tar(*extra):
    return lambda path: tar_gz(path, _pack(*extra))


def _zip(*extra):
    return lambda path: zip_file(path, _pack(*extra))


def _zip_lying_sizes(path):
    """A zip whose headers claim 1 KiB for an entry that inflates to 8 MiB (a bomb with lying headers)."""
    zip_file(path, _pack(member("demo/bomb.bin", data=b"\0" * (8 * MIB))))

    def claim(at):
        def patch(data, offset):
            struct.pack_into("<I", data, offset + at, 1024)
        return patch

    # uncompressed size: offset 22 in a local header, 24 in a central directory header
    return _patch_zip_headers(path, b"demo/bomb.bin", claim(22), claim(24))


def _patch_zip_headers(path, name, local_patch, central_patch):
    """Apply ``patch(data, header_offset)`` to the local and central headers of entry ``name``."""
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    for signature, name_len_at, name_at, patch in ((b"PK\x03\x04", 26, 30, local_patch), (b"PK\x01\x02", 28, 46, central_patch)):
        offset = 0
        while True:
            offset = data.find(signature, offset)
            if offset < 0:
                break
            name_len = struct.unpack_from("<H", data, offset + name_len_at)[0]
            if bytes(data[offset + name_at:offset + name_at + name_len]) == name:
                patch(data, offset)
            offset += 4
    with open(path, "wb") as handle:
        handle.write(bytes(data))
    return path


def _zip_encrypted(path):
    """The "encrypted" flag (bit 0 of the general purpose flags) set on pack.yaml."""
    zip_file(path, _pack())

    def set_flag(at):
        def patch(data, offset):
            data[offset + at] |= 0x01
        return patch

    return _patch_zip_headers(path, b"demo/pack.yaml", set_flag(6), set_flag(8))


def _truncated(path):
    tar_gz(path, _pack(member("demo/data.bin", data=os.urandom(256 * 1024))))
    size = os.path.getsize(path)
    with open(path, "r+b") as handle:
        handle.truncate(size // 2)
    return path


def _truncated_zip(path):
    zip_file(path, _pack(member("demo/data.bin", data=os.urandom(64 * 1024))))
    with open(path, "r+b") as handle:
        handle.truncate(os.path.getsize(path) - 200)
    return path


def _bad_crc(path):
    tar_gz(path, _pack(member("demo/data.txt", data=b"hello\n" * 1000)))
    with open(path, "r+b") as handle:
        handle.seek(-8, os.SEEK_END)  # gzip trailer: CRC-32 then ISIZE
        crc = handle.read(4)
        handle.seek(-8, os.SEEK_END)
        handle.write(bytes([crc[0] ^ 0xFF]) + crc[1:])
    return path


def _trailing_garbage_bomb(path):
    """Valid tar data followed (inside the gzip stream) by 4 MiB of zeros after the end-of-archive marker."""
    payload = tar_bytes(_pack()) + b"\0" * (4 * MIB)
    with open(path, "wb") as out:
        with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
            gz.write(payload)
    return path


def _write(content):
    def build(path):
        with open(path, "wb") as handle:
            handle.write(content)
        return path
    return build


def _plain_tar(path):
    with open(path, "wb") as handle:
        handle.write(tar_bytes(_pack()))
    return path


def _zeros(count, size):
    return [member("demo/zero%03d.bin" % index, data=b"\0" * size) for index in range(count)]


def _many(count):
    return [member("demo/file%04d.txt" % index, data=b"x") for index in range(count)]


CASES = [
    HostileCase("tar-traversal", _tar(member("../evil.txt", data=b"evil")), r"'\.\./evil\.txt'.*path traversal", {}),
    HostileCase("tar-nested-traversal", _tar(member("demo/../../evil.txt", data=b"evil")), r"path traversal", {}),
    HostileCase("tar-absolute", _tar(member("/tmp/attune-evil.txt", data=b"evil")), r"'/tmp/attune-evil\.txt': absolute path", {}),
    HostileCase("zip-traversal", _zip(member("../evil.txt", data=b"evil")), r"'\.\./evil\.txt'.*path traversal", {}),
    HostileCase("zip-absolute", _zip(member("/evil.txt", data=b"evil")), r"absolute path", {}),
    HostileCase("zip-backslash-traversal", _zip(member("..\\..\\evil.txt", data=b"evil")), r"backslash", {}),
    HostileCase("zip-drive-letter", _zip(member("C:/evil.txt", data=b"evil")), r"drive letter", {}),
    HostileCase("tar-symlink", _tar(member("demo/link", "symlink", linkname="/etc/passwd")), r"'demo/link' is a symlink", {}),
    HostileCase("tar-symlink-write-through", _tar(member("demo/out", "symlink", linkname=SYMLINK_TARGET),
                                                  member("demo/out/evil.txt", data=b"evil")), r"'demo/out' is a symlink", {}),
    HostileCase("tar-symlinked-parent-dir", _tar(member("demo/up", "symlink", linkname=".."),
                                                 member("demo/up/up/evil.txt", data=b"evil")), r"'demo/up' is a symlink", {}),
    HostileCase("zip-symlink", _zip(member("demo/link", "symlink", linkname="/etc/passwd")), r"'demo/link' is a symlink", {}),
    HostileCase("tar-hardlink", _tar(member("demo/hard", "hardlink", linkname="/etc/passwd")), r"'demo/hard' is a hard link", {}),
    HostileCase("tar-char-device", _tar(member("demo/null", "chr")), r"'demo/null' is a character device", {}),
    HostileCase("tar-block-device", _tar(member("demo/disk", "blk")), r"'demo/disk' is a block device", {}),
    HostileCase("tar-fifo", _tar(member("demo/pipe", "fifo")), r"'demo/pipe' is a FIFO", {}),
    HostileCase("zip-fifo", _zip(member("demo/pipe", "fifo")), r"'demo/pipe' is a FIFO", {}),
    HostileCase("zip-char-device", _zip(member("demo/null", "chr")), r"'demo/null' is a character device", {}),
    HostileCase("tar-unknown-type", _tar(member("demo/volume", b"V")), r"unsupported entry type", {}),
    HostileCase("tar-oversized-entry", _tar(member("demo/big.bin", data=b"\0" * (2 * MIB))), r"'demo/big\.bin'.*per-entry limit",
                {"max_entry_bytes": MIB}),
    HostileCase("zip-oversized-entry", _zip(member("demo/big.bin", data=b"\0" * (2 * MIB))), r"'demo/big\.bin'.*per-entry limit",
                {"max_entry_bytes": MIB}),
    HostileCase("tar-too-many-entries", _tar(*_many(50)), r"more than 20 entries", {"max_entries": 20}),
    HostileCase("zip-too-many-entries", _zip(*_many(50)), r"has 52 entries, more than 20 \(max_entries\)", {"max_entries": 20}),
    HostileCase("tar-gzip-bomb", _tar(*_zeros(8, 4 * MIB)), r"more than 16\.0 MiB.*max_total_bytes", {"max_total_bytes": 16 * MIB}),
    HostileCase("zip-bomb-declared", _zip(*_zeros(8, 4 * MIB)), r"declares more than 16\.0 MiB", {"max_total_bytes": 16 * MIB}),
    HostileCase("zip-bomb-lying-headers", _zip_lying_sizes, r"not a valid zip archive", {"max_entry_bytes": MIB}),
    HostileCase("tar-trailing-bomb", _trailing_garbage_bomb, r"after the end of the tar archive", {}),
    HostileCase("tar-duplicate-entry", _tar(member("demo/pack.yaml", data=b"ref: other\n")), r"'demo/pack\.yaml': duplicate entry", {}),
    HostileCase("zip-duplicate-entry", _zip(member("demo/pack.yaml", data=b"ref: other\n")), r"'demo/pack\.yaml': duplicate entry", {}),
    HostileCase("tar-file-then-directory", _tar(member("demo/a", data=b"file"), member("demo/a/b", data=b"x")),
                r"demo/a is a file in this archive", {}),
    HostileCase("tar-nul-in-name", _tar(member("demo/\u00e9vil\x00.txt", data=b"x")), r"NUL byte", {}),
    HostileCase("tar-control-character", _tar(member("demo/evil\nname.txt", data=b"x")), r"control character", {}),
    HostileCase("zip-encrypted", _zip_encrypted, r"'demo/pack\.yaml' is encrypted", {}),
    HostileCase("not-an-archive", _write(b"<html>this is not an archive</html>\n"), r"not an archive", {}),
    HostileCase("empty-file", _write(b""), r"is empty", {}),
    HostileCase("truncated-tar-gz", _truncated, r"not a valid tar\.gz archive \(corrupt or truncated\)", {}),
    HostileCase("gzip-bad-crc", _bad_crc, r"not a valid tar\.gz archive \(corrupt or truncated\).*CRC", {}),
    HostileCase("truncated-zip", _truncated_zip, r"not a valid zip archive", {}),
]
