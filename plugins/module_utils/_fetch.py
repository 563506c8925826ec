# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: fetching indices and archives (may change without notice).

* https (and http only when the caller allows it) through requests, TLS
  verified (``verify`` is True, False or a CA bundle path), redirects never
  followed, a hard byte cap enforced on what is actually read (whatever
  Content-Length says), ``connect_timeout`` per connection and ``timeout``
  as a total deadline for the whole transfer;
* ``file://`` URLs read from disk with the same cap.

Errors are :class:`RegistryUnreachable` / :class:`AuthenticationFailed` (or
:class:`SourceError` for archives) naming the URL (credentials redacted) and
the cause, never a header value.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from urllib.parse import unquote, urlsplit

from ansible_collections.attune.packs.plugins.module_utils import _outbound
from ansible_collections.attune.packs.plugins.module_utils._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._errors import AuthenticationFailed, RegistryUnreachable
from ansible_collections.attune.packs.plugins.module_utils._lazy import REQUESTS

# requests is imported on first use (_load_requests): it costs ~0.1 s, and a search or resolution served from a
# fresh cache, a file:// registry or the action plugins' host-side path never needs it.
requests = None

CHUNK_SIZE = 1024 * 1024
USER_AGENT = "attune.packs (Ansible collection)"
_SESSION = None


class FetchResult(object):
    """Outcome of a conditional GET: ``status`` 200 with ``body``, or 304."""

    __slots__ = ("status", "body", "etag", "last_modified")

    def __init__(self, status, body=None, etag=None, last_modified=None):
        self.status = status
        self.body = body
        self.etag = etag
        self.last_modified = last_modified

    @property
    def not_modified(self):
        return self.status == 304


def _load_requests():
    """Import requests on first use; False when it cannot be imported."""
    global requests  # pylint: disable=global-statement
    requests = REQUESTS.load()
    return requests is not None


def _session():
    global _SESSION  # pylint: disable=global-statement
    if _SESSION is None:
        _SESSION = requests.Session()
        _SESSION.headers["User-Agent"] = USER_AGENT
    return _SESSION


def _describe_connection_error(exc):
    text = str(exc)
    lowered = text.lower()
    if isinstance(exc, requests.exceptions.SSLError):
        if "certificate verify failed" in lowered or "certificate_verify_failed" in lowered:
            return "TLS certificate not trusted (certificate verify failed; give ca_path with the CA that signed it)"
        return "TLS handshake failed"
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "connection timed out"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "timed out waiting for the server"
    if any(marker in lowered for marker in ("name or service not known", "nodename nor servname", "failed to resolve",
                                            "temporary failure in name resolution", "no address associated", "nameresolutionerror")):
        return "host name does not resolve"
    if "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "network is unreachable" in lowered:
        return "network is unreachable"
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "connection broken while reading the body"
    return "connection failed (%s)" % exc.__class__.__name__


def _status_error(response, url, what, error_class, context):
    status = response.status_code
    shown = redact_url(url)
    if status in (401, 403):
        reason = "authentication failed" if status == 401 else "authentication failed (access forbidden)"
        raise AuthenticationFailed(
            "%s: HTTP %d from %s — check the registry's auth headers (token missing, wrong or expired)" % (reason, status, shown),
            status=status, **context
        )
    if 300 <= status < 400:
        location = redact_url(response.headers.get("Location") or "(no Location header)")
        raise error_class(
            "%s %s answered HTTP %d redirecting to %s; redirects are not followed — configure the final URL" % (what, shown, status, location),
            **context
        )
    if status == 404:
        raise error_class("%s not found at %s (HTTP 404)" % (what, shown), **context)
    if status >= 500:
        raise error_class("%s %s is unavailable: server error HTTP %d" % (what, shown, status), **context)
    raise error_class("%s %s answered HTTP %d" % (what, shown, status), **context)


def _too_big(what, url, limit, option, error_class, context):
    raise error_class("%s %s is larger than %s (%d bytes); refused" % (what, redact_url(url), option, limit), **context)


def _local_path(url):
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise RegistryUnreachable("file URL %s names a remote host; only file:///path is supported" % url)
    return unquote(parts.path)


def _open_http(url, headers, verify, connect_timeout, timeout, extra_headers=None):
    all_headers = dict(headers or {})
    all_headers.update(extra_headers or {})
    # the outbound policy (when it applies) checks the URL before connecting and pins the checked address
    return _outbound.session_for(url, _session()).get(
        url,
        headers=all_headers,
        verify=verify,
        timeout=(connect_timeout, timeout),
        allow_redirects=False,
        stream=True,
    )


def _stream(response, sink, max_bytes, deadline, what, url, option, error_class, context):
    """Copy the response body into ``sink(chunk)`` enforcing the cap and the deadline."""
    total = 0
    try:
        for chunk in response.iter_content(CHUNK_SIZE):
            total += len(chunk)
            if total > max_bytes:
                _too_big(what, url, max_bytes, option, error_class, context)
            if time.monotonic() > deadline:
                raise error_class("%s %s: download took longer than timeout" % (what, redact_url(url)), **context)
            sink(chunk)
    except requests.exceptions.RequestException as exc:
        raise error_class("%s %s: %s" % (what, redact_url(url), _describe_connection_error(exc)), **context)
    except (socket.timeout, OSError) as exc:
        raise error_class("%s %s: read failed (%s)" % (what, redact_url(url), exc), **context)
    return total


def fetch_index(url, headers=None, verify=True, timeout=120, connect_timeout=10, max_bytes=10485760,
                etag=None, last_modified=None, registry=None):
    """GET an index (conditional when ``etag``/``last_modified`` are given).

    For ``file://`` the validator is the file's size and mtime, so a 304 is
    answered when the file did not change.
    """
    context = {"registry": registry}
    what = "index"
    if url.lower().startswith("file:"):
        return _fetch_file(url, max_bytes, etag, context)
    if not _load_requests():
        raise RegistryUnreachable("the Python library requests is required to fetch %s" % redact_url(url), **context)
    conditional = {}
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified
    deadline = time.monotonic() + timeout
    try:
        response = _open_http(url, headers, verify, connect_timeout, timeout, conditional)
    except requests.exceptions.RequestException as exc:
        raise RegistryUnreachable("registry unreachable: %s: %s" % (redact_url(url), _describe_connection_error(exc)), **context)
    with response:
        if response.status_code == 304 and (etag or last_modified):
            return FetchResult(304, etag=response.headers.get("ETag") or etag,
                               last_modified=response.headers.get("Last-Modified") or last_modified)
        if response.status_code != 200:
            _status_error(response, url, what, RegistryUnreachable, context)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            _too_big(what, url, max_bytes, "index_max_bytes", RegistryUnreachable, context)
        chunks = []
        _stream(response, chunks.append, max_bytes, deadline, what, url, "index_max_bytes", RegistryUnreachable, context)
        return FetchResult(200, b"".join(chunks), response.headers.get("ETag"), response.headers.get("Last-Modified"))


def _fetch_file(url, max_bytes, etag, context):
    path = _local_path(url)
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            validator = 'W/"file-%d-%d"' % (info.st_size, info.st_mtime_ns)
            if etag and etag == validator:
                return FetchResult(304, etag=validator)
            if info.st_size > max_bytes:
                _too_big("index", url, max_bytes, "index_max_bytes", RegistryUnreachable, context)
            body = handle.read(max_bytes + 1)
    except (IOError, OSError) as exc:
        reason = "file not found" if exc.errno == errno.ENOENT else (exc.strerror or str(exc))
        raise RegistryUnreachable("registry unreachable: cannot read %s: %s" % (path, reason), **context)
    if len(body) > max_bytes:
        _too_big("index", url, max_bytes, "index_max_bytes", RegistryUnreachable, context)
    return FetchResult(200, body, validator)


def download(url, dest, headers=None, verify=True, timeout=120, connect_timeout=10, max_bytes=104857600,
             hashers=(), error_class=None, what="archive", option="archive_max_bytes", **context):
    """Stream ``url`` into the binary file object ``dest``; update ``hashers``; return the byte count.

    ``file://`` URLs are copied from disk with the same cap.  Raises
    ``error_class`` (default :class:`RegistryUnreachable`) or
    :class:`AuthenticationFailed`.
    """
    error_class = error_class or RegistryUnreachable

    def sink(chunk):
        dest.write(chunk)
        for hasher in hashers:
            hasher.update(chunk)

    deadline = time.monotonic() + timeout
    if url.lower().startswith("file:"):
        path = _local_path(url)
        total = 0
        try:
            with open(path, "rb") as handle:
                while True:
                    chunk = handle.read(CHUNK_SIZE)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > max_bytes:
                        _too_big(what, url, max_bytes, option, error_class, context)
                    sink(chunk)
        except (IOError, OSError) as exc:
            raise error_class("cannot read %s %s: %s" % (what, path, exc.strerror or exc), **context)
        return total
    if not _load_requests():
        raise error_class("the Python library requests is required to download %s" % redact_url(url), **context)
    try:
        response = _open_http(url, headers, verify, connect_timeout, timeout)
    except requests.exceptions.RequestException as exc:
        raise error_class("cannot download %s %s: %s" % (what, redact_url(url), _describe_connection_error(exc)), **context)
    with response:
        if response.status_code != 200:
            _status_error(response, url, what, error_class, context)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            _too_big(what, url, max_bytes, option, error_class, context)
        return _stream(response, sink, max_bytes, deadline, what, url, option, error_class, context)
