# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the controller's content-addressed archive cache (may change without notice).

With ``fetch_on: controller`` the ``attune_pack`` action plugin downloads each
archive once per controller and copies it to the hosts.  Archives are stored
as ``<cache_dir>/archives/<algorithm>-<hexdigest>``: the name *is* the
checksum the registry or lock file gave, the file is re-hashed on every reuse
(a corrupted or tampered copy is dropped and downloaded again), and a per-
archive ``flock`` makes concurrent forks wait for the one download instead of
repeating it.  Files are written to a temporary name and renamed, mode 0600.

Trust (issue 8; docs/security.md): the same rules as the index cache
(``_cache.PrivateDir``).  ``<cache_dir>`` and ``<cache_dir>/archives`` are
refused (:class:`CacheUnsafe`) when they are symlinks, of another owner or
writable by group/others; inside them a symlinked or foreign archive or lock
file is dropped and replaced, never followed.  Reused archives are hashed
through the descriptor that was checked.
"""

from __future__ import annotations

import hashlib
import os

from ansible_collections.attune.packs.plugins.module_utils._registry._cache import PrivateDir
from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ChecksumError, SourceError
from ansible_collections.attune.packs.plugins.module_utils._registry._fetch import download
from ansible_collections.attune.packs.plugins.module_utils._registry._index import file_url_path

CHUNK = 1024 * 1024


class ArchiveCache(object):
    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self.directory = os.path.join(cache_dir, "archives")
        self.downloads = 0
        self.reused = 0

    def _open_dir(self):
        PrivateDir(self.cache_dir).close()  # <cache_dir> itself: whoever can write it can swap archives/
        return PrivateDir(self.directory)

    def get(self, source, pack, verify=True, timeout=120, connect_timeout=10, max_bytes=104857600, allow_http=False,
            allow_file=False):
        """Local path of the verified archive of ``source`` (``type: archive``, ``url``, ``checksum``).

        ``allow_http`` (the task's) permits plain http:// and file:// URLs, as on the host for lock files and ``source``;
        ``allow_file`` permits file:// (an archive of a file:// registry of this task, see :func:`local_archive`).
        """
        if not source.get("checksum"):
            raise ChecksumError("fetch_on=controller needs a checksum for %s (archives are cached by checksum)"
                                % redact_url(source.get("url") or "?"), pack=pack)
        checksum = parse_checksum(source["checksum"])
        name = "%s-%s" % (checksum.algorithm, checksum.hexdigest)
        path = os.path.join(self.directory, name)
        with self._open_dir() as directory:
            with directory.lock(name + ".lock"):
                fd = directory.open_trusted(name, os.O_RDONLY)
                if fd is not None:
                    hasher = hashlib.new(checksum.algorithm)
                    with os.fdopen(fd, "rb") as handle:
                        for chunk in iter(lambda: handle.read(CHUNK), b""):
                            hasher.update(chunk)
                    if checksum.matches(hasher.hexdigest()):
                        self.reused += 1
                        return path
                    directory.unlink(name)  # corrupted or tampered: fetch again
                self._download(directory, source["url"], name, checksum, pack, verify, timeout, connect_timeout, max_bytes,
                               allow_http, allow_file or allow_http)
                self.downloads += 1
                return path

    def _download(self, directory, url, name, checksum, pack, verify, timeout, connect_timeout, max_bytes, allow_http, allow_file):
        hasher = hashlib.new(checksum.algorithm)
        with directory.atomic_write(name) as handle:  # renamed into place only once the checksum matched
            download(url, handle, verify=verify, timeout=timeout, connect_timeout=connect_timeout, max_bytes=max_bytes,
                     hashers=(hasher,), error_class=SourceError, allow_http=allow_http, allow_file=allow_file, pack=pack)
            checksum.verify(hasher.hexdigest(), what="archive %s" % redact_url(url), pack=pack)


def local_archive(request, registry_urls):
    """True when a fetch request from the host names a file:// archive of a file:// registry the controller itself
    was given (``registry_urls``: the task's registries), lying in that registry's directory.

    The host says which registry it resolved from; the controller reads a local file only where its own
    configuration points, so a host cannot make it read (and copy out) other files of the controller.
    """
    registry_url = request.get("registry_url")
    if not registry_url or registry_url not in registry_urls:
        return False
    try:
        index_path = file_url_path(registry_url)
        archive_path = file_url_path((request.get("source") or {}).get("url"))
    except ValueError:
        return False
    if not index_path or not archive_path:
        return False
    root = os.path.dirname(os.path.normpath(index_path))
    return os.path.normpath(archive_path).startswith(root.rstrip("/") + "/")
