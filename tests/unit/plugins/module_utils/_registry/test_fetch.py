"""_fetch against real HTTPS servers on 127.0.0.1 (issue 8, items 2, 6, 8 and 10).

- item 2: ``timeout`` is the total time of one request; a server trickling its headers or body a few bytes at a
  time (every single read succeeds) must not keep a request alive past it;
- item 6: a cookie set by a registry never goes to another server (no shared cookie jar);
- item 8: the scheme rule (http only with allow_http, file:// only where local files are expected) is applied by
  download()/fetch_index() themselves, whatever option the URL came through;
- item 10: unnamed errors (credentials in an archive URL, a 304 nobody asked for) get an error kind and never show
  the credential.
"""
import contextlib
import hashlib
import io
import json
import socket
import threading
import time

import pytest

from ansible_collections.attune.packs.plugins.module_utils._registry import _fetch
from ansible_collections.attune.packs.plugins.module_utils._base._errors import RegistryUnreachable, SourceError
from support.registry_server import RegistryServer
from testdata import make_entry, make_index

TIMEOUT = 2
PIECES = 100  # 100 pieces 0.25 s apart: 25 s if nothing but the per-read timeout stops the request
# The issue is about the deadline itself, so these tests bound the time a trickled request takes -- generously
# (4x timeout), far above the intended value and far below the 25 s the trickle lasts.
BOUND = TIMEOUT * 4

INDEX = json.dumps(make_index("public", [make_entry("demo", "1.0.0")])).encode()
ARCHIVE = b"x" * 20000


def _trickle_headers(handler):
    """Status line at once, then one header line every 0.25 s: http.client never waits a full timeout per read."""
    try:
        handler.wfile.write(b"HTTP/1.1 200 OK\r\n")
        handler.wfile.flush()
        for number in range(PIECES):
            if handler.server.app._stop_event.wait(0.25):
                break
            handler.wfile.write(b"X-Pad-%d: x\r\n" % number)
            handler.wfile.flush()
        handler.wfile.write(b"Content-Length: 2\r\n\r\n{}")
        handler.wfile.flush()
    except OSError:
        pass
    handler.close_connection = True


@pytest.fixture(scope="module")
def server():
    with RegistryServer() as srv:
        srv.add_slow("/trickle.json", 0.25, body=INDEX, mode="trickle", pieces=PIECES)
        srv.add_slow("/trickle.tar.gz", 0.25, body=ARCHIVE, mode="trickle", pieces=PIECES)
        srv.add_handler("/trickle-headers.json", _trickle_headers)
        srv.add_handler("/trickle-headers.tar.gz", _trickle_headers)
        srv.add_json("/index.json", INDEX)
        srv.add_bytes("/a.tar.gz", ARCHIVE)
        srv.add_status("/not-modified.json", 304)
        srv.add_status("/not-modified.tar.gz", 304)
        yield srv


def timed(func, *args, **kwargs):
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        func(*args, **kwargs)
    return info.value, time.monotonic() - started


# -- item 2: timeout is a total deadline ---------------------------------------------------------------------


@pytest.mark.parametrize("path", ["trickle.json", "trickle-headers.json"])
def test_a_trickled_index_fails_at_the_deadline(server, path):
    error, elapsed = timed(_fetch.fetch_index, server.url(path), verify=server.ca_path, timeout=TIMEOUT, registry="slow")
    assert isinstance(error, RegistryUnreachable) and error.kind == "registry_unreachable", error
    assert "timeout" in str(error) and "registry slow" in str(error), error
    assert elapsed < BOUND, "a %s s timeout took %.1f s (the deadline is not a total deadline)" % (TIMEOUT, elapsed)


@pytest.mark.parametrize("path", ["trickle.tar.gz", "trickle-headers.tar.gz"])
def test_a_trickled_archive_fails_at_the_deadline(server, path):
    sink = io.BytesIO()
    error, elapsed = timed(_fetch.download, server.url(path), sink, verify=server.ca_path, timeout=TIMEOUT,
                           error_class=SourceError, pack="demo")
    assert isinstance(error, SourceError) and "timeout" in str(error) and "pack demo" in str(error), error
    assert elapsed < BOUND, "a %s s timeout took %.1f s (the deadline is not a total deadline)" % (TIMEOUT, elapsed)


def test_a_normal_request_is_not_cut(server):
    # the deadline's watchdog must not fire on a request that finished
    assert _fetch.fetch_index(server.url("index.json"), verify=server.ca_path, timeout=TIMEOUT).body == INDEX
    sink = io.BytesIO()
    assert _fetch.download(server.url("a.tar.gz"), sink, verify=server.ca_path, timeout=TIMEOUT) == len(ARCHIVE)
    time.sleep(TIMEOUT + 0.5)
    assert _fetch.fetch_index(server.url("index.json"), verify=server.ca_path, timeout=TIMEOUT).body == INDEX


@contextlib.contextmanager
def trickling_tls_server():
    """A raw TCP server that answers a TLS ClientHello with a record header announcing 16 KiB, then one byte per 0.25 s.

    The client's handshake waits for the whole record and each read gets a byte: only a total deadline stops it.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(5)
    stop = threading.Event()
    conns = []

    def serve():
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _addr = listener.accept()
            except OSError:
                continue
            conns.append(conn)
            try:
                conn.recv(4096)  # the ClientHello
                conn.sendall(b"\x16\x03\x03\x40\x00")
                for _piece in range(PIECES):
                    if stop.wait(0.25):
                        break
                    conn.sendall(b"\x00")
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield "https://127.0.0.1:%d/" % listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(10)
        for conn in conns:
            conn.close()
        listener.close()


def test_a_trickled_tls_handshake_fails_at_the_deadline():
    with trickling_tls_server() as base:
        error, elapsed = timed(_fetch.fetch_index, base + "index.json", timeout=TIMEOUT, registry="slow")
        assert isinstance(error, RegistryUnreachable) and "timeout" in str(error), error
        assert elapsed < BOUND, "a %s s timeout took %.1f s (the deadline is not a total deadline)" % (TIMEOUT, elapsed)
        error, elapsed = timed(_fetch.download, base + "a.tar.gz", io.BytesIO(), timeout=TIMEOUT, error_class=SourceError)
        assert isinstance(error, SourceError) and "timeout" in str(error), error
        assert elapsed < BOUND


# -- item 6: no cookie jar shared between requests ---------------------------------------------------------


def test_a_registry_cookie_never_reaches_the_archive_server():
    with RegistryServer() as registry, RegistryServer() as source:
        registry.add_json("/index.json", INDEX, headers={"Set-Cookie": "session=registry-secret; Path=/"})
        source.add_bytes("/a.tar.gz", ARCHIVE)
        _fetch.fetch_index(registry.url("index.json"), verify=registry.ca_path)
        _fetch.fetch_index(registry.url("index.json"), verify=registry.ca_path)
        _fetch.download(source.url("a.tar.gz"), io.BytesIO(), verify=source.ca_path)
        sent = [r.headers.get("Cookie") for r in registry.requests + source.requests]
        assert sent == [None, None, None], sent


# -- item 8: the scheme rule lives in download()/fetch_index() ---------------------------------------------------


def test_http_archive_is_refused_without_allow_http():
    with RegistryServer(tls=False) as plain:
        plain.add_bytes("/a.tar.gz", ARCHIVE)
        plain.add_json("/index.json", INDEX)
        with pytest.raises(SourceError) as info:
            _fetch.download(plain.url("a.tar.gz"), io.BytesIO(), error_class=SourceError, pack="demo")
        assert "allow_http" in str(info.value)
        with pytest.raises(RegistryUnreachable) as info:
            _fetch.fetch_index(plain.url("index.json"), registry="plain")
        assert "allow_http" in str(info.value)
        assert plain.count() == 0
        assert _fetch.download(plain.url("a.tar.gz"), io.BytesIO(), allow_http=True) == len(ARCHIVE)
        assert _fetch.fetch_index(plain.url("index.json"), allow_http=True).body == INDEX


def test_file_archive_is_refused_where_no_local_file_is_expected(tmp_path):
    local = tmp_path / "a.tar.gz"
    local.write_bytes(ARCHIVE)
    with pytest.raises(SourceError) as info:
        _fetch.download("file://%s" % local, io.BytesIO(), error_class=SourceError, allow_file=False, pack="demo")
    assert "file://" in str(info.value) and info.value.kind == "source_error"
    assert _fetch.download("file://%s" % local, io.BytesIO()) == len(ARCHIVE)  # local copies (src, fetch_on=controller)
    spaced = tmp_path / "my pack.tar.gz"
    spaced.write_bytes(ARCHIVE)
    assert _fetch.download("file://%s" % spaced, io.BytesIO()) == len(ARCHIVE)  # any local file name
    index = tmp_path / "index.json"
    index.write_bytes(INDEX)
    assert _fetch.fetch_index("file://%s" % index).body == INDEX  # file:// registries stay allowed


@pytest.mark.parametrize("scheme", ["ftp", "gopher", "git"])
def test_other_schemes_are_refused(scheme):
    with pytest.raises(SourceError) as info:
        _fetch.download("%s://127.0.0.1/a.tar.gz" % scheme, io.BytesIO(), error_class=SourceError, allow_http=True)
    assert scheme + "://" in str(info.value)


# -- item 10: named errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("url", ["https://user:hunter2-SECRET@127.0.0.1/a.tar.gz", "https://127.0.0.1/a.tar.gz?token=hunter2-SECRET",
                                 "https://127.0.0.1/a.tar.gz#hunter2-SECRET"])
def test_credentials_or_query_in_an_archive_url_are_a_named_error(url):
    with pytest.raises(SourceError) as info:
        _fetch.check_archive_url(url, pack="demo")
    assert info.value.kind == "source_error" and "pack demo" in str(info.value)
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value.to_dict())
    with pytest.raises(SourceError) as info:
        _fetch.download(url, io.BytesIO(), error_class=SourceError, pack="demo")
    assert "hunter2" not in str(info.value)


def test_an_unconditional_304_is_a_named_error(server):
    with pytest.raises(RegistryUnreachable) as info:
        _fetch.fetch_index(server.url("not-modified.json"), verify=server.ca_path, registry="odd")
    text = str(info.value)
    assert info.value.kind == "registry_unreachable" and "304" in text and "not modified" in text.lower(), text
    assert "redirect" not in text, text
    with pytest.raises(SourceError) as info:
        _fetch.download(server.url("not-modified.tar.gz"), io.BytesIO(), verify=server.ca_path, error_class=SourceError, pack="demo")
    assert "304" in str(info.value) and "redirect" not in str(info.value)


def test_a_conditional_304_is_still_not_modified(server):
    etag = server.etag("/index.json")
    result = _fetch.fetch_index(server.url("index.json"), verify=server.ca_path, etag=etag)
    assert result.not_modified and hashlib.sha256(INDEX).hexdigest()
