"""The registry_config role and its playbooks, run for real with ansible-playbook on a simulated fleet.

Hosts are ``ansible_connection=local`` hosts, each with its own config path under
the test's tmp dir; one host is reached over a real SSH connection to an sshd the
tests start on 127.0.0.1, with a target Python (pyenv 3.9) different from the
controller's.  Results come from the test-only ``attune_test_events`` callback
(tests/support/fleet.py), the human output is searched for leaked tokens.
"""
import glob
import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys

import pytest
import yaml

from conftest import COLLECTIONS_ROOT, REPO_ROOT
from support.attune_config_validator import assert_loads
from support.fleet import BIN_DIR, Fleet, run_playbook
from support.registry_server import RegistryServer
from support.sshd import SshdUnavailable, SshServer
from testdata import make_entry, make_index

MODULE = "attune.packs.attune_registry_config"
TOKEN = "Bearer role-TOKEN-7c41e2d9aa03"
SECRET = TOKEN.split()[-1]
OWNER = pwd.getpwuid(os.getuid()).pw_name
GROUP = grp.getgrgid(os.getgid()).gr_name
SECTION_KEYS = (
    "enabled", "indices", "cache_ttl", "cache_enabled", "timeout", "connect_timeout", "index_max_bytes", "archive_max_bytes",
    "verify_checksums", "allow_http", "allow_unverified_direct_remote_installs", "approved_public_hosts",
    "approved_private_hosts", "approved_private_cidrs",
)

EXISTING = """\
# Attune configuration of {host} (hand-written)
database:
  url: postgresql://attune@db.internal/attune   # primary
  max_connections: 20

security:
  jwt_secret: "jwt-{host}"
  allow_self_registration: false

packs_base_dir: /opt/attune/packs

# Registries: replaced by the role
pack_registry:
  # a hand-written comment inside the block
  cache_ttl: 60
  indices:
    - url: https://old.example.com/index.json

# Logging, after the block
log:
  level: info
  targets: [stdout, file]
"""
FLOW_STYLE = "{database: {url: 'postgresql://db/attune'}, packs_base_dir: /srv/packs}  # one flow mapping\n"


def indices(token=TOKEN):
    return [
        {"name": "corp", "url": "https://packs.corp.example/index.json", "priority": 1, "headers": {"Authorization": token}},
        {"name": "public", "url": "https://raw.githubusercontent.com/attune-system/index/main/index.json", "priority": 10},
    ]


def common_vars(**extra):
    values = {
        "registry_config_indices": indices(),
        "registry_config_owner": OWNER,
        "registry_config_group": GROUP,
        "registry_config_approved_private_hosts": ["packs.corp.example"],
        "ansible_become": False,  # the playbooks use become; the tests already run as the files' owner
    }
    values.update(extra)
    return values


def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as handle:
        handle.write(text)
    os.chmod(path, mode)
    with open(path, "rb") as handle:
        return handle.read()


def read(path):
    with open(path, "rb") as handle:
        return handle.read()


def others(data):
    return dict((key, value) for key, value in data.items() if key != "pack_registry")


def assert_section(section, cache_ttl=3600, token=TOKEN):
    assert list(section) == list(SECTION_KEYS)  # every key, explicit, in specification order
    assert section["cache_ttl"] == cache_ttl and section["timeout"] == 120 and section["connect_timeout"] == 10
    assert section["enabled"] is True and section["allow_http"] is False and section["verify_checksums"] is True
    assert section["approved_public_hosts"] == ["github.com", "codeload.github.com", "raw.githubusercontent.com"]
    assert section["approved_private_hosts"] == ["packs.corp.example"]
    assert section["indices"] == [
        {"url": "https://packs.corp.example/index.json", "name": "corp", "priority": 1, "enabled": True,
         "headers": {"Authorization": token}},
        {"url": "https://raw.githubusercontent.com/attune-system/index/main/index.json", "name": "public", "priority": 10,
         "enabled": True, "headers": {}},
    ]


def assert_no_secret(run, *secrets, events=True):
    for secret in secrets or (SECRET,):
        assert secret not in run.output, "token leaked in ansible-playbook output"
        if events:
            for event in run.events:
                assert secret not in repr(event), "token leaked in a task result: %r" % event.get("task")


# --------------------------------------------------------------------------- four-step pattern, comments


def test_four_step_pattern_on_a_fleet_of_22_hosts(tmp_path):
    fleet = Fleet(tmp_path, 22, common_vars=common_vars())
    before = {}
    for number, host in enumerate(fleet.names):
        if number % 2 == 0:
            before[host] = write(fleet.config_path(host), EXISTING.format(host=host))
    flow_host = fleet.names[-1]
    before[flow_host] = write(fleet.config_path(flow_host), FLOW_STYLE)
    inventory = fleet.write_inventory(host_vars={"worker03": {"registry_config_cache_ttl": 60}})

    def step(check):
        run = run_playbook(tmp_path, "configure_registries.yml", inventory, check=check, diff=check)
        assert run.returncode == 0, run
        results = run.by_host(MODULE)
        assert sorted(results) == fleet.names, run
        assert all(event["status"] in ("ok", "changed") for event in results.values()), run
        assert_no_secret(run)
        return run, results

    # 1. check mode: every host would change, nothing is written (not even a directory)
    run, results = step(check=True)
    assert all(event["changed"] for event in results.values())
    assert "+  cache_ttl: 3600" in run.stdout and "Authorization: <redacted>" in run.stdout
    for host in fleet.names:
        path = fleet.config_path(host)
        if host in before:
            assert read(path) == before[host]
        else:
            assert not os.path.exists(os.path.dirname(path))

    # 2. real run: every host changes; files are complete, private and keep the other sections
    run, results = step(check=False)
    assert all(event["changed"] for event in results.values())
    written = {}
    for host in fleet.names:
        path = fleet.config_path(host)
        written[host] = read(path)
        data = yaml.safe_load(written[host])
        assert_section(data["pack_registry"], cache_ttl=60 if host == "worker03" else 3600)
        assert_loads(path)  # Attune loads what the role wrote (validator following config.rs, issue 9 item 6)
        info = os.stat(path)
        assert stat.S_IMODE(info.st_mode) == 0o640 and info.st_uid == os.getuid() and info.st_gid == os.getgid()
        result = results[host]["result"]
        assert result["created"] is (host not in before)
        if host == flow_host:
            assert others(data) == yaml.safe_load(FLOW_STYLE)
            assert result["comments_preserved"] is False and "comments were not kept" in result["msg"]
        elif host in before:
            assert others(data) == others(yaml.safe_load(before[host]))
            assert result["comments_preserved"] is True
            text = written[host].decode()
            assert "# Logging, after the block" in text and "# primary" in text and "# Registries: replaced by the role" in text
            assert "a hand-written comment inside the block" not in text
            assert text.startswith(EXISTING.format(host=host).split("pack_registry:")[0])

    # 3. and 4. check mode again, real again: no change anywhere, files untouched
    for check in (True, False):
        run, results = step(check=check)
        assert not any(event["changed"] for event in results.values()), run
        assert all(run.stats[host]["changed"] == 0 for host in fleet.names), run.stats
        for host in fleet.names:
            assert read(fleet.config_path(host)) == written[host]


def test_mode_and_owner_drift_is_a_change_and_is_repaired(tmp_path):
    fleet = Fleet(tmp_path, 2, common_vars=common_vars())
    inventory = fleet.write_inventory()
    assert run_playbook(tmp_path, "configure_registries.yml", inventory).returncode == 0
    path = fleet.config_path("worker01")
    content = read(path)
    os.chmod(path, 0o644)
    check = run_playbook(tmp_path, "configure_registries.yml", inventory, check=True, diff=True)
    assert check.by_host(MODULE)["worker01"]["changed"] and not check.by_host(MODULE)["worker02"]["changed"]
    assert '"mode": "0644"' in check.stdout and '"mode": "0640"' in check.stdout
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o644  # check mode changed nothing
    real = run_playbook(tmp_path, "configure_registries.yml", inventory)
    assert real.by_host(MODULE)["worker01"]["changed"] and not real.by_host(MODULE)["worker02"]["changed"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640 and read(path) == content


# --------------------------------------------------------------------------- invalid variables

BAD_CASES = {
    "url_credentials": ({"registry_config_indices": [{"name": "corp", "url": "https://user:pw@packs.example/i.json"}]},
                        ["registry_config_indices[0] (corp).url", "credentials"]),
    "url_query": ({"registry_config_indices": [{"name": "q", "url": "https://packs.example/i.json?x=1"}]},
                  ["registry_config_indices[0] (q).url", "query string"]),
    "url_scheme": ({"registry_config_indices": [{"url": "ftp://packs.example/i.json"}]}, ["registry_config_indices[0].url", "ftp://"]),
    "forbidden_header": ({"registry_config_indices": [
        {"name": "ok", "url": "https://a.example/i.json", "headers": {"Authorization": TOKEN}},
        {"name": "corp", "url": "https://b.example/i.json", "headers": {"Host": "evil.example"}}]},
        ["registry_config_indices[1] (corp).headers", "'Host'", "managed by the HTTP client"]),
    "proxy_header": ({"registry_config_indices": [
        {"name": "corp", "url": "https://b.example/i.json", "headers": {"Proxy-Authorization": TOKEN}}]},
        ["registry_config_indices[0] (corp).headers", "'Proxy-Authorization'"]),
    "http_not_allowed": ({"registry_config_indices": [{"name": "plain", "url": "http://packs.example/i.json"}]},
                         ["registry_config_indices[0] (plain).url", "allow_http"]),
    "duplicate_names": ({"registry_config_indices": [{"name": "corp", "url": "https://a.example/i.json"},
                                                     {"name": "corp", "url": "https://b.example/i.json"}]},
                        ["registry_config_indices[1] (corp).name", "duplicate registry name 'corp'"]),
    "missing_url": ({"registry_config_indices": [{"name": "nourl"}]}, ["registry_config_indices", "url"]),
    "type_int": ({"registry_config_cache_ttl": "soon"}, ["registry_config_cache_ttl", "int"]),
    "type_bool": ({"registry_config_allow_http": "perhaps"}, ["registry_config_allow_http"]),
    "type_list": ({"registry_config_indices": {"url": "https://a.example/i.json"}}, ["registry_config_indices"]),
    "type_priority": ({"registry_config_indices": [{"url": "https://a.example/i.json", "priority": "high"}]},
                      ["registry_config_indices", "priority", "high"]),
    "unknown_index_key": ({"registry_config_indices": [{"url": "https://a.example/i.json", "token": "x"}]},
                          ["registry_config_indices", "token"]),
    "zero_timeout": ({"registry_config_timeout": 0}, ["registry_config_timeout: must be greater than 0"]),
    "negative_ttl": ({"registry_config_cache_ttl": -5}, ["registry_config_cache_ttl: must not be negative"]),
    "bad_cidr": ({"registry_config_approved_private_cidrs": ["10.0.0.0/33"]}, ["registry_config_approved_private_cidrs[0]"]),
    "bad_host": ({"registry_config_approved_private_hosts": ["not a host"]}, ["registry_config_approved_private_hosts[0]"]),
    # Attune's IpCidr::parse (outbound.rs) needs address/prefix; RegistryIndexConfig.priority is a u32 (config.rs)
    "cidr_without_prefix": ({"registry_config_approved_private_cidrs": ["10.0.0.1"]},
                            ["registry_config_approved_private_cidrs[0]", "missing prefix"]),
    "priority_beyond_u32": ({"registry_config_indices": [{"name": "corp", "url": "https://a.example/i.json", "priority": 4294967296}]},
                            ["registry_config_indices[0] (corp).priority", "4294967295"]),
    "header_not_latin1": ({"registry_config_indices": [{"name": "corp", "url": "https://a.example/i.json",
                                                        "headers": {"Authorization": "Bearer \u20ac" + SECRET}}]},
                          ["registry_config_indices[0] (corp).headers.Authorization", "latin-1"]),
    "unknown_owner": ({"registry_config_owner": "no-such-user-attune"}, ["owner 'no-such-user-attune' does not exist"]),
    "broken_file": ({}, ["is not valid YAML, refusing to rewrite it"]),
}


def test_invalid_variables_fail_with_the_variable_named_and_leave_the_file_alone(tmp_path):
    fleet = Fleet(tmp_path, 0, common_vars=common_vars())
    host_vars = {}
    before = {}
    for case, (variables, _expected) in BAD_CASES.items():
        host = "bad_" + case
        fleet.add_host(host)
        host_vars[host] = variables
        text = "database: [unclosed\n" if case == "broken_file" else EXISTING.format(host=host)
        before[host] = write(fleet.config_path(host), text, mode=0o600)
    fleet.add_host("bad_new_file")  # no file yet: must not be created
    host_vars["bad_new_file"] = BAD_CASES["forbidden_header"][0]
    fleet.add_host("good")
    run = run_playbook(tmp_path, "configure_registries.yml", fleet.write_inventory(host_vars=host_vars), verbosity=1)
    assert run.returncode != 0
    assert run.by_host(MODULE)["good"]["changed"], run
    failures = dict((event["host"], event) for event in run.results() if event["status"] == "failed")
    for case, (_variables, expected) in BAD_CASES.items():
        host = "bad_" + case
        assert host in failures, "%s did not fail\n%r" % (host, run)
        message = failures[host]["result"]["msg"]
        for fragment in expected:
            assert fragment in message, "%s: %r not in %r" % (case, fragment, message)
        assert read(fleet.config_path(host)) == before[host], case
        assert stat.S_IMODE(os.stat(fleet.config_path(host)).st_mode) == 0o600
        assert not glob.glob(os.path.join(os.path.dirname(fleet.config_path(host)), ".config.yaml.*")), "temporary file left"
    assert "registry_config_indices[1] (corp).headers" in failures["bad_new_file"]["result"]["msg"]
    assert not os.path.exists(os.path.dirname(fleet.config_path("bad_new_file")))
    assert "pack_registry." not in failures["bad_duplicate_names"]["result"]["msg"]  # named after the role variable
    assert_no_secret(run)


# --------------------------------------------------------------------------- secrets and backups


def test_token_never_in_output_or_diff_and_backups_get_the_same_mode(tmp_path):
    fleet = Fleet(tmp_path, 3, common_vars=common_vars(registry_config_backup=True, registry_config_mode="0600"))
    original = write(fleet.config_path("worker01"), EXISTING.format(host="worker01"), mode=0o644)

    first = run_playbook(tmp_path, "configure_registries.yml", fleet.write_inventory(), diff=True, verbosity=1)
    assert first.returncode == 0, first
    assert_no_secret(first)
    assert "Authorization: <redacted>" in first.stdout
    assert '"Authorization": "<redacted>"' in first.stdout  # the -v result shows the redacted section
    results = first.by_host(MODULE)
    backup = results["worker01"]["result"]["backup_file"]
    assert read(backup) == original
    assert "backup_file" not in results["worker02"]["result"]  # nothing to back up for a new file

    rotated = "Bearer rotated-TOKEN-0d5e8b61f4"
    inventory = fleet.write_inventory(group_vars={"registry_config_indices": indices(rotated)})
    check = run_playbook(tmp_path, "configure_registries.yml", inventory, check=True, diff=True, verbosity=3)
    assert check.returncode == 0, check
    assert_no_secret(check, SECRET, rotated.split()[-1])
    assert "Authorization: <redacted, changed>" in check.stdout  # a rotation is visible, the values are not
    second = run_playbook(tmp_path, "configure_registries.yml", inventory, diff=True, verbosity=3)
    assert second.returncode == 0, second
    assert_no_secret(second, SECRET, rotated.split()[-1])
    for host in fleet.names:
        path = fleet.config_path(host)
        config = os.stat(path)
        assert stat.S_IMODE(config.st_mode) == 0o600
        assert rotated.encode() in read(path)
        backups = sorted(glob.glob(path + ".*~"))
        assert len(backups) == (2 if host == "worker01" else 1), backups
        for name in backups:
            info = os.stat(name)
            assert stat.S_IMODE(info.st_mode) == 0o600, "%s has mode %o" % (name, stat.S_IMODE(info.st_mode))
            assert (info.st_uid, info.st_gid) == (config.st_uid, config.st_gid)
        rotation_backup = second.by_host(MODULE)[host]["result"]["backup_file"]
        assert TOKEN.encode() in read(rotation_backup) and rotated.encode() not in read(rotation_backup)
    # the world-readable original was copied into a private backup
    assert stat.S_IMODE(os.stat(backup).st_mode) == 0o600


# --------------------------------------------------------------------------- handler


@pytest.fixture
def init_script(tmp_path):
    """A throw-away SysV init script that logs its actions (service(8) runs it for the service module)."""
    if os.geteuid() != 0 or not shutil.which("service") or not os.path.isdir("/etc/init.d"):
        pytest.skip("needs root, service(8) and /etc/init.d to run a real service restart")
    name = "attune-test-%d" % os.getpid()
    log = tmp_path / "service.log"
    script = "/etc/init.d/" + name
    with open(script, "w") as handle:
        handle.write("#!/bin/sh\necho \"$1\" >> %s\nexit 0\n" % log)
    os.chmod(script, 0o755)
    try:
        yield name, log
    finally:
        os.unlink(script)


def test_handler_restarts_services_only_when_the_file_changed(tmp_path, init_script):
    name, log = init_script

    def restarts():
        # service(8) restarts a SysV service as "stop" then "start" (a status query is no restart)
        return log.read_text().split().count("start") if log.exists() else 0

    fleet = Fleet(tmp_path, 2, common_vars=common_vars(registry_config_restart_services=[name]))
    inventory = fleet.write_inventory()
    check = run_playbook(tmp_path, "configure_registries.yml", inventory, check=True)
    assert check.returncode == 0, check
    assert restarts() == 0  # check mode restarts nothing
    first = run_playbook(tmp_path, "configure_registries.yml", inventory)
    assert first.returncode == 0, first
    assert restarts() == 2 and len([e for e in first.events if e.get("handler") and e["status"] == "changed"]) == 2
    again = run_playbook(tmp_path, "configure_registries.yml", inventory)
    assert again.returncode == 0 and restarts() == 2
    assert not [e for e in again.events if e.get("handler")]
    changed_one = run_playbook(tmp_path, "configure_registries.yml",
                               fleet.write_inventory(host_vars={"worker02": {"registry_config_cache_ttl": 10}}))
    assert changed_one.returncode == 0 and restarts() == 3
    assert [e["host"] for e in changed_one.events if e.get("handler")] == ["worker02"]


# --------------------------------------------------------------------------- a real SSH host with another Python


@pytest.fixture(scope="module")
def ssh_host(tmp_path_factory):
    """(SshServer, interpreter): sshd on 127.0.0.1 and a bare venv of pyenv's Python 3.9 (no PyYAML/requests/voluptuous)."""
    pythons = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9.*/bin/python")))
    if not pythons:
        pytest.skip("pyenv has no Python 3.9 to use as the remote host's interpreter")
    workdir = tmp_path_factory.mktemp("ssh-host")
    venv = str(workdir / "py39")
    subprocess.run([pythons[-1], "-m", "venv", venv], check=True, capture_output=True)
    python = os.path.join(venv, "bin", "python")
    missing = subprocess.run([python, "-c", "import yaml"], capture_output=True, check=False)
    assert missing.returncode != 0, "the bare venv should not have PyYAML yet"
    try:
        server = SshServer(str(workdir / "sshd")).start()
    except SshdUnavailable as exc:
        pytest.skip("cannot run sshd: %s" % exc)
    try:
        yield server, python
    finally:
        server.stop()


def test_remote_host_over_ssh_with_another_python_configured_and_queried(tmp_path, ssh_host):
    server, python = ssh_host
    with RegistryServer() as registry:
        registry.add_json("/corp.json", make_index("corp", [make_entry("slack", "1.4.2", "c"), make_entry("internal", "0.1.0", "d")]),
                          required_headers={"Authorization": TOKEN})
        registry.add_json("/public.json", make_index("public", [make_entry("slack", "2.1.0"), make_entry("aws", "1.2.0")]))
        registries = [
            {"name": "corp", "url": registry.url("corp.json"), "priority": 1, "headers": {"Authorization": TOKEN},
             "ca_path": registry.ca_path},
            {"name": "public", "url": registry.url("public.json"), "priority": 10, "ca_path": registry.ca_path},
        ]
        variables = common_vars(registry_config_indices=registries, registry_config_approved_private_hosts=["127.0.0.1"])
        fleet = Fleet(tmp_path, 2, common_vars=variables)
        remote_vars = server.inventory_vars(python)
        remote_vars.update(registry_config_install_requirements=True)
        fleet.add_host("remote01", **remote_vars)
        inventory = fleet.write_inventory()
        run = run_playbook(tmp_path, "query_fleet.yml", inventory, extra_vars={"attune_query": "slack"},
                           env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
        assert run.returncode == 0, run
        assert_no_secret(run)

        # the remote host really ran modules over SSH with Python 3.9 (the controller runs 3.11+)
        facts = run.results(action="ansible.builtin.setup", host="remote01")[0]["result"]["ansible_facts"]
        assert facts["ansible_python"]["executable"] == python
        assert facts["ansible_python"]["version"]["major"] == 3 and facts["ansible_python"]["version"]["minor"] == 9
        assert sys.version_info[:2] != (3, 9)
        assert "Accepted publickey for %s" % OWNER in server.read_log()
        # the role installed the libraries with pip into that interpreter
        pip = run.results(action="ansible.builtin.pip", host="remote01")
        assert pip and pip[0]["status"] == "changed", run
        assert subprocess.run([python, "-c", "import yaml, requests, voluptuous"], check=False).returncode == 0
        assert not run.results(action="ansible.builtin.pip", host="worker01")  # include_tasks not run there

        for host in fleet.names:
            section = yaml.safe_load(read(fleet.config_path(host)))["pack_registry"]
            assert section["indices"][0]["headers"] == {"Authorization": TOKEN}
            listed = run.by_host("attune.packs.attune_pack_registries")[host]["result"]
            assert [(r["name"], r["reachable"]) for r in listed["registries"]] == [("corp", True), ("public", True)]
            found = run.by_host("attune.packs.attune_pack_search")[host]["result"]
            assert [(p["ref"], p["registry"], p["version"]) for p in found["packs"]] == [("slack", "corp", "1.4.2")]
            assert found["failed_registries"] == []
        summaries = dict((e["host"], e["result"]["msg"]) for e in run.results(action="ansible.builtin.debug"))
        assert sorted(summaries) == fleet.names
        for message in summaries.values():
            assert message.startswith("2/2 enabled registries reachable; 1 packs match 'slack': slack;"), message
            assert message.endswith("failed registries: none"), message
        # the header from the config file reached the registry (from every host, the remote one included)
        assert registry.count("/corp.json") >= 1
        assert all(r.headers.get("Authorization") == TOKEN for r in registry.requests if r.path == "/corp.json")

        # second run: nothing changes anywhere, requirements included
        again = run_playbook(tmp_path, "configure_registries.yml", inventory)
        assert again.returncode == 0, again
        assert all(again.stats[host]["changed"] == 0 for host in fleet.names), again.stats
        assert not again.results(action="ansible.builtin.pip", host="remote01")[0]["changed"]


# --------------------------------------------------------------------------- ansible-lint


def test_ansible_lint_production_profile():
    lint = os.path.join(BIN_DIR, "ansible-lint")
    if not os.path.exists(lint):
        lint = shutil.which("ansible-lint")
    if not lint:
        pytest.skip("ansible-lint is not installed (pip install -r tests/requirements.txt)")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, PATH=BIN_DIR + os.pathsep + os.environ.get("PATH", ""),
               NO_COLOR="1")
    cmd = [lint, "--nocolor", "--profile", "production", "--offline",
           "roles/registry_config", "playbooks/configure_registries.yml", "playbooks/query_fleet.yml"]
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Profile 'production' was required, and it passed" in proc.stdout + proc.stderr
