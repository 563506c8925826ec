# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the upload archive of a verified pack tree (may change without notice).

:func:`build_archive` makes a deterministic tar.gz of a pack tree the core verified, as Attune's upload accepts it
(routes/packs.rs ``upload_pack``; its safe_unpack refuses links and special files).  Used by
``_attune._attune_packs`` (the upload of ``attune_pack`` with ``api_url``) and ``_publishing._mirror`` (a git
source turned into a mirrored archive), which therefore does not load the API client.

No Ansible imports.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile

from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError

UPLOAD_MAX_BYTES = 100 * 1024 * 1024  # routes/packs.rs PACK_UPLOAD_MAX_BYTES (the client checks it too: _api.UPLOAD_MAX_BYTES)
# Paths (relative, "/"-separated) left out of an upload besides ``.git`` (left out at any depth, as the framed
# checksum leaves it out: _checksum._walk_sorted).  Nothing else: the upload is exactly the verified tree, a
# top-level ``.attune/`` of the pack included (issue 16 item 10).
DEFAULT_EXCLUDES = ()


class InvalidArchive(AttuneError):
    """The pack tree cannot be archived as Attune accepts it (links, special files, no pack.yaml, size).

    The kind is the one this error had when ``build_archive`` lived in the API client (``api_invalid_archive``;
    ``_attune_packs`` raises it as ``_api_errors.ApiInvalidArchive``), and ``to_dict`` keeps that error's shape
    (``api_url`` and ``status``, null here), so results do not change with the move.
    """

    kind = "api_invalid_archive"

    def to_dict(self):
        out = super(InvalidArchive, self).to_dict()
        out.update(api_url=None, status=None)
        return out


def build_archive(pack_dir, excludes=DEFAULT_EXCLUDES, max_bytes=UPLOAD_MAX_BYTES):
    """A deterministic tar.gz of ``pack_dir`` with pack.yaml at its root, as Attune's upload accepts it.

    Exactly the tree the core verified: every entry but ``.git`` (at any depth, as the framed checksum) and the
    relative paths in ``excludes`` (none by default; a top-level ``.attune/`` of the pack is uploaded).

    Same tree → same bytes (sorted entries, mtime 0, uid/gid 0, no owner names, modes 0755/0644, gzip mtime 0),
    so every deployment of a fleet receives identical archives.  Symlinks, hard-link duplicates are stored as
    files only if regular; links and special files are refused (Attune's safe_unpack refuses them too).
    Returns ``(bytes, 'sha256:<hex>')``.
    """
    root = os.path.abspath(pack_dir)
    if not os.path.isfile(os.path.join(root, "pack.yaml")):
        raise InvalidArchive("%s has no pack.yaml at its root" % pack_dir)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel, full, st in _walk(root, excludes):
            info = tarfile.TarInfo(rel)
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.type = tarfile.REGTYPE
                info.mode = 0o755 if st.st_mode & 0o111 else 0o644
                info.size = st.st_size
                with open(full, "rb") as handle:
                    tar.addfile(info, handle)
    gz = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=gz, mtime=0, compresslevel=6) as handle:
        handle.write(raw.getvalue())
    data = gz.getvalue()
    if len(data) > max_bytes:
        raise InvalidArchive("the pack archive of %s is %d bytes; Attune accepts at most %d" % (pack_dir, len(data), max_bytes))
    return data, "sha256:" + hashlib.sha256(data).hexdigest()


def _walk(root, excludes):
    excludes = set(excludes or ())
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        prefix = "" if rel_dir == "." else "/".join(rel_dir.split(os.sep)) + "/"
        # .git is not part of the verified tree (framed_dir_checksum leaves it out at any depth); excludes are exact
        # relative paths
        dirnames[:] = [d for d in dirnames if d != ".git" and prefix + d not in excludes]
        filenames = [f for f in filenames if f != ".git" and prefix + f not in excludes]
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = prefix + name
            st = os.lstat(full)
            if stat.S_ISLNK(st.st_mode):
                raise InvalidArchive("%s is a symbolic link; Attune refuses links in pack archives" % rel)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
                raise InvalidArchive("%s is not a regular file or directory; Attune refuses it in pack archives" % rel)
            if name in dirnames:
                continue  # directories are emitted when os.walk enters them (keeps a parent-first order)
            out.append((rel, full, st))
        if rel_dir != ".":
            out.append((rel_dir.replace(os.sep, "/"), dirpath, os.lstat(dirpath)))
    return sorted(out, key=lambda item: item[0])
