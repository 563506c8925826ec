#!/usr/bin/env python
"""A test Attune API server: real HTTPS on 127.0.0.1, behaving as Attune's API does on the routes the collection uses.

Attune itself cannot be built or run on the test machines.  This server mirrors
the rules of Attune's API (public repo attune-system/attune,
``crates/api/src/routes/packs.rs`` and ``crates/api/src/routes/auth.rs``) on:

- auth: ``POST /auth/token-login`` ``{token}`` (integration tokens ``attune_it_…``),
  ``POST /auth/login`` ``{login, password}``, ``POST /auth/refresh``
  ``{refresh_token}`` → ``{data: {access_token, refresh_token, token_type, expires_in}}``;
  JWT-like tokens with a type (access / refresh / execution / sensor) and an expiry;
- packs: ``GET /api/v1/packs`` (paged), ``GET/DELETE /api/v1/packs/{ref}``,
  ``POST /api/v1/packs/upload`` (multipart), ``POST /api/v1/packs/install``
  (Attune fetches from its own effective registries over HTTPS);
- pack indices: ``GET/POST /api/v1/pack-indices``, ``PUT/DELETE /api/v1/pack-indices/{id}``,
  ``GET /api/v1/pack-indices/packs`` (browse), ``GET /api/v1/pack-indices/packs/{ref}``.

Pack tests: a pack declares tests with ``testing: {enabled: true}`` in pack.yaml, or a test sets their outcome
with ``set_test_result(ref, passed=, failed=)``.  ``tests_mode='async'`` (default, Attune v0.6.0) answers an
upload 201 with ``install_id``/``install_status: pending`` and tracks the run as a pack install
(``GET /api/v1/packs/install/{id}``, one step per poll: pending → running → succeeded | rolled_back);
``tests_mode='sync'`` (older Attune) answers 400 "Pack registration failed: tests did not pass…".

Envelopes are Attune's: ``{data, message?}``; errors ``{error, code}``
(``ErrorResponse``); authentication failures before a handler runs
``{error: {code, message}}`` (``AuthErrorResponse``).  ``tests/contract``
parses every answer with attune-sdk's generated models so this file cannot
drift from Attune's published contract.

In-process use::

    with AttuneServer() as api:
        token = api.add_integration_token("ci")            # user "ci" with every Packs grant
        api.url()                                          # https://127.0.0.1:PORT
        api.ca_path                                        # CA bundle that verifies it
        api.requests                                       # request log (ApiRequest objects)
        api.pack("slack")["sha256"]                        # digest of the uploaded archive bytes

Out of process (fleets, benchmarks)::

    python tests/support/attune_server.py --port-file F --ca-out F --log F --config CONFIG.json

``AttuneServerProcess`` is the parent side of that mode.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import gzip
import hashlib
import hmac
import http.server
import io
import itertools
import json
import os
import re
import secrets
import ssl
import sys
import tarfile
import threading
import time
import urllib.error
import urllib.request
from urllib.parse import parse_qs, unquote, urlsplit

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from support.registry_server import ChildServer, ServingThread, _write_atomic, serve_child, shared_ca  # noqa: E402  pylint: disable=wrong-import-position

__all__ = ["AttuneServer", "AttuneServerProcess", "ApiRequest", "ALL_GRANTS", "PACK_UPLOAD_MAX_BYTES"]

# crates/api/src/routes/packs.rs: PACK_UPLOAD_MAX_BYTES (100 MB)
PACK_UPLOAD_MAX_BYTES = 100 * 1024 * 1024
# crates/api/src/dto/common.rs PaginationParams: page_size is capped at 100 (values above are clamped)
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
# attune-format.md §6 / attune_common::schema::RefValidator::validate_pack_ref
PACK_REF_RE = re.compile(r"^[a-z][a-z0-9_-]*$")
# Grants of the Packs resource (attune_common::rbac::Action on Resource::Packs)
ALL_GRANTS = ("read", "install", "configure", "delete")
# attune_common::pack_registry::validate_registry_headers: headers the HTTP client manages are refused
FORBIDDEN_HEADERS = ("host", "content-length", "connection", "transfer-encoding", "upgrade", "te", "keep-alive",
                     "trailer", "expect", "cookie")
FORBIDDEN_HEADER_PREFIXES = ("proxy-", "x-forwarded")
REDACTED = "[REDACTED]"
TEST_FAILED_MESSAGE = "Pack registration failed: tests did not pass. Use force=true to register anyway."
MAX_BODY_SLACK = 1024 * 1024


def _now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


class ApiError(Exception):
    """An ``ApiError`` of Attune: status + ``{error, code}``."""

    CODES = {400: "BAD_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND", 409: "CONFLICT",
             413: "PAYLOAD_TOO_LARGE", 422: "VALIDATION_ERROR", 500: "INTERNAL_SERVER_ERROR", 502: "BAD_GATEWAY"}

    def __init__(self, status, message, details=None, auth=False):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.auth = auth  # rejected by the auth middleware: AuthErrorResponse shape

    def body(self):
        if self.auth:
            return {"error": {"code": self.status, "message": self.message}}
        out = {"error": self.message, "code": self.CODES.get(self.status, "ERROR")}
        if self.details is not None:
            out["details"] = self.details
        return out


class ApiRequest(object):
    """One logged request.  ``token`` is ``{type, login, jti}`` (never the secret), ``body`` a redacted summary."""

    __slots__ = ("method", "path", "query", "headers", "token", "body", "json", "multipart", "status", "time")

    def __init__(self, method, path, query, headers):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.token = None
        self.body = None
        self.json = None        # parsed JSON body, unredacted (in memory only, for contract comparisons)
        self.multipart = None   # [(name, filename, content_type, value-or-digest)] in order
        self.status = None
        self.time = time.time()

    def to_json(self):
        return {"method": self.method, "path": self.path, "query": self.query, "token": self.token, "body": self.body,
                "status": self.status, "time": self.time}

    def __repr__(self):
        return "ApiRequest(%s %s -> %s)" % (self.method, self.path, self.status)


def _redact_json(value):
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in ("token", "password", "refresh_token", "access_token"):
                out[key] = REDACTED if item is not None else None
            elif key == "headers" and isinstance(item, dict):
                out[key] = dict((name, REDACTED) for name in item)
            else:
                out[key] = _redact_json(item)
        return out
    if isinstance(value, list):
        return [_redact_json(item) for item in value]
    return value


def parse_multipart(body, content_type):
    """``[(name, filename, part_content_type, bytes)]`` of a multipart/form-data body (raises ValueError)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type or "")
    if not content_type or not content_type.lower().startswith("multipart/form-data") or not match:
        raise ValueError("Invalid `boundary` for `multipart/form-data` request")
    boundary = b"--" + match.group(1).encode("latin-1")
    parts = []
    chunks = body.split(boundary)
    if len(chunks) < 3:
        raise ValueError("multipart body has no parts")
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):
            break
        if not chunk.startswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        head, sep, data = chunk[2:].partition(b"\r\n\r\n")
        if not sep or not data.endswith(b"\r\n"):
            raise ValueError("malformed multipart part")
        data = data[:-2]
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _unused, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        disp = headers.get("content-disposition", "")
        name = re.search(r'(?:^|;)\s*name="([^"]*)"', disp)
        filename = re.search(r'filename="([^"]*)"', disp)
        if not name:
            raise ValueError("multipart part without a name")
        parts.append((name.group(1), filename.group(1) if filename else None, headers.get("content-type"), data))
    return parts


def registry_url_key(url):
    """routes/packs.rs registry_url_key(): lowercase host without trailing dot, default port dropped."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if not parts.scheme or not parts.hostname:
        return url
    host = parts.hostname.rstrip(".").lower()
    port = parts.port
    default = {"https": 443, "http": 80}.get(parts.scheme)
    netloc = host if port in (None, default) else "%s:%d" % (host, port)
    path = parts.path or "/"
    return "%s://%s%s%s" % (parts.scheme, netloc, path, ("?" + parts.query) if parts.query else "")


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "attune-api-sim/0.6.0"
    sys_version = ""
    timeout = 120

    def version_string(self):
        return self.server_version

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        """Silence the stderr access log (the request log replaces it)."""

    def _send(self, status, payload, entry):
        body = json.dumps(payload).encode("utf-8")
        if entry is not None:
            entry.status = status
            self.server.app.record_status(entry)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 413:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def _dispatch(self):
        app = self.server.app
        split = urlsplit(self.path)
        path = split.path or "/"
        entry = ApiRequest(self.command, unquote(path), split.query, dict(self.headers.items()))
        app.record_request(entry)
        try:
            length = self.headers.get("Content-Length")
            body = b""
            if length:
                if not length.isdigit():
                    raise ApiError(400, "Invalid Content-Length")
                if int(length) > app.max_upload_bytes + MAX_BODY_SLACK:
                    # axum DefaultBodyLimit: the request is refused before the handler reads the archive
                    raise ApiError(413, "Failed to buffer the request body: length limit exceeded")
                body = self.rfile.read(int(length))
            status, payload = app.handle(self.command, path, split.query, self.headers, body, entry)
        except ApiError as exc:
            status, payload = exc.status, exc.body()
        except Exception as exc:  # pylint: disable=broad-except
            status, payload = 500, {"error": "Internal server error: %r" % (exc,), "code": "INTERNAL_SERVER_ERROR"}
        self._send(status, payload, entry)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _dispatch


def connection_args(api, **extra):
    """The attune_api connection options of a plugin task against ``api`` (its integration token ``api.token``)."""
    args = dict(api_url=api.url(), api_token=api.token, ca_path=api.ca_path)
    args.update(extra)
    return args


class AttuneServer(ServingThread):
    """The test Attune API.  See the module docstring."""

    thread_name = "attune-api"

    def __init__(self, host="127.0.0.1", port=0, static_indices=None, standard_index=None, standard_index_url=None,
                 registry_ca_path=None, access_ttl=3600, refresh_ttl=86400, max_upload_bytes=PACK_UPLOAD_MAX_BYTES,
                 allow_http=False, log_file=None, registry_enabled=True, fetch_timeout=10, tests_mode="async"):
        # tests_mode "async" (Attune v0.6.0, routes/packs.rs dispatch_and_track_pack_tests + finalize_pack_install):
        # an upload is registered at once and answered 201 with install_id / install_status "pending"; the test run
        # is tracked as a pack install (GET /api/v1/packs/install/{id}) that ends "succeeded" or, when tests fail
        # without force, "rolled_back" (the previous pack restored).  Each poll advances it one step
        # (pending → running → terminal), so tests need no sleeps.
        # tests_mode "sync" (older Attune, execute_and_store_pack_tests): failing tests answer 400
        # "Pack registration failed: tests did not pass. Use force=true to register anyway."
        if tests_mode not in ("async", "sync"):
            raise ValueError("tests_mode must be 'async' or 'sync'")
        self.tests_mode = tests_mode
        self.hold_installs = False  # True: tracked test runs stay "running" (a worker that takes forever)
        self._installs = {}
        self.host = host
        self._requested_port = port
        self.port = None
        self.ca_path = None
        self.log_file = log_file
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.max_upload_bytes = max_upload_bytes
        self.allow_http = allow_http
        self.registry_enabled = registry_enabled
        self.fetch_timeout = fetch_timeout
        self.registry_ca_path = registry_ca_path
        # pack_registry.indices of the config file: [{url, priority, enabled, name, headers}]
        self.static_indices = [dict(i) for i in (static_indices or [])]
        self.standard_index = standard_index if standard_index is not None else {
            "registry_name": "Attune Standard", "registry_url": "https://attune.example/", "version": "1.0",
            "last_updated": "2026-01-01T00:00:00Z", "packs": []}
        self._standard_index_url = standard_index_url
        self._lock = threading.RLock()
        self._log_lock = threading.Lock()
        self._log = []
        self._log_fh = None
        self._secret = secrets.token_bytes(32)
        self._users = {}
        self._integration = {}   # sha256(token) -> login
        self._tokens = {}        # jti -> {type, login, exp}
        self._jti = itertools.count(1)
        self._packs = {}         # ref -> record
        self._pack_ids = itertools.count(1)
        self._indices = []       # managed rows
        self._index_ids = itertools.count(1)
        self._index_headers = {}  # id -> {name: value}  (Attune stores them encrypted; never returned in clear)
        self._install_ids = itertools.count(1)
        self.test_results = {}   # ref or (ref, version) -> dict(passed=, failed=, skipped=)
        self.index_fetches = []  # URLs the server fetched (its registry client)
        self._httpd = None
        self._thread = None

    # lifecycle ---------------------------------------------------------------

    def start(self):
        if self._httpd is not None:
            return self
        ca, self.ca_path = shared_ca()
        if self.registry_ca_path is None:
            self.registry_ca_path = self.ca_path
        cert = ca.issue_cert("127.0.0.1", "localhost")
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(ctx)
        self._serve(ctx, _Handler)
        with self._lock:
            if not self._indices:
                # The standard index is seeded at position 0 (Attune's migration seeds it; is_standard=true).
                self._add_index_row("Attune Standard", self.standard_index_url, 0, True, {}, is_standard=True)
        return self

    def stop(self):
        if self._httpd is not None:
            self._shutdown()

    @property
    def base_url(self):
        return "https://%s:%d" % (self.host, self.port)

    def url(self, path=""):
        return self.base_url + ("/" + path.lstrip("/") if path else "")

    @property
    def standard_index_url(self):
        # Served by this server itself unless a URL was given, so the seeded index always answers.
        return self._standard_index_url or self.url("/_sim/standard-index.json")

    # users and tokens ----------------------------------------------------------

    def add_user(self, login, password=None, grants=ALL_GRANTS, unconstrained=True):
        """A user (identity) with Packs grants (subset of ALL_GRANTS); ``unconstrained=False`` = scoped grants only."""
        with self._lock:
            self._users[login] = {"password": password, "grants": set(grants), "unconstrained": unconstrained}
        return login

    def add_integration_token(self, login="ci", grants=ALL_GRANTS, unconstrained=True):
        """Create the user if needed and return a new integration token ``attune_it_…`` for it."""
        with self._lock:
            if login not in self._users:
                self.add_user(login, grants=grants, unconstrained=unconstrained)
            token = "attune_it_" + secrets.token_hex(20)
            self._integration[hashlib.sha256(token.encode()).hexdigest()] = login
        return token

    def issue_token(self, login, token_type="access", ttl=None):
        """A JWT-like token of ``token_type`` (access, refresh, execution, sensor) for ``login``."""
        with self._lock:
            jti = next(self._jti)
            exp = time.time() + (ttl if ttl is not None else (self.refresh_ttl if token_type == "refresh" else self.access_ttl))
            self._tokens[jti] = {"type": token_type, "login": login, "exp": exp}
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        payload = _b64(json.dumps({"sub": login, "jti": jti, "token_type": token_type, "exp": int(exp)}).encode())
        sig = _b64(hmac.new(self._secret, (header + "." + payload).encode(), hashlib.sha256).digest())
        return "%s.%s.%s" % (header, payload, sig)

    def expire_access_tokens(self):
        """Every access token issued so far expires now (deterministic expiry for refresh tests)."""
        with self._lock:
            for info in self._tokens.values():
                if info["type"] == "access":
                    info["exp"] = 0

    def revoke_all_tokens(self):
        with self._lock:
            for info in self._tokens.values():
                info["exp"] = 0

    def _decode(self, token):
        try:
            header, payload, sig = token.split(".")
            expected = _b64(hmac.new(self._secret, (header + "." + payload).encode(), hashlib.sha256).digest())
            if not hmac.compare_digest(sig, expected):
                return None
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        with self._lock:
            info = self._tokens.get(claims.get("jti"))
            if info is None:
                return None
            return dict(info, jti=claims["jti"])

    def _token_pair(self, login):
        return {"access_token": self.issue_token(login, "access"), "refresh_token": self.issue_token(login, "refresh"),
                "token_type": "Bearer", "expires_in": int(self.access_ttl),
                "user": {"id": sorted(self._users).index(login) + 1, "login": login, "display_name": login}}

    # packs and tests -------------------------------------------------------------

    def add_standard_pack(self, ref, version="1.0.0", label=None):
        """A pack that ships with Attune (``is_standard``), like ``core``."""
        with self._lock:
            self._packs[ref] = self._record(ref, version, label or ref.title(), "Standard pack %s" % ref, [], [], [],
                                            is_standard=True, archive=None, installed_by=None, source="standard")
        return self._packs[ref]

    def set_test_result(self, ref, passed=1, failed=0, skipped=0, version=None):
        """Declare that uploading ``ref`` (optionally only ``version``) runs tests with these counts."""
        self.test_results[(ref, version) if version else ref] = dict(passed=passed, failed=failed, skipped=skipped)

    def pack(self, ref):
        """The stored record of ``ref`` (with ``archive`` bytes and ``sha256``) or None."""
        with self._lock:
            rec = self._packs.get(ref)
            return dict(rec) if rec else None

    @property
    def packs(self):
        with self._lock:
            return dict((ref, dict(rec)) for ref, rec in self._packs.items())

    @property
    def indices(self):
        """Managed pack-index rows in Attune's order (with ``headers`` in clear, for tests only)."""
        with self._lock:
            return [dict(row, headers=dict(self._index_headers.get(row["id"], {}))) for row in self._ordered_indices()]

    def _record(self, ref, version, label, description, tags, runtime_deps, dependencies, is_standard, archive,
                installed_by, source, meta=None):
        now = _now()
        return {"id": next(self._pack_ids), "ref": ref, "version": version, "label": label, "description": description,
                "tags": tags, "runtime_deps": runtime_deps, "dependencies": dependencies, "is_standard": is_standard,
                "created": now, "updated": now, "meta": meta or {}, "archive": archive,
                "sha256": ("sha256:" + hashlib.sha256(archive).hexdigest()) if archive is not None else None,
                "installed_by": installed_by, "source": source, "action_count": 0}

    # request log -------------------------------------------------------------------

    def record_request(self, entry):
        with self._log_lock:
            self._log.append(entry)

    def record_status(self, entry):
        if self._log_fh is not None:
            line = json.dumps(entry.to_json(), sort_keys=True) + "\n"
            with self._log_lock:
                if self._log_fh is not None:
                    self._log_fh.write(line)
                    self._log_fh.flush()

    @property
    def requests(self):
        with self._log_lock:
            return list(self._log)

    def issued_secrets(self):
        """The JWTs clients presented (``Authorization: Bearer``) or sent back to refresh: none may appear in any
        output, file or error of the collection."""
        out = set()
        for entry in self.requests:
            auth = entry.headers.get("Authorization") or ""
            if auth.startswith("Bearer "):
                out.add(auth[7:])
            if isinstance(entry.json, dict) and entry.json.get("refresh_token"):
                out.add(entry.json["refresh_token"])
        return out

    def count(self, path=None, method=None, status=None):
        return sum(1 for r in self.requests if (path is None or r.path == path) and (method is None or r.method == method)
                   and (status is None or r.status == status))

    def reset_log(self):
        with self._log_lock:
            self._log.clear()

    # dispatch ------------------------------------------------------------------------

    def handle(self, method, path, query, headers, body, entry):
        raw_path = path
        path = unquote(path)
        params = dict((k, v[-1]) for k, v in parse_qs(query, keep_blank_values=True).items())
        ctype = headers.get("Content-Type") or ""
        data = None
        if body and ctype.lower().startswith("application/json"):
            try:
                data = json.loads(body.decode("utf-8"))
            except ValueError as exc:
                raise ApiError(400, "Failed to parse the request body as JSON: %s" % exc)
            entry.json = data
            entry.body = _redact_json(data)
        if path == "/_sim/standard-index.json" and method == "GET":
            return 200, self.standard_index
        if path == "/auth/token-login" and method == "POST":
            return self._token_login(data)
        if path == "/auth/login" and method == "POST":
            return self._login(data)
        if path == "/auth/refresh" and method == "POST":
            return self._refresh(data)
        if not path.startswith("/api/v1/"):
            raise ApiError(404, "Not found: %s" % path)
        user = self._authenticate(headers, entry)
        segs = raw_path[len("/api/v1/"):].split("/")
        segs = [unquote(s) for s in segs]
        if segs == ["packs"] and method == "GET":
            return self._list_packs(user, params)
        if segs == ["packs", "upload"] and method == "POST":
            return self._upload(user, headers, body, entry)
        if segs == ["packs", "install"] and method == "POST":
            return self._install(user, data)
        if len(segs) == 3 and segs[:2] == ["packs", "install"] and method == "GET":
            try:
                install_id = int(segs[2])
            except ValueError:
                raise ApiError(400, "Invalid URL: Cannot parse `%s` to a `i64`" % segs[2])
            return self._get_install(user, install_id)
        if len(segs) == 4 and segs[0] == "packs" and segs[2:] == ["install", "latest"] and method == "GET":
            return self._latest_install(user, segs[1])
        if len(segs) == 2 and segs[0] == "packs" and method == "GET":
            return self._get_pack(user, segs[1])
        if len(segs) == 2 and segs[0] == "packs" and method == "DELETE":
            return self._delete_pack(user, segs[1])
        if segs == ["pack-indices"] and method == "GET":
            return self._list_indices(user)
        if segs == ["pack-indices"] and method == "POST":
            return self._create_index(user, data)
        if segs == ["pack-indices", "packs"] and method == "GET":
            return self._browse(user, params)
        if len(segs) == 3 and segs[:2] == ["pack-indices", "packs"] and method == "GET":
            return self._get_indexed_pack(user, segs[2])
        if len(segs) == 2 and segs[0] == "pack-indices" and method in ("PUT", "DELETE"):
            try:
                index_id = int(segs[1])
            except ValueError:
                raise ApiError(400, "Invalid URL: Cannot parse `%s` to a `i64`" % segs[1])
            if method == "PUT":
                return self._update_index(user, index_id, data)
            return self._delete_index(user, index_id)
        raise ApiError(404, "Not found: %s %s" % (method, path))

    # auth (crates/api/src/routes/auth.rs) --------------------------------------------

    @staticmethod
    def _require_fields(data, *names):
        if not isinstance(data, dict):
            raise ApiError(400, "Invalid request: expected a JSON object body")
        for name in names:
            if not isinstance(data.get(name), str) or not data.get(name):
                raise ApiError(400, "Invalid request: missing field `%s`" % name)

    def _token_login(self, data):
        self._require_fields(data, "token")
        with self._lock:
            login = self._integration.get(hashlib.sha256(data["token"].encode()).hexdigest())
            if login is None or login not in self._users:
                raise ApiError(401, "Invalid integration token")
            return 200, {"data": self._token_pair(login)}

    def _login(self, data):
        self._require_fields(data, "login", "password")
        with self._lock:
            user = self._users.get(data["login"])
            if user is None or user["password"] is None or not hmac.compare_digest(user["password"], data["password"]):
                raise ApiError(401, "Invalid login or password")
            return 200, {"data": self._token_pair(data["login"])}

    def _refresh(self, data):
        self._require_fields(data, "refresh_token")
        info = self._decode(data["refresh_token"])
        if info is None or info["type"] != "refresh" or info["exp"] < time.time():
            raise ApiError(401, "Invalid or expired refresh token")
        with self._lock:
            self._tokens[info["jti"]]["exp"] = 0  # a refresh token is used once (rotation)
            return 200, {"data": self._token_pair(info["login"])}

    def _authenticate(self, headers, entry):
        """RequireAuth: a valid, unexpired bearer token (else 401 AuthErrorResponse)."""
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            raise ApiError(401, "Missing authentication token", auth=True)
        info = self._decode(auth[len("Bearer "):].strip())
        if info is None:
            raise ApiError(401, "Invalid authentication token", auth=True)
        entry.token = {"type": info["type"], "login": info["login"], "jti": info["jti"]}
        if info["exp"] < time.time():
            raise ApiError(401, "Token expired", auth=True)
        if info["type"] == "refresh":
            raise ApiError(401, "Invalid token type: refresh tokens cannot authenticate API requests", auth=True)
        user = self._users.get(info["login"])
        if user is None:
            raise ApiError(401, "Invalid user identity", auth=True)
        return dict(user, login=info["login"], token_type=info["type"])

    @staticmethod
    def _require_access(user):
        # routes/packs.rs require_pack_access_token(): only Access tokens on pack-changing and pack-index routes
        if user["token_type"] != "access":
            raise ApiError(403, "This pack operation requires an access token")

    @staticmethod
    def _authorize(user, action):
        # authz.authorize(Resource::Packs, action): the identity needs a Packs grant for the action
        if action not in user["grants"]:
            raise ApiError(403, "Insufficient permissions: requires Packs:%s" % action.title())

    def _authorize_global(self, user, action):
        # routes/packs.rs authorize_global_pack_registry_action(): access token + unconstrained Packs grant
        self._require_access(user)
        if action not in user["grants"] or not user["unconstrained"]:
            raise ApiError(403, "Global pack index access requires an unconstrained Packs %s grant" % action.title())

    # packs ---------------------------------------------------------------------------

    @staticmethod
    def _pack_response(rec, counts=True):
        out = {"id": rec["id"], "ref": rec["ref"], "label": rec["label"], "description": rec["description"],
               "version": rec["version"], "conf_schema": {}, "config": {}, "meta": rec["meta"], "tags": rec["tags"],
               "runtime_deps": rec["runtime_deps"], "dependencies": rec["dependencies"],
               "is_standard": rec["is_standard"], "created": rec["created"], "updated": rec["updated"],
               "worker_affinity": {}, "worker_selector": {}, "worker_tolerations": []}
        if counts:
            out.update(action_count=rec["action_count"], trigger_count=0, rule_count=0, sensor_count=0)
        return out

    @staticmethod
    def _pack_summary(rec):
        return {"id": rec["id"], "ref": rec["ref"], "label": rec["label"], "description": rec["description"],
                "version": rec["version"], "tags": rec["tags"], "is_standard": rec["is_standard"],
                "created": rec["created"], "updated": rec["updated"]}

    def _list_packs(self, user, params):
        try:
            page = int(params.get("page", 1))
            page_size = int(params.get("page_size", DEFAULT_PAGE_SIZE))
        except ValueError:
            raise ApiError(400, "Failed to deserialize query string: invalid digit found in string")
        page = max(page, 1)
        page_size = min(max(page_size, 1), MAX_PAGE_SIZE)
        q = (params.get("q") or "").lower()
        with self._lock:
            rows = sorted(self._packs.values(), key=lambda r: r["ref"])
        if q:
            rows = [r for r in rows if q in r["ref"].lower() or q in r["label"].lower()]
        total = len(rows)
        items = rows[(page - 1) * page_size: page * page_size]
        total_pages = (total + page_size - 1) // page_size
        return 200, {"items": [self._pack_summary(r) for r in items],
                     "pagination": {"page": page, "page_size": page_size, "total_items": total, "total_pages": total_pages,
                                    "has_next": page < total_pages, "has_previous": page > 1}}

    def _get_pack(self, user, ref):
        with self._lock:
            rec = self._packs.get(ref)
            # routes/packs.rs get_pack(): a pack the identity may not Read is reported as not found
            if rec is None or "read" not in user["grants"]:
                raise ApiError(404, "Pack '%s' not found" % ref)
            return 200, {"data": self._pack_response(rec)}

    def _delete_pack(self, user, ref):
        self._require_access(user)
        self._authorize(user, "delete")
        with self._lock:
            if ref not in self._packs:
                raise ApiError(404, "Pack '%s' not found" % ref)
            del self._packs[ref]
        return 200, {"success": True, "message": "Pack '%s' deleted successfully" % ref}

    def _upload(self, user, headers, body, entry):
        # routes/packs.rs upload_pack(): authorize_pack_registry_action(Install) first
        self._require_access(user)
        self._authorize(user, "install")
        try:
            parts = parse_multipart(body, headers.get("Content-Type"))
        except ValueError as exc:
            raise ApiError(400, "Failed to read multipart field: %s" % exc)
        archive, force, skip_tests = None, False, False
        entry.multipart = []
        summary = {}
        for name, filename, ctype, data in parts:
            if name == "pack":
                entry.multipart.append((name, filename, ctype, "sha256:" + hashlib.sha256(data).hexdigest()))
                summary["pack"] = {"filename": filename, "size": len(data),
                                   "sha256": "sha256:" + hashlib.sha256(data).hexdigest()}
                if len(data) > self.max_upload_bytes:
                    raise ApiError(400, "Pack archive exceeds maximum size of %d bytes" % self.max_upload_bytes)
                archive = data
            else:
                text = data.decode("utf-8", "replace")
                entry.multipart.append((name, filename, ctype, text))
                summary[name] = text
                # "true" (any case, trimmed) enables the flag; anything else is false
                if name == "force":
                    force = text.strip().lower() == "true"
                elif name == "skip_tests":
                    skip_tests = text.strip().lower() == "true"
        entry.body = summary
        if archive is None:
            raise ApiError(400, "Missing required 'pack' field in multipart upload")
        meta = self._validate_archive(archive)
        if self.tests_mode == "async":
            rec, install = self._register_async(user, meta, archive, force, skip_tests)
            data = {"pack": self._pack_response(rec, counts=False), "test_result": None, "tests_skipped": skip_tests,
                    "install_id": install["install_id"] if install else None,
                    "install_status": install["status"] if install else None, "provenance": None}
            return 201, {"data": data, "message": "Pack uploaded and registered successfully"}
        rec, test_result = self._register(user, meta, archive, force, skip_tests, source="upload")
        install_id = next(self._install_ids) if test_result is not None else None
        data = {"pack": self._pack_response(rec, counts=False), "test_result": test_result, "tests_skipped": skip_tests,
                "install_id": install_id, "install_status": "succeeded" if install_id else None, "provenance": None}
        return 201, {"data": data, "message": "Pack uploaded and registered successfully"}

    def _register_async(self, user, meta, archive, force, skip_tests):
        """Register now; when tests run, track them as a pack install that may roll the pack back."""
        with self._lock:
            previous = self._packs.get(meta["ref"])
            test_result = None if skip_tests else self._run_tests(meta)
            rec, _unused = self._register(user, meta, archive, force, True, source="upload")
            if test_result is None:
                return rec, None
            install = {"install_id": next(self._install_ids), "pack_ref": meta["ref"], "pack_version": meta["version"],
                       "started_at": _now(), "status": "pending",
                       "trigger_reason": "update" if previous is not None else "install",
                       "result": test_result, "force": force, "previous": previous, "polls": 0}
            self._installs[install["install_id"]] = install
            return rec, install

    def _advance(self, install):
        """One step of a tracked install per poll: pending → running → succeeded / rolled_back."""
        with self._lock:
            if install["status"] == "pending":
                install["status"] = "running"
            elif install["status"] == "running" and not self.hold_installs:
                result = install["result"]
                install["finished_at"] = _now()
                install["test_execution_id"] = install["install_id"]
                if result["failed"] and not install["force"]:
                    install["status"] = "rolled_back"
                    install["error_message"] = "Pack tests failed: %d of %d tests failed" % (
                        result["failed"], result["totalTests"])
                    if install["previous"] is not None:
                        self._packs[install["pack_ref"]] = install["previous"]
                    else:
                        self._packs.pop(install["pack_ref"], None)
                else:
                    install["status"] = "succeeded"
            return self._install_response(install)

    @staticmethod
    def _install_response(install):
        out = dict((k, install.get(k)) for k in ("install_id", "pack_ref", "pack_version", "started_at", "status",
                                                 "trigger_reason", "error_message", "finished_at", "test_execution_id"))
        if install["status"] in ("succeeded", "failed", "rolled_back"):
            out["test_result"] = install["result"]
        return out

    def _get_install(self, user, install_id):
        install = self._installs.get(install_id)
        if install is None:
            raise ApiError(404, "Pack install %d not found" % install_id)
        return 200, {"data": self._advance(install)}

    def _latest_install(self, user, ref):
        installs = [i for i in self._installs.values() if i["pack_ref"] == ref]
        if not installs:
            raise ApiError(404, "No install recorded for pack '%s'" % ref)
        return 200, {"data": self._install_response(max(installs, key=lambda i: i["install_id"]))}

    def settle_installs(self):
        """Drive every tracked install to its terminal state (as Attune's background finalizer would)."""
        for install in list(self._installs.values()):
            while install["status"] in ("pending", "running"):
                self._advance(install)

    def _validate_archive(self, archive):
        """safe_unpack + find_pack_root + the pack.yaml checks of upload_pack/register_pack_internal."""
        try:
            raw = gzip.decompress(archive)
            tar = tarfile.open(fileobj=io.BytesIO(raw), mode="r:")
            members = tar.getmembers()
        except (OSError, EOFError, tarfile.TarError, ValueError, gzip.BadGzipFile) as exc:
            raise ApiError(400, "Failed to extract pack archive: %s" % exc)
        files = {}
        dirs = set()
        for m in members:
            name = m.name
            parts = [p for p in name.split("/") if p not in ("", ".")]
            if name.startswith("/") or ".." in parts:
                raise ApiError(400, "Failed to extract pack archive: entry '%s' has an absolute or parent path" % name)
            if m.issym() or m.islnk():
                raise ApiError(400, "Failed to extract pack archive: link entry '%s' is not allowed" % name)
            if m.ischr() or m.isblk() or m.isfifo() or m.isdev():
                raise ApiError(400, "Failed to extract pack archive: special entry '%s' is not allowed" % name)
            if not parts:
                continue
            rel = "/".join(parts)
            if m.isdir():
                dirs.add(rel)
            elif m.isfile():
                files[rel] = tar.extractfile(m).read()
                for i in range(1, len(parts)):
                    dirs.add("/".join(parts[:i]))
        root = None
        if "pack.yaml" in files:
            root = ""
        else:
            for d in sorted(x for x in dirs if "/" not in x):
                if d + "/pack.yaml" in files:
                    root = d + "/"
                    break
        if root is None:
            raise ApiError(400, "Could not find pack.yaml in the uploaded archive. Ensure the archive contains pack.yaml at "
                                "its root or in a single top-level directory.")
        try:
            doc = yaml.safe_load(files[root + "pack.yaml"].decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ApiError(400, "Failed to parse pack.yaml: %s" % exc)
        if not isinstance(doc, dict):
            doc = {}
        ref = doc.get("ref")
        if not isinstance(ref, str):
            raise ApiError(400, "Missing 'ref' field in pack.yaml")
        if not PACK_REF_RE.match(ref):
            raise ApiError(400, "Invalid pack ref: '%s' must match ^[a-z][a-z0-9_-]*$" % ref)
        version = doc.get("version")
        if not isinstance(version, str):
            raise ApiError(400, "Missing 'version' field in pack.yaml")

        def strings(key):
            value = doc.get(key)
            return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []

        actions = [f for f in files if f.startswith(root + "actions/") and f.endswith((".yaml", ".yml"))]
        testing = doc.get("testing") if isinstance(doc.get("testing"), dict) else {}
        return {"ref": ref, "version": version, "label": doc.get("name") if isinstance(doc.get("name"), str) else ref,
                "description": doc.get("description") if isinstance(doc.get("description"), str) else None,
                "tags": strings("keywords"), "runtime_deps": strings("runtime_deps"), "dependencies": strings("dependencies"),
                "meta": doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {},
                "tests_declared": bool(testing.get("enabled")), "action_count": len(actions)}

    def _run_tests(self, meta):
        counts = self.test_results.get((meta["ref"], meta["version"])) or self.test_results.get(meta["ref"])
        if counts is None and not meta["tests_declared"]:
            return None
        counts = counts or dict(passed=1, failed=0, skipped=0)
        total = counts["passed"] + counts["failed"] + counts["skipped"]
        # PackTestResult / TestSuiteResult / TestCaseResult serialize in camelCase (serde rename_all = "camelCase")
        cases = ([{"name": "test_%d" % i, "status": "passed", "durationMs": 1} for i in range(counts["passed"])]
                 + [{"name": "test_fail_%d" % i, "status": "failed", "durationMs": 1, "errorMessage": "assertion failed"}
                    for i in range(counts["failed"])]
                 + [{"name": "test_skip_%d" % i, "status": "skipped", "durationMs": 0} for i in range(counts["skipped"])])
        return {"packRef": meta["ref"], "packVersion": meta["version"], "executionTime": _now(),
                "status": "failed" if counts["failed"] else "passed", "totalTests": total, "passed": counts["passed"],
                "failed": counts["failed"], "skipped": counts["skipped"],
                "passRate": (float(counts["passed"]) / total) if total else 1.0, "durationMs": total,
                "testSuites": [{"name": "simulated", "runnerType": "script", "total": total, "passed": counts["passed"],
                                "failed": counts["failed"], "skipped": counts["skipped"], "durationMs": total,
                                "testCases": cases}]}

    def _register(self, user, meta, archive, force, skip_tests, source, skip_deps=True):
        """register_pack_internal(): 409 unless forced, Configure to replace, tests, previous pack kept on failure."""
        ref = meta["ref"]
        with self._lock:
            existing = self._packs.get(ref)
            if existing is not None:
                if not force:
                    raise ApiError(409, "Pack '%s' already exists. Use force=true to reinstall." % ref)
                # authorize_existing_pack_replacement(): Packs:Configure is needed to replace a pack
                if "configure" not in user["grants"]:
                    raise ApiError(403, "Not authorized to replace pack")
            if not skip_deps:
                missing = [d for d in meta["dependencies"] if d.split("@")[0] not in self._packs]
                if missing:
                    raise ApiError(400, "Pack dependency validation failed:\n  - %s" % "\n  - ".join(
                        "pack '%s' is not installed" % d for d in missing))
            test_result = None if skip_tests else self._run_tests(meta)
            if test_result is not None and test_result["failed"] and not force:
                # the new pack is rolled back / the previous pack stays active
                raise ApiError(400, TEST_FAILED_MESSAGE, details={"test_result": test_result})
            rec = self._record(ref, meta["version"], meta["label"], meta["description"], meta["tags"],
                               meta["runtime_deps"], meta["dependencies"], False, archive, user["login"], source,
                               meta=meta["meta"])
            rec["action_count"] = meta["action_count"]
            if existing is not None:
                rec["id"] = existing["id"]          # updated in place, ids preserved
                rec["created"] = existing["created"]
                rec["is_standard"] = existing["is_standard"]
            self._packs[ref] = rec
            return rec, test_result

    def _install(self, user, data):
        # routes/packs.rs install_pack(): authorize_pack_registry_action(Install)
        self._require_access(user)
        self._authorize(user, "install")
        if not isinstance(data, dict) or not isinstance(data.get("source"), str) or not data["source"]:
            raise ApiError(422, "Failed to deserialize the JSON body into the target type: missing field `source`")
        source = data["source"]
        if source.startswith(("http://", "https://")) or source.startswith("/") or data.get("no_registry"):
            raise ApiError(400, "The test Attune server only installs registry references")
        ref, _unused, version = source.partition("@")
        if not version and data.get("ref_spec"):
            version = data["ref_spec"]
        if not PACK_REF_RE.match(ref):
            raise ApiError(400, "Invalid pack reference '%s'" % source)
        if data.get("registry_id") is not None:
            rows = [r for r in self._ordered_indices() if r["id"] == data["registry_id"] and r["enabled"]]
            if not rows:
                raise ApiError(400, "Enabled managed pack index %s was not found" % data["registry_id"])
            registries = [self._summary_config(rows[0])]
        else:
            registries = self._effective(False)
        if not self.registry_enabled:
            raise ApiError(400, "Pack registry resolution is disabled")
        # Resolution is fail-closed (attune-format.md §3): an unreachable registry ahead of the match is an error.
        found = None
        for reg in registries:
            try:
                index = self._fetch_index(reg)
            except ApiError as exc:
                raise ApiError(502, "Failed to fetch pack index %s: %s" % (reg["url"], exc.message))
            # RegistryClient::search_pack (pack_registry/client.rs): the FIRST entry of the ref in the first registry
            # holding it; no version history is consulted
            entries = [p for p in index.get("packs", []) if isinstance(p, dict) and p.get("ref") == ref]
            if entries:
                found = (reg, entries[0])
                break
        if found is None:
            raise ApiError(404, "Pack '%s' not found in any configured registry" % source)
        reg, entry = found
        if version and version != "latest" and version != entry.get("version"):
            # routes/packs.rs resolve_registry_request(): only "latest" or exactly the entry's version
            raise ApiError(400, "Pack %s version %s not found (available: %s)" % (ref, version, entry.get("version")))
        archives = [s for s in entry.get("install_sources", []) if s.get("type") == "archive"]
        if not archives:
            raise ApiError(400, "Pack '%s' has no archive install source the test server can fetch" % ref)
        src = archives[0]
        try:
            archive = self._https_get(src["url"], reg.get("headers") or {})
        except ApiError as exc:
            raise ApiError(502, "Failed to download pack archive %s: %s" % (src["url"], exc.message))
        digest = "sha256:" + hashlib.sha256(archive).hexdigest()
        if src.get("checksum") and src["checksum"].lower() != digest:
            raise ApiError(400, "Checksum mismatch for %s: expected %s, got %s" % (src["url"], src["checksum"], digest))
        meta = self._validate_archive(archive)
        if meta["ref"] != ref or meta["version"] != entry.get("version"):
            # validate_registry_manifest_identity()
            raise ApiError(400, "pack.yaml identity %s@%s does not match the registry entry %s@%s" % (
                meta["ref"], meta["version"], ref, entry.get("version")))
        force, skip_tests = bool(data.get("force")), bool(data.get("skip_tests"))
        if self.tests_mode == "async" and not (force or skip_tests):
            # install_pack(): the candidate is tested before activation and the request waits for the result
            result = self._run_tests(meta)
            if result is not None and result["failed"]:
                raise ApiError(400, "Candidate pack tests failed: Pack tests failed: %d of %d tests failed" % (
                    result["failed"], result["totalTests"]), details={"test_result": result})
        rec, _test = self._register(user, meta, archive, force, skip_tests or self.tests_mode == "async",
                                    source="registry", skip_deps=bool(data.get("skip_deps")))
        rec["provenance"] = {"artifact_type": "archive", "artifact_url": src["url"], "checksum": digest,
                             "checksum_subject": "archive_bytes", "checksum_verified": bool(src.get("checksum")),
                             "fallback_occurred": False, "registry_id": reg.get("id"), "registry_url": reg["url"],
                             "resolved_pack": "%s@%s" % (ref, entry.get("version"))}
        out = {"pack": self._pack_response(rec, counts=False), "test_result": None,
               "tests_skipped": bool(data.get("skip_tests")), "install_id": None, "install_status": None,
               "provenance": rec["provenance"]}
        return 200, {"data": out}

    # registries -------------------------------------------------------------------------

    def _https_get(self, url, headers):
        if url == self.standard_index_url and not self._standard_index_url:
            return json.dumps(self.standard_index).encode("utf-8")
        self.index_fetches.append(url)
        if not url.startswith("https://") and not (self.allow_http and url.startswith("http://")):
            raise ApiError(400, "URL scheme not allowed: %s" % url)
        ctx = ssl.create_default_context(cafile=self.registry_ca_path)
        req = urllib.request.Request(url, headers=dict(headers))
        try:
            with urllib.request.urlopen(req, timeout=self.fetch_timeout, context=ctx) as resp:  # nosec - test server
                return resp.read()
        except urllib.error.HTTPError as exc:
            raise ApiError(502, "HTTP %d" % exc.code)
        except (urllib.error.URLError, OSError) as exc:
            raise ApiError(502, str(getattr(exc, "reason", exc)))

    def _fetch_index(self, reg):
        body = self._https_get(reg["url"], reg.get("headers") or {})
        try:
            index = json.loads(body.decode("utf-8"))
        except ValueError as exc:
            raise ApiError(502, "invalid index format: %s" % exc)
        if not isinstance(index, dict) or not isinstance(index.get("packs"), list):
            raise ApiError(502, "invalid index format: no packs list")
        return index

    def _ordered_indices(self):
        return sorted(self._indices, key=lambda r: (r["position"], r["id"]))

    def _summary_config(self, row):
        return {"id": row["id"], "name": row["name"], "url": row["url"], "position": row["position"],
                "enabled": row["enabled"], "headers": dict(self._index_headers.get(row["id"], {}))}

    def _static_effective(self, managed_keys, offset, include_disabled):
        """effective_static_registry_indices(): enabled static indices by priority, after the managed ones."""
        seen = set(managed_keys)
        out = []
        for idx in sorted((i for i in self.static_indices if include_disabled or i.get("enabled", True)),
                          key=lambda i: i.get("priority", 100)):
            key = registry_url_key(idx["url"])
            if key in seen:
                continue
            seen.add(key)
            out.append({"id": None, "name": idx.get("name"), "url": idx["url"],
                        "position": offset + int(idx.get("priority", 100)), "enabled": idx.get("enabled", True),
                        "headers": dict(idx.get("headers") or {})})
        return out

    def _effective(self, include_disabled):
        """routes/packs.rs effective_pack_registry(): managed rows (deduplicated by URL) in position order, plus the
        config file's indices only while every managed row is the standard one."""
        if not self.registry_enabled:
            return []
        with self._lock:
            rows = self._ordered_indices()
            seen, managed = set(), []
            for row in rows:
                key = registry_url_key(row["url"])
                if key in seen:
                    continue
                seen.add(key)
                managed.append(row)
            static_on = all(r["is_standard"] for r in managed)
            offset = (max(max(r["position"], 0) for r in managed) + 1) if managed else 0
            out = [self._summary_config(r) for r in managed if include_disabled or r["enabled"]]
            if static_on:
                out += self._static_effective(seen, offset, include_disabled)
            return out

    @staticmethod
    def _summary(reg):
        return {"id": reg["id"], "name": reg["name"], "url": reg["url"], "position": reg["position"]}

    def _browse(self, user, params):
        self._authorize_global(user, "read")
        include_disabled = params.get("include_disabled", "false")
        if include_disabled not in ("true", "false"):
            raise ApiError(400, "Failed to deserialize query string: include_disabled: provided string was not `true` or `false`")
        include_disabled = include_disabled == "true"
        if include_disabled:
            self._authorize_global(user, "configure")
        if params.get("registry_id") not in (None, ""):
            try:
                rid = int(params["registry_id"])
            except ValueError:
                raise ApiError(400, "Failed to deserialize query string: registry_id: invalid digit found in string")
            rows = [r for r in self._ordered_indices() if r["id"] == rid and r["enabled"]]
            if not rows or not self.registry_enabled:
                raise ApiError(400, "Enabled managed pack index %d was not found" % rid)
            registries = [self._summary_config(rows[0])]
        else:
            registries = self._effective(include_disabled)
        q = (params.get("q") or "").lower()
        seen, out = set(), []
        for reg in registries:
            try:
                index = self._fetch_index(reg)
            except ApiError:
                continue  # best effort: a registry that fails is skipped (tracing::warn in Attune)
            for pack in index["packs"]:
                if not isinstance(pack, dict) or pack.get("ref") in seen:
                    continue
                seen.add(pack.get("ref"))
                text = [pack.get("ref", ""), pack.get("label", ""), pack.get("description", ""), pack.get("use_case") or ""]
                text += list(pack.get("keywords") or [])
                if not q or any(q in str(t).lower() for t in text):
                    out.append({"pack": pack, "registry": self._summary(reg)})
        return 200, {"data": out}

    def _get_indexed_pack(self, user, ref):
        self._authorize_global(user, "read")
        for reg in self._effective(False):
            try:
                index = self._fetch_index(reg)
            except ApiError:
                continue
            for pack in index["packs"]:
                if isinstance(pack, dict) and pack.get("ref") == ref:
                    return 200, {"data": {"pack": pack, "registry": self._summary(reg)}}
        raise ApiError(404, "Indexed pack '%s' not found" % ref)

    def _index_response(self, row):
        # PackRegistryIndexResponse: header values never come back in clear
        return {"id": row["id"], "name": row["name"], "url": row["url"], "position": row["position"],
                "enabled": row["enabled"], "created": row["created"], "updated": row["updated"],
                "headers": dict((name, REDACTED) for name in self._index_headers.get(row["id"], {}))}

    def _add_index_row(self, name, url, position, enabled, headers, is_standard=False):
        now = _now()
        row = {"id": next(self._index_ids), "name": name, "url": url, "position": position, "enabled": enabled,
               "is_standard": is_standard, "created": now, "updated": now}
        self._indices.append(row)
        self._index_headers[row["id"]] = dict(headers)
        return row

    def _validate_url(self, url):
        # validate_managed_registry_url(): OutboundUrlPolicy (https, http only when allowed, no credentials/query)
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ApiError(400, "Invalid registry URL '%s'" % url)
        if parts.scheme == "http" and not self.allow_http:
            raise ApiError(400, "Registry URL '%s' must use https" % url)
        if parts.username or parts.password:
            raise ApiError(400, "Registry URL must not contain credentials")
        return url

    @staticmethod
    def _validate_headers(headers, existing=None):
        # headers_from_json() + validate_registry_headers() + encrypt_managed_headers_with_key()
        if not isinstance(headers, dict):
            raise ApiError(400, "Pack index headers must be a JSON object")
        out = {}
        for name, value in headers.items():
            if not isinstance(value, str):
                raise ApiError(400, "Pack index header values must be strings")
            low = name.lower()
            if low in FORBIDDEN_HEADERS or low.startswith(FORBIDDEN_HEADER_PREFIXES):
                raise ApiError(400, "Registry header '%s' is managed by the HTTP client and cannot be set" % name)
            if value == REDACTED:
                if existing is None or name not in existing:
                    raise ApiError(400, "Redacted registry header '%s' has no existing value" % name)
                value = existing[name]
            out[name] = value
        return out

    def _list_indices(self, user):
        self._authorize_global(user, "read")
        with self._lock:
            return 200, {"data": [self._index_response(r) for r in self._ordered_indices()]}

    def _create_index(self, user, data):
        if not isinstance(data, dict) or not isinstance(data.get("url"), str):
            raise ApiError(422, "Failed to deserialize the JSON body into the target type: missing field `url`")
        self._authorize_global(user, "configure")
        url = self._validate_url(data["url"])
        headers = self._validate_headers(data.get("headers") or {})
        position = data.get("position")
        if position is not None and (not isinstance(position, int) or position < 0):
            raise ApiError(400, "Validation error: position must be a non-negative integer")
        enabled = data.get("enabled", True)
        with self._lock:
            if position is None:
                position = max([r["position"] for r in self._indices] + [-1]) + 1  # append to the end
            row = self._add_index_row(data.get("name"), url, position, bool(enabled), headers)
            return 201, {"data": self._index_response(row)}

    def _update_index(self, user, index_id, data):
        if not isinstance(data, dict):
            raise ApiError(422, "Failed to deserialize the JSON body into the target type")
        self._authorize_global(user, "configure")
        url = self._validate_url(data["url"]) if data.get("url") is not None else None
        with self._lock:
            rows = [r for r in self._indices if r["id"] == index_id]
            if not rows:
                raise ApiError(404, "Pack index %d not found" % index_id)
            row = rows[0]
            if data.get("headers") is not None:
                self._index_headers[index_id] = self._validate_headers(data["headers"], self._index_headers.get(index_id, {}))
            if url is not None:
                row["url"] = url
            if data.get("name") is not None:
                row["name"] = data["name"]
            if data.get("position") is not None:
                if not isinstance(data["position"], int) or data["position"] < 0:
                    raise ApiError(400, "Validation error: position must be a non-negative integer")
                row["position"] = data["position"]
            if data.get("enabled") is not None:
                row["enabled"] = bool(data["enabled"])
            row["updated"] = _now()
            return 200, {"data": self._index_response(row)}

    def _delete_index(self, user, index_id):
        self._authorize_global(user, "configure")
        with self._lock:
            rows = [r for r in self._indices if r["id"] == index_id]
            if not rows:
                raise ApiError(404, "Pack index %d not found" % index_id)
            existing = rows[0]
            after = [r for r in self._indices if r["id"] != index_id]
            # static_indices_would_reactivate(): deleting the last non-standard row would bring the config file's
            # enabled indices back into force
            before_static = all(r["is_standard"] for r in self._indices)
            after_static = all(r["is_standard"] for r in after)
            keys = set(registry_url_key(r["url"]) for r in after)
            if (not existing["is_standard"] and not before_static and after_static
                    and self._static_effective(keys, 0, False)):
                raise ApiError(409, "Cannot delete the last non-standard managed index while enabled static pack indices "
                                    "are configured; remove or disable the static entries first")
            self._indices = after
            self._index_headers.pop(index_id, None)
        return 200, {"success": True, "message": "Pack index %d deleted" % index_id}


# ---------------------------------------------------------------------------
# Separate process


def apply_config(server, config):
    """Configure a server from a JSON-able dict: users, tokens, standard packs, test results."""
    for user in config.get("users", []):
        server.add_user(user["login"], user.get("password"), user.get("grants", ALL_GRANTS), user.get("unconstrained", True))
    tokens = {}
    for login in config.get("integration_tokens", []):
        tokens[login] = server.add_integration_token(login)
    for pack in config.get("standard_packs", []):
        server.add_standard_pack(pack["ref"], pack.get("version", "1.0.0"))
    for ref, counts in config.get("test_results", {}).items():
        server.set_test_result(ref, **counts)
    return tokens


class AttuneServerProcess(ChildServer):
    """Run this file as a child process; ``proc.url()``, ``proc.ca_path``, ``proc.tokens``, ``proc.read_log()``."""

    name = "attune server"
    script = os.path.abspath(__file__)

    def __init__(self, workdir, config=None, python=None, startup_timeout=30):
        self.workdir = workdir
        self.config_path = os.path.join(workdir, "attune-config.json")
        self.ca_path = os.path.join(workdir, "attune-ca.pem")
        self.tokens_path = os.path.join(workdir, "attune-tokens.json")
        self.config = config or {}
        self.tokens = {}
        super().__init__(os.path.join(workdir, "attune.port"), os.path.join(workdir, "attune.log.jsonl"),
                         stale=(self.ca_path, self.tokens_path), python=python, startup_timeout=startup_timeout)

    def command(self):
        with open(self.config_path, "w", encoding="utf-8") as f:
            json.dump(self.config, f)
        return ["--port-file", self.port_file, "--ca-out", self.ca_path, "--log", self.log_path,
                "--config", self.config_path, "--tokens-out", self.tokens_path]

    def after_start(self):
        with open(self.tokens_path, encoding="utf-8") as f:
            self.tokens = json.load(f)

    def url(self, path=""):
        return "https://127.0.0.1:%d%s" % (self.port, ("/" + path.lstrip("/")) if path else "")


def main(argv=None):
    parser = argparse.ArgumentParser(description="Serve the test Attune API over HTTPS.")
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--ca-out", required=True)
    parser.add_argument("--log")
    parser.add_argument("--config", help="JSON: users, integration_tokens, standard_packs, test_results, static_indices, "
                                         "registry_ca_path, allow_http")
    parser.add_argument("--tokens-out", help="written with {login: integration token} (0600)")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as f:
            config = json.load(f)
    server = AttuneServer(port=args.port, log_file=args.log, static_indices=config.get("static_indices"),
                          registry_ca_path=config.get("registry_ca_path"), allow_http=config.get("allow_http", False),
                          tests_mode=config.get("tests_mode", "async"))

    def configure(started):
        tokens = apply_config(started, config)
        if args.tokens_out:
            _write_atomic(args.tokens_out, json.dumps(tokens).encode("utf-8"))

    return serve_child(server, args.port_file, args.ca_out, configure)


if __name__ == "__main__":
    sys.exit(main())
