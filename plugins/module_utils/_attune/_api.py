# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: client for a running Attune's API (may change without notice).

Talks to the routes of Attune's ``crates/api/src/routes/packs.rs`` and
``auth.rs`` (request/response shapes as published in ``attune-sdk``, generated
from Attune v0.6.0's OpenAPI; ``tests/contract`` checks that the requests built
here are the ones the SDK would send).

Built on ``requests`` rather than attune-sdk: module_utils must import on
Python 3.8 (attune-sdk needs >= 3.10 and httpx), ``requests`` is already the
collection's HTTP library (same TLS options as registry fetches), and the
SDK's upload sends a fixed multipart boundary (``+++``) that a pack archive can
contain.  No Ansible imports here (``_common.api_argument_spec`` takes Ansible's
``env_fallback`` as an argument).

Secrets (integration token, password, JWTs, registry header values) live only
in this object's memory: never in errors, results, files or process
arguments; :func:`redact` scrubs them from any text taken from a response.

The client only: its errors are in ``_api_errors``, the archive it uploads is built by ``_pack._archive``, and
the pack index that ``attune_registry`` manages is matched and changed by ``_attune_registries.ensure_index``.
"""

from __future__ import annotations

import json
import math
import os
import time
from urllib.parse import urlsplit

from ansible_collections.attune.packs.plugins.module_utils._base import _lazy
from ansible_collections.attune.packs.plugins.module_utils._base._common import DEFAULT_API_TIMEOUT, MAX_API_TIMEOUT
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url, tls_verify
from ansible_collections.attune.packs.plugins.module_utils._registry._fetch import Deadline, watch_socket
from ansible_collections.attune.packs.plugins.module_utils._attune._api_errors import (
    STATUS_ERRORS, TOKEN_RULE, ApiBadRequest, ApiError, ApiInvalidArchive, ApiInvalidArguments, ApiTestsFailed, ApiTimeout,
    ApiTLSError, ApiUnauthorized, ApiUnreachable, describe_connection, describe_tls, failed_test_counts, permission_for)

# Installs block while Attune runs the pack's tests on a worker (routes/packs.rs wait_for_pack_test): the read
# timeout must cover a whole test run, not just a round trip.  10 minutes fits typical pack test suites;
# raise api_timeout for packs with long tests.  Connecting is bounded separately (CONNECT_TIMEOUT).
DEFAULT_TIMEOUT = DEFAULT_API_TIMEOUT
CONNECT_TIMEOUT = 30
PAGE_SIZE = 100            # Attune caps page_size at 100
MAX_PAGES = 1000           # 100,000 packs; a listing that goes on beyond it is refused
# Bounds on what one answer of Attune may make the controller read (issue 16, item 3): a page of 100 packs or a
# browse of a large index is far below them; an error answer is only used for its message.
ANSWER_MAX_BYTES = 32 * 1024 * 1024
ERROR_MAX_BYTES = 64 * 1024
READ_CHUNK = 64 * 1024
REDACTED = "[REDACTED]"
UPLOAD_MAX_BYTES = 100 * 1024 * 1024  # routes/packs.rs PACK_UPLOAD_MAX_BYTES (also _pack._archive.UPLOAD_MAX_BYTES)
TERMINAL_OK = ("succeeded",)
TERMINAL_FAILED = ("failed", "rolled_back")
POLL_FIRST = 0.2
POLL_MAX = 5.0


# ---------------------------------------------------------------------------
# Options


API_OPTION_NAMES = ("api_url", "api_token", "api_username", "api_password", "validate_certs", "ca_path", "api_timeout",
                    "api_allow_http")


def client_from_params(params, session=None):
    """An :class:`AttuneApi` from module parameters (see ``_common.api_argument_spec``).

    Explicit ``api_username``/``api_password`` win over a token that only comes from ``ATTUNE_API_TOKEN``.
    Every option is checked here, before any request (:class:`ApiInvalidArguments`).
    """
    token = params.get("api_token")
    if token and params.get("api_username") and token == os.environ.get("ATTUNE_API_TOKEN"):
        token = None
    validate_certs = params.get("validate_certs")
    return AttuneApi(params.get("api_url"), token=token, username=params.get("api_username"),
                     password=params.get("api_password"), validate_certs=True if validate_certs is None else validate_certs,
                     ca_path=params.get("ca_path"), timeout=params.get("api_timeout"),
                     session=session, allow_http=bool(params.get("api_allow_http")))


def check_api_url(api_url, allow_http=False):
    """The base URL of an Attune API, normalised (no trailing ``/`` or ``/api/v1``), or :class:`ApiInvalidArguments`.

    https://; http:// only with ``api_allow_http`` (the token or password would cross the network in clear text);
    no credentials, query string or fragment in the URL (they would be printed, and requests would turn
    ``user:pass@`` into Basic auth replacing the Bearer token).  Messages show the redacted URL only.
    """
    if not isinstance(api_url, str) or not api_url.strip():
        raise ApiInvalidArguments("api_url is required (or set ATTUNE_API_URL where the plugin reads it)")
    url = api_url.strip().rstrip("/")
    if url.endswith("/api/v1"):
        url = url[:-len("/api/v1")]
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # pylint: disable=pointless-statement; raises ValueError for a bad port
    except ValueError:
        raise ApiInvalidArguments("api_url %s is not a valid URL" % shown, api_url=shown)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        raise ApiInvalidArguments("api_url must be an https:// URL with a host name, got %s" % shown, api_url=shown)
    if "@" in parts.netloc:
        raise ApiInvalidArguments("api_url %s contains credentials; refused (give them in api_token, or "
                                  "api_username and api_password, never in the URL)" % shown, api_url=shown)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise ApiInvalidArguments("api_url %s has a query string or fragment; refused (give the base URL of Attune, "
                                  "e.g. https://attune.example.com)" % shown, api_url=shown)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ApiInvalidArguments("api_url %s contains spaces or control characters" % shown, api_url=shown)
    if scheme == "http" and not allow_http:
        raise ApiInvalidArguments("plain http:// api_url %s refused: the token or password would cross the network in "
                                  "clear text (use https://, or set api_allow_http: true for a trusted network)" % shown,
                                  api_url=shown)
    return url


def url_secrets(api_url):
    """The parts of ``api_url`` that may be credentials (user info, its password, query, fragment), for a module to
    add to ``no_log_values`` so that Ansible scrubs them from the invocation it returns (values under 4 characters
    are left: scrubbing them would mangle the output)."""
    if not isinstance(api_url, str):
        return []
    try:
        parts = urlsplit(api_url.strip())
        password = parts.password
    except ValueError:
        return [api_url] if len(api_url) >= 4 else []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    return [value for value in (userinfo, password, parts.query, parts.fragment) if value and len(value) >= 4]


def check_api_timeout(timeout, api_url=None):
    """``api_timeout`` as a number of seconds in [1, MAX_API_TIMEOUT] (None: the default), or ApiInvalidArguments."""
    if timeout is None:
        return DEFAULT_TIMEOUT
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or math.isnan(timeout):
        raise ApiInvalidArguments("api_timeout must be a number of seconds, got %r" % (timeout,), api_url=api_url)
    if not 1 <= timeout <= MAX_API_TIMEOUT:
        raise ApiInvalidArguments("api_timeout must be between 1 and %d seconds, got %s" % (MAX_API_TIMEOUT, timeout),
                                  api_url=api_url)
    return timeout


# ---------------------------------------------------------------------------
# Client


class AttuneApi(object):
    """One Attune deployment.  Logs in at most once (lazily, on the first call) and refreshes once on a 401.

    Every option is checked when the client is made, before any request (:class:`ApiInvalidArguments`).  Each
    request has ``timeout`` (``api_timeout``) as its total deadline, and what it reads is bounded
    (``ANSWER_MAX_BYTES``, ``ERROR_MAX_BYTES``).
    """

    def __init__(self, api_url, token=None, username=None, password=None, validate_certs=True, ca_path=None,
                 timeout=DEFAULT_TIMEOUT, session=None, allow_http=False):
        url = check_api_url(api_url, allow_http)
        self.api_url = url
        if token is not None and not isinstance(token, str):
            raise ApiInvalidArguments("api_token must be a string", api_url=url)
        if token and (username or password):
            raise ApiInvalidArguments("use either api_token or api_username/api_password, not both", api_url=url)
        if not token and not (username and password):
            raise ApiInvalidArguments("no credentials: set api_token (or ATTUNE_API_TOKEN) or api_username and "
                                      "api_password", api_url=url)
        self.timeout = check_api_timeout(timeout, url)
        if validate_certs and ca_path is not None:
            if not isinstance(ca_path, str) or not ca_path:
                raise ApiInvalidArguments("ca_path must be the path of a CA bundle (PEM)", api_url=url)
            if not os.path.exists(ca_path):
                raise ApiInvalidArguments("ca_path %s does not exist (the CA bundle that verifies Attune's certificate)"
                                          % ca_path, api_url=url)
            if not os.access(ca_path, os.R_OK):
                raise ApiInvalidArguments("ca_path %s cannot be read" % ca_path, api_url=url)
        self._token = token
        self._username = username
        self._password = password
        self._access = None
        self._refresh = None
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self._session = session
        self._mounted = False
        self.logins = 0       # how many times this client logged in (at most one)
        self.refreshes = 0
        self._extra_secrets = []

    # secrets -------------------------------------------------------------------

    def add_secret(self, value):
        """Another value to scrub from error text (e.g. registry header values being sent)."""
        if value:
            self._extra_secrets.append(str(value))

    def _secrets(self):
        return [s for s in (self._token, self._password, self._access, self._refresh) if s] + self._extra_secrets

    def redact(self, text):
        text = "" if text is None else str(text)
        for secret in sorted(self._secrets(), key=len, reverse=True):
            if len(secret) >= 4:
                text = text.replace(secret, REDACTED)
        return text

    # transport -------------------------------------------------------------------

    def _requests(self):
        requests = _lazy.REQUESTS.load()
        if requests is None:
            raise ApiError("the Python library requests is required to talk to Attune's API", api_url=self.api_url)
        return requests

    def _get_session(self):
        if self._session is None:
            self._session = self._requests().Session()
        if not self._mounted:
            # connections under the request's deadline (new ones from their creation, reused ones per request)
            adapter = _deadline_adapter(self._requests())
            self._session.mount("https://", adapter)
            self._session.mount("http://", adapter)
            self._mounted = True
        return self._session

    def _verify(self):
        return tls_verify(self.validate_certs, self.ca_path)

    def _send(self, method, path, pack=None, json_body=None, params=None, files=None, auth=True, what=None, until=None):
        """One request under a total deadline (``api_timeout``, or less when ``until`` ends first): returns an
        :class:`_Answer` with the body read within the limits; raises the named errors, never a library's text."""
        requests = self._requests()
        what = what or "%s %s" % (method, path)
        headers = {"Accept": "application/json"}
        if auth:
            headers["Authorization"] = "Bearer %s" % self._access
        url = self.api_url + path
        seconds = self.timeout
        if until is not None:
            seconds = max(0.001, min(seconds, until - time.monotonic()))
        with Deadline(seconds) as deadline:
            try:
                resp = self._get_session().request(method, url, json=json_body, params=params, files=files,
                                                   headers=headers, verify=self._verify(),
                                                   timeout=(min(CONNECT_TIMEOUT, seconds), seconds),
                                                   allow_redirects=False, stream=True)
                try:
                    answer = self._read(resp, pack, what)
                finally:
                    resp.close()
            except ApiError:
                if deadline.expired:
                    raise self._timed_out(what, pack)
                raise
            except Exception as exc:  # pylint: disable=broad-except
                # whatever a socket shut down by the deadline raises (requests, urllib3, http.client, ssl) is the timeout
                if deadline.expired or isinstance(exc, requests.exceptions.Timeout):
                    raise self._timed_out(what, pack, cause=type(exc).__name__)
                if isinstance(exc, requests.exceptions.SSLError):
                    raise ApiTLSError("TLS verification failed (%s); set ca_path to the CA that signs Attune's certificate"
                                      % describe_tls(exc), api_url=self.api_url, pack=pack, cause=type(exc).__name__)
                raise ApiUnreachable("cannot reach Attune's API while %s (%s)" % (what, describe_connection(exc)),
                                     api_url=self.api_url, pack=pack, cause=type(exc).__name__)
            if deadline.expired:
                # a socket shut down by the deadline reads as end of stream: what was read is not Attune's answer
                raise self._timed_out(what, pack)
        return answer

    def _timed_out(self, what, pack, cause=None):
        return ApiTimeout("no complete answer within api_timeout=%ss (the total time of one request) while %s (Attune "
                          "runs a pack's tests before it answers an install: raise api_timeout for packs with long tests)"
                          % (self.timeout, what), api_url=self.api_url, pack=pack, cause=cause)

    def _read(self, resp, pack, what):
        """The body of ``resp``, at most ANSWER_MAX_BYTES (an error answer: ERROR_MAX_BYTES, then cut off)."""
        status = resp.status_code
        limit = ANSWER_MAX_BYTES if 200 <= status < 300 else ERROR_MAX_BYTES
        declared = resp.headers.get("Content-Length") or ""
        chunks = []
        total = 0
        truncated = declared.isdigit() and int(declared) > limit
        if not truncated:
            for chunk in resp.iter_content(READ_CHUNK):
                total += len(chunk)
                if total > limit:
                    truncated = True
                    break
                chunks.append(chunk)
        if truncated and limit == ANSWER_MAX_BYTES:
            raise ApiError("Attune's answer (HTTP %d) while %s is larger than ANSWER_MAX_BYTES (%d bytes, the limit of "
                           "one answer); refused" % (status, what, limit), api_url=self.api_url, pack=pack, status=status)
        return _Answer(status, b"".join(chunks), truncated)

    def _login(self):
        if self._access is not None:
            return
        if self.logins:
            raise ApiUnauthorized("the login was already used and refused; not logging in again", api_url=self.api_url)
        self.logins += 1
        if self._token:
            resp = self._send("POST", "/auth/token-login", json_body={"token": self._token}, auth=False, what="logging in")
            how = "integration token (api_token)"
        else:
            resp = self._send("POST", "/auth/login", json_body={"login": self._username, "password": self._password},
                              auth=False, what="logging in")
            how = "login %s / api_password" % self._username
        if resp.status_code != 200:
            if resp.status_code in (400, 401, 403, 422):
                raise ApiUnauthorized("login refused (HTTP %d): check the %s: %s" % (resp.status_code, how, self._message(resp)),
                                      api_url=self.api_url, status=resp.status_code, attune_message=self._message(resp))
            raise self._error(resp, None, "logging in")
        self._store_tokens(resp, "login")

    def _store_tokens(self, resp, what):
        try:
            data = resp.json()["data"]
            access, refresh = data["access_token"], data.get("refresh_token")
        except (ValueError, KeyError, TypeError, AttributeError):
            raise ApiError("unexpected answer to %s (no data.access_token)" % what, api_url=self.api_url, status=resp.status_code)
        if not isinstance(access, str) or not access or not isinstance(refresh, (str, type(None))):
            raise ApiError("unexpected answer to %s (data.access_token is not a string)" % what, api_url=self.api_url,
                           status=resp.status_code)
        self._access, self._refresh = access, refresh

    def _refresh_tokens(self):
        """One refresh after a 401; False when Attune refuses it."""
        if not self._refresh:
            return False
        self.refreshes += 1
        resp = self._send("POST", "/auth/refresh", json_body={"refresh_token": self._refresh}, auth=False,
                          what="refreshing the access token")
        if resp.status_code != 200:
            return False
        self._store_tokens(resp, "refresh")
        return True

    def request(self, method, path, pack=None, json_body=None, params=None, files=None, what=None, ok=(200,),
                missing_ok=False, until=None):
        """Send an authenticated request; returns the decoded JSON object (None for a 404 with ``missing_ok``).

        Attune answers a JSON object on every route: anything else (a list, a string, deeper nesting than Python
        reads, no JSON) is an :class:`ApiError`.  ``until`` (a ``time.monotonic()`` value) shortens the deadline.
        """
        self._login()
        resp = self._send(method, path, pack=pack, json_body=json_body, params=params, files=files, what=what, until=until)
        if resp.status_code == 401:
            # the access token expired (or was revoked): refresh once, then give up
            if self._refresh_tokens():
                resp = self._send(method, path, pack=pack, json_body=json_body, params=params, files=files, what=what,
                                  until=until)
            if resp.status_code == 401:
                raise ApiUnauthorized("authentication refused after one token refresh while %s: %s"
                                      % (what or "%s %s" % (method, path), self._message(resp)),
                                      api_url=self.api_url, pack=pack, status=401, attune_message=self._message(resp))
        if missing_ok and resp.status_code == 404:
            return None
        if resp.status_code not in ok:
            raise self._error(resp, pack, what or "%s %s" % (method, path))
        try:
            body = resp.json()
        except ValueError as exc:
            raise ApiError("answer to %s is not valid JSON (HTTP %d: %s)" % (what or path, resp.status_code, exc),
                           api_url=self.api_url, pack=pack, status=resp.status_code)
        if not isinstance(body, dict):
            raise ApiError("answer to %s is a JSON %s, not the object Attune sends (HTTP %d)"
                           % (what or path, _json_type(body), resp.status_code), api_url=self.api_url, pack=pack,
                           status=resp.status_code)
        return body

    def _expect(self, value, shape, what, pack=None, optional=False):
        """``value`` (a part of Attune's answer) when it has ``shape`` (``dict`` or ``list`` of dicts), else ApiError."""
        if value is None and optional:
            return value
        good = isinstance(value, dict) if shape is dict else (
            isinstance(value, list) and all(isinstance(item, dict) for item in value))
        if not good:
            raise ApiError("unexpected answer to %s: %s where Attune sends %s" % (
                what, _json_type(value), "an object" if shape is dict else "a list of objects"),
                api_url=self.api_url, pack=pack)
        return value

    def _message(self, resp):
        """Attune's own error text ({error, code} or the auth envelope {error: {code, message}}), at most 300 chars."""
        if getattr(resp, "truncated", False):
            return "HTTP %d (an error body larger than ERROR_MAX_BYTES, %d bytes: not read)" % (resp.status_code, ERROR_MAX_BYTES)
        try:
            body = resp.json()
        except ValueError:
            return self.redact((resp.text or "")[:300].strip() or "HTTP %d" % resp.status_code)
        err = body.get("error") if isinstance(body, dict) else None
        if isinstance(err, dict):
            err = err.get("message")
        if not err and isinstance(body, dict):
            err = body.get("message")
        if err is not None and not isinstance(err, str):
            err = json.dumps(err)[:300] if _json_type(err) in ("number", "boolean") else None
        return self.redact((err or "HTTP %d" % resp.status_code)[:300])

    def _error(self, resp, pack, what, permission=None):
        status = resp.status_code
        message = self._message(resp)
        details = None
        try:
            body = resp.json()
            details = body.get("details") if isinstance(body, dict) else None
        except ValueError:
            pass
        cls = STATUS_ERRORS.get(status, ApiError)
        if status == 403:
            text = "permission denied while %s: %s (%s; the token's identity needs %s)" % (
                what, message, TOKEN_RULE, permission or permission_for(what))
        elif status == 409:
            text = "conflict while %s: %s" % (what, message)
        elif status == 502:
            text = "Attune could not fetch from its registries while %s: %s" % (what, message)
        elif status in (400, 422):
            if "tests did not pass" in message or "tests failed" in message:
                cls = ApiTestsFailed
                counts = failed_test_counts(details)
                text = "Attune refused %s because the pack's tests failed: %s%s" % (what, message, counts)
            else:
                text = "Attune refused %s: %s" % (what, message)
        else:
            text = "HTTP %d while %s: %s" % (status, what, message)
        kwargs = dict(api_url=self.api_url, pack=pack, status=status, attune_message=message)
        if issubclass(cls, ApiBadRequest):
            err = cls(text, details=details, **kwargs)
            err.test_result = details.get("test_result") if isinstance(details, dict) else None
            return err
        return cls(text, **kwargs)

    # packs ---------------------------------------------------------------------------

    def list_packs(self):
        """Every pack of the deployment (all pages), as Attune's PackSummary dicts.

        The whole listing has ``api_timeout`` in all; it stops with an error on a page Attune answers again (the
        same packs as an earlier page, or another page number than asked), on ``has_next`` at or beyond
        ``total_pages``, on an empty page that says ``has_next``, and after MAX_PAGES pages.
        """
        out = []
        seen = set()
        until = time.monotonic() + self.timeout
        what = "listing packs"
        for page in range(1, MAX_PAGES + 1):
            if time.monotonic() >= until:
                raise ApiTimeout("listing packs took more than api_timeout=%ss (%d pages read); stopped"
                                 % (self.timeout, page - 1), api_url=self.api_url)
            body = self.request("GET", "/api/v1/packs", params={"page": page, "page_size": PAGE_SIZE}, what=what,
                                until=until)
            items = self._expect(_default(body.get("items"), []), list, what)
            pagination = self._expect(_default(body.get("pagination"), {}), dict, what)
            answered = pagination.get("page")
            if answered is not None and answered != page:
                raise ApiError("Attune answered page %s when asked for page %d while listing packs; stopped"
                               % (_shown(answered), page), api_url=self.api_url)
            key = json.dumps(items, sort_keys=True)
            if items and key in seen:
                raise ApiError("Attune answered page %d with the same packs as an earlier page while listing packs; "
                               "stopped" % page, api_url=self.api_url)
            seen.add(key)
            out.extend(items)
            if not pagination.get("has_next"):
                return out
            total_pages = pagination.get("total_pages")
            if isinstance(total_pages, int) and not isinstance(total_pages, bool) and page >= total_pages:
                raise ApiError("Attune says has_next on page %d of total_pages=%d while listing packs; stopped"
                               % (page, total_pages), api_url=self.api_url)
            if not items:
                raise ApiError("Attune answered an empty page %d that says has_next while listing packs; stopped" % page,
                               api_url=self.api_url)
        raise ApiError("listing packs: more than MAX_PAGES (%d) pages of %d packs; stopped" % (MAX_PAGES, PAGE_SIZE),
                       api_url=self.api_url)

    def get_pack(self, ref):
        """The pack (Attune's PackResponse) or None when Attune has no such pack."""
        body = self.request("GET", "/api/v1/packs/%s" % _quote(ref), pack=ref, what="reading the pack", missing_ok=True)
        return None if body is None else self._expect(body.get("data"), dict, "reading the pack", pack=ref)

    def delete_pack(self, ref):
        body = self.request("DELETE", "/api/v1/packs/%s" % _quote(ref), pack=ref, what="deleting the pack")
        return body

    def upload_pack(self, archive, ref=None, force=False, skip_tests=False, filename=None):
        """POST /api/v1/packs/upload (multipart ``pack`` + ``force``/``skip_tests`` as "true"/"false"); returns data."""
        if len(archive) > UPLOAD_MAX_BYTES:
            raise ApiInvalidArchive("the archive is %d bytes; Attune accepts at most %d" % (len(archive), UPLOAD_MAX_BYTES),
                                    api_url=self.api_url, pack=ref)
        files = upload_fields(archive, force=force, skip_tests=skip_tests, filename=filename or "%s.tar.gz" % (ref or "pack"))
        body = self.request("POST", "/api/v1/packs/upload", pack=ref, files=files, ok=(200, 201),
                            what="uploading the pack")
        data = body.get("data") if isinstance(body, dict) else None
        data = data if isinstance(data, dict) else {}
        try:
            return self.wait_install(data, ref)
        except ApiError as exc:
            exc.accepted = data  # Attune accepted the upload (201): the caller counts it as a change
            raise

    def wait_install(self, data, ref=None):
        """Follow the pack install Attune tracks for an upload whose tests run on a worker (Attune v0.6.0).

        Attune answers the upload at once with ``install_id`` and ``install_status`` ``pending``; the test run ends
        ``succeeded``, or ``failed``/``rolled_back`` (the previous version restored).  Polls
        ``GET /api/v1/packs/install/{id}`` until then, within ``api_timeout``.  Returns ``data`` with the final
        ``install_status`` and ``test_result``; a failed run raises :class:`ApiTestsFailed` with Attune's message
        and the counts.
        """
        install_id = data.get("install_id")
        if install_id is None or data.get("install_status") in TERMINAL_OK:
            return data
        install_id = self.install_id_of(install_id, ref)
        deadline = time.monotonic() + self.timeout
        delay = POLL_FIRST
        state = data.get("install_status")
        while True:
            try:
                status = self.install_status(install_id, ref)
            except ApiTimeout as exc:
                # the upload was accepted: say which install is still running (ApiTimeout.install_id, .accepted)
                exc.install_id, exc.install_status, exc.accepted = install_id, state or "pending", data
                raise
            state = status.get("status")
            if state in TERMINAL_OK:
                data = dict(data, install_status=state)
                if status.get("test_result") is not None:
                    data["test_result"] = status["test_result"]
                return data
            if state in TERMINAL_FAILED:
                message = self.redact(status.get("error_message") or "the worker reported a failed test run")
                details = {"test_result": status.get("test_result")}
                err = ApiTestsFailed("Attune's test run of the pack failed (install %s ended %s): %s%s" % (
                    install_id, state, message, failed_test_counts(details)), details=details, api_url=self.api_url,
                    pack=ref, attune_message=message)
                err.test_result = status.get("test_result")
                raise err
            if time.monotonic() + delay > deadline:
                err = ApiTimeout("the pack's tests were still %s after api_timeout=%ss (install %s); Attune keeps "
                                 "running them: raise api_timeout for packs with long tests"
                                 % (state, self.timeout, install_id), api_url=self.api_url, pack=ref)
                err.install_id, err.install_status, err.accepted = install_id, state, data
                raise err
            time.sleep(delay)
            delay = min(delay * 2, POLL_MAX)

    def install_id_of(self, value, ref=None):
        """Attune's ``install_id`` (an i64): anything else is an :class:`ApiError`, never a raw exception."""
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ApiError("Attune answered an install_id that is not an integer (%s); cannot follow the pack's test run"
                           % self.redact(repr(value)[:60]), api_url=self.api_url, pack=ref)
        return value

    def install_status(self, install_id, ref=None):
        """GET /api/v1/packs/install/{id}: Attune's PackInstallStatusResponse (``status``, ``test_result``, ...)."""
        body = self.request("GET", "/api/v1/packs/install/%d" % self.install_id_of(install_id, ref), pack=ref,
                            what="waiting for the pack's tests (install %s)" % install_id)
        status = body.get("data") if isinstance(body, dict) else None
        return status if isinstance(status, dict) else {}

    def install_pack(self, source, ref_spec=None, registry_id=None, force=False, skip_tests=False, skip_deps=False, pack=None):
        """POST /api/v1/packs/install: Attune resolves ``source`` in its own registries; returns data."""
        body = self.request("POST", "/api/v1/packs/install", pack=pack or source,
                            json_body=install_body(source, ref_spec, registry_id, force, skip_tests, skip_deps),
                            ok=(200, 201), what="installing the pack from Attune's registries")
        data = body.get("data") if isinstance(body, dict) else None
        return self.wait_install(data, pack or source) if isinstance(data, dict) else data

    # pack indices ------------------------------------------------------------------------

    def list_indices(self):
        what = "listing pack indices"
        return self._expect(_default(self.request("GET", "/api/v1/pack-indices", what=what).get("data"), []), list, what)

    def create_index(self, url, name=None, position=None, enabled=True, headers=None):
        for value in (headers or {}).values():
            self.add_secret(value)
        body = index_create_body(url, name, position, enabled, headers)
        return self.request("POST", "/api/v1/pack-indices", json_body=body, ok=(200, 201),
                            what="creating pack index %s" % url).get("data")

    def update_index(self, index_id, url=None, name=None, position=None, enabled=None, headers=None):
        for value in (headers or {}).values():
            self.add_secret(value)
        body = index_update_body(url, name, position, enabled, headers)
        return self.request("PUT", "/api/v1/pack-indices/%d" % int(index_id), json_body=body,
                            what="updating pack index %s" % index_id).get("data")

    def delete_index(self, index_id):
        return self.request("DELETE", "/api/v1/pack-indices/%d" % int(index_id), what="deleting pack index %s" % index_id)

    def browse(self, query=None, registry_id=None, include_disabled=False):
        params = {}
        if query:
            params["q"] = query
        if registry_id is not None:
            params["registry_id"] = int(registry_id)
        if include_disabled:
            params["include_disabled"] = "true"
        what = "browsing indexed packs"
        return self._expect(_default(self.request("GET", "/api/v1/pack-indices/packs", params=params, what=what).get("data"),
                                     []), list, what)

    def get_indexed_pack(self, ref):
        """``{pack, registry}`` Attune would install for ``ref``, or None."""
        what = "reading the indexed pack"
        body = self.request("GET", "/api/v1/pack-indices/packs/%s" % _quote(ref), pack=ref, missing_ok=True, what=what)
        return None if body is None else self._expect(body.get("data"), dict, what, pack=ref, optional=True)


# ---------------------------------------------------------------------------
# Request bodies (the contract test compares them with attune-sdk's)


def upload_fields(archive, force=False, skip_tests=False, filename="pack.tar.gz"):
    """The multipart fields of PackUploadForm.to_multipart(), in its order."""
    return [
        ("pack", (filename, archive, "application/gzip")),
        ("force", (None, b"true" if force else b"false", "text/plain")),
        ("skip_tests", (None, b"true" if skip_tests else b"false", "text/plain")),
    ]


def install_body(source, ref_spec=None, registry_id=None, force=False, skip_tests=False, skip_deps=False):
    body = {"source": source, "force": bool(force), "skip_tests": bool(skip_tests), "skip_deps": bool(skip_deps)}
    if ref_spec is not None:
        body["ref_spec"] = ref_spec
    if registry_id is not None:
        body["registry_id"] = int(registry_id)
    return body


def index_create_body(url, name=None, position=None, enabled=None, headers=None):
    """CreatePackRegistryIndexRequest: what is not given is left out, so Attune's defaults apply (enabled: true,
    position: appended after the last index, no name, no headers)."""
    body = {"url": url}
    if enabled is not None:
        body["enabled"] = bool(enabled)
    if headers is not None:
        body["headers"] = dict(headers)
    if name is not None:
        body["name"] = name
    if position is not None:
        body["position"] = int(position)
    return body


def index_update_body(url=None, name=None, position=None, enabled=None, headers=None):
    """UpdatePackRegistryIndexRequest: ``headers`` is always sent (null keeps the stored ones)."""
    body = {"headers": dict(headers) if headers is not None else None}
    if enabled is not None:
        body["enabled"] = bool(enabled)
    if name is not None:
        body["name"] = name
    if position is not None:
        body["position"] = int(position)
    if url is not None:
        body["url"] = url
    return body


# ---------------------------------------------------------------------------
# helpers


def _quote(value):
    from urllib.parse import quote  # stdlib, Python 3 only (module_utils run on 3.8+)

    return quote(str(value), safe="")


def _short(exc):
    text = str(exc)
    return text if len(text) <= 300 else text[:300] + "..."


def _json_type(value):
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "list"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


def _default(value, default):
    """``value``, or ``default`` when Attune left it out (null); a falsy value of another type stays (and is refused)."""
    return default if value is None else value


def _shown(value):
    return repr(value)[:40]


class _Answer(object):
    """An answer of Attune read within the limits: ``status_code``, ``content``; ``truncated`` when an error body
    exceeded ERROR_MAX_BYTES (only its start was read)."""

    def __init__(self, status_code, content, truncated=False):
        self.status_code = status_code
        self.content = content
        self.truncated = truncated

    @property
    def text(self):
        return self.content.decode("utf-8", "replace")

    def json(self):
        """The decoded body; ValueError (with a short reason) for anything that is not JSON Python can hold."""
        if self.truncated:
            raise ValueError("cut off at ERROR_MAX_BYTES")
        try:
            return json.loads(self.content.decode("utf-8"))
        except RecursionError:
            raise ValueError("nested deeper than the client reads")
        except UnicodeDecodeError:
            raise ValueError("not UTF-8")
        except ValueError as exc:  # JSONDecodeError, and integers longer than Python's int_max_str_digits
            raise ValueError(str(exc)[:120])


# The total deadline of one request (issue 16, item 3) is the registries' one (_fetch.Deadline): when it is up, every
# socket the request uses is shut down, so a server trickling bytes (every read succeeding) cannot keep the request
# alive.  New connections are watched from their creation (handshake included), reused keep-alive ones when the
# request is sent on them.


_ADAPTER_CLASS = []


def _deadline_adapter(requests):
    """A requests adapter whose urllib3 connections put their socket under the running request's deadline."""
    if not _ADAPTER_CLASS:
        from urllib3 import connection, connectionpool  # pylint: disable=import-outside-toplevel

        def make(connection_class, pool_class):
            class DeadlineConnection(connection_class):
                def _new_conn(self):
                    sock = super(DeadlineConnection, self)._new_conn()
                    watch_socket(sock)
                    return sock

                def request(self, *args, **kwargs):  # pylint: disable=arguments-differ,signature-differs
                    watch_socket(getattr(self, "sock", None))  # a reused keep-alive connection
                    return super(DeadlineConnection, self).request(*args, **kwargs)

            return type("ApiDeadline" + pool_class.__name__, (pool_class,), {"ConnectionCls": DeadlineConnection})

        classes = {"http": make(connection.HTTPConnection, connectionpool.HTTPConnectionPool),
                   "https": make(connection.HTTPSConnection, connectionpool.HTTPSConnectionPool)}

        def hook(manager):
            if "SOCKS" not in type(manager).__name__:  # SOCKS managers keep their own pools (per-read timeouts)
                manager.pool_classes_by_scheme = classes
            return manager

        class Adapter(requests.adapters.HTTPAdapter):
            def init_poolmanager(self, *args, **kwargs):
                super(Adapter, self).init_poolmanager(*args, **kwargs)
                hook(self.poolmanager)

            def proxy_manager_for(self, *args, **kwargs):
                return hook(super(Adapter, self).proxy_manager_for(*args, **kwargs))

        _ADAPTER_CLASS.append(Adapter)
    return _ADAPTER_CLASS[0]()


# ---------------------------------------------------------------------------
# Attune's URL identity of a registry (also used by _attune_packs and _attune_registries)


def registry_url_key(url):
    """Attune's registry_url_key() (routes/packs.rs): lowercase host without trailing dot, default port dropped."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(str(url))
        port = parts.port
    except ValueError:
        return url
    if not parts.scheme or not parts.hostname:
        return url
    host = parts.hostname.rstrip(".").lower()
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    netloc = host if port in (None, default) else "%s:%d" % (host, port)
    return "%s://%s%s%s" % (parts.scheme.lower(), netloc, parts.path or "/", ("?" + parts.query) if parts.query else "")
