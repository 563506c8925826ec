#!/usr/bin/env python
"""A real threaded HTTP(S) server on 127.0.0.1 for registry, archive and git tests.

In-process use (the common case)::

    with RegistryServer(root=tree) as server:          # TLS with a trustme CA
        server.add_json("/index.json", index, required_headers={"Authorization": "Bearer x"})
        requests.get(server.url("index.json"), verify=server.ca_path, headers=...)
        assert server.count("/index.json") == 1

Features
--------
- TLS certificates from ``trustme``.  Every server of a process is signed by one
  shared CA whose PEM file is ``server.ca_path``, so a single CA bundle (for
  ``requests``' ``verify=``, ``GIT_SSL_CAINFO`` or ``http.sslCAInfo``) trusts
  all of them.  ``RegistryServer(untrusted=True)`` serves a certificate from a
  fresh one-off CA that nobody trusts while ``ca_path`` still names the shared
  CA: verification with ``ca_path`` fails ("certificate untrusted" tests).
  ``RegistryServer(tls=False)`` serves plain HTTP (``allow_http`` tests).
- Static files: ``root=DIR`` serves DIR at ``/``; ``add_directory(prefix, DIR)``
  mounts more trees.  Files get a strong ETag and Last-Modified and answer
  ``If-None-Match`` / ``If-Modified-Since`` with 304.  The query string is
  ignored for lookups, which is what git's "dumb HTTP" protocol needs (a bare
  repository after ``git update-server-info`` clones over https with
  ``GIT_SSL_CAINFO=server.ca_path``).
- Programmable routes (exact path match, query ignored; routes win over
  files): ``add_json``, ``add_bytes``, ``set_content``, ``add_status``,
  ``add_redirect``, ``add_chunked``, ``add_lying_length``, ``add_slow`` and
  ``add_handler`` for anything else.
- A thread-safe request log: ``server.requests`` is a snapshot list of
  ``LoggedRequest(method, path, headers)`` tuples (headers keep their values,
  for secret-leak assertions; lookups in them ignore case).  Each entry also
  has ``query``, ``client``, ``body``, ``time`` and ``status`` (set once the
  response status is sent).  ``count(path=None, method='GET')`` and
  ``reset_log()`` help.  A request is logged when it is received, so it is in
  the log before the client can see any answer.
- ``log_file=PATH`` also appends one JSON line per request (written when its
  status is sent, before the body).

Out-of-process use (benchmarks, ansible fleet tests)::

    python tests/support/registry_server.py --root DIR --port-file F --ca-out F --log F [--http]

serves DIR until SIGTERM/SIGINT.  The CA PEM is written before the port file,
and the port file is written atomically once the server listens, so a parent
only has to wait for the port file (``ServerProcess`` below does exactly that).

This module uses only the standard library plus ``trustme`` so it runs as a
script with any interpreter of the test environment.
"""

from __future__ import annotations

import argparse
import atexit
import collections
import datetime
import email.utils
import hashlib
import http.server
import json
import mimetypes
import os
import shutil
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from urllib.parse import unquote, urlsplit

try:
    import trustme
except ImportError:  # pragma: no cover - only plain HTTP is possible then
    trustme = None

HANDSHAKE_TIMEOUT = 10
CONNECTION_TIMEOUT = 60
MAX_REQUEST_BODY = 16 * 1024 * 1024
COPY_BLOCK = 64 * 1024

__all__ = [
    "HeaderDict",
    "LoggedRequest",
    "RegistryServer",
    "ServerProcess",
    "pattern_bytes",
    "shared_ca",
]


# ---------------------------------------------------------------------------
# Certificates


_CA_LOCK = threading.Lock()
_SHARED_CA = {}


def _cleanup_dir(path):
    shutil.rmtree(path, ignore_errors=True)


def shared_ca():
    """Return ``(trustme.CA, pem_path)`` of the CA shared by every server of this process."""
    if trustme is None:
        raise RuntimeError("trustme is required for TLS test servers (pip install trustme)")
    with _CA_LOCK:
        if not _SHARED_CA:
            ca = trustme.CA(organization_name="attune.packs test CA")
            tmpdir = tempfile.mkdtemp(prefix="attune-test-ca-")
            atexit.register(_cleanup_dir, tmpdir)
            pem = os.path.join(tmpdir, "ca.pem")
            ca.cert_pem.write_to_path(pem)
            _SHARED_CA["ca"] = ca
            _SHARED_CA["path"] = pem
        return _SHARED_CA["ca"], _SHARED_CA["path"]


def pattern_bytes(size, seed=b"attune"):
    """Deterministic, incompressible-looking bytes of length ``size``."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(seed + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


# ---------------------------------------------------------------------------
# Request log


class HeaderDict(dict):
    """Request headers as a ``dict`` keeping the case sent; ``[]``, ``get`` and ``in`` ignore case."""

    def real_key(self, name):
        if not isinstance(name, str):
            return None
        lower = name.lower()
        for key in dict.keys(self):
            if key.lower() == lower:
                return key
        return None

    def __getitem__(self, name):
        key = self.real_key(name)
        if key is None:
            raise KeyError(name)
        return dict.__getitem__(self, key)

    def __contains__(self, name):
        return self.real_key(name) is not None

    def get(self, name, default=None):
        key = self.real_key(name)
        return default if key is None else dict.__getitem__(self, key)


class LoggedRequest(collections.namedtuple("LoggedRequest", "method path headers")):
    """One received request: ``(method, path, headers)`` plus attributes.

    Extra attributes: ``query`` (raw query string), ``client`` (address tuple),
    ``body`` (request body bytes), ``time`` (epoch seconds), ``status`` (int,
    ``None`` until the status line is sent).
    """

    def to_json(self):
        return {
            "time": self.time,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": dict(self.headers),
            "status": self.status,
            "client": list(self.client) if self.client else None,
        }


def _headers_of(message):
    out = HeaderDict()
    for name, value in message.items():
        existing = out.real_key(name)
        if existing is None:
            out[name] = value
        else:
            dict.__setitem__(out, existing, dict.__getitem__(out, existing) + ", " + value)
    return out


# ---------------------------------------------------------------------------
# Routes


def _http_date(epoch):
    return email.utils.formatdate(epoch, usegmt=True)


def _not_modified(handler, etag, mtime):
    """RFC 9110 evaluation: If-None-Match wins over If-Modified-Since."""
    if handler.command not in ("GET", "HEAD"):
        return False
    inm = handler.headers.get("If-None-Match")
    if inm is not None:
        if not etag:
            return False
        tags = [t.strip() for t in inm.split(",")]
        plain = etag[2:] if etag.startswith("W/") else etag
        return "*" in tags or any((t[2:] if t.startswith("W/") else t) == plain for t in tags)
    ims = handler.headers.get("If-Modified-Since")
    if ims and mtime is not None:
        try:
            when = email.utils.parsedate_to_datetime(ims)
        except (TypeError, ValueError, IndexError):
            return False
        if when is None:
            return False
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return int(mtime) <= when.timestamp()
    return False


class _Route:
    """Base of programmable routes; ``required_headers`` gives 401 (missing) / 403 (wrong)."""

    def __init__(self, required_headers=None):
        self.required_headers = dict(required_headers or {})

    def authorized(self, handler):
        missing = [n for n in self.required_headers if handler.headers.get(n) is None]
        if missing:
            handler.send_simple(401, b"authentication required\n", {"WWW-Authenticate": 'Bearer realm="attune-test"'})
            return False
        for name, expected in self.required_headers.items():
            if handler.headers.get(name) != expected:
                handler.send_simple(403, b"forbidden\n")
                return False
        return True

    def serve(self, handler, head):  # pragma: no cover - abstract
        raise NotImplementedError


class _ContentRoute(_Route):
    def __init__(self, body, content_type, etag, last_modified, required_headers, headers, status):
        super().__init__(required_headers)
        self.lock = threading.Lock()
        self.content_type = content_type
        self.use_etag = etag
        self.use_last_modified = last_modified
        self.headers = dict(headers or {})
        self.status = status
        self.body = b""
        self.etag = None
        self.mtime = None
        self.set(body)

    def set(self, body):
        with self.lock:
            self.body = body
            self.etag = '"%s"' % hashlib.sha256(body).hexdigest()[:32] if self.use_etag else None
            now = int(time.time())
            # Last-Modified has a one-second resolution: never reuse a second, so a
            # content change is always visible to If-Modified-Since.
            self.mtime = now if self.mtime is None else max(now, self.mtime + 1)

    def snapshot(self):
        with self.lock:
            return self.body, self.etag, self.mtime

    def serve(self, handler, head):
        if not self.authorized(handler):
            return
        body, etag, mtime = self.snapshot()
        headers = dict(self.headers)
        if etag:
            headers["ETag"] = etag
        if self.use_last_modified:
            headers["Last-Modified"] = _http_date(mtime)
        if self.status == 200 and _not_modified(handler, etag, mtime if self.use_last_modified else None):
            handler.send_no_body(304, headers)
            return
        headers["Content-Type"] = self.content_type
        handler.send_simple(self.status, body, headers, head=head)


class _StatusRoute(_Route):
    def __init__(self, code, body, headers, required_headers=None):
        super().__init__(required_headers)
        self.code = code
        self.body = body
        self.headers = dict(headers or {})

    def serve(self, handler, head):
        if not self.authorized(handler):
            return
        if self.code in (204, 304) or self.code < 200:
            handler.send_no_body(self.code, self.headers)
        else:
            handler.send_simple(self.code, self.body, self.headers, head=head)


class _ChunkedRoute(_Route):
    def __init__(self, body, chunk_size, content_type, required_headers=None):
        super().__init__(required_headers)
        self.body = body
        self.chunk_size = chunk_size
        self.content_type = content_type

    def serve(self, handler, head):
        if not self.authorized(handler):
            return
        handler.send_response(200)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        if head:
            return
        for start in range(0, len(self.body), self.chunk_size):
            chunk = self.body[start:start + self.chunk_size]
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


class _LyingRoute(_Route):
    def __init__(self, body, claimed_length, content_type, required_headers=None):
        super().__init__(required_headers)
        self.body = body
        self.claimed_length = claimed_length
        self.content_type = content_type

    def serve(self, handler, head):
        if not self.authorized(handler):
            return
        handler.send_response(200)
        handler.send_header("Content-Type", self.content_type)
        if self.claimed_length is not None:
            handler.send_header("Content-Length", str(self.claimed_length))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        if not head:
            handler.wfile.write(self.body)
            handler.wfile.flush()


class _SlowRoute(_Route):
    MODES = ("headers", "body", "trickle")

    def __init__(self, delay, body, mode, pieces, content_type, stop_event, required_headers=None):
        super().__init__(required_headers)
        if mode not in self.MODES:
            raise ValueError("mode must be one of %s" % (self.MODES,))
        self.delay = delay
        self.body = body
        self.mode = mode
        self.pieces = max(1, pieces)
        self.content_type = content_type
        self.stop_event = stop_event

    def _wait(self, handler):
        if self.stop_event.wait(self.delay):
            handler.close_connection = True
            return False
        return True

    def serve(self, handler, head):
        if not self.authorized(handler):
            return
        if self.mode == "headers" and not self._wait(handler):
            return
        handler.send_response(200)
        handler.send_header("Content-Type", self.content_type)
        handler.send_header("Content-Length", str(len(self.body)))
        handler.end_headers()
        handler.wfile.flush()
        if head:
            return
        if self.mode == "body" and not self._wait(handler):
            return
        if self.mode == "trickle":
            step = max(1, -(-len(self.body) // self.pieces))
            for start in range(0, len(self.body), step):
                if not self._wait(handler):
                    return
                handler.wfile.write(self.body[start:start + step])
                handler.wfile.flush()
            return
        handler.wfile.write(self.body)
        handler.wfile.flush()


class _HandlerRoute(_Route):
    def __init__(self, func, required_headers=None):
        super().__init__(required_headers)
        self.func = func

    def serve(self, handler, head):
        if self.authorized(handler):
            self.func(handler)


class _Mount:
    """A directory tree served below a URL prefix, with ETag / Last-Modified / 304."""

    def __init__(self, prefix, directory, required_headers=None):
        self.prefix = "/" + prefix.strip("/")
        self.directory = os.path.realpath(directory)
        self.guard = _Route(required_headers)

    def match(self, path):
        if self.prefix == "/":
            return path[1:]
        if path == self.prefix or path.startswith(self.prefix + "/"):
            return path[len(self.prefix) + 1:]
        return None

    def locate(self, rel):
        parts = [p for p in rel.split("/") if p]
        if any(p in (".", "..") or "\\" in p or "\0" in p for p in parts) or not parts:
            return None
        candidate = os.path.realpath(os.path.join(self.directory, *parts))
        if not candidate.startswith(self.directory + os.sep) or not os.path.isfile(candidate):
            return None
        return candidate

    def serve(self, handler, head, rel):
        filename = self.locate(rel)
        if filename is None:
            handler.send_simple(404, b"not found\n", head=head)
            return
        if not self.guard.authorized(handler):
            return
        if handler.command not in ("GET", "HEAD"):
            handler.send_simple(405, b"method not allowed\n", {"Allow": "GET, HEAD"}, head=head)
            return
        with open(filename, "rb") as f:
            st = os.fstat(f.fileno())
            etag = '"%x-%x-%x"' % (st.st_ino, st.st_mtime_ns, st.st_size)
            headers = {"ETag": etag, "Last-Modified": _http_date(st.st_mtime)}
            if _not_modified(handler, etag, st.st_mtime):
                handler.send_no_body(304, headers)
                return
            ctype = mimetypes.guess_type(filename)[0]
            if filename.endswith(".json"):
                ctype = "application/json"
            elif os.path.basename(filename) in ("refs", "HEAD", "packs"):
                ctype = "text/plain"
            headers["Content-Type"] = ctype or "application/octet-stream"
            headers["Content-Length"] = str(st.st_size)
            handler.send_response(200)
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.end_headers()
            if not head:
                shutil.copyfileobj(f, handler.wfile, COPY_BLOCK)
                handler.wfile.flush()


# ---------------------------------------------------------------------------
# HTTP machinery


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "attune-test-registry/1.0"
    sys_version = ""
    timeout = CONNECTION_TIMEOUT
    record = None

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Silence the default stderr access log (the request log replaces it)."""

    def parse_request(self):
        self.record = None
        return super().parse_request()

    def send_response(self, code, message=None):
        super().send_response(code, message)
        if self.record is not None:
            self.server.app.record_status(self.record, code)

    # helpers available to add_handler() callables -------------------------

    def send_simple(self, status, body=b"", headers=None, head=False):
        """Send a complete response with Content-Length (no body on HEAD)."""
        headers = dict(headers or {})
        self.send_response(status)
        names = {k.lower() for k in headers}
        if "content-type" not in names:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        if "content-length" not in names:
            headers["Content-Length"] = str(len(body))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body and not head and self.command != "HEAD":
            self.wfile.write(body)
        self.wfile.flush()

    def send_no_body(self, status, headers=None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()

    # dispatch --------------------------------------------------------------

    def _dispatch(self):
        app = self.server.app
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        if not path.startswith("/"):
            path = "/" + path
        body = b""
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= MAX_REQUEST_BODY:
            body = self.rfile.read(int(length))
        self.record = app.record_request(self.command, path, split.query, _headers_of(self.headers), self.client_address, body)
        head = self.command == "HEAD"
        route = app.route_for(path)
        if route is not None:
            route.serve(self, head)
            return
        for mount in app.mounts():
            rel = mount.match(path)
            if rel is not None and mount.locate(rel) is not None:
                mount.serve(self, head, rel)
                return
        self.send_simple(404, b"not found\n", head=head)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _dispatch


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    block_on_close = False  # stop() wakes and disconnects handlers; never wait for a stuck client
    request_queue_size = 128

    def __init__(self, address, app, ssl_context):
        self.app = app
        self.ssl_context = ssl_context
        self.errors = []
        self._connections = set()
        self._conn_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self):
        # HTTPServer.server_bind() resolves the FQDN of the address, which can be slow.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def process_request_thread(self, request, client_address):
        conn = request
        with self._conn_lock:
            self._connections.add(request)
        try:
            if self.ssl_context is not None:
                request.settimeout(HANDSHAKE_TIMEOUT)
                # The handshake runs here, in the worker thread, after the socket is
                # tracked: a silent client cannot stall the accept loop nor stop().
                conn = self.ssl_context.wrap_socket(request, server_side=True, do_handshake_on_connect=False)
                with self._conn_lock:
                    self._connections.discard(request)
                    self._connections.add(conn)
                conn.do_handshake()
            self.RequestHandlerClass(conn, client_address, self)
        except Exception:  # pylint: disable=broad-except
            self.handle_error(conn, client_address)
        finally:
            with self._conn_lock:
                self._connections.discard(request)
                self._connections.discard(conn)
            self.shutdown_request(conn)

    def handle_error(self, request, client_address):
        # Client aborts (byte caps, timeouts, untrusted certificates) are expected:
        # keep the cause for debugging instead of printing tracebacks.
        self.errors.append(repr(sys.exc_info()[1]))

    def close_connections(self):
        with self._conn_lock:
            conns = list(self._connections)
        for conn in conns:
            try:
                socket.socket.shutdown(conn, socket.SHUT_RDWR)
            except OSError:
                pass


# ---------------------------------------------------------------------------
# Public server


class StartStop:
    """``with server:`` for the test servers: ``start()`` on entry (returning the server), ``stop()`` on exit."""

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def end_process(proc, grace=10):
    """Terminate ``proc`` (a Popen) if it still runs: SIGTERM, then SIGKILL after ``grace`` seconds."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class ServingThread(StartStop):
    """The lifecycle the in-process test servers share: a :class:`_Server` on a daemon thread, an optional append-only
    log file, ``stop()`` that drops keep-alive connections and frees the port, use as a context manager.

    Subclasses set ``host``, ``_requested_port``, ``log_file``, ``_log_lock``, ``_log_fh = None``, ``_httpd = None``,
    and call :meth:`_serve` from ``start()`` and :meth:`_shutdown` from ``stop()``.
    """

    thread_name = "test-server"

    def _serve(self, ssl_context, handler_class=None):
        if self.log_file:
            self._log_fh = open(self.log_file, "a", encoding="utf-8")  # pylint: disable=consider-using-with
        self._httpd = _Server((self.host, self._requested_port), self, ssl_context)
        if handler_class is not None:
            self._httpd.RequestHandlerClass = handler_class
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="%s-%d" % (self.thread_name, self.port), daemon=True)
        self._thread.start()

    def _shutdown(self):
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        self._thread.join(timeout=10)
        self._httpd = None
        if self._log_fh is not None:
            with self._log_lock:
                self._log_fh.close()
                self._log_fh = None


class RegistryServer(ServingThread):
    """Threaded HTTP(S) server on 127.0.0.1 (random port unless ``port``)."""

    thread_name = "registry-server"

    def __init__(self, root=None, tls=True, untrusted=False, host="127.0.0.1", port=0, log_file=None,
                 hostnames=("127.0.0.1", "localhost"), root_required_headers=None):
        if untrusted and not tls:
            raise ValueError("untrusted=True needs tls=True")
        self.tls = tls
        self.untrusted = untrusted
        self.host = host
        self.hostnames = tuple(hostnames)
        self.log_file = log_file
        self._requested_port = port
        self._routes = {}
        self._mounts = []
        self._lock = threading.Lock()
        self._log_lock = threading.Lock()
        self._log_entries = []
        self._stop_event = threading.Event()
        self._httpd = None
        self._thread = None
        self._log_fh = None
        self._tmpdir = None
        self.ca_path = None
        self.serving_ca_path = None
        self.port = None
        if root is not None:
            self.add_directory("/", root, required_headers=root_required_headers)

    # lifecycle ---------------------------------------------------------------

    def _ssl_context(self):
        ca, ca_path = shared_ca()
        self.ca_path = ca_path
        serving_ca = ca
        self.serving_ca_path = ca_path
        if self.untrusted:
            serving_ca = trustme.CA(organization_name="attune.packs UNTRUSTED test CA")
            self._tmpdir = tempfile.mkdtemp(prefix="attune-test-untrusted-")
            self.serving_ca_path = os.path.join(self._tmpdir, "untrusted-ca.pem")
            serving_ca.cert_pem.write_to_path(self.serving_ca_path)
        cert = serving_ca.issue_cert(*self.hostnames)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        return ctx

    def start(self):
        if self._httpd is not None:
            return self
        ctx = self._ssl_context() if self.tls else None
        self._stop_event.clear()
        self._serve(ctx)
        return self

    def stop(self):
        """Stop serving, drop open (keep-alive) connections and free the port."""
        if self._httpd is None:
            return
        self._stop_event.set()
        self._shutdown()
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    @property
    def running(self):
        return self._httpd is not None

    @property
    def errors(self):
        """Exceptions swallowed while serving (client aborts, failed handshakes...)."""
        return list(self._httpd.errors) if self._httpd else []

    # URLs ------------------------------------------------------------------

    @property
    def scheme(self):
        return "https" if self.tls else "http"

    @property
    def base_url(self):
        if self.port is None:
            raise RuntimeError("server not started")
        return "%s://%s:%d" % (self.scheme, self.host, self.port)

    def url(self, path="", host=None):
        """``url('index.json')`` -> ``https://127.0.0.1:PORT/index.json`` (``host='localhost'`` allowed)."""
        base = self.base_url if host is None else "%s://%s:%d" % (self.scheme, host, self.port)
        return base + "/" + path.lstrip("/")

    def client_env(self):
        """Environment variables that make git, curl and requests trust ``ca_path``."""
        if not self.ca_path:
            return {}
        return {"GIT_SSL_CAINFO": self.ca_path, "REQUESTS_CA_BUNDLE": self.ca_path, "SSL_CERT_FILE": self.ca_path,
                "CURL_CA_BUNDLE": self.ca_path}

    # routes ----------------------------------------------------------------

    @staticmethod
    def _norm(path):
        return "/" + path.lstrip("/")

    def _add(self, path, route):
        with self._lock:
            self._routes[self._norm(path)] = route
        return self.url(path) if self.port is not None else self._norm(path)

    def route_for(self, path):
        """The programmable route registered at exactly ``path``, or None."""
        with self._lock:
            return self._routes.get(path)

    def mounts(self):
        """Snapshot of the directory mounts, longest prefix first."""
        with self._lock:
            return list(self._mounts)

    def remove(self, path):
        """Remove a programmable route (static files below it become visible again)."""
        with self._lock:
            self._routes.pop(self._norm(path), None)

    def add_directory(self, prefix, directory, required_headers=None):
        """Serve ``directory`` below URL ``prefix`` (longest prefix first)."""
        if not os.path.isdir(directory):
            raise ValueError("not a directory: %s" % directory)
        with self._lock:
            self._mounts.append(_Mount(prefix, directory, required_headers))
            self._mounts.sort(key=lambda m: len(m.prefix), reverse=True)

    def add_bytes(self, path, body, content_type="application/octet-stream", etag=True, last_modified=True,
                  required_headers=None, headers=None, status=200):
        """Serve fixed bytes with (optional) ETag / Last-Modified and 304 handling; returns the URL."""
        return self._add(path, _ContentRoute(bytes(body), content_type, etag, last_modified, required_headers, headers, status))

    def add_json(self, path, obj_or_bytes, etag=True, last_modified=True, required_headers=None, headers=None, status=200):
        """Serve a JSON document (a Python object is serialised; bytes/str are sent as they are).

        ``required_headers={'Authorization': 'Bearer x'}``: 401 when a header is
        missing, 403 when one has another value.
        """
        return self.add_bytes(path, _to_bytes(obj_or_bytes), "application/json", etag, last_modified, required_headers,
                              headers, status)

    def set_content(self, path, obj_or_bytes):
        """Replace the body of an ``add_json``/``add_bytes`` route; its ETag and Last-Modified change."""
        route = self.route_for(self._norm(path))
        if not isinstance(route, _ContentRoute):
            raise KeyError("no add_json/add_bytes route at %s" % path)
        route.set(_to_bytes(obj_or_bytes))

    def etag(self, path):
        """Current ETag of a content route."""
        route = self.route_for(self._norm(path))
        if not isinstance(route, _ContentRoute):
            raise KeyError("no add_json/add_bytes route at %s" % path)
        return route.snapshot()[1]

    def add_status(self, path, code, body=b"", headers=None, required_headers=None):
        """Answer ``code`` with ``body`` and ``headers`` (404, 500, 503, 3xx with Location, ...)."""
        return self._add(path, _StatusRoute(code, _to_bytes(body), headers, required_headers))

    def add_redirect(self, path, location, code=302):
        """Redirect; a ``location`` starting with ``/`` becomes an absolute URL on this server."""
        if location.startswith("/"):
            location = self.url(location)
        return self.add_status(path, code, b"", {"Location": location})

    def add_chunked(self, path, total_bytes=None, body=None, chunk_size=65536, content_type="application/octet-stream",
                    required_headers=None):
        """``Transfer-Encoding: chunked`` without Content-Length.

        Serves ``body``, or ``pattern_bytes(total_bytes)`` when only a size is
        given.  Returns the body so tests can compare what they received.
        """
        if body is None:
            body = pattern_bytes(total_bytes or 0)
        body = _to_bytes(body)
        self._add(path, _ChunkedRoute(body, chunk_size, content_type, required_headers))
        return body

    def add_lying_length(self, path, real_bytes, claimed_length=None, content_type="application/octet-stream", body=None):
        """A response whose Content-Length does not describe the body; always ``Connection: close``.

        What each case really exercises in an HTTP/1.1 client (urllib3/requests):

        - ``claimed_length=None``: no Content-Length and no chunking; the body
          (``real_bytes`` long) ends when the server closes the connection.  The
          client cannot know the size up front, so only a cap counted while
          streaming stops it: this is the case that tests a byte cap.
        - ``claimed_length > real_bytes``: the header announces more than is sent.
          A client that checks Content-Length against its cap must refuse before
          reading (use a claim above the cap); one that reads must fail on the
          short body (urllib3 raises IncompleteRead / requests
          ChunkedEncodingError) and never accept it as complete.
        - ``claimed_length < real_bytes``: the client reads exactly the claimed
          bytes and ignores the rest (HTTP framing), so it never sees more than
          claimed: this cannot exceed a cap; it yields a truncated body, which a
          checksum must catch.

        Returns the full body that is written.
        """
        if body is None:
            body = pattern_bytes(real_bytes)
        body = _to_bytes(body)
        self._add(path, _LyingRoute(body, claimed_length, content_type))
        return body

    def add_slow(self, path, delay_seconds, body=b"{}", mode="headers", pieces=10, content_type="application/octet-stream",
                 required_headers=None):
        """A slow response, for timeouts.

        - ``mode='headers'``: wait ``delay_seconds`` before the status line
          (read timeout before any byte).
        - ``mode='body'``: headers (with Content-Length) at once, the body after
          the delay (read timeout in the body).
        - ``mode='trickle'``: headers at once, then the body in ``pieces`` parts
          with ``delay_seconds`` before each: every single read succeeds, so
          only a *total* download timeout stops it.

        Waits end early when the server stops.
        """
        return self._add(path, _SlowRoute(delay_seconds, _to_bytes(body), mode, pieces, content_type, self._stop_event,
                                          required_headers))

    def add_handler(self, path, func, required_headers=None):
        """Call ``func(handler)`` for the request; ``handler.send_simple(status, body, headers)`` helps."""
        return self._add(path, _HandlerRoute(func, required_headers))

    # request log -------------------------------------------------------------

    def record_request(self, method, path, query, headers, client, body):
        """Internal (called by the request handler): append a request to the log."""
        entry = LoggedRequest(method, path, headers)
        entry.query = query
        entry.client = client
        entry.body = body
        entry.time = time.time()
        entry.status = None
        with self._log_lock:
            self._log_entries.append(entry)
        return entry

    def record_status(self, entry, status):
        """Internal (called by the request handler): note the status sent for ``entry``."""
        entry.status = status
        if self._log_fh is not None:
            line = json.dumps(entry.to_json(), sort_keys=True) + "\n"
            with self._log_lock:
                if self._log_fh is not None:
                    self._log_fh.write(line)
                    self._log_fh.flush()

    @property
    def requests(self):
        """Snapshot list of ``LoggedRequest(method, path, headers)``, oldest first."""
        with self._log_lock:
            return list(self._log_entries)

    def count(self, path=None, method="GET", status=None):
        """Number of logged requests matching ``path`` (query ignored), ``method`` (None = any) and ``status``."""
        norm = None if path is None else self._norm(path)
        return sum(1 for r in self.requests
                   if (norm is None or r.path == norm) and (method is None or r.method == method)
                   and (status is None or r.status == status))

    def reset_log(self):
        with self._log_lock:
            self._log_entries.clear()


def _to_bytes(value):
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    return json.dumps(value).encode("utf-8")


# ---------------------------------------------------------------------------
# Separate process


class ChildServer(StartStop):
    """A test server run as a child process of its own script (``script``): started with ``command()``, ready once it
    has written its port file; ``url()``, ``read_log()`` (the JSON request log), ``stop()``.  Subclasses give the
    command line and anything to read after the start (``after_start``)."""

    name = "server"
    script = os.path.abspath(__file__)

    def __init__(self, port_file, log_path, stale=(), python=None, startup_timeout=30):
        self.port_file = port_file
        self.log_path = log_path
        self._stale = (port_file,) + tuple(stale)
        self.python = python or sys.executable
        self.startup_timeout = startup_timeout
        self.proc = None
        self.port = None

    def command(self):
        raise NotImplementedError

    def after_start(self):
        """Hook: read what the child wrote besides its port (certificates, tokens)."""

    def start(self):
        for stale in self._stale:
            if stale and os.path.exists(stale):
                os.unlink(stale)
        self.proc = subprocess.Popen([self.python, self.script] + self.command(), stdin=subprocess.DEVNULL)  # pylint: disable=consider-using-with
        deadline = time.monotonic() + self.startup_timeout
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s before listening" % (self.name, self.proc.returncode))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("%s did not start within %ss" % (self.name, self.startup_timeout))
            time.sleep(0.02)
        with open(self.port_file, encoding="ascii") as f:
            self.port = int(f.read().strip())
        self.after_start()
        return self

    def stop(self):
        end_process(self.proc)
        self.proc = None

    def read_log(self):
        """The JSON request log as a list of dicts."""
        if not os.path.exists(self.log_path):
            return []
        with open(self.log_path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]


class ServerProcess(ChildServer):
    """Run this file as a child process serving ``root``; the parent side of the CLI mode.

    ``with ServerProcess(root, workdir) as proc: proc.url('index.json'), proc.ca_path, proc.read_log()``
    (log entries: method, path, query, headers, status, time, client).
    """

    name = "registry server"

    def __init__(self, root, workdir, tls=True, python=None, startup_timeout=30):
        self.root = root
        self.tls = tls
        self.ca_path = os.path.join(workdir, "server-ca.pem") if tls else None
        super().__init__(os.path.join(workdir, "server.port"), os.path.join(workdir, "server.log.jsonl"),
                         stale=(self.ca_path,), python=python, startup_timeout=startup_timeout)

    def command(self):
        cmd = ["--root", self.root, "--port-file", self.port_file, "--log", self.log_path]
        return cmd + (["--ca-out", self.ca_path] if self.tls else ["--http"])

    def url(self, path=""):
        return "%s://127.0.0.1:%d/%s" % ("https" if self.tls else "http", self.port, path.lstrip("/"))


def _write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def serve_child(server, port_file, ca_out=None, when_started=None):
    """Run ``server`` (a ServingThread) as the body of a ChildServer process until SIGTERM/SIGINT.

    Once it listens: ``when_started(server)`` (if given), the CA that signs it copied to ``ca_out``, and last the port
    written to ``port_file`` -- the parent's signal that the child is ready.
    """
    def _terminate(signum, frame):  # pylint: disable=unused-argument
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    server.start()
    try:
        if when_started is not None:
            when_started(server)
        if ca_out and server.ca_path:
            with open(server.ca_path, "rb") as f:
                _write_atomic(ca_out, f.read())
        _write_atomic(port_file, b"%d\n" % server.port)
        while True:
            time.sleep(3600)
    finally:
        server.stop()
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve a directory over HTTPS for attune.packs tests and benchmarks.")
    parser.add_argument("--root", required=True, help="directory to serve at /")
    parser.add_argument("--port-file", required=True, help="written (atomically) with the port once listening")
    parser.add_argument("--ca-out", help="where to write the CA certificate (PEM) that signs the server")
    parser.add_argument("--log", help="append one JSON line per request to this file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of HTTPS")
    args = parser.parse_args(argv)
    server = RegistryServer(root=args.root, tls=not args.http, host=args.host, port=args.port, log_file=args.log)
    return serve_child(server, args.port_file, args.ca_out)


if __name__ == "__main__":
    sys.exit(main())
