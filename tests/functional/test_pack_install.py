"""attune_pack and attune_pack_installed, for real through ansible-playbook.

Sources are real: archives (.tar.gz, .tgz, .zip) and a git repository (dumb HTTP
protocol, after ``git update-server-info``) served by an HTTPS server on
127.0.0.1 with a generated CA, plus local directories and archives.
"""
import json
import os

import pytest

from functional.conftest import TOKEN
from support import gitrepo, pack_site, synth
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

MODULE = "attune.packs.attune_pack"


class Site(object):
    """One HTTPS server publishing a registry index plus the archives and git repositories it points to."""

    def __init__(self, server, root):
        self.server = server
        self.root = root
        self.files = os.path.join(root, "files")
        os.makedirs(self.files)
        server.add_directory("/files", self.files)
        self.entries = []
        self.checksums = {}

    def archive(self, ref, version, fmt="tar.gz", **kwargs):
        path, checksum = synth.make_pack_archive(self.files, ref, version, fmt=fmt, **kwargs)
        return self.server.url("files/" + os.path.basename(path)), checksum

    def git(self, ref, version, **kwargs):
        bare, commit = gitrepo.make_git_pack_repo(self.files, ref, version, **kwargs)
        return self.server.url("files/" + os.path.basename(bare)), commit, gitrepo.checkout_checksum(bare)

    def publish(self, ref, version, git=False, fmt="tar.gz", **kwargs):
        archive_url, archive_checksum = self.archive(ref, version, fmt=fmt)
        git_args = {}
        if git:
            url, commit, checksum = self.git(ref, version, name="%s-%s-git" % (ref, version))
            git_args = dict(git_url=url, git_commit=commit, git_checksum=checksum)
        entry = synth.make_entry(ref, version, archive_url=archive_url, archive_checksum=archive_checksum, **git_args)
        entry.update(kwargs)
        self.entries.append(entry)
        self.server.set_content("/index.json", make_index("public", self.entries)) if self.server.route_for("/index.json") \
            else self.server.add_json("/index.json", make_index("public", self.entries))
        return entry


@pytest.fixture
def site(tmp_path):
    with RegistryServer() as server:
        yield Site(server, str(tmp_path / "site"))


def registry_args(site, packs_dir, **extra):
    args = {
        "registries": [{"name": "public", "url": site.server.url("index.json"), "priority": 10}],
        "ca_path": site.server.ca_path,
        "cache_dir": os.path.join(os.path.dirname(packs_dir), "cache"),
        "packs_dir": packs_dir,
    }
    args.update(extra)
    return args


def install(tmp_path, args, check=False, diff=False, **kwargs):
    play = run_tasks(tmp_path, [{MODULE: args}], check=check, diff=diff, **kwargs)
    assert play.results, play
    return play, play.host()[0]


def snapshot(root):
    """{relative path: (mode, bytes or link target)} of a directory tree, for byte-identical comparisons."""
    result = {}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            st = os.lstat(path)
            if os.path.islink(path):
                result[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                result[rel] = (st.st_mode, None)
            else:
                with open(path, "rb") as handle:
                    result[rel] = (st.st_mode, handle.read())
    return result


def leftovers(packs_dir):
    return sorted(name for name in os.listdir(packs_dir) if name.startswith(".") and name != ".attune")  # .attune: provenance records


def metadata(packs_dir, ref):
    with open(os.path.join(packs_dir, ".attune", ref + ".json")) as handle:  # provenance outside the tree (issue 9 item 9)
        return json.load(handle)


def test_registry_install_four_steps_then_upgrade_and_removal(site, tmp_path):
    site.publish("slack", "2.0.0")
    packs_dir = str(tmp_path / "packs")
    args = registry_args(site, packs_dir, name="slack@^2.0")

    play, res = install(tmp_path, args, check=True, diff=True)
    assert res["changed"] is True and res["packs"][0]["action"] == "install", res
    assert not os.path.exists(os.path.join(packs_dir, "slack"))
    assert site.server.count("/files/slack-2.0.0.tar.gz") == 0
    assert "slack 2.0.0" in res["diff"]["after"] and "not installed" in res["diff"]["before"]

    play, res = install(tmp_path, args)
    assert res["changed"] is True and not res.get("failed"), play
    assert res["pack"]["version"] == "2.0.0" and res["pack"]["registry"] == "public"
    assert res["pack"]["checksum"] == site.entries[0]["install_sources"][0]["checksum"]
    meta = metadata(packs_dir, "slack")
    assert meta["version"] == "2.0.0" and meta["spec"] == "slack@^2.0" and meta["registry_url"] == site.server.url("index.json")
    assert os.path.isfile(os.path.join(packs_dir, "slack", "pack.yaml"))
    downloads = site.server.count("/files/slack-2.0.0.tar.gz")
    assert downloads == 1

    for check in (True, False):
        play, res = install(tmp_path, args, check=check)
        assert res["changed"] is False and not res.get("failed"), play
    assert site.server.count("/files/slack-2.0.0.tar.gz") == downloads
    assert leftovers(packs_dir) == []

    # a newer version is published: present keeps 2.0.0 (it satisfies ^2.0), latest upgrades
    site.publish("slack", "2.1.0", git=True)
    play, res = install(tmp_path, args)
    assert res["changed"] is False and not res.get("failed") and metadata(packs_dir, "slack")["version"] == "2.0.0", play
    latest = dict(args, state="latest", refresh=True)
    play, res = install(tmp_path, latest, check=True, diff=True)
    assert res["changed"] is True and res["packs"][0]["action"] == "upgrade", res
    assert metadata(packs_dir, "slack")["version"] == "2.0.0"
    assert "slack 2.0.0" in res["diff"]["before"] and "slack 2.1.0" in res["diff"]["after"]
    play, res = install(tmp_path, latest)
    assert res["changed"] is True and res["pack"]["version"] == "2.1.0" and res["previous"]["version"] == "2.0.0", play
    assert metadata(packs_dir, "slack")["installed_from"]["type"] == "git"
    for check in (True, False):
        play, res = install(tmp_path, latest, check=check)
        assert res["changed"] is False and not res.get("failed") and res["pack"]["version"] == "2.1.0", play

    # removal, four steps
    absent = dict(args, name="slack", state="absent")
    play, res = install(tmp_path, absent, check=True)
    assert res["changed"] is True and os.path.isdir(os.path.join(packs_dir, "slack"))
    play, res = install(tmp_path, absent)
    assert res["changed"] is True and res["previous"]["version"] == "2.1.0" and not os.path.exists(os.path.join(packs_dir, "slack"))
    for check in (True, False):
        play, res = install(tmp_path, absent, check=check)
        # a removal play must succeed on its second run (issue 16 item 2: it failed with a NoneType error)
        assert res["changed"] is False and not res.get("failed") and res["pack"] is None, play
        assert res["packs"][0]["action"] == "none" and res["packs"][0]["pack"] is None and res["previous"] is None, res
    assert leftovers(packs_dir) == []


@pytest.mark.parametrize("fmt", ["tar.gz", "tgz", "zip"])
def test_archive_src_over_https(site, tmp_path, fmt):
    url, checksum = site.archive("mypack", "1.0.0", fmt=fmt)
    packs_dir = str(tmp_path / "packs")
    args = {"name": "mypack", "src": url, "checksum": checksum, "ca_path": site.server.ca_path, "packs_dir": packs_dir}
    play, res = install(tmp_path, args)
    assert res["changed"] is True and res["pack"]["version"] == "1.0.0", play
    assert res["pack"]["registry"] is None and res["pack"]["checksum"] == checksum
    play, res = install(tmp_path, args)
    assert res["changed"] is False and not res.get("failed") and res["pack"]["checksum"] == checksum, play


def test_git_src_over_https_dumb_protocol(site, tmp_path):
    url, commit, checksum = site.git("gitpack", "0.3.0", tag="v0.3.0")
    packs_dir = str(tmp_path / "packs")
    args = {"name": "gitpack", "src": url, "version": "v0.3.0", "checksum": checksum, "ca_path": site.server.ca_path,
            "packs_dir": packs_dir}
    play, res = install(tmp_path, args)
    assert res["changed"] is True and res["pack"]["version"] == "0.3.0", play
    assert res["pack"]["source"]["commit"] == commit
    assert not os.path.exists(os.path.join(packs_dir, "gitpack", ".git"))
    play, res = install(tmp_path, args)
    assert res["changed"] is False and not res.get("failed"), play


def test_remote_src_without_checksum_is_refused_unless_allowed(site, tmp_path):
    url, _checksum = site.archive("mypack", "1.0.0")
    packs_dir = str(tmp_path / "packs")
    args = {"name": "mypack", "src": url, "ca_path": site.server.ca_path, "packs_dir": packs_dir}
    play, res = install(tmp_path, args)
    assert res.get("failed") and "without a checksum" in res["msg"] and "mypack" in res["msg"], res
    assert not os.path.exists(os.path.join(packs_dir, "mypack"))
    play, res = install(tmp_path, dict(args, allow_unverified=True))
    assert res["changed"] is True and not res.get("failed"), play


def test_local_directory_and_archive(tmp_path):
    tree = synth.make_pack_tree(str(tmp_path / "src" / "local"), "local", "0.1.0")
    packs_dir = str(tmp_path / "packs")
    args = {"name": "local", "src": tree, "packs_dir": packs_dir}
    play, res = install(tmp_path, args)
    assert res["changed"] is True and res["pack"]["source"]["type"] == "dir", play
    play, res = install(tmp_path, args)
    assert res["changed"] is False and not res.get("failed"), play
    with open(os.path.join(tree, "actions.txt"), "w") as handle:
        handle.write("changed\n")
    play, res = install(tmp_path, args)
    assert res["changed"] is True and res["packs"][0]["action"] == "reinstall", play
    with open(os.path.join(packs_dir, "local", "actions.txt")) as handle:
        assert handle.read() == "changed\n"

    archive, checksum = synth.make_pack_archive(str(tmp_path / "src"), "localarch", "0.2.0", fmt="zip")
    args = {"name": "localarch", "src": archive, "checksum": checksum, "packs_dir": packs_dir}
    play, res = install(tmp_path, args)
    assert res["changed"] is True and res["pack"]["version"] == "0.2.0", play
    play, res = install(tmp_path, args)
    assert res["changed"] is False and not res.get("failed"), play


def test_local_sources_need_only_pyyaml_on_the_target(site, tmp_path):
    """Local dirs and archives install on a host without requests/voluptuous; a download there names requests."""
    python = pack_site.bare_python()
    if python is None:
        pytest.skip("no Python with PyYAML but without requests on this machine")
    inventory = tmp_path / "inv.ini"
    inventory.write_text("localhost ansible_connection=local ansible_python_interpreter=%s\n" % python)
    packs_dir = str(tmp_path / "packs")
    archive, checksum = synth.make_pack_archive(str(tmp_path / "src"), "localarch", "0.2.0")
    args = {"name": "localarch", "src": archive, "checksum": checksum, "packs_dir": packs_dir}
    play, res = install(tmp_path, args, inventory=str(inventory))
    assert res["changed"] is True and res["pack"]["checksum"] == checksum, play
    play, res = install(tmp_path, args, inventory=str(inventory))
    assert res["changed"] is False and not res.get("failed"), play
    url, remote_checksum = site.archive("remote", "1.0.0")
    play, res = install(tmp_path, {"name": "remote", "src": url, "checksum": remote_checksum, "packs_dir": packs_dir,
                                   "ca_path": site.server.ca_path}, inventory=str(inventory))
    assert res["failed"] and "requests is required" in res["msg"] and "remote" in res["msg"], res
    assert sorted(n for n in os.listdir(packs_dir) if n != ".attune") == ["localarch"]  # .attune: provenance records


def test_list_of_packs_is_all_or_nothing(site, tmp_path):
    site.publish("slack", "2.0.0")
    site.publish("aws", "1.2.0", fmt="zip")
    broken = site.publish("broken", "1.0.0")
    broken["install_sources"][0]["checksum"] = "sha256:" + "0" * 64
    site.server.set_content("/index.json", make_index("public", site.entries))
    packs_dir = str(tmp_path / "packs")
    play, res = install(tmp_path, registry_args(site, packs_dir, name=["slack", "aws@1.2.0", "broken"]))
    assert res.get("failed") and "broken" in res["msg"] and "checksum" in res["msg"].lower(), res
    assert not os.path.exists(packs_dir) or os.listdir(packs_dir) == []

    play, res = install(tmp_path, registry_args(site, packs_dir, name=["slack", "aws@1.2.0"]))
    assert res["changed"] is True and [p["action"] for p in res["packs"]] == ["install", "install"], play
    assert set(os.listdir(packs_dir)) >= {"aws", "slack"}


def test_remove_unlisted_makes_the_list_exclusive(site, tmp_path):
    for ref in ("slack", "aws", "github"):
        site.publish(ref, "1.0.0")
    packs_dir = str(tmp_path / "packs")
    play, res = install(tmp_path, registry_args(site, packs_dir, name=["slack", "aws", "github"]))
    assert res["changed"] is True, play
    synth.make_pack_tree(os.path.join(packs_dir, "handmade"), "handmade", "1.0.0")  # no provenance: never removed
    before = snapshot(packs_dir)
    args = registry_args(site, packs_dir, name=["slack", "aws"], remove_unlisted=True)

    play, res = install(tmp_path, args, check=True, diff=True)
    assert res["changed"] is True and [(p["ref"], p["action"]) for p in res["packs"]] == [
        ("slack", "none"), ("aws", "none"), ("github", "remove")], play
    assert "github: would remove 1.0.0" in res["msg"] and "github" in res["diff"]["before"], res
    assert snapshot(packs_dir) == before  # check mode removed nothing

    play, res = install(tmp_path, args)
    assert res["changed"] is True and res["packs"][2]["previous"]["version"] == "1.0.0", play
    assert sorted(n for n in os.listdir(packs_dir) if not n.startswith(".")) == ["aws", "handmade", "slack"]
    play, res = install(tmp_path, args)
    assert res["changed"] is False and len(res["packs"]) == 2, play

    play, res = install(tmp_path, {"name": "slack", "state": "absent", "remove_unlisted": True, "packs_dir": packs_dir})
    assert res["failed"] and "remove_unlisted" in res["msg"], res
    assert os.path.isdir(os.path.join(packs_dir, "slack"))


def test_remove_unlisted_removes_nothing_when_an_install_fails(site, tmp_path):
    site.publish("slack", "1.0.0")
    site.publish("github", "1.0.0")
    broken = site.publish("broken", "1.0.0")
    broken["install_sources"][0]["checksum"] = "sha256:" + "0" * 64
    site.server.set_content("/index.json", make_index("public", site.entries))
    packs_dir = str(tmp_path / "packs")
    play, res = install(tmp_path, registry_args(site, packs_dir, name=["slack", "github"]))
    assert res["changed"] is True, play
    before = snapshot(packs_dir)
    play, res = install(tmp_path, registry_args(site, packs_dir, name=["slack", "broken"], remove_unlisted=True))
    assert res.get("failed") and "broken" in res["msg"] and "checksum" in res["msg"].lower(), res
    assert snapshot(packs_dir) == before  # github is still there, nothing half-installed


def test_source_from_controller_resolution(site, tmp_path):
    site.publish("slack", "2.1.0", git=True)
    packs_dir = str(tmp_path / "packs")
    tasks = [
        {"attune.packs.attune_pack_info": {"name": "slack@^2", "registries": [{"name": "public", "url": site.server.url("index.json")}],
                                           "ca_path": site.server.ca_path, "cache_dir": str(tmp_path / "cache")},
         "register": "info", "delegate_to": "localhost"},
        {MODULE: {"source": "{{ info.packs[0] }}", "packs_dir": packs_dir, "ca_path": site.server.ca_path}},
    ]
    play = run_tasks(tmp_path, tasks)
    info, res = play.host()
    assert not info.get("failed") and not res.get("failed"), (info, res)
    assert res["changed"] is True and res["pack"]["version"] == "2.1.0" and res["pack"]["registry"] == "public", play


def test_failures_name_pack_source_and_cause(site, tmp_path):
    good = site.publish("slack", "2.0.0")
    packs_dir = str(tmp_path / "packs")
    install(tmp_path, registry_args(site, packs_dir, name="slack@2.0.0"))
    before = snapshot(os.path.join(packs_dir, "slack"))

    # wrong checksum in the registry for a newer version
    entry = site.publish("slack", "2.1.0")
    entry["install_sources"][0]["checksum"] = "sha256:" + "1" * 64
    site.server.set_content("/index.json", make_index("public", site.entries))
    play, res = install(tmp_path, registry_args(site, packs_dir, name="slack", state="latest", refresh=True))
    assert res.get("failed") and "slack" in res["msg"] and "mismatch" in res["msg"].lower(), res
    assert snapshot(os.path.join(packs_dir, "slack")) == before

    # not found
    play, res = install(tmp_path, registry_args(site, packs_dir, name="nosuchpack"))
    assert res.get("failed") and "nosuchpack" in res["msg"], res

    # pack.yaml of the archive does not match the entry
    url, checksum = site.archive("other", "2.2.0")
    site.entries.append(synth.make_entry("slack", "2.2.0", archive_url=url, archive_checksum=checksum))
    site.server.set_content("/index.json", make_index("public", site.entries))
    play, res = install(tmp_path, registry_args(site, packs_dir, name="slack@2.2.0", refresh=True))
    assert res.get("failed") and "pack.yaml" in res["msg"] and "other" in res["msg"], res
    assert snapshot(os.path.join(packs_dir, "slack")) == before

    # registry needing authentication
    site.server.add_json("/private.json", make_index("corp", [good]), required_headers={"Authorization": TOKEN})
    args = registry_args(site, packs_dir, name="slack@2.0.0", force=True)
    args["registries"] = [{"name": "corp", "url": site.server.url("private.json")}]
    play, res = install(tmp_path, args)
    assert res.get("failed") and "corp" in res["msg"] and ("401" in res["msg"] or "auth" in res["msg"].lower()), res
    assert snapshot(os.path.join(packs_dir, "slack")) == before
    assert leftovers(packs_dir) == []


def test_packs_dir_defaults_to_the_config_file(site, tmp_path):
    site.publish("slack", "2.0.0")
    packs_dir = str(tmp_path / "from-config")
    config = tmp_path / "config.yaml"
    config.write_text("packs_base_dir: %s\npack_registry:\n  indices:\n    - url: %s\n      name: public\n  cache_enabled: false\n"
                      "  approved_private_hosts: ['127.0.0.1']\n"  # the outbound policy applies to config files
                      % (packs_dir, site.server.url("index.json")))
    play, res = install(tmp_path, {"name": "slack", "config_path": str(config), "ca_path": site.server.ca_path})
    assert res["changed"] is True and res["packs_dir"] == packs_dir, play
    assert os.path.isfile(os.path.join(packs_dir, "slack", "pack.yaml"))


def test_absent_refuses_traversal_and_removes_only_that_pack(tmp_path):
    packs_dir = str(tmp_path / "packs")
    for ref in ("keep", "drop"):
        tree = synth.make_pack_tree(str(tmp_path / "src" / ref), ref, "0.1.0")
        install(tmp_path, {"name": ref, "src": tree, "packs_dir": packs_dir})
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "pack.yaml").write_text("ref: victim\n")
    for bad in ("../victim", "/etc", "drop/..", ".attune-lock"):
        play, res = install(tmp_path, {"name": bad, "state": "absent", "packs_dir": packs_dir})
        assert res.get("failed") and "ref" in res["msg"].lower(), (bad, res)
    assert (victim / "pack.yaml").exists()
    play, res = install(tmp_path, {"name": "drop", "state": "absent", "packs_dir": packs_dir})
    assert res["changed"] is True, play
    assert sorted(n for n in os.listdir(packs_dir) if not n.startswith(".")) == ["keep"]
