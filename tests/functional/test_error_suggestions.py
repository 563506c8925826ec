"""Issue 18 item 4 through ansible: a misspelt pack, a bad spec and a misspelt option name each say what would work.

Real HTTPS registries (``support.pack_site``) with a request log, so the tests also prove that the suggestion of a
ref costs no request beyond the resolution itself.
"""
import pytest

from support.pack_site import PackSite
from support.play import run_tasks
from support.registry_server import RegistryServer

INFO = "attune.packs.attune_pack_info"
PACK = "attune.packs.attune_pack"


@pytest.fixture
def site(tmp_path):
    with RegistryServer() as server:
        yield PackSite(server, str(tmp_path))


def index_gets(site):
    return sum(site.index_gets().values())


@pytest.mark.parametrize("resolve_on", ["host", "controller"])
def test_a_misspelt_pack_suggests_the_closest_refs(site, tmp_path, resolve_on):
    options = dict(site.options(str(tmp_path / "cache")), resolve_on=resolve_on)
    result = run_tasks(tmp_path, [{INFO: dict(options, name="slakc")}]).host()[0]
    assert result.get("failed") and not result.get("changed"), result
    assert "pack 'slakc' not found in any registry (searched: corp, community, public); did you mean slack?" in result["msg"], result
    assert index_gets(site) == 3  # each registry once, for the resolution itself

    installed = run_tasks(tmp_path, [{PACK: dict(options, name=["slack@^2", "gihtub"], packs_dir=str(tmp_path / "packs"))}]).host()[0]
    assert installed.get("failed") and "did you mean github?" in installed["msg"], installed
    assert index_gets(site) == 3  # the cached indexes answered; nothing was installed
    assert not (tmp_path / "packs" / "slack").exists()


def test_a_bad_spec_lists_the_accepted_forms(site, tmp_path):
    options = site.options(str(tmp_path / "cache"))
    result = run_tasks(tmp_path, [{PACK: dict(options, name="slack@>>2", packs_dir=str(tmp_path / "packs"))}]).host()[0]
    assert result.get("failed") and not result.get("changed"), result
    assert "invalid pack spec 'slack@>>2': invalid version constraint '>>2'; accepted forms: ref, ref@latest" in result["msg"], result
    assert "ref@>=2.0,<3" in result["msg"] and "ref@^2.1" in result["msg"]
    assert index_gets(site) == 0  # refused before any registry is read


@pytest.mark.parametrize("module, args, expected", [
    (INFO, {"nmae": "slack"}, "nmae (did you mean name?)"),
    (INFO, {"name": "slack", "resolve_on": "controller", "refersh": True}, "refersh (did you mean refresh or prefer_source?)"),
    (PACK, {"nmae": "slack", "packs_dir": "/nonexistent"}, "nmae (did you mean name?)"),
    (PACK, {"name": "slack", "lock_flie": "packs.lock.yml"}, "lock_flie (did you mean lock_file?)"),
    ("attune.packs.attune_pack_search", {"qeury": "slack"}, "qeury (did you mean query?)"),
    ("attune.packs.attune_pack_registries", {"xyzzy": 1}, "xyzzy. Supported parameters include: "),
])
def test_a_misspelt_option_names_the_close_option(site, tmp_path, module, args, expected):
    options = site.options(str(tmp_path / "cache"))
    result = run_tasks(tmp_path, [{module: dict(options, **args)}]).host()[0]
    assert result.get("failed") and not result.get("changed"), result
    assert result["msg"].startswith("Unsupported parameters for (%s) module: " % module), result["msg"]
    assert expected in result["msg"], result["msg"]
    assert "missing required arguments" not in result["msg"]
    assert index_gets(site) == 0  # nothing ran
