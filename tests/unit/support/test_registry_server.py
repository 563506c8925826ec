"""Self-tests of tests/support/registry_server.py: every feature other tests rely on, with a real client."""

import json
import os
import shutil
import socket

import pytest
import requests

from support.gitrepo import checkout_checksum, clone, make_git_pack_repo
from support.registry_server import RegistryServer, ServerProcess, pattern_bytes
from support.synth import tree_checksum

TOKEN = "Bearer s3cr3t-token"


@pytest.fixture(name="server")
def server_fixture(tmp_path):
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "archive.tar.gz").write_bytes(b"archive-bytes")
    with RegistryServer(root=str(tmp_path / "files")) as srv:
        yield srv


def test_auth_401_403_and_log_keeps_header_values(server):
    url = server.add_json("/private/index.json", {"packs": []}, required_headers={"Authorization": TOKEN})
    missing = requests.get(url, verify=server.ca_path, timeout=10)
    wrong = requests.get(url, verify=server.ca_path, headers={"Authorization": "Bearer nope"}, timeout=10)
    good = requests.get(url, verify=server.ca_path, headers={"Authorization": TOKEN}, timeout=10)
    assert (missing.status_code, wrong.status_code, good.status_code) == (401, 403, 200)
    assert "WWW-Authenticate" in missing.headers
    assert good.json() == {"packs": []}
    log = server.requests
    assert [(r.method, r.path, r.status) for r in log] == [("GET", "/private/index.json", s) for s in (401, 403, 200)]
    method, path, headers = log[-1]
    assert (method, path) == ("GET", "/private/index.json")
    assert headers["authorization"] == TOKEN and headers.get("AUTHORIZATION") == TOKEN
    assert "Authorization" not in log[0].headers
    assert server.count("/private/index.json") == 3
    assert server.count("/private/index.json", status=200) == 1
    server.reset_log()
    assert server.requests == [] and server.count() == 0


def test_etag_last_modified_304_and_set_content(server):
    url = server.add_json("/index.json", {"v": 1})
    first = requests.get(url, verify=server.ca_path, timeout=10)
    etag, last_modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert requests.get(url, verify=server.ca_path, headers={"If-None-Match": etag}, timeout=10).status_code == 304
    assert requests.get(url, verify=server.ca_path, headers={"If-Modified-Since": last_modified}, timeout=10).status_code == 304
    server.set_content("/index.json", {"v": 2})
    assert server.etag("/index.json") != etag
    again = requests.get(url, verify=server.ca_path, headers={"If-None-Match": etag}, timeout=10)
    assert again.status_code == 200 and again.json() == {"v": 2}
    # Last-Modified moved on too, even within the same second.
    since = requests.get(url, verify=server.ca_path, headers={"If-Modified-Since": last_modified}, timeout=10)
    assert since.status_code == 200
    assert server.count("/index.json", status=304) == 2


def test_static_files_get_etag_304_head_and_404(server):
    url = server.url("archive.tar.gz")
    got = requests.get(url, verify=server.ca_path, timeout=10)
    assert got.content == b"archive-bytes" and got.headers["Content-Length"] == "13"
    assert requests.get(url, verify=server.ca_path, headers={"If-None-Match": got.headers["ETag"]}, timeout=10).status_code == 304
    head = requests.head(url, verify=server.ca_path, timeout=10)
    assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "13"
    assert requests.get(server.url("missing.tar.gz"), verify=server.ca_path, timeout=10).status_code == 404
    assert requests.get(server.url("../files/archive.tar.gz"), verify=server.ca_path, timeout=10).status_code == 404


def test_static_tree_with_required_headers_and_head_on_routes(tmp_path):
    (tmp_path / "private.tgz").write_bytes(b"private")
    with RegistryServer() as srv:
        srv.add_directory("/private", str(tmp_path), required_headers={"Authorization": TOKEN})
        url = srv.url("private/private.tgz")
        assert requests.get(url, verify=srv.ca_path, timeout=10).status_code == 401
        assert requests.get(url, verify=srv.ca_path, headers={"Authorization": TOKEN}, timeout=10).content == b"private"
        srv.add_json("/index.json", {"a": 1})
        head = requests.head(srv.url("index.json"), verify=srv.ca_path, timeout=10)
        assert head.status_code == 200 and head.content == b"" and head.headers["Content-Length"] == "8"
        assert srv.count("/index.json", method="HEAD") == 1 and srv.count("/index.json") == 0


def test_stop_drops_clients_stuck_before_the_tls_handshake():
    srv = RegistryServer().start()
    stuck = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
    try:
        srv.add_json("/ok.json", {})  # the server still answers others meanwhile
        assert requests.get(srv.url("ok.json"), verify=srv.ca_path, timeout=10).status_code == 200
        srv.stop()
        assert stuck.recv(1) == b""
    finally:
        stuck.close()
        srv.stop()


def test_chunked_response_has_no_content_length(server):
    body = server.add_chunked("/big.tar.gz", 200000, chunk_size=4096)
    got = requests.get(server.url("big.tar.gz"), verify=server.ca_path, timeout=10)
    assert got.headers["Transfer-Encoding"] == "chunked"
    assert "Content-Length" not in got.headers
    assert got.content == body == pattern_bytes(200000)


def test_status_and_redirect_routes(server):
    server.add_status("/gone.json", 404, b"nope")
    server.add_status("/busy.json", 503, b"busy", headers={"Retry-After": "1"})
    server.add_redirect("/moved.json", "/gone.json", code=301)
    gone = requests.get(server.url("gone.json"), verify=server.ca_path, timeout=10)
    assert (gone.status_code, gone.content) == (404, b"nope")
    busy = requests.get(server.url("busy.json"), verify=server.ca_path, timeout=10)
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "1"
    moved = requests.get(server.url("moved.json"), verify=server.ca_path, allow_redirects=False, timeout=10)
    assert moved.status_code == 301 and moved.headers["Location"] == server.url("gone.json")


def test_lying_content_lengths(server):
    server.add_lying_length("/no-length", 5000, None)
    server.add_lying_length("/claims-more", 5000, 10 ** 6)
    server.add_lying_length("/claims-less", 5000, 100)
    no_length = requests.get(server.url("no-length"), verify=server.ca_path, timeout=10)
    assert "Content-Length" not in no_length.headers and no_length.content == pattern_bytes(5000)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(server.url("claims-more"), verify=server.ca_path, timeout=10)
    claims_less = requests.get(server.url("claims-less"), verify=server.ca_path, timeout=10)
    assert claims_less.content == pattern_bytes(5000)[:100]


def test_slow_route_times_out_client_and_server_stops(server):
    server.add_slow("/slow.json", 30, b"{}")
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(server.url("slow.json"), verify=server.ca_path, timeout=(5, 0.2))
    assert server.count("/slow.json") == 1
    server.stop()  # wakes the slow handler instead of waiting 30 s
    assert not server.running
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.get(server.url("slow.json"), verify=server.ca_path, timeout=5)


def test_untrusted_certificate_fails_verification():
    with RegistryServer(untrusted=True) as srv:
        srv.add_json("/index.json", {})
        with pytest.raises(requests.exceptions.SSLError, match="CERTIFICATE_VERIFY_FAILED"):
            requests.get(srv.url("index.json"), verify=srv.ca_path, timeout=10)
        # Only the CA differs: with the CA that really signed it the request succeeds.
        assert requests.get(srv.url("index.json"), verify=srv.serving_ca_path, timeout=10).status_code == 200
        assert srv.count("/index.json") == 1


def test_servers_share_one_trusted_ca():
    with RegistryServer() as one, RegistryServer() as two:
        assert one.ca_path == two.ca_path and one.port != two.port
        for srv in (one, two):
            srv.add_json("/i.json", [srv.port])
            assert requests.get(srv.url("i.json", host="localhost"), verify=one.ca_path, timeout=10).json() == [srv.port]


def test_plain_http_mode():
    with RegistryServer(tls=False) as srv:
        url = srv.add_json("/index.json", {"plain": True})
        assert url.startswith("http://127.0.0.1:") and srv.ca_path is None
        assert requests.get(url, timeout=10).json() == {"plain": True}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_dumb_http_git_clone_with_ca(tmp_path):
    bare, sha = make_git_pack_repo(str(tmp_path), "slack", "2.1.0", subdir="pack")
    assert len(sha) == 40
    with RegistryServer() as srv:
        srv.add_directory("/git/slack.git", bare)
        dest = clone(srv.url("git/slack.git"), str(tmp_path / "clone"), ca_path=srv.ca_path, rev=sha)
        assert os.path.isfile(os.path.join(dest, "pack", "pack.yaml"))
        assert tree_checksum(dest) == checkout_checksum(bare)
        assert srv.count("/git/slack.git/info/refs") == 1
        with pytest.raises(RuntimeError, match="certificate"):
            clone(srv.url("git/slack.git"), str(tmp_path / "no-ca"))


def test_separate_process_mode(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "index.json").write_text(json.dumps({"hello": "world"}))
    with ServerProcess(str(root), str(tmp_path)) as proc:
        url = proc.url("index.json")
        first = requests.get(url, verify=proc.ca_path, headers={"Authorization": TOKEN}, timeout=10)
        assert first.json() == {"hello": "world"}
        cached = requests.get(url, verify=proc.ca_path, headers={"If-None-Match": first.headers["ETag"]}, timeout=10)
        assert cached.status_code == 304
    log = proc.read_log()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [("GET", "/index.json", 200), ("GET", "/index.json", 304)]
    assert log[0]["headers"]["Authorization"] == TOKEN
