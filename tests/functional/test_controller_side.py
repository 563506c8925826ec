"""resolve_on / fetch_on controller and lock_file through the action plugins, on a small local fleet.

Hosts are inventory entries with the local connection, each with its own
packs_dir, and a target Python WITHOUT requests/PyYAML/voluptuous: the
controller does the registry work.  The HTTPS server logs every request, so
the tests count index and archive GETs.
"""
import os
import sys

import pytest
import yaml

from support import pack_site, synth
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

HOSTS = ["w%02d" % number for number in range(6)]


@pytest.fixture
def site(tmp_path):
    with RegistryServer() as server:
        files = str(tmp_path / "files")
        os.makedirs(files)
        server.add_directory("/files", files)
        entries = {"one": [], "two": []}
        for registry, ref, version, fmt in (("one", "slack", "2.0.0", "tar.gz"), ("one", "slack", "2.1.0", "zip"),
                                            ("two", "aws", "1.2.0", "tgz"), ("two", "slack", "9.0.0", "tar.gz")):
            path, checksum = synth.make_pack_archive(files, ref, version, fmt=fmt)
            entries[registry].append(synth.make_entry(ref, version, archive_url=server.url("files/" + os.path.basename(path)),
                                                      archive_checksum=checksum))
        for registry, packs in entries.items():
            server.add_json("/%s.json" % registry, make_index(registry, packs))
        server.entries = entries
        yield server


def inventory(tmp_path, python):
    lines = ["[workers]"]
    for host in HOSTS:
        lines.append("%s ansible_connection=local ansible_python_interpreter=%s packs_dir=%s" % (host, python, tmp_path / host / "packs"))
    path = tmp_path / "inventory.ini"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def bare_python():
    """A target interpreter without the collection's libraries (the controller must do the work)."""
    python = pack_site.bare_python()
    if python is None:
        pytest.skip("no Python with PyYAML but without requests on this machine to act as a bare target")
    return python


def registry_options(server, tmp_path):
    return {
        "registries": [{"name": "one", "url": server.url("one.json"), "priority": 1},
                       {"name": "two", "url": server.url("two.json"), "priority": 2}],
        "ca_path": server.ca_path,
        "cache_dir": str(tmp_path / "controller-cache"),
    }


def installed_checksums(tmp_path, ref):
    result = {}
    for host in HOSTS:
        meta = tmp_path / host / "packs" / ".attune" / (ref + ".json")  # provenance outside the tree (issue 9 item 9)
        result[host] = yaml.safe_load(meta.read_text())["checksum"] if meta.exists() else None
    return result


def test_fetch_on_controller_downloads_each_archive_once(site, tmp_path):
    inv = inventory(tmp_path, bare_python())
    task = {"attune.packs.attune_pack": dict(registry_options(site, tmp_path), name=["slack@^2", "aws"], packs_dir="{{ packs_dir }}",
                                             fetch_on="controller")}
    play = run_tasks(tmp_path, [task], inventory=inv, hosts="workers", extra_args=["--forks", "5"])
    assert sorted(play.results) == HOSTS, play
    for host in HOSTS:
        res = play.host(host)[0]
        assert res["changed"] is True and not res.get("failed"), (host, res)
        assert [p["pack"]["version"] for p in res["packs"]] == ["2.1.0", "1.2.0"]
    assert site.count("/one.json") == 1 and site.count("/two.json") == 1
    assert site.count("/files/slack-2.1.0.zip") == 1 and site.count("/files/aws-1.2.0.tgz") == 1
    assert site.count("/files/slack-9.0.0.tar.gz") == 0
    checksums = installed_checksums(tmp_path, "slack")
    assert set(checksums.values()) == {site.entries["one"][1]["install_sources"][0]["checksum"]}

    # converged: no archive is copied or fetched again, nothing changes
    play = run_tasks(tmp_path, [task], inventory=inv, hosts="workers", extra_args=["--forks", "5"])
    for host in HOSTS:
        res = play.host(host)[0]
        assert res["changed"] is False and not res.get("failed") and "fetched_on_controller" not in res, (host, res)
    assert site.count("/files/slack-2.1.0.zip") == 1


def test_resolve_on_controller_search_info_and_install(site, tmp_path):
    inv = inventory(tmp_path, bare_python())
    options = registry_options(site, tmp_path)
    tasks = [
        {"attune.packs.attune_pack_search": dict(options, query="slack", resolve_on="controller")},
        {"attune.packs.attune_pack_info": dict(options, name="slack@~2.0.0", resolve_on="controller")},
        {"attune.packs.attune_pack_registries": dict(options, resolve_on="controller")},
    ]
    play = run_tasks(tmp_path, tasks, inventory=inv, hosts="workers", extra_args=["--forks", "5"])
    for host in HOSTS:
        search, info, registries = play.host(host)
        assert [p["ref"] for p in search["packs"]] == ["slack"] and search["packs"][0]["also_in"] == ["two"], search
        assert info["packs"][0]["version"] == "2.0.0", info
        assert [r["name"] for r in registries["registries"]] == ["one", "two"], registries
    assert site.count("/one.json") == 1 and site.count("/two.json") == 1

    # hosts fetch archives themselves (they can reach the server) but never an index
    task = {"attune.packs.attune_pack": dict(options, name="slack@~2.0.0", packs_dir="{{ packs_dir }}", resolve_on="controller",
                                             cache_dir=str(tmp_path / "controller-cache"))}
    target = sys.executable  # archives are fetched on the host: it needs requests
    inv = inventory(tmp_path, target)
    play = run_tasks(tmp_path, [task], inventory=inv, hosts="workers", extra_args=["--forks", "5"])
    for host in HOSTS:
        assert play.host(host)[0]["changed"] is True, play
    assert site.count("/one.json") == 1
    assert site.count("/files/slack-2.0.0.tar.gz") == len(HOSTS)

    # present keeps 2.0.0 even though the controller now resolves ^2 to 2.1.0
    task["attune.packs.attune_pack"]["name"] = "slack@^2"
    play = run_tasks(tmp_path, [task], inventory=inv, hosts="workers")
    assert all(play.host(host)[0]["changed"] is False and not play.host(host)[0].get("failed") for host in HOSTS), play


def test_lock_file_pins_the_fleet(site, tmp_path):
    inv = inventory(tmp_path, bare_python())
    lock = str(tmp_path / "packs.lock.yml")
    options = registry_options(site, tmp_path)
    tasks = [
        {"attune.packs.attune_pack_lock": dict(options, path=lock, name=["slack@^2", "aws"]), "delegate_to": "localhost",
         "run_once": True, "vars": {"ansible_python_interpreter": sys.executable}},
        {"attune.packs.attune_pack": {"name": ["slack", "aws"], "lock_file": lock, "packs_dir": "{{ packs_dir }}",
                                      "fetch_on": "controller", "ca_path": site.ca_path, "cache_dir": str(tmp_path / "controller-cache")}},
        {"attune.packs.attune_pack": {"name": ["github"], "lock_file": lock, "packs_dir": "{{ packs_dir }}"}},
    ]
    play = run_tasks(tmp_path, tasks, inventory=inv, hosts="workers", extra_args=["--forks", "5"])
    for host in HOSTS:
        locked, res, missing = play.host(host)
        assert res["changed"] is True and not res.get("failed"), (host, res)
        assert missing.get("failed") and "github" in missing["msg"] and "lock" in missing["msg"], missing
    assert len(set(installed_checksums(tmp_path, "slack").values())) == 1
    assert site.count("/files/slack-2.1.0.zip") == 1


def test_every_resolution_warns_about_a_skipped_registry(site, tmp_path):
    """attune_pack on the host and on the controller, attune_pack_info and the lookup: the same warning (issue 10.1)."""
    options = registry_options(site, tmp_path)
    options["registries"].insert(0, {"name": "broken", "url": site.url("missing.json"), "priority": 0})
    options["on_registry_error"] = "skip"
    lookup_options = ", ".join("%s=%s" % (key, repr(value)) for key, value in options.items() if key != "registries")
    packs_dir = str(tmp_path / "packs")
    tasks = [
        {"attune.packs.attune_pack": dict(options, name="slack@^2", packs_dir=packs_dir), "check_mode": True},
        {"attune.packs.attune_pack": dict(options, name="slack@^2", packs_dir=packs_dir, resolve_on="controller"), "check_mode": True},
        {"attune.packs.attune_pack_info": dict(options, name="slack@^2")},
        {"ansible.builtin.debug": {"msg": "{{ lookup('attune.packs.attune_pack', 'aws', registries=regs, %s).version }}" % lookup_options},
         "vars": {"regs": options["registries"]}},
    ]
    play = run_tasks(tmp_path, tasks, extra_args=["--forks", "1"])
    host_install, controller_install, info, lookup = play.host()
    for res in (host_install, controller_install, info):
        assert not res.get("failed"), play
        assert any("resolving slack@^2 skipped a failing registry: registry broken" in w for w in res.get("warnings", [])), res
    assert lookup["msg"] == "1.2.0", lookup
    assert "resolving aws skipped a failing registry: registry broken" in " ".join(play.output.split()), play
