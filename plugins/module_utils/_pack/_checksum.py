# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: checksum parsing and computation (may change without notice).

* ``parse_checksum('sha256:<hex>')`` -> :class:`Checksum`; sha256 and sha512 are
  accepted, sha1 and md5 are recognised and refused as too weak.
* ``file_digest(path, algo)`` streams a file in 1 MiB blocks.
* ``framed_dir_checksum(path)`` is Attune's *framed directory checksum*
  (attune-format.md section 4).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import stat
import struct

from ansible_collections.attune.packs.plugins.module_utils._base._errors import ChecksumError, ChecksumMismatch

ACCEPTED_ALGORITHMS = {"sha256": 64, "sha512": 128}
WEAK_ALGORITHMS = {"sha1": 40, "md5": 32}
BLOCK_SIZE = 1024 * 1024
FRAME_MAGIC = b"attune-pack-file-v1"

_HEX = re.compile(r"^[0-9a-f]+\Z")


class Checksum(object):
    """A parsed ``algo:hexdigest`` checksum."""

    __slots__ = ("algorithm", "hexdigest")

    def __init__(self, algorithm, hexdigest):
        self.algorithm = algorithm
        self.hexdigest = hexdigest

    def __str__(self):
        return "%s:%s" % (self.algorithm, self.hexdigest)

    def __repr__(self):
        return "Checksum(%r)" % str(self)

    def __eq__(self, other):
        if isinstance(other, str):
            try:
                other = parse_checksum(other)
            except ChecksumError:
                return False
        if not isinstance(other, Checksum):
            return NotImplemented
        return self.algorithm == other.algorithm and hmac.compare_digest(self.hexdigest, other.hexdigest)

    def __ne__(self, other):
        result = self.__eq__(other)
        return result if result is NotImplemented else not result

    def __hash__(self):
        return hash(str(self))

    def matches(self, hexdigest):
        return hmac.compare_digest(self.hexdigest, hexdigest.lower())

    def verify(self, hexdigest, what="content", **context):
        """Raise :class:`ChecksumMismatch` unless ``hexdigest`` matches."""
        if not self.matches(hexdigest):
            raise ChecksumMismatch(
                "checksum mismatch for %s: expected %s, got %s:%s" % (what, self, self.algorithm, hexdigest.lower()),
                **context
            )


def parse_checksum(value, allowed=None):
    """Parse ``algo:hex``.

    ``allowed`` restricts the accepted algorithms further (current Attune
    accepts only sha256 for registry sources).
    """
    if not isinstance(value, str) or ":" not in value:
        raise ChecksumError("invalid checksum %r: expected '<algorithm>:<hex digest>', e.g. 'sha256:…'" % (value,))
    algo, _sep, digest = value.partition(":")
    algo = algo.strip().lower()
    digest = digest.strip()
    if algo in WEAK_ALGORITHMS:
        raise ChecksumError("checksum algorithm %s is too weak and is refused; use sha256 or sha512" % algo)
    if algo not in ACCEPTED_ALGORITHMS:
        raise ChecksumError("unknown checksum algorithm %r: use sha256 or sha512" % algo)
    if allowed is not None and algo not in allowed:
        raise ChecksumError("checksum algorithm %s is not accepted here (allowed: %s)" % (algo, ", ".join(sorted(allowed))))
    if len(digest) != ACCEPTED_ALGORITHMS[algo] or not _HEX.match(digest):
        raise ChecksumError(
            "invalid %s checksum: expected %d lowercase hex digits after '%s:'" % (algo, ACCEPTED_ALGORITHMS[algo], algo)
        )
    return Checksum(algo, digest)


def file_digest(path, algorithm="sha256"):
    """Hex digest of a file, streamed."""
    hasher = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        while True:
            block = handle.read(BLOCK_SIZE)
            if not block:
                break
            hasher.update(block)
    return hasher.hexdigest()


def _walk_sorted(root, rel_parts, exclude_top=()):
    """Yield (relative path, absolute path) of regular files, component-wise sorted.

    Attune's verifier orders component by component: the children of a
    directory are sorted by name (bytes of the UTF-8 name) and each
    directory's subtree is visited where its name falls.  This differs from a
    whole-string sort only when a name is a prefix of a sibling followed by a
    character below '/', e.g. ``a-b`` vs ``a/x``: component order visits
    ``a/x`` first (``a`` < ``a-b``), a string sort visits ``a-b`` first.
    """
    directory = os.path.join(root, *rel_parts) if rel_parts else root
    with os.scandir(directory) as entries:
        names = sorted((entry.name for entry in entries), key=lambda n: n.encode("utf-8", "surrogateescape"))
    for name in names:
        if name == ".git" or (not rel_parts and name in exclude_top):
            continue
        full = os.path.join(directory, name)
        mode = os.lstat(full).st_mode
        parts = rel_parts + [name]
        if stat.S_ISDIR(mode):
            yield from _walk_sorted(root, parts)
        elif stat.S_ISREG(mode):
            yield "/".join(parts), full
        else:
            kind = "symlink" if stat.S_ISLNK(mode) else "special file"
            raise ChecksumError("cannot checksum %s: %s is a %s (only regular files are allowed)" % (root, "/".join(parts), kind))


def framed_dir_checksum(root, algorithm="sha256", exclude_top=()):
    """Attune's framed directory checksum of ``root`` (hex digest).

    ``exclude_top`` names top-level entries left out (the ``.attune`` record
    directory of a tree installed by 0.1.0); ``.git`` is always left out.
    """
    hasher = hashlib.new(algorithm)
    for rel, full in _walk_sorted(root, [], exclude_top):
        path_bytes = rel.encode("utf-8", "surrogateescape")
        with open(full, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            hasher.update(FRAME_MAGIC)
            hasher.update(struct.pack(">Q", len(path_bytes)))
            hasher.update(path_bytes)
            hasher.update(struct.pack(">Q", size))
            read = 0
            while True:
                block = handle.read(BLOCK_SIZE)
                if not block:
                    break
                read += len(block)
                hasher.update(block)
            if read != size:
                raise ChecksumError("file %s changed while it was being checksummed" % rel)
    return hasher.hexdigest()
