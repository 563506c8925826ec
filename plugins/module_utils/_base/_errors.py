# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: error types of the registry core (may change without notice).

Every error carries the registry, the pack and a short ``kind`` so that
modules can report Attune's named errors (see docs/architecture.md) and tests
can assert on them without parsing messages.
"""

from __future__ import annotations

import difflib


def suggestion(word, candidates, what="", limit=3):
    """``'; did you mean slack?'`` (or ``'slack or slack-ext'``) for the ``candidates`` closest to ``word``, else ``''``.

    ``difflib`` ratio cutoff 0.6, as Python's own "did you mean" for names; ``what`` goes before the names
    (``'did you mean the option name?'``).  Candidates are only ever names already at hand: no request is made
    to find them.
    """
    if not isinstance(word, str) or not word:
        return ""
    close = difflib.get_close_matches(word, sorted(set(c for c in candidates if isinstance(c, str) and c != word)), n=limit)
    if not close:
        return ""
    names = close[0] if len(close) == 1 else ", ".join(close[:-1]) + " or " + close[-1]
    return "; did you mean %s%s?" % (what + " " if what else "", names)


class AttuneError(Exception):
    """Base class of every error raised by the core."""

    kind = "error"

    def __init__(self, message, registry=None, pack=None, cause=None):
        self.registry = registry
        self.pack = pack
        self.cause = cause
        self.message = message
        super(AttuneError, self).__init__(self.format())

    def format(self):
        parts = []
        if self.registry:
            parts.append("registry %s" % self.registry)
        if self.pack:
            parts.append("pack %s" % self.pack)
        prefix = (", ".join(parts) + ": ") if parts else ""
        return prefix + self.message

    def to_dict(self):
        return {"kind": self.kind, "registry": self.registry, "pack": self.pack, "message": str(self)}


class ConfigError(AttuneError):
    """The registry configuration (file or options) is invalid or missing."""

    kind = "invalid_config"


class RegistryDisabled(AttuneError):
    """``pack_registry.enabled`` is false."""

    kind = "registry_disabled"


class SpecError(AttuneError):
    """A pack spec such as ``slack@^2.1`` cannot be parsed."""

    kind = "invalid_spec"


class IndexFormatError(AttuneError):
    """An index does not follow the v1.0 format (Attune: invalid index format)."""

    kind = "invalid_index_format"


class RegistryUnreachable(AttuneError):
    """The registry could not be fetched (network, TLS, HTTP status, size)."""

    kind = "registry_unreachable"


class AuthenticationFailed(RegistryUnreachable):
    """The registry answered 401 or 403."""

    kind = "authentication_failed"

    def __init__(self, message, status=None, **kwargs):
        self.status = status
        super(AuthenticationFailed, self).__init__(message, **kwargs)


class PackNotFound(AttuneError):
    """No registry holds the ref, or the holding registry has no matching version."""

    kind = "pack_not_found"


class ChecksumError(AttuneError):
    """A checksum string is malformed or uses a refused algorithm."""

    kind = "invalid_checksum"


class ChecksumMismatch(AttuneError):
    """Downloaded or checked-out content does not match its checksum."""

    kind = "checksum_mismatch"


class SourceError(AttuneError):
    """An install source could not be fetched or is not allowed."""

    kind = "source_error"


class UnsafeArchive(AttuneError):
    """An archive breaks one of the extraction rules."""

    kind = "unsafe_archive"


class InvalidPackStructure(AttuneError):
    """The fetched tree has no valid pack.yaml, or it does not match the entry."""

    kind = "invalid_pack_structure"


class LockFileError(AttuneError):
    kind = "lock_file_error"


class CacheUnsafe(AttuneError):
    """A cache directory cannot be trusted (not ours, writable by others, a symlink): refused, never used."""

    kind = "unsafe_cache"


class OutboundRefused(AttuneError):
    """The outbound policy (pack_registry.enabled / approved_* / allow_http) refuses a URL before connecting.

    ``host`` is the refused host and ``key`` the pack_registry key that would allow it (None when no key does).
    """

    kind = "outbound_refused"

    def __init__(self, message, host=None, key=None, **kwargs):
        self.host = host
        self.key = key
        super(OutboundRefused, self).__init__(message, **kwargs)

    def to_dict(self):
        result = super(OutboundRefused, self).to_dict()
        result.update(host=self.host, key=self.key)
        return result


class InvalidArguments(AttuneError):
    """Task options that do not go together (e.g. ``state: absent`` with ``src``)."""

    kind = "invalid_arguments"
