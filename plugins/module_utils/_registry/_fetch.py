# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: fetching indices and archives (may change without notice).

* https (and http only when the caller allows it) through requests, TLS
  verified (``verify`` is True, False or a CA bundle path), redirects never
  followed, a hard byte cap enforced on what is actually read (whatever
  Content-Length says), ``connect_timeout`` per connection and ``timeout``
  as a total deadline for one request: headers and body.  A watchdog shuts
  the request's sockets down when it expires, so a server trickling bytes
  (every single read succeeding) cannot keep it alive (issue 8, item 2);
* ``file://`` URLs read from disk with the same cap;
* one scheme rule for every URL, whatever option it came through
  (:func:`check_scheme`, issue 8 item 8): https; http only with
  ``allow_http``; file:// only where a local file is expected (registries,
  local copies), and for archives from a lock file or ``source`` only with
  ``allow_http``;
* a new requests session per request, with a cookie policy that accepts
  nothing: no cookie set by one server (a registry) is ever sent to another
  (an archive host), and nothing is kept between requests (item 6).

Errors are :class:`RegistryUnreachable` / :class:`AuthenticationFailed` (or
:class:`SourceError` for archives) naming the URL (credentials redacted) and
the cause, never a header value.
"""

from __future__ import annotations

import errno
import os
import socket
import threading
from urllib.parse import unquote, urlsplit

from ansible_collections.attune.packs.plugins.module_utils._registry import _outbound
from ansible_collections.attune.packs.plugins.module_utils._registry._config import check_url, redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, AuthenticationFailed, RegistryUnreachable, SourceError
from ansible_collections.attune.packs.plugins.module_utils._base._lazy import REQUESTS

# requests is imported on first use (_load_requests): it costs ~0.1 s, and a search or resolution served from a
# fresh cache, a file:// registry or the action plugins' host-side path never needs it.
requests = None

CHUNK_SIZE = 1024 * 1024
USER_AGENT = "attune.packs (Ansible collection)"
_ACTIVE = threading.local()  # the deadline of the request running in this thread
_POOL_CLASSES = None


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


class Deadline(object):
    """The total time of one request: when it is up, every connection the request opened is shut down.

    A blocked read then returns at once (end of stream), whatever the server
    trickles; the caller sees ``expired`` and reports the timeout.  Each
    connection is watched from its creation (``_new_conn``) through a
    duplicate of its socket, so the TLS handshake (which takes the socket
    over) and the headers are under the deadline too.  A request has a
    session of its own, so every connection it uses is a new one.
    """

    def __init__(self, seconds):
        self.seconds = seconds
        self.expired = False
        self._watched = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self):
        _ACTIVE.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info):
        self._timer.cancel()
        _ACTIVE.deadline = None
        with self._lock:
            watched, self._watched = self._watched, []
            for sock in watched:
                sock.close()

    def attach(self, sock):
        # a descriptor of our own for the connection (shutdown() acts on the connection, whichever descriptor names
        # it); fromfd, not dup(): an SSLSocket (a reused keep-alive connection of the API client) cannot be dup()ed
        try:
            watcher = socket.fromfd(sock.fileno(), sock.family, sock.type)
        except (OSError, ValueError, AttributeError):
            return
        with self._lock:
            self._watched.append(watcher)
            if self.expired:
                _shutdown(watcher)

    def _expire(self):
        with self._lock:
            self.expired = True
            for sock in self._watched:
                _shutdown(sock)


def _shutdown(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def watch_socket(sock):
    """Put ``sock`` under the deadline of the request running in this thread (none: nothing to do)."""
    deadline = getattr(_ACTIVE, "deadline", None)
    if deadline is not None and sock is not None:
        deadline.attach(sock)


def _pool_classes(checked=None):
    """urllib3 pool classes whose new connections hand their socket to the running request's deadline; with
    ``checked`` (the outbound policy applies) they also connect only to the checked addresses."""
    global _POOL_CLASSES  # pylint: disable=global-statement
    if _POOL_CLASSES is not None and checked is None:
        return _POOL_CLASSES
    try:
        from urllib3 import connection, connectionpool  # pylint: disable=import-outside-toplevel
    except ImportError:  # pragma: no cover - very old requests vendoring urllib3
        from requests.packages.urllib3 import connection, connectionpool  # pylint: disable=import-outside-toplevel

    def make(connection_class, pool_class):
        if checked is not None:
            connection_class = _outbound.pinned_connection_class(checked, connection_class)

        class DeadlineConnection(connection_class):
            def _new_conn(self):
                sock = super(DeadlineConnection, self)._new_conn()
                watch_socket(sock)
                return sock

        return type("Deadline" + pool_class.__name__, (pool_class,), {"ConnectionCls": DeadlineConnection})

    classes = {"http": make(connection.HTTPConnection, connectionpool.HTTPConnectionPool),
               "https": make(connection.HTTPSConnection, connectionpool.HTTPSConnectionPool)}
    if checked is None:
        _POOL_CLASSES = classes
    return classes


def _hook(manager, checked=None):
    # SOCKS proxy managers have pool classes of their own: they keep them (per-read timeouts only)
    if "SOCKS" not in type(manager).__name__:
        manager.pool_classes_by_scheme = _pool_classes(checked)
    return manager


def _new_session(url):
    """A session of its own for one request: no cookie accepted or sent, new connections only (each under the
    deadline).  When the outbound policy applies, ``url`` is checked first (OutboundRefused before any connection),
    proxies are ignored and connections go only to the checked addresses (``_outbound``)."""
    checked = _outbound.checked_for(url)

    class Adapter(requests.adapters.HTTPAdapter):  # defined here: requests is imported on first use
        def init_poolmanager(self, *args, **kwargs):
            super(Adapter, self).init_poolmanager(*args, **kwargs)
            _hook(self.poolmanager, checked)

        def proxy_manager_for(self, *args, **kwargs):
            return _hook(super(Adapter, self).proxy_manager_for(*args, **kwargs), checked)

    # imported here, with requests: http.cookiejar pulls in urllib.request, http.client, ssl and email (~28 ms of a
    # module run that downloads nothing, e.g. a converged host; docs/performance.md)
    import http.cookiejar  # pylint: disable=import-outside-toplevel

    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    session.mount("https://", Adapter())
    session.mount("http://", Adapter())
    if checked is not None:
        _outbound.prepare_session(session, checked)
    return session


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


def _timed_out(what, url, timeout):
    return "%s %s: timed out: no complete answer within timeout (%s s, the total time allowed for one request)" % (
        what, redact_url(url), timeout)


def check_scheme(url, allow_http=False, allow_file=True, what="archive", error_class=None, **context):
    """The scheme rule of every URL fetched here, whatever option it came through (issue 8, item 8).

    https always; http only with ``allow_http``; file:// only with
    ``allow_file``; nothing else.  Raises ``error_class`` (default
    :class:`SourceError`) naming the redacted URL.
    """
    error_class = error_class or SourceError
    scheme = url.split("://", 1)[0].lower() if isinstance(url, str) and "://" in url else ""
    if scheme == "https":
        return url
    if scheme == "http":
        if allow_http:
            return url
        raise error_class("plain http:// %s URL %s refused (set allow_http: true to permit it)" % (what, redact_url(url)), **context)
    if scheme == "file":
        if allow_file:
            return url
        raise error_class("file:// %s URL %s refused: a local file is only installed from src, or from a lock file or source "
                          "with allow_http: true" % (what, redact_url(url)), **context)
    raise error_class("%s URL %s: %s is not supported (https://, or http:// with allow_http)"
                      % (what, redact_url(url), (scheme + "://") if scheme else "no scheme"), **context)


def check_archive_url(url, allow_http=False, allow_file=True, error_class=None, what="archive", **context):
    """An archive URL fit to fetch: allowed scheme, no credentials, no query string or fragment (issue 8, item 10).

    Raises ``error_class`` (default :class:`SourceError`) naming the pack and
    the redacted URL -- never the credential or the query.
    """
    error_class = error_class or SourceError
    check_scheme(url, allow_http, allow_file, what, error_class, **context)
    if url.lower().startswith("file:"):
        return url  # a local path (``file://`` + the path of src or of a local copy): no credentials, any file name
    try:
        check_url(url, ("https", "http", "file"), "%s URL" % what)
    except ValueError as exc:
        raise error_class("%s (%s)" % (exc, redact_url(url)), **context)
    return url


def _status_error(response, url, what, error_class, context):
    status = response.status_code
    shown = redact_url(url)
    if status in (401, 403):
        reason = "authentication failed" if status == 401 else "authentication failed (access forbidden)"
        raise AuthenticationFailed(
            "%s: HTTP %d from %s — check the registry's auth headers (token missing, wrong or expired)" % (reason, status, shown),
            status=status, **context
        )
    if status == 304:
        raise error_class("%s %s answered HTTP 304 Not Modified to a request that was not conditional (nothing cached to "
                          "reuse); the server or a proxy in between is misbehaving" % (what, shown), **context)
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


def _local_path(url, error_class=RegistryUnreachable, context=None):
    parts = urlsplit(url)
    if parts.netloc not in ("", "localhost"):
        raise error_class("file URL %s names a remote host; only file:///path is supported" % redact_url(url), **(context or {}))
    return unquote(parts.path)


def _open_http(session, url, headers, verify, connect_timeout, timeout, extra_headers=None):
    all_headers = dict(headers or {})
    all_headers.update(extra_headers or {})
    return session.get(
        url,
        headers=all_headers,
        verify=verify,
        timeout=(connect_timeout, timeout),
        allow_redirects=False,
        stream=True,
    )


def _failure(exc, deadline, what, url, timeout, error_class, context, prefix=""):
    """The named error for an exception raised while talking to the server (re-raise it when it is not one of those)."""
    if isinstance(exc, AttuneError):
        raise exc
    if deadline.expired:
        raise error_class(prefix + _timed_out(what, url, timeout), **context)
    if isinstance(exc, requests.exceptions.RequestException):
        raise error_class("%s%s %s: %s" % (prefix, what, redact_url(url), _describe_connection_error(exc)), **context)
    if isinstance(exc, (socket.timeout, OSError)):
        raise error_class("%s%s %s: read failed (%s)" % (prefix, what, redact_url(url), exc), **context)
    raise exc


def _stream(response, sink, max_bytes, what, url, option, error_class, context):
    """Copy the response body into ``sink(chunk)`` enforcing the cap (the deadline's watchdog bounds the time)."""
    total = 0
    for chunk in response.iter_content(CHUNK_SIZE):
        total += len(chunk)
        if total > max_bytes:
            _too_big(what, url, max_bytes, option, error_class, context)
        sink(chunk)
    return total


def _request(url, headers, verify, connect_timeout, timeout, conditional, what, error_class, context, prefix, handle):
    """One GET under a total deadline; ``handle(response)`` reads it (inside the deadline) and returns the result."""
    try:
        new_session = _new_session(url)
    except _outbound.OutboundRefused as exc:
        if getattr(exc, "unresolved", False):
            # a host that does not resolve is the source's (or registry's) failure, named as such (issue 16 item 12)
            raise error_class("%s%s %s: host name does not resolve (%s)" % (prefix, what, redact_url(url), exc.message),
                              **context)
        for key, value in context.items():  # name the pack / registry the refused URL belongs to
            if getattr(exc, key, None) is None:
                setattr(exc, key, value)
        exc.args = (exc.format(),)
        raise
    with new_session as session, Deadline(timeout) as deadline:
        try:
            response = _open_http(session, url, headers, verify, connect_timeout, timeout, conditional)
            with response:
                result = handle(response)
            if deadline.expired:
                # a socket shut down by the watchdog reads as end of stream: what was read may look complete (headers
                # ended early, a body without Content-Length) but is not the server's answer
                raise error_class(prefix + _timed_out(what, url, timeout), **context)
            return result
        except Exception as exc:  # pylint: disable=broad-except
            # whatever a socket shut down by the watchdog raises (requests, urllib3, http.client, ssl) is the timeout
            _failure(exc, deadline, what, url, timeout, error_class, context, prefix)


def fetch_index(url, headers=None, verify=True, timeout=120, connect_timeout=10, max_bytes=10485760,
                etag=None, last_modified=None, registry=None, allow_http=False):
    """GET an index (conditional when ``etag``/``last_modified`` are given).

    ``file://`` registries are read from disk; for them the validator is the
    file's size and mtime, so a 304 is answered when the file did not change.
    ``http://`` needs ``allow_http``.  ``timeout`` bounds the whole request.
    """
    context = {"registry": registry}
    what = "index"
    check_scheme(url, allow_http=allow_http, allow_file=True, what="registry", error_class=RegistryUnreachable, **context)
    if url.lower().startswith("file:"):
        return _fetch_file(url, max_bytes, etag, context)
    if not _load_requests():
        raise RegistryUnreachable("the Python library requests is required to fetch %s" % redact_url(url), **context)
    conditional = {}
    if etag:
        conditional["If-None-Match"] = etag
    if last_modified:
        conditional["If-Modified-Since"] = last_modified

    def handle(response):
        if response.status_code == 304 and conditional:
            return FetchResult(304, etag=response.headers.get("ETag") or etag,
                               last_modified=response.headers.get("Last-Modified") or last_modified)
        if response.status_code != 200:
            _status_error(response, url, what, RegistryUnreachable, context)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            _too_big(what, url, max_bytes, "index_max_bytes", RegistryUnreachable, context)
        chunks = []
        _stream(response, chunks.append, max_bytes, what, url, "index_max_bytes", RegistryUnreachable, context)
        return FetchResult(200, b"".join(chunks), response.headers.get("ETag"), response.headers.get("Last-Modified"))

    return _request(url, headers, verify, connect_timeout, timeout, conditional, what, RegistryUnreachable, context,
                    "registry unreachable: ", handle)


def _fetch_file(url, max_bytes, etag, context):
    path = _local_path(url, RegistryUnreachable, context)
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
             hashers=(), error_class=None, what="archive", option="archive_max_bytes", allow_http=False, allow_file=True,
             **context):
    """Stream ``url`` into the binary file object ``dest``; update ``hashers``; return the byte count.

    The URL must pass :func:`check_archive_url` (scheme rule: http only with
    ``allow_http``, file:// only with ``allow_file``; no credentials, query
    or fragment).  ``file://`` URLs are copied from disk with the same cap.
    ``timeout`` bounds the whole request.  Raises ``error_class`` (default
    :class:`RegistryUnreachable`) or :class:`AuthenticationFailed`.
    """
    error_class = error_class or RegistryUnreachable
    check_archive_url(url, allow_http=allow_http, allow_file=allow_file, error_class=error_class, what=what, **context)

    def sink(chunk):
        dest.write(chunk)
        for hasher in hashers:
            hasher.update(chunk)

    if url.lower().startswith("file:"):
        path = _local_path(url, error_class, context)
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

    def handle(response):
        if response.status_code != 200:
            _status_error(response, url, what, error_class, context)
        declared = response.headers.get("Content-Length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            _too_big(what, url, max_bytes, option, error_class, context)
        return _stream(response, sink, max_bytes, what, url, option, error_class, context)

    return _request(url, headers, verify, connect_timeout, timeout, None, what, error_class, context, "cannot download ", handle)
