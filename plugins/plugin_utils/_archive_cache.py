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
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile

from ansible_collections.attune.packs.plugins.module_utils._checksum import file_digest, parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._errors import ChecksumError, SourceError
from ansible_collections.attune.packs.plugins.module_utils._fetch import download


class ArchiveCache(object):
    def __init__(self, cache_dir):
        self.directory = os.path.join(cache_dir, "archives")
        self.downloads = 0
        self.reused = 0

    def _ensure_dir(self):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)

    def get(self, source, pack, verify=True, timeout=120, connect_timeout=10, max_bytes=104857600):
        """Local path of the verified archive of ``source`` (``type: archive``, ``url``, ``checksum``)."""
        if not source.get("checksum"):
            raise ChecksumError("fetch_on=controller needs a checksum for %s (archives are cached by checksum)"
                                % redact_url(source.get("url") or "?"), pack=pack)
        checksum = parse_checksum(source["checksum"])
        self._ensure_dir()
        path = os.path.join(self.directory, "%s-%s" % (checksum.algorithm, checksum.hexdigest))
        fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.path.exists(path):
                if checksum.matches(file_digest(path, checksum.algorithm)):
                    self.reused += 1
                    return path
                os.unlink(path)  # corrupted or tampered: fetch again
            self._download(source["url"], path, checksum, pack, verify, timeout, connect_timeout, max_bytes)
            self.downloads += 1
            return path
        finally:
            os.close(fd)

    def _download(self, url, path, checksum, pack, verify, timeout, connect_timeout, max_bytes):
        hasher = hashlib.new(checksum.algorithm)
        handle = tempfile.NamedTemporaryFile(dir=self.directory, prefix=".download-", delete=False)
        try:
            with handle:
                download(url, handle, verify=verify, timeout=timeout, connect_timeout=connect_timeout, max_bytes=max_bytes,
                         hashers=(hasher,), error_class=SourceError, pack=pack)
                handle.flush()
                os.fsync(handle.fileno())
            checksum.verify(hasher.hexdigest(), what="archive %s" % redact_url(url), pack=pack)
            os.chmod(handle.name, 0o600)
            os.rename(handle.name, path)
        except BaseException:
            try:
                os.unlink(handle.name)
            except OSError:
                pass
            raise
