# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the errors of a running Attune's API client (may change without notice).

:class:`ApiError` and its kinds (one per class of failure, each with a section in
``docs/docsite/rst/guide_troubleshooting.rst``), the HTTP status each kind stands for, and the helpers that word
a failure (the permission a 403 needs, the counts of a failed test run, a TLS or connection failure in a few
words, never a library's text).  Raised by ``_api`` (the client), ``_attune_packs`` and ``_attune_registries``.

No Ansible imports; only ``_base._errors``, so that importing an error never loads the client.
"""

from __future__ import annotations

import re

from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, InvalidArguments

# Named in every 403 error, with the permission the route needs (permission_for).
TOKEN_RULE = "Attune accepts only Access tokens (from /auth/login or /auth/token-login) on pack routes"


class ApiError(AttuneError):
    """An Attune API call failed.  ``kind`` names the class of failure; ``status`` is the HTTP status if any."""

    kind = "api_error"

    def __init__(self, message, api_url=None, pack=None, status=None, cause=None, attune_message=None):
        self.api_url = api_url
        self.status = status
        self.attune_message = attune_message
        super(ApiError, self).__init__(message, registry=None, pack=pack, cause=cause)

    def format(self):
        parts = []
        if self.api_url:
            parts.append("Attune API %s" % self.api_url)
        if self.pack:
            parts.append("pack %s" % self.pack)
        prefix = (", ".join(parts) + ": ") if parts else ""
        return prefix + self.message

    def to_dict(self):
        out = super(ApiError, self).to_dict()
        out.update(api_url=self.api_url, status=self.status)
        return out


class ApiUnreachable(ApiError):
    kind = "api_unreachable"


class ApiTLSError(ApiError):
    kind = "api_tls_error"


class ApiTimeout(ApiError):
    kind = "api_timeout"


class ApiUnauthorized(ApiError):
    """401: bad integration token / password, or a token that stays rejected after one refresh."""

    kind = "api_unauthorized"


class ApiForbidden(ApiError):
    """403: missing permission or a token type Attune refuses on the route."""

    kind = "api_forbidden"


class ApiNotFound(ApiError):
    kind = "api_not_found"


class ApiConflict(ApiError):
    kind = "api_conflict"


class ApiBadRequest(ApiError):
    """400 (or 422): Attune refused the request; ``attune_message`` is its own text, ``details`` its details."""

    kind = "api_bad_request"

    def __init__(self, message, details=None, **kwargs):
        self.details = details
        super(ApiBadRequest, self).__init__(message, **kwargs)


class ApiTestsFailed(ApiBadRequest):
    """400 because the pack's tests failed; ``test_result`` carries Attune's counts when it sent them."""

    kind = "api_tests_failed"


class ApiBadGateway(ApiError):
    """502: Attune could not fetch one of its registries' index (or an archive)."""

    kind = "api_bad_gateway"


class ApiInvalidArchive(ApiError):
    """The pack tree cannot be archived as Attune accepts it (links, special files, size): an upload's
    ``_pack._archive.InvalidArchive`` (same kind and message), or an archive larger than Attune's upload limit."""

    kind = "api_invalid_archive"


class ApiInvalidArguments(ApiError, InvalidArguments):
    """Connection options that cannot be used (api_url, credentials, api_timeout, ca_path), refused before any
    request; ``api_url`` is the redacted URL."""

    kind = "invalid_arguments"


STATUS_ERRORS = {400: ApiBadRequest, 401: ApiUnauthorized, 403: ApiForbidden, 404: ApiNotFound, 409: ApiConflict,
                 422: ApiBadRequest, 502: ApiBadGateway, 503: ApiBadGateway, 504: ApiTimeout}


# ---------------------------------------------------------------------------
# Wording of failures


TLS_REASON = re.compile(r"certificate verify failed: ([^()\]'\"]{1,120})")


def describe_tls(exc):
    """A TLS failure in a few words (never urllib3's 'HTTPSConnectionPool(...): Max retries exceeded ...')."""
    text = str(exc)
    match = TLS_REASON.search(text)
    if match:
        return "certificate verify failed: %s" % match.group(1).strip()
    lowered = text.lower()
    if "hostname mismatch" in lowered or "doesn't match" in lowered:
        return "the certificate does not name the host"
    if "wrong version number" in lowered or "record layer failure" in lowered:
        return "the server does not speak TLS on this port"
    return "TLS handshake failed"


def describe_connection(exc):
    """A connection failure in a few words (never urllib3's 'Max retries exceeded with url: ...')."""
    lowered = str(exc).lower()
    if any(marker in lowered for marker in ("name or service not known", "nodename nor servname", "failed to resolve",
                                            "temporary failure in name resolution", "no address associated",
                                            "nameresolutionerror", "name resolution")):
        return "host name does not resolve"
    if "connection refused" in lowered or "errno 111" in lowered:
        return "connection refused"
    if "network is unreachable" in lowered or "no route to host" in lowered:
        return "network is unreachable"
    if any(word in lowered for word in ("connection reset", "connection aborted", "remotedisconnected",
                                        "closed connection without response")):
        return "the connection was closed before an answer"
    if any(word in lowered for word in ("invalid url", "invalid header", "invalid leading whitespace",
                                        "invalid return character")):
        return "the request cannot be sent (an invalid character in the URL or a credential)"
    if type(exc).__name__ in ("ChunkedEncodingError", "ContentDecodingError", "ProtocolError", "IncompleteRead"):
        return "the connection broke while reading the answer"
    return "connection failed (%s)" % type(exc).__name__


def failed_test_counts(details):
    """`` (2 of 5 tests failed, 3 passed, 0 skipped)`` from Attune's ``test_result`` details, else ``''``."""
    result = details.get("test_result") if isinstance(details, dict) else None
    if not isinstance(result, dict):
        return ""
    total = result.get("totalTests", result.get("total_tests"))  # PackTestResult is camelCase on the wire
    counts = (result.get("failed"), total, result.get("passed"), result.get("skipped"))
    return " (%s of %s tests failed, %s passed, %s skipped)" % counts


def permission_for(what):
    """The permission named in a 403 error while ``what``, per route (routes/packs.rs authorize_pack_registry_action /
    authorize_global_pack_registry_action / authorize_existing_pack_replacement)."""
    what = what or ""
    if "index" in what or "indexed" in what:
        return "an unconstrained Packs grant (Read to list/browse, Configure to change pack indices)"
    if "deleting" in what:
        return "Packs:Delete"
    if "upload" in what or "install" in what:
        return "Packs:Install (and Packs:Configure to replace an installed pack)"
    return "Packs:Read"
