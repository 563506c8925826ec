"""plugins/module_utils/_attune/_api.py (and its errors, _api_errors.py) against the test Attune API (a real HTTPS server, tests/support/attune_server.py)."""
import os

import pytest

from support.attune_server import AttuneServer
from support.registry_server import RegistryServer
from support.synth import make_pack_tree
from testdata import make_entry, make_index

from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _api_errors
from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidArguments
from ansible_collections.attune.packs.plugins.module_utils._pack._archive import build_archive

PASSWORD = "s3cret-pass-word"


@pytest.fixture()
def api():
    with AttuneServer() as server:
        server.token = server.add_integration_token("ci")
        yield server


def client_for(api, **kw):
    kw.setdefault("token", api.token)
    kw.setdefault("ca_path", api.ca_path)
    return _api.AttuneApi(api.url(), **kw)


def assert_clean(exc, api, *extra):
    text = str(exc) + repr(exc.to_dict())
    for secret in [api.token, PASSWORD] + list(extra):
        assert secret not in text
    for secret in api.issued_secrets():
        assert secret not in text


def test_one_login_for_many_calls_and_all_pages(api):
    for i in range(230):
        api.add_standard_pack("p%03d" % i)
    client = client_for(api)
    packs = client.list_packs()
    assert [p["ref"] for p in packs] == ["p%03d" % i for i in range(230)]
    assert client.get_pack("p001")["is_standard"] is True
    assert client.get_pack("nope") is None
    client.list_indices()
    assert api.count("/auth/token-login") == 1 and client.logins == 1
    assert api.count("/api/v1/packs", "GET") == 3
    assert [r.query for r in api.requests if r.path == "/api/v1/packs"] == [
        "page=1&page_size=100", "page=2&page_size=100", "page=3&page_size=100"]


def test_password_login(api):
    api.add_user("deploy", password=PASSWORD)
    client = client_for(api, token=None, username="deploy", password=PASSWORD)
    assert client.list_indices()[0]["position"] == 0
    assert api.count("/auth/login", "POST") == 1
    with pytest.raises(_api_errors.ApiUnauthorized) as err:
        client_for(api, token=None, username="deploy", password="wrong-pass-1").list_packs()
    assert api.url() in str(err.value)
    assert "wrong-pass-1" not in str(err.value)


def test_expired_access_token_refreshes_once(api):
    client = client_for(api)
    client.list_packs()
    api.expire_access_tokens()
    client.list_packs()
    assert client.refreshes == 1 and client.logins == 1
    assert api.count("/auth/refresh", "POST") == 1 and api.count("/auth/token-login") == 1
    # both tokens dead: one refresh attempt, then a clear error naming the API; never a second login
    api.revoke_all_tokens()
    with pytest.raises(_api_errors.ApiUnauthorized) as err:
        client.list_packs()
    assert err.value.kind == "api_unauthorized" and api.url() in str(err.value)
    assert "after one token refresh" in str(err.value)
    assert api.count("/auth/refresh", "POST") == 2 and api.count("/auth/token-login") == 1
    assert_clean(err.value, api)


def test_bad_token(api):
    with pytest.raises(_api_errors.ApiUnauthorized) as err:
        client_for(api, token="attune_it_not-a-real-token").list_packs()
    assert err.value.kind == "api_unauthorized" and err.value.status == 401
    assert api.url() in str(err.value) and "api_token" in str(err.value)
    assert "attune_it_not-a-real-token" not in str(err.value)


def test_forbidden_names_permission_and_token_rule(api, tmp_path):
    reader = api.add_integration_token("reader", grants=("read",))
    tree = make_pack_tree(str(tmp_path / "demo"), "demo", "1.0.0")
    blob, _unused = build_archive(tree)
    with pytest.raises(_api_errors.ApiForbidden) as err:
        client_for(api, token=reader).upload_pack(blob, ref="demo")
    msg = str(err.value)
    assert err.value.kind == "api_forbidden" and "Packs:Install" in msg and "Access tokens" in msg
    assert "pack demo" in msg and api.url() in msg
    api.add_user("worker")
    client = client_for(api)
    client._login()
    client._access = api.issue_token("worker", "execution")
    with pytest.raises(_api_errors.ApiForbidden) as err:
        client.list_indices()
    assert "requires an access token" in str(err.value)


def test_upload_conflict_force_and_test_failures(api, tmp_path):
    tree = make_pack_tree(str(tmp_path / "demo"), "demo", "1.0.0")
    blob, digest = build_archive(tree)
    client = client_for(api)
    data = client.upload_pack(blob, ref="demo")
    assert data["pack"]["version"] == "1.0.0"
    assert api.pack("demo")["sha256"] == digest  # the bytes Attune received are the archive we built
    with pytest.raises(_api_errors.ApiConflict) as err:
        client.upload_pack(blob, ref="demo")
    assert err.value.kind == "api_conflict" and "already exists" in str(err.value) and "pack demo" in str(err.value)
    # force replaces the pack; the previous bytes are gone, the new ones stored
    make_pack_tree(str(tmp_path / "demo"), "demo", "2.0.0")
    blob2, digest2 = build_archive(str(tmp_path / "demo"))
    assert client.upload_pack(blob2, ref="demo", force=True)["pack"]["version"] == "2.0.0"
    assert api.pack("demo")["sha256"] == digest2
    assert client.logins == 1


@pytest.mark.parametrize("mode", ["async", "sync"])
def test_failing_tests_report_message_and_counts(tmp_path, mode):
    """async: Attune v0.6.0 answers 201 + install_id and rolls the pack back after the worker's test run;
    sync: older Attune answers 400.  Either way: Attune's message, the counts, and nothing left registered."""
    with AttuneServer(tests_mode=mode) as api:
        api.token = api.add_integration_token("ci")
        client = client_for(api)
        keep, keep_digest = build_archive(make_pack_tree(str(tmp_path / "keep"), "keep", "1.0.0"))
        client.upload_pack(keep, ref="keep")
        api.set_test_result("other", passed=3, failed=2)
        new, _unused = build_archive(make_pack_tree(str(tmp_path / "v2"), "other", "2.0.0"))
        with pytest.raises(_api_errors.ApiTestsFailed) as err:
            client.upload_pack(new, ref="other")
        msg = str(err.value)
        assert err.value.kind == "api_tests_failed" and "pack other" in msg and api.url() in msg
        assert "(2 of 5 tests failed, 3 passed, 0 skipped)" in msg
        assert err.value.test_result["failed"] == 2
        if mode == "sync":
            assert "Pack registration failed: tests did not pass" in msg and err.value.status == 400
        else:
            assert "rolled_back" in msg and "Pack tests failed" in msg
            assert api.count("/api/v1/packs/install/1", "GET") == 2  # pending → running → rolled_back
        assert api.pack("other") is None and api.pack("keep")["sha256"] == keep_digest
        # skip_tests passes through
        assert client.upload_pack(new, ref="other", skip_tests=True)["tests_skipped"] is True
        assert api.pack("other")["version"] == "2.0.0"
        assert client.logins == 1


def test_bad_request_keeps_attune_message(api, tmp_path):
    tree = make_pack_tree(str(tmp_path / "bad"), "bad", "1.0.0", pack_yaml_extra={"ref": "Bad.Ref"})
    blob, _unused = build_archive(tree)
    with pytest.raises(_api_errors.ApiBadRequest) as err:
        client_for(api).upload_pack(blob, ref="bad")
    assert err.value.kind == "api_bad_request" and "Invalid pack ref" in err.value.attune_message
    assert "Invalid pack ref" in str(err.value)


def test_install_from_registry_and_502(api, tmp_path):
    with RegistryServer() as reg:
        blob, digest = build_archive(make_pack_tree(str(tmp_path / "slack"), "slack", "2.1.0"))
        reg.add_bytes("/slack.tar.gz", blob)
        entry = make_entry("slack", "2.1.0")
        entry["install_sources"][1].update(url=reg.url("slack.tar.gz"), checksum=digest)
        jira_blob, jira_digest = build_archive(make_pack_tree(str(tmp_path / "jira"), "jira", "1.0.0"))
        reg.add_bytes("/jira.tar.gz", jira_blob)
        jira = make_entry("jira", "1.0.0")
        jira["install_sources"][1].update(url=reg.url("jira.tar.gz"), checksum=jira_digest)
        reg.add_json("/index.json", make_index("corp", [entry, jira]), required_headers={"X-Key": "reg-secret-99"})
        client = client_for(api)
        row = client.create_index(reg.url("index.json"), name="corp", headers={"X-Key": "reg-secret-99"})
        assert row["headers"] == {"X-Key": "[REDACTED]"} and row["position"] == 1
        assert [(r["pack"]["ref"], r["registry"]["id"]) for r in client.browse("slack")] == [("slack", row["id"])]
        found = client.get_indexed_pack("slack")
        assert found["registry"]["id"] == row["id"] and found["pack"]["version"] == "2.1.0"
        assert client.get_indexed_pack("nope") is None
        data = client.install_pack("slack", ref_spec="2.1.0", skip_tests=True)
        assert data["provenance"]["checksum"] == digest and api.pack("slack")["sha256"] == digest
        # Attune waits for the candidate's tests on /packs/install: a failure is a 400 with its message and counts
        api.set_test_result("jira", passed=2, failed=1)
        with pytest.raises(_api_errors.ApiTestsFailed) as err:
            client.install_pack("jira")
        assert "Candidate pack tests failed" in str(err.value) and "(1 of 3 tests failed" in str(err.value)
        assert api.pack("jira") is None
        reg.add_status("/index.json", 503)
        with pytest.raises(_api_errors.ApiBadGateway) as err:
            client.install_pack("slack", force=True)
        assert err.value.kind == "api_bad_gateway" and reg.url("index.json") in str(err.value)
        assert "pack slack" in str(err.value)
        assert_clean(err.value, api, "reg-secret-99")


def test_unreachable_tls_timeout(api):
    with pytest.raises(_api_errors.ApiUnreachable) as err:
        _api.AttuneApi("https://127.0.0.1:1", token="attune_it_x1234").list_packs()
    assert err.value.kind == "api_unreachable" and "https://127.0.0.1:1" in str(err.value)
    with pytest.raises(_api_errors.ApiTLSError) as err:
        _api.AttuneApi(api.url(), token=api.token).list_packs()  # system trust store does not know the test CA
    assert err.value.kind == "api_tls_error" and "ca_path" in str(err.value)
    assert_clean(err.value, api)
    with RegistryServer() as slow:
        # a deadline test: the API never answers; the client must give up after api_timeout (no timing assertion)
        slow.add_slow("/auth/token-login", 30, mode="headers")
        with pytest.raises(_api_errors.ApiTimeout) as err:
            _api.AttuneApi(slow.base_url, token="attune_it_x1234", ca_path=slow.ca_path, timeout=1).list_packs()
        assert err.value.kind == "api_timeout" and "api_timeout=1" in str(err.value)


def test_credentials_required_and_exclusive():
    with pytest.raises(_api_errors.ApiError, match="no credentials"):
        _api.AttuneApi("https://a.example")
    with pytest.raises(_api_errors.ApiError, match="either api_token"):
        _api.AttuneApi("https://a.example", token="t", username="u", password="p")
    with pytest.raises(_api_errors.ApiError, match="api_url is required"):
        _api.AttuneApi(None, token="t")
    assert _api.AttuneApi("https://a.example/api/v1/", token="t").api_url == "https://a.example"


def test_the_clients_upload_limit_is_the_archives_default_cap():
    """Attune's PACK_UPLOAD_MAX_BYTES, checked by the client before an upload and by _pack._archive when it builds one."""
    from ansible_collections.attune.packs.plugins.module_utils._pack import _archive

    assert _api.UPLOAD_MAX_BYTES == _archive.UPLOAD_MAX_BYTES == 100 * 1024 * 1024


def test_server_as_a_subprocess(tmp_path):
    """The out-of-process mode used for fleets: config in, integration tokens out (0600), JSON request log."""
    from support.attune_server import AttuneServerProcess

    config = {"users": [{"login": "ops", "password": PASSWORD}], "integration_tokens": ["ci"],
              "standard_packs": [{"ref": "core", "version": "1.0.0"}]}
    with AttuneServerProcess(str(tmp_path), config=config) as proc:
        assert oct(os.stat(proc.tokens_path).st_mode & 0o777) == "0o600"
        client = _api.AttuneApi(proc.url(), token=proc.tokens["ci"], ca_path=proc.ca_path)
        assert [p["ref"] for p in client.list_packs()] == ["core"]
        blob, digest = build_archive(make_pack_tree(str(tmp_path / "demo"), "demo", "1.0.0"))
        client.upload_pack(blob, ref="demo")
        log = proc.read_log()
    assert [(e["method"], e["path"], e["status"]) for e in log] == [
        ("POST", "/auth/token-login", 200), ("GET", "/api/v1/packs", 200), ("POST", "/api/v1/packs/upload", 201)]
    assert log[1]["token"]["type"] == "access" and log[1]["token"]["login"] == "ci"
    assert log[0]["body"] == {"token": "[REDACTED]"}
    assert log[2]["body"]["pack"]["sha256"] == digest and log[2]["body"]["force"] == "false"
    with open(proc.log_path) as handle:
        assert proc.tokens["ci"] not in handle.read()


# ---------------------------------------------------------------------------
# issue 16: a hostile Attune (items 3, 9), careless options (items 4, 9, 12); tests/support/hostile_attune.py


def hostile_client(server, **kw):
    from support import hostile_attune

    kw.setdefault("token", hostile_attune.TOKEN)
    kw.setdefault("ca_path", server.ca_path)
    if not server.tls:
        kw.setdefault("allow_http", True)
    return _api.AttuneApi(server.base_url, **kw)


def test_api_timeout_is_the_total_time_of_a_request():
    """Item 3: an Attune trickling one byte every 0.3 s (each read succeeds) kept a task busy for 110 s."""
    import time

    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        hostile_attune.trickle(server, "/api/v1/packs", seconds_per_byte=0.3)
        started = time.monotonic()
        with pytest.raises(_api_errors.ApiTimeout) as err:
            hostile_client(server, timeout=2).list_packs()
        elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed  # the body alone takes > 30 s at this pace
    assert err.value.kind == "api_timeout" and "api_timeout=2" in str(err.value) and "total time" in str(err.value)


def test_api_timeout_bounds_a_reused_keep_alive_connection():
    """The deadline also watches a connection that an earlier request opened (keep-alive)."""
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        hostile_attune.trickle(server, "/api/v1/pack-indices", seconds_per_byte=0.3, body=b'{"data": []}' + b" " * 200)
        client = hostile_client(server, timeout=2)
        client._login()  # the connection of the login is reused for the next request
        with pytest.raises(_api_errors.ApiTimeout):
            client.list_indices()
        assert server.count("/auth/token-login", "POST") == 1


@pytest.mark.parametrize("status", [200, 500])
def test_answers_are_read_within_a_named_limit(status):
    """Item 3: a 400 MiB error body was buffered whole (953 MiB peak)."""
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        hostile_attune.huge_body(server, "/api/v1/packs/demo", status=status, total_bytes=400 * 1024 * 1024)
        with pytest.raises(_api_errors.ApiError) as err:
            hostile_client(server).get_pack("demo")
        msg = str(err.value)
        assert err.value.kind == "api_error" and err.value.status == status
        assert ("ANSWER_MAX_BYTES" if status == 200 else "ERROR_MAX_BYTES") in msg, msg
        assert len(msg) < 1000
        server.stop()
        # the client stopped reading long before
        assert hostile_attune.bytes_written(server, "/api/v1/packs/demo") < 64 * 1024 * 1024


def test_a_declared_huge_answer_is_not_read():
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        hostile_attune.huge_body(server, "/api/v1/pack-indices", status=200, total_bytes=10 ** 9, content_length=True)
        with pytest.raises(_api_errors.ApiError, match="ANSWER_MAX_BYTES"):
            hostile_client(server).list_indices()


@pytest.mark.parametrize("mode,words", [("repeat", "page 1 when asked for page 2"), ("same", "same packs as an earlier page"),
                                        ("beyond", "total_pages=2")])
def test_paging_stops_on_a_repeated_page_or_beyond_total_pages(mode, words):
    """Item 3: a listing that always says has_next and repeats page 1 was followed for 6,329 requests."""
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        counter = hostile_attune.endless_pages(server, mode=mode)
        with pytest.raises(_api_errors.ApiError) as err:
            hostile_client(server).list_packs()
    assert words in str(err.value) and err.value.kind == "api_error"
    assert counter["n"] <= 2


def test_paging_has_a_time_budget():
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        counter = hostile_attune.endless_pages(server, mode="fresh")
        with pytest.raises(_api_errors.ApiTimeout) as err:
            hostile_client(server, timeout=1).list_packs()
    assert "listing packs" in str(err.value) and "api_timeout=1" in str(err.value)
    assert counter["n"] < _api.MAX_PAGES


@pytest.mark.parametrize("path,text,words", [
    ("/api/v1/packs/demo", None, "not valid JSON"),                                  # deep nesting: RecursionError
    ("/api/v1/packs/demo", "[1, 2]", "a JSON list"),                                 # a list: AttributeError
    ("/api/v1/packs/demo", '{"data": "a string"}', "string where Attune sends an object"),
    ("/api/v1/pack-indices", '{"data": "abc"}', "string where Attune sends a list of objects"),
    ("/api/v1/pack-indices", '{"data": [1, 2]}', "list of objects"),
    ("/api/v1/pack-indices/packs", '{"data": {"a": 1}}', "object where Attune sends a list"),
    ("/api/v1/pack-indices/packs/demo", '{"data": []}', "list where Attune sends an object"),
    ("/api/v1/packs", '{"items": "x", "pagination": {}}', "string where"),
    ("/api/v1/packs", '{"items": [], "pagination": []}', "list where"),
    ("/api/v1/packs/demo", '{"data": 1e999999}', None),                            # inf: an object expected
    ("/api/v1/packs/demo", '{"data": ' + "9" * 5000 + "}", "not valid JSON"),       # int_max_str_digits
    ("/api/v1/packs/demo", b'\xff\xfe', "not valid JSON"),
])
def test_malformed_answers_are_api_errors(path, text, words):
    """Item 9: deep JSON gave a RecursionError, a list or data as a string an AttributeError."""
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        hostile_attune.answer(server, path, hostile_attune.deep_json() if text is None else text)
        client = hostile_client(server)
        call = {"/api/v1/packs/demo": lambda: client.get_pack("demo"), "/api/v1/pack-indices": client.list_indices,
                "/api/v1/pack-indices/packs": client.browse, "/api/v1/packs": client.list_packs,
                "/api/v1/pack-indices/packs/demo": lambda: client.get_indexed_pack("demo")}[path]
        with pytest.raises(_api_errors.ApiError) as err:
            call()
    assert err.value.kind == "api_error" and server.base_url in str(err.value)
    if words:
        assert words in str(err.value), str(err.value)
    assert hostile_attune.ACCESS not in str(err.value)


def test_hostile_error_bodies_give_clean_messages():
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        for body in (hostile_attune.deep_json(), '["x"]', '{"error": {"message": [1]}}', '{"error": 5}'):
            hostile_attune.answer(server, "/api/v1/packs/demo", body, status=500)
            with pytest.raises(_api_errors.ApiError) as err:
                hostile_client(server).get_pack("demo")
            assert "HTTP 500" in str(err.value) and len(str(err.value)) < 600


def test_login_answer_with_a_bad_shape_is_an_api_error():
    from support import hostile_attune

    with hostile_attune.hostile_attune() as server:
        for body in ("[]", '{"data": "x"}', '{"data": {"access_token": 5}}', hostile_attune.deep_json()):
            hostile_attune.answer(server, "/auth/token-login", body)
            with pytest.raises(_api_errors.ApiError) as err:
                hostile_client(server).list_indices()
            assert "access_token" in str(err.value) or "JSON" in str(err.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "HTTP://attune.example"])
def test_http_api_url_is_refused_without_the_opt_in(url):
    """Item 4: an http:// api_url sent the token and the password in clear text."""
    with pytest.raises(_api_errors.ApiInvalidArguments) as err:
        _api.AttuneApi(url, token="attune_it_x1234")
    assert err.value.kind == "invalid_arguments" and "api_allow_http" in str(err.value)
    assert isinstance(err.value, InvalidArguments)


def test_http_with_the_opt_in_reaches_a_plain_listener_and_without_it_nothing_is_sent():
    from support import hostile_attune

    with hostile_attune.hostile_attune(tls=False) as server:
        with pytest.raises(_api_errors.ApiInvalidArguments):
            _api.client_from_params({"api_url": server.base_url, "api_token": hostile_attune.TOKEN}).list_indices()
        with pytest.raises(_api_errors.ApiInvalidArguments):
            _api.client_from_params({"api_url": server.base_url, "api_username": "u", "api_password": PASSWORD})
        assert server.requests == []
        hostile_attune.answer(server, "/api/v1/pack-indices", '{"data": []}')
        client = _api.client_from_params({"api_url": server.base_url, "api_token": hostile_attune.TOKEN,
                                          "api_allow_http": True})
        assert client.list_indices() == []
        assert [r.path for r in server.requests] == ["/auth/token-login", "/api/v1/pack-indices"]


@pytest.mark.parametrize("url", [
    "https://admin:" + PASSWORD + "@attune.example", "https://" + PASSWORD + "@attune.example/api/v1",
    "https://attune.example/?token=" + PASSWORD, "https://attune.example/#" + PASSWORD,
])
def test_credentials_in_api_url_are_refused_redacted(url):
    with pytest.raises(_api_errors.ApiInvalidArguments) as err:
        _api.client_from_params({"api_url": url, "api_token": "attune_it_x1234"})
    text = str(err.value) + repr(err.value.to_dict()) + repr(err.value.api_url)
    assert PASSWORD not in text and "admin" not in text
    assert err.value.kind == "invalid_arguments" and "attune.example" in str(err.value)


@pytest.mark.parametrize("value,words", [(0, "between 1 and 86400"), (-1, "between 1 and 86400"),
                                         (10 ** 20, "between 1 and 86400"), (1e20, "between 1 and 86400"),
                                         (float("nan"), "a number"), ("5", "a number"), (True, "a number")])
def test_api_timeout_values_are_checked_before_any_request(value, words):
    """Item 9: -1 and 1e20 raised (OverflowError), 0 silently meant 600."""
    with pytest.raises(_api_errors.ApiInvalidArguments) as err:
        _api.client_from_params({"api_url": "https://127.0.0.1:1", "api_token": "attune_it_x1234", "api_timeout": value})
    assert words in str(err.value) and err.value.kind == "invalid_arguments"
    assert _api.client_from_params({"api_url": "https://a.example", "api_token": "t", "api_timeout": None}).timeout == 600


def test_a_missing_ca_path_is_refused_before_any_request(tmp_path):
    with pytest.raises(_api_errors.ApiInvalidArguments) as err:
        _api.AttuneApi("https://127.0.0.1:1", token="attune_it_x1234", ca_path=str(tmp_path / "nope.pem"))
    assert "nope.pem does not exist" in str(err.value)
    # without verification ca_path plays no part
    _api.AttuneApi("https://127.0.0.1:1", token="attune_it_x1234", ca_path=str(tmp_path / "nope.pem"), validate_certs=False)


def test_connection_errors_never_show_urllib3_text(api):
    for url, words in (("https://127.0.0.1:1", "connection refused"),
                       ("https://nonexistent.invalid", "host name does not resolve")):
        with pytest.raises(_api_errors.ApiUnreachable) as err:
            _api.AttuneApi(url, token="attune_it_x1234").list_packs()
        msg = str(err.value)
        assert words in msg and "Max retries" not in msg and "HTTPSConnectionPool" not in msg and "Caused by" not in msg, msg
    with pytest.raises(_api_errors.ApiTLSError) as err:
        _api.AttuneApi(api.url(), token=api.token).list_packs()
    msg = str(err.value)
    assert "certificate verify failed" in msg and "Max retries" not in msg and "HTTPSConnectionPool" not in msg, msg
