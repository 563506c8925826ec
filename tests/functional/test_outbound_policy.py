"""Attune's outbound policy through ansible-playbook, against the tests' HTTPS server on 127.0.0.1.

Attune (crates/common/src/pack_registry/outbound.rs @5e1b952, ``OutboundUrlPolicy::validate`` /
``validate_addresses``; installer.rs ``validate_git_source``) fetches nothing from a private address that is not
approved, nothing from a public host that is not approved, and nothing at all with ``enabled: false``.  The
policy applies when ``pack_registry`` comes from the Attune config file or a policy key is given; the server's
request log proves that a refusal happens before any connection.
"""
import json
import os

import pytest

from support import gitrepo, synth
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

# a proxy that does not exist: a policy-governed fetch must not use it (reqwest's no_proxy(), git's http.proxy=)
NO_SUCH_PROXY = {"HTTPS_PROXY": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                 "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9", "NO_PROXY": "", "no_proxy": ""}


@pytest.fixture
def site(tmp_path):
    """slack 2.0.0 published on 127.0.0.1: an index, a git repository and the archive fallback."""
    with RegistryServer() as server:
        files = str(tmp_path / "files")
        os.makedirs(files)
        server.add_directory("/files", files)
        archive, archive_checksum = synth.make_pack_archive(files, "slack", "2.0.0")
        bare, commit = gitrepo.make_git_pack_repo(files, "slack", "2.0.0", name="slack-git")
        entry = synth.make_entry("slack", "2.0.0", git_url=server.url("files/" + os.path.basename(bare)), git_commit=commit,
                                 git_checksum=gitrepo.checkout_checksum(bare),
                                 archive_url=server.url("files/" + os.path.basename(archive)), archive_checksum=archive_checksum)
        server.entry = entry
        server.add_json("/index.json", make_index("public", [entry]))
        yield server


def config_file(tmp_path, lines, name="config.yaml"):
    path = tmp_path / name
    path.write_text("pack_registry:\n" + "".join("  %s\n" % line for line in lines))
    return str(path)


def run(tmp_path, module, args, env=None):
    play = run_tasks(tmp_path, [{module: args}], env=env)
    assert play.results, play
    return play.host()[0]


def file_requests(server):
    return [r for r in server.requests if r.path.startswith("/files/")]


def assert_refused(result, host, key):
    assert result.get("failed"), result
    assert result["error"]["kind"] == "outbound_refused", result
    assert host in result["msg"] and key in result["msg"], result["msg"]


@pytest.mark.parametrize("approval", [None, "approved_private_hosts: ['127.0.0.1']", "approved_private_cidrs: ['127.0.0.0/8']",
                                      "approved_public_hosts: ['127.0.0.1']"])
def test_index_on_127_0_0_1_needs_a_private_approval(site, tmp_path, approval):
    # outbound.rs validate_addresses: a private/special answer needs approved_private_hosts or a CIDR; a public
    # approval does not cover it (tests::private_literal_needs_private_approval)
    lines = ["cache_enabled: false", "indices:", "  - {name: public, url: '%s'}" % site.url("index.json")]
    config = config_file(tmp_path, lines + ([approval] if approval else []))
    result = run(tmp_path, "attune.packs.attune_pack_info", {"name": "slack", "config_path": config, "ca_path": site.ca_path},
                 env=NO_SUCH_PROXY)
    if approval is None or approval.startswith("approved_public_hosts"):
        assert_refused(result, "127.0.0.1", "approved_private_hosts")
        assert result["error"]["host"] == "127.0.0.1" and result["error"]["key"] == "pack_registry.approved_private_hosts"
        assert site.count("/index.json") == 0  # refused before connecting
    else:
        assert not result.get("failed"), result
        assert result["packs"][0]["version"] == "2.0.0" and site.count("/index.json") == 1  # and no proxy was used


@pytest.mark.parametrize("approved", [False, True])
def test_controller_side_resolution_applies_the_policy_of_the_config_it_reads(site, tmp_path, approved):
    # resolve_on=controller reads the config on the controller: the same decisions, made there
    lines = ["cache_enabled: false", "indices:", "  - {name: public, url: '%s'}" % site.url("index.json")]
    config = config_file(tmp_path, lines + (["approved_private_cidrs: ['127.0.0.1/32']"] if approved else []))
    result = run(tmp_path, "attune.packs.attune_pack_info", {
        "name": "slack", "config_path": config, "ca_path": site.ca_path, "resolve_on": "controller"})
    if approved:
        assert not result.get("failed"), result
        assert site.count("/index.json") == 1
    else:
        assert_refused(result, "127.0.0.1", "approved_private_cidrs")
        assert site.count("/index.json") == 0


def test_localhost_is_a_private_name_and_tls_is_checked_for_it(site, tmp_path):
    # 'localhost' resolves to loopback: private, even when listed as a public host; once approved, the connection
    # goes to the checked address and the certificate is verified for the name 'localhost'
    index = site.url("index.json", host="localhost")
    base = ["cache_enabled: false", "indices:", "  - {name: public, url: '%s'}" % index]
    refused = run(tmp_path, "attune.packs.attune_pack_info", {
        "name": "slack", "ca_path": site.ca_path, "config_path": config_file(tmp_path, base + ["approved_public_hosts: [localhost]"])})
    assert_refused(refused, "localhost", "approved_private_hosts")
    assert site.count("/index.json") == 0
    allowed = run(tmp_path, "attune.packs.attune_pack_info", {
        "name": "slack", "ca_path": site.ca_path, "config_path": config_file(tmp_path, base + ["approved_private_hosts: [localhost]"])})
    assert not allowed.get("failed"), allowed
    assert site.count("/index.json") == 1


def test_unapproved_public_host_is_refused_without_a_connection(tmp_path):
    # the default approved_public_hosts are GitHub's; any other public name is refused before any DNS query or
    # connection (so this test needs no network)
    config = config_file(tmp_path, ["indices:", "  - {name: corp, url: 'https://packs.example.com/index.json'}"])
    result = run(tmp_path, "attune.packs.attune_pack_info", {"name": "slack", "config_path": config, "cache_dir": str(tmp_path / "c")})
    assert_refused(result, "packs.example.com", "approved_public_hosts")


def test_archive_and_git_sources_are_checked_too(site, tmp_path):
    # the index is read from file:// (allowed: a deliberate difference from Attune); its git source and archive
    # fallback are on 127.0.0.1: both refused before connecting until the config approves the address
    index = tmp_path / "index.json"
    index.write_text(json.dumps(make_index("local", [site.entry])))
    packs_dir = str(tmp_path / "packs")
    lines = ["cache_enabled: false", "indices:", "  - {name: local, url: 'file://%s'}" % index]
    args = {"name": "slack", "packs_dir": packs_dir, "ca_path": site.ca_path, "config_path": config_file(tmp_path, lines)}
    result = run(tmp_path, "attune.packs.attune_pack", args)
    assert_refused(result, "127.0.0.1", "approved_private_hosts")
    assert "git" in result["msg"] and "archive" in result["msg"]  # both sources were tried and refused
    assert file_requests(site) == [] and not os.path.exists(os.path.join(packs_dir, "slack"))
    args["config_path"] = config_file(tmp_path, lines + ["approved_private_cidrs: ['127.0.0.1/32']"], "approved.yaml")
    result = run(tmp_path, "attune.packs.attune_pack", args, env=NO_SUCH_PROXY)
    assert result.get("changed") and not result.get("failed"), result
    assert os.path.isfile(os.path.join(packs_dir, "slack", "pack.yaml"))
    assert any(r.path.startswith("/files/slack-git") for r in file_requests(site))  # git, pinned, without the proxy


def test_enabled_false_stops_direct_sources(site, tmp_path):
    # pack_registry.enabled: false stops all remote traffic, also for a direct archive URL
    config = config_file(tmp_path, ["enabled: false", "approved_private_hosts: ['127.0.0.1']"])
    archive = site.entry["install_sources"][1]
    result = run(tmp_path, "attune.packs.attune_pack", {
        "name": "slack", "src": archive["url"], "checksum": archive["checksum"],
        "packs_dir": str(tmp_path / "packs"), "ca_path": site.ca_path, "config_path": config})
    assert_refused(result, "", "pack_registry.enabled")
    assert result["error"]["key"] == "pack_registry.enabled"
    assert file_requests(site) == []


def test_registries_option_alone_keeps_the_earlier_behaviour(site, tmp_path):
    # no config file section, no policy key: nothing is checked (documented); a policy option turns it on
    args = {"name": "slack", "registries": [{"name": "public", "url": site.url("index.json")}], "ca_path": site.ca_path,
            "cache_enabled": False, "config_path": None}
    env = {"ATTUNE_CONFIG": str(tmp_path / "no-config.yaml")}
    result = run(tmp_path, "attune.packs.attune_pack_info", args, env=env)
    assert not result.get("failed"), result
    result = run(tmp_path, "attune.packs.attune_pack_info", dict(args, approved_public_hosts=["github.com"]), env=env)
    assert_refused(result, "127.0.0.1", "approved_private_hosts")
    result = run(tmp_path, "attune.packs.attune_pack_info", dict(args, approved_private_hosts=["127.0.0.1"]), env=env)
    assert not result.get("failed"), result


def test_lock_pinning_a_git_branch_checks_the_host_before_ls_remote(site, tmp_path):
    # attune_pack_lock pins a git source that names a branch to the commit it points to now (git ls-remote): that
    # remote operation is governed by the same policy as clone (installer.rs validate_git_source, outbound.rs
    # validate_addresses), so an unapproved 127.0.0.1 is refused before git connects
    entry = dict(site.entry, install_sources=[dict(site.entry["install_sources"][0], ref="main")])
    assert entry["install_sources"][0]["type"] == "git"
    index = tmp_path / "index.json"
    index.write_text(json.dumps(make_index("local", [entry])))
    lines = ["cache_enabled: false", "indices:", "  - {name: local, url: 'file://%s'}" % index]
    lock = str(tmp_path / "packs.lock.yml")
    args = {"name": ["slack"], "path": lock, "ca_path": site.ca_path, "config_path": config_file(tmp_path, lines)}
    result = run(tmp_path, "attune.packs.attune_pack_lock", args, env=NO_SUCH_PROXY)
    assert_refused(result, "127.0.0.1", "approved_private_hosts")
    assert file_requests(site) == [] and not os.path.exists(lock)
    args["config_path"] = config_file(tmp_path, lines + ["approved_private_cidrs: ['127.0.0.1/32']"], "approved.yaml")
    result = run(tmp_path, "attune.packs.attune_pack_lock", args, env=NO_SUCH_PROXY)
    assert result.get("changed") and not result.get("failed"), result
    locked = result["lock"][0]["source"]
    assert locked["type"] == "git" and locked["ref"] == site.entry["install_sources"][0]["ref"], result["lock"]
    assert any(r.path.startswith("/files/slack-git") for r in file_requests(site))  # ls-remote went to the checked address
