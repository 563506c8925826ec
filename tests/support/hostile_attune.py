"""A hostile "Attune API" for the attacks of issue 16 (items 3, 4, 9): a programmable test server
(:class:`support.registry_server.RegistryServer`, HTTPS or plain HTTP) that logs anyone in and then misbehaves on the
routes a test chooses.

- :func:`trickle`: the answer's bytes one by one, each after a pause: every read succeeds, so only a total deadline
  stops the client;
- :func:`huge_body`: an endless (or very long) answer streamed without Content-Length; the server notes how many
  bytes it managed to write before the client hung up (:func:`bytes_written`);
- :func:`endless_pages`: a pack listing that always says ``has_next`` and repeats page 1 (or lies about the page);
- :func:`answer`: any JSON text (deep nesting, a list where Attune sends an object, ``data`` as a string ...).

The login routes answer a fixed access token (:data:`ACCESS`), so ``AttuneApi(server.base_url, token=TOKEN, ...)``
reaches the hostile route after one login.  Every request body is in ``server.requests[i].body`` (what a plain-HTTP
listener received).
"""
import json
import threading

from support.registry_server import RegistryServer

TOKEN = "attune_it_hostile-token-7431"
PASSWORD = "hostile-pass-word-99"
ACCESS = "hostile-access-token-5521"
REFRESH = "hostile-refresh-token-8812"


def _login_body():
    return {"data": {"access_token": ACCESS, "refresh_token": REFRESH, "token_type": "Bearer", "expires_in": 3600}}


def hostile_attune(tls=True):
    """A started server (use ``with hostile_attune() as server``) whose /auth routes log anyone in."""
    server = RegistryServer(tls=tls)
    server.written = {}
    server.written_lock = threading.Condition()
    for path in ("/auth/token-login", "/auth/login", "/auth/refresh"):
        server.add_json(path, _login_body(), etag=False, last_modified=False)
    return server


def trickle(server, path, seconds_per_byte=0.5, body=None, content_type="application/json"):
    """``path`` answers 200 at once, then ``body`` (default: a valid pack page) one byte every ``seconds_per_byte``."""
    body = body if body is not None else json.dumps(page([], 1, has_next=False)).encode()
    server.add_slow(path, seconds_per_byte, body=body, mode="trickle", pieces=len(body), content_type=content_type)


def huge_body(server, path, status=500, total_bytes=400 * 1024 * 1024, chunk=b"x" * 65536, content_length=False):
    """``path`` answers ``status`` with ``total_bytes`` (streamed, nothing held in memory); :func:`bytes_written`
    tells how many bytes the client accepted before it stopped reading."""

    def handler(h):
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        if content_length:
            h.send_header("Content-Length", str(total_bytes))
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True
        sent = 0
        try:
            h.wfile.write(b'{"error": "')
            while sent < total_bytes:
                h.wfile.write(chunk)
                sent += len(chunk)
        except OSError:
            pass
        finally:
            with server.written_lock:
                server.written[path] = sent
                server.written_lock.notify_all()

    server.add_handler(path, handler)


def bytes_written(server, path, timeout=30):
    """What :func:`huge_body` wrote on ``path`` before the client hung up.  The handler thread notes it only once
    its last write fails, which can come a moment after the client has already raised; so this waits for it."""
    with server.written_lock:
        if not server.written_lock.wait_for(lambda: path in server.written, timeout):
            raise AssertionError("the server never finished answering %s" % path)
        return server.written[path]


def page(items, number, has_next=True, total_pages=None):
    return {"items": items, "pagination": {"page": number, "page_size": 100, "total_items": len(items),
                                           "total_pages": total_pages if total_pages is not None else 1,
                                           "has_next": has_next, "has_previous": number > 1}}


def summary(ref, version="1.0.0"):
    return {"id": 1, "ref": ref, "label": ref, "version": version, "tags": [], "is_standard": False,
            "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z"}


def endless_pages(server, path="/api/v1/packs", mode="repeat"):
    """A listing that never ends.  ``repeat``: page 1 again and again (has_next, the page number echoed);
    ``same``: the same packs under each asked page number; ``beyond``: has_next on the last of ``total_pages``;
    ``fresh``: a new pack on every page (only a page or time budget stops it)."""
    counter = {"n": 0}

    def handler(h):
        counter["n"] += 1
        query = dict(part.split("=", 1) for part in h.path.partition("?")[2].split("&") if "=" in part)
        asked = int(query.get("page", "1"))
        if mode == "repeat":
            body = page([summary("alpha")], 1, total_pages=1000)
        elif mode == "same":
            body = page([summary("alpha")], asked, total_pages=1000)
        elif mode == "beyond":
            body = page([summary("p%d" % asked)], asked, total_pages=2)
        else:
            body = page([summary("p%d" % counter["n"])], asked, total_pages=10 ** 9)
        h.send_simple(200, json.dumps(body).encode(), {"Content-Type": "application/json"})

    server.add_handler(path, handler)
    return counter


def answer(server, path, text, status=200):
    """``path`` answers ``text`` (str or bytes, sent as it is) as application/json."""
    server.add_bytes(path, text.encode() if isinstance(text, str) else text, content_type="application/json",
                     etag=False, last_modified=False, status=status)


def deep_json(depth=200000):
    return "[" * depth + "]" * depth
