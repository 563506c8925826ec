"""Issue 17: one resolution per pack per task, and index reads per task equal to the registries consulted.

Counted on the wire: the registries are real HTTPS servers with a request log (``support.pack_site``: corp,
community, public; the four packs of ``PACKS`` resolve from all three), and ``cache_enabled: false`` so that every
index read of a task is a GET the server sees (a cached read would hide a second resolution).  One resolution per
pack shows as one archive GET per pack (nothing else downloads it) and as index GETs equal to the registries the
resolutions consulted (each registry read once for the whole task, whatever the pack count).
"""
import pytest

from support.attune_server import AttuneServer, connection_args
from support.pack_site import EXPECTED, PACKS, REGISTRIES, PackSite
from support.play import run_tasks
from support.registry_server import RegistryServer

PACK = "attune.packs.attune_pack"
INFO = "attune.packs.attune_pack_info"
LOCK = "attune.packs.attune_pack_lock"


@pytest.fixture
def site(tmp_path):
    with RegistryServer() as server:
        yield PackSite(server, str(tmp_path / "site"))


def options(site, tmp_path, **extra):
    return site.options(str(tmp_path / "cache"), cache_enabled=False, **extra)


def run_one(tmp_path, task):
    result = run_tasks(tmp_path, [task]).host()[0]
    assert not result.get("failed"), result.get("msg")
    return result


def assert_reads(site, archives):
    # each registry read once for the task: all three are consulted (internal is in corp, slack and aws in
    # community, github in public; the resolver reads a registry once and asks it for every pack)
    assert site.index_gets() == dict((name, 1) for name in REGISTRIES), site.index_gets()
    gets = site.archive_gets()
    assert sorted(gets) == sorted(site.archive_path(ref) for ref in archives), gets
    assert all(count == 1 for count in gets.values()), gets


@pytest.mark.parametrize("args", [
    {"resolve_on": "host", "fetch_on": "host"},
    {"resolve_on": "controller", "fetch_on": "host"},
    {"resolve_on": "controller", "fetch_on": "controller"},
    {"resolve_on": "host", "fetch_on": "controller"},
], ids=["host", "resolve-controller", "controller", "fetch-controller"])
def test_an_install_reads_each_registry_once_and_each_archive_once(site, tmp_path, args):
    packs_dir = str(tmp_path / "packs")
    result = run_one(tmp_path, {PACK: dict(options(site, tmp_path, **args), name=PACKS, packs_dir=packs_dir)})
    assert result["changed"] is True and sorted(p["ref"] for p in result["packs"]) == sorted(EXPECTED), result
    assert_reads(site, EXPECTED)


def test_a_lock_and_an_info_read_each_registry_once(site, tmp_path):
    run_one(tmp_path, {LOCK: dict(options(site, tmp_path), name=PACKS, path=str(tmp_path / "packs.lock.yml"))})
    assert_reads(site, [])
    run_one(tmp_path, {INFO: dict(options(site, tmp_path), name=PACKS)})
    assert site.index_gets() == dict((name, 2) for name in REGISTRIES), site.index_gets()


def test_the_api_target_reads_each_registry_once_and_each_archive_once(site, tmp_path):
    with AttuneServer() as api:
        api.token = api.add_integration_token("ci")
        # the test servers share one CA (support.tls), so connection_args' ca_path serves both
        args = dict(options(site, tmp_path), **connection_args(api))
        result = run_one(tmp_path, {PACK: dict(args, name=PACKS)})
        assert result["changed"] is True and sorted(result["uploaded"]) == sorted(EXPECTED), result
    assert_reads(site, EXPECTED)
