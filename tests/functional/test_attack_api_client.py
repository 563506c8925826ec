"""Issue 16, attacks on the Attune API client, for real through ansible-playbook (items 3, 4, 9 and two points of 12).

A hostile Attune (tests/support/hostile_attune.py) and careless options:

- item 3: ``api_timeout`` is the total time of each request (a trickling Attune is cut off), every answer is read
  within a named limit, a listing that never ends stops;
- item 4: an ``http://`` api_url is refused before anything is sent (``api_allow_http`` opts in), credentials in
  ``api_url`` are refused and never printed;
- item 9: malformed answers and option values are named errors (``api_*`` or ``invalid_arguments``), never a
  Python exception, and option values are checked before any request;
- item 12: the error order (invalid arguments before configuration): an http api_url with no registries is not
  "no pack registries configured"; no urllib3 text ("Max retries exceeded") reaches users.
"""
import json
import time

import pytest

from support import hostile_attune
from support.hostile_attune import TOKEN, PASSWORD
from support.play import run_tasks

PACK = "attune.packs.attune_pack"
INSTALLED = "attune.packs.attune_pack_installed"
REGISTRY = "attune.packs.attune_registry"
INFO = "attune.packs.attune_pack_info"


def conn(server, **extra):
    args = dict(api_url=server.base_url, api_token=TOKEN, ca_path=server.ca_path)
    if not server.tls:
        args.pop("ca_path")
    args.update(extra)
    return args


def run(tmp_path, tasks, **kw):
    play = run_tasks(tmp_path, tasks, verbosity=kw.pop("verbosity", 3), **kw)
    assert play.results, play
    return play, play.host()


def assert_named(res, kind, *words):
    assert res.get("failed") is True, res
    assert res["error"]["kind"] == kind, res
    assert "Traceback" not in str(res.get("exception", "")), res
    for word in words:
        assert word in res["msg"], res
    for raw in ("Max retries", "HTTPSConnectionPool", "HTTPConnectionPool", "Caused by"):
        assert raw not in res["msg"], res


def test_http_api_url_sends_nothing_without_the_opt_in(tmp_path):
    """Item 4: a plain-HTTP listener received {"token"} from attune_pack and {"login", "password"} from
    attune_registry.  Item 12: with no registries, an http api_url was reported as 'no pack registries configured'."""
    with hostile_attune.hostile_attune(tls=False) as server:
        login = dict(api_url=server.base_url, api_username="deploy", api_password=PASSWORD)
        play, results = run(tmp_path, [
            {PACK: dict(conn(server), name="demo")},
            {REGISTRY: dict(login, url="https://packs.example/index.json")},
            {INSTALLED: conn(server)},
            {INFO: dict(conn(server), name="demo")},
        ])
        for res in results:
            assert_named(res, "invalid_arguments", "http://", "api_allow_http")
            assert "no pack registries" not in res["msg"], res
        assert server.requests == [], [(r.method, r.path) for r in server.requests]
        assert TOKEN not in play.output and PASSWORD not in play.output
        # the opt-in is the only difference: the same listener then gets the login (a deliberate choice)
        hostile_attune.answer(server, "/api/v1/packs", json.dumps(hostile_attune.page([], 1, has_next=False)))
        play, results = run(tmp_path, [{INSTALLED: conn(server, api_allow_http=True)}])
        assert results[0].get("failed") is not True and results[0]["packs"] == [], results
        assert [r.path for r in server.requests] == ["/auth/token-login", "/api/v1/packs"]
        assert TOKEN not in play.output


def test_credentials_in_api_url_are_refused_and_never_printed(tmp_path):
    """Item 4: https://user:pass@ was printed in msg, error.message, error.api_url and api_url."""
    with hostile_attune.hostile_attune() as server:
        url = server.base_url.replace("https://", "https://admin:%s@" % PASSWORD)
        play, results = run(tmp_path, [
            {PACK: dict(conn(server, api_url=url), name="demo")},
            {REGISTRY: dict(conn(server, api_url=url), url="https://packs.example/index.json")},
            {INSTALLED: conn(server, api_url=url)},
            {PACK: dict(conn(server, api_url=server.base_url + "/?token=" + PASSWORD), name="demo")},
        ], diff=True)
        for res in results:
            assert_named(res, "invalid_arguments")
            assert PASSWORD not in json.dumps(res), res
        assert "credentials" in results[0]["msg"] and "***@127.0.0.1" in results[0]["msg"], results[0]
        assert "query string" in results[3]["msg"]
        assert PASSWORD not in play.output
        assert server.requests == []


def test_a_trickling_attune_is_cut_off_at_api_timeout(tmp_path):
    """Item 3: an Attune trickling one byte a second kept a task with api_timeout: 5 busy for 110 s."""
    with hostile_attune.hostile_attune() as server:
        hostile_attune.trickle(server, "/api/v1/packs", seconds_per_byte=0.5)  # ~40 s for the whole body
        started = time.monotonic()
        _play, results = run(tmp_path, [{INSTALLED: conn(server, api_timeout=3)}])
        elapsed = time.monotonic() - started
        assert_named(results[0], "api_timeout", "api_timeout=3", "total time")
        assert elapsed < 25, elapsed


def test_huge_bodies_endless_pages_and_malformed_answers_are_named_errors(tmp_path):
    """Item 3: a 400 MiB error body was buffered whole; an endless has_next listing was followed 6,329 times.
    Item 9: deep JSON (RecursionError) and a list (AttributeError) crashed the task."""
    with hostile_attune.hostile_attune() as server:
        # attune_pack state=absent reads GET /api/v1/packs/{ref} (no registry needed)
        hostile_attune.huge_body(server, "/api/v1/packs/big", status=500)
        hostile_attune.answer(server, "/api/v1/packs/deep", hostile_attune.deep_json())
        hostile_attune.answer(server, "/api/v1/packs/listy", "[1, 2, 3]")
        hostile_attune.answer(server, "/api/v1/packs/stringy", '{"data": "not an object"}')
        counter = hostile_attune.endless_pages(server, mode="same")
        cache = str(tmp_path / "cache")
        _play, results = run(tmp_path, [{PACK: dict(conn(server), name=ref, state="absent", cache_dir=cache)}
                                        for ref in ("big", "deep", "listy", "stringy")] + [{INSTALLED: conn(server)}])
        big, deep, listy, stringy, endless = results
        assert_named(big, "api_error", "HTTP 500", "ERROR_MAX_BYTES")
        assert_named(deep, "api_error", "not valid JSON")
        assert_named(listy, "api_error", "JSON list")
        assert_named(stringy, "api_error", "string where Attune sends an object")
        assert_named(endless, "api_error", "same packs as an earlier page")
        assert counter["n"] == 2
        assert server.count(method="DELETE") == 0
        server.stop()
        assert hostile_attune.bytes_written(server, "/api/v1/packs/big") < 64 * 1024 * 1024


@pytest.mark.parametrize("extra,words", [
    ({"api_timeout": 0}, "between 1 and 86400"),
    ({"api_timeout": -1}, "between 1 and 86400"),
    ({"api_timeout": 1e20}, "between 1 and 86400"),
    ({"ca_path": "/nonexistent/ca.pem"}, "does not exist"),
])
def test_option_values_are_checked_before_any_request(tmp_path, extra, words):
    """Item 9: api_timeout -1 / 1e20 raised exceptions, 0 silently meant 600, a missing ca_path raised."""
    with hostile_attune.hostile_attune() as server:
        _play, results = run(tmp_path, [
            {PACK: dict(conn(server, **extra), name="demo")},
            {INSTALLED: conn(server, **extra)},
            {REGISTRY: dict(conn(server, **extra), url="https://packs.example/index.json")},
        ], verbosity=0)
        for res in results:
            assert_named(res, "invalid_arguments", words)
        assert server.requests == []


def test_name_of_a_wrong_type_is_a_named_error(tmp_path):
    """Item 9: name: 5 raised a raw exception."""
    with hostile_attune.hostile_attune() as server:
        _play, results = run(tmp_path, [{PACK: dict(conn(server), name=5)}, {PACK: dict(conn(server), name=[{"a": 1}])}],
                             verbosity=0)
        for res in results:
            assert res.get("failed") is True and "Traceback" not in str(res.get("exception", "")), res
            assert res["error"]["kind"] == "invalid_arguments", res
            assert "name" in res["msg"]
        assert server.requests == []


def test_an_unreachable_attune_is_described_without_urllib3_text(tmp_path):
    """Item 12: raw urllib3 text ('Max retries exceeded') reached users."""
    _play, results = run(tmp_path, [
        {INSTALLED: {"api_url": "https://127.0.0.1:1", "api_token": TOKEN}},
        {INSTALLED: {"api_url": "https://attune.nonexistent.invalid", "api_token": TOKEN}},
    ], verbosity=0)
    assert_named(results[0], "api_unreachable", "connection refused")
    assert_named(results[1], "api_unreachable", "host name does not resolve")
