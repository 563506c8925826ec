"""The role attune.packs.packs and the playbooks pin_fleet / drift_report, run for real on simulated fleets.

Hosts are ``ansible_connection=local`` inventory hosts, each with its own
``packs_dir`` under the test's tmp dir; the big fleet also has one host reached
over a real SSH connection to an sshd started on 127.0.0.1, with a target Python
(pyenv 3.8) different from the controller's.  Three registries are served by one
HTTPS test server that logs every request, so the tests count index and archive
GETs.  Results come from the test-only ``attune_test_events`` callback.

Runtime: about 3 minutes on 2 CPUs, most of it the 51-host fleet, which one cold
run and one drift report serve for several assertions.
"""
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from support import synth
from support.fleet import BIN_DIR, Fleet, ansible_env, run_playbook
from support import pack_site
from support.pack_site import EXPECTED, PACKS, PackSite
from support.registry_server import RegistryServer
from support.sshd import SshdUnavailable, SshServer

PACK = "attune.packs.attune_pack"
LOCK = "attune.packs.attune_pack_lock"
INSTALLED = "attune.packs.attune_pack_installed"
TOKEN = "Bearer corp-registry-TOKEN-51f0c2a9e7"  # the corp registry refuses requests without it
INSTALL_TASK = "Install the locked packs"
LOCK_TASK = "Lock the pack list on the controller"


@pytest.fixture
def site(tmp_path):
    with RegistryServer() as server:
        yield PackSite(server, str(tmp_path), token=TOKEN)


def bare_python():
    """A target interpreter without requests when there is one (else the controller's)."""
    return pack_site.bare_python() or sys.executable


def make_fleet(workdir, size, python=None, **group_vars):
    fleet = Fleet(workdir, size, python=python, common_vars=group_vars)
    for host in fleet.names:
        fleet.hosts[host]["packs_dir"] = packs_dir(workdir, host)
    return fleet


def packs_dir(workdir, host):
    return os.path.join(str(workdir), "hosts", host, "packs")


def role_vars(site, workdir, **extra):
    values = {
        "packs_list": list(PACKS),
        "packs_lock_file": os.path.join(str(workdir), "packs.lock.yml"),
        "packs_registry_options": site.options(os.path.join(str(workdir), "controller-cache")),
    }
    values.update(extra)
    return values


def installed(directory):
    """{ref: metadata} of the packs in ``directory`` that attune_pack installed."""
    result = {}
    for meta in sorted(glob.glob(os.path.join(directory, ".attune", "*.json"))):  # provenance outside the trees (issue 9 item 9)
        with open(meta) as handle:
            data = json.load(handle)
        result[data["pack_ref"]] = data
    return result


def file_digests(root):
    """{relative path: sha256} of the files of a pack tree, without the .attune provenance directory."""
    digests = {}
    for directory, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if not (directory == root and name == ".attune")]
        for name in files:
            path = os.path.join(directory, name)
            with open(path, "rb") as handle:
                digests[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return digests


def read_lock(path):
    with open(path) as handle:
        return dict((entry["ref"], entry) for entry in yaml.safe_load(handle)["packs"])


def converge(workdir, inventory, check=False, diff=False, extra_vars=None, limit=None):
    run = run_playbook(workdir, "pin_fleet.yml", inventory, check=check, diff=diff, extra_vars=extra_vars, limit=limit)
    assert run.returncode == 0, run
    return run


def by_task(run, task):
    """{host: result event} of the task whose name contains ``task`` (once per host)."""
    events = {}
    for event in run.results(task=task):
        assert event["host"] not in events, "task %r ran twice on %s" % (task, event["host"])
        events[event["host"]] = event
    return events


def messages(run, task):
    return dict((event["host"], event["result"]["msg"]) for event in run.results(action="ansible.builtin.debug", task=task))


# --------------------------------------------------------------------------- four-step idempotence


def test_four_step_idempotence_on_a_fleet(site, tmp_path):
    """check, real, check, real: hosts download themselves (fetch_on host); one host finds packs_dir in its Attune config."""
    fleet = make_fleet(tmp_path, 6, **role_vars(site, tmp_path))
    config = tmp_path / "etc" / "attune" / "config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("packs_base_dir: %s\n" % (tmp_path / "configured-packs"))
    fleet.add_host("configured")  # no packs_dir: the role omits the option, the module reads packs_base_dir
    hosts = fleet.names
    dirs = dict((host, packs_dir(tmp_path, host)) for host in hosts)
    dirs["configured"] = str(tmp_path / "configured-packs")
    inventory = fleet.write_inventory()
    lock_file = str(tmp_path / "packs.lock.yml")

    def step(check):
        run = run_playbook(tmp_path, "pin_fleet.yml", inventory, check=check, diff=check, verbosity=0 if check else 1,
                           env={"ATTUNE_CONFIG": str(config)})
        assert run.returncode == 0, run
        assert "[WARNING]" not in run.output, run
        secret = TOKEN.split()[-1]
        assert secret not in run.output and not any(secret in repr(event) for event in run.events), "registry token leaked"
        assert sorted(run.stats) == hosts, run
        installs = by_task(run, INSTALL_TASK)
        assert sorted(installs) == hosts and all(e["status"] in ("ok", "changed") for e in installs.values()), run
        locks = run.results(action=LOCK)
        assert len(locks) == 1, "the lock must run once: %r" % locks
        # not asked to prune: one task per host (no include, nothing listed), and no host removes anything
        expected_tasks = (LOCK_TASK, INSTALL_TASK, "Refuse to keep the lock file inside the installed collection",
                          "Find the hosts of the play that manage a running Attune", "Check which target each host gets")
        tasks = set(event["task"].split(" : ")[-1] for event in run.results())
        assert all(task in expected_tasks or task.startswith("Validating arguments against arg spec") for task in tasks), tasks
        assert not run.results(action=INSTALLED)
        assert not [p for e in installs.values() for p in e["result"].get("packs", []) if p["action"] == "remove"]
        return run, locks[0], installs

    # 1. check mode: the lock would be written and every host would install the four packs; nothing is written
    run, lock, installs = step(check=True)
    assert lock["changed"] and sorted(lock["result"]["added"]) == sorted(EXPECTED), lock
    assert not os.path.exists(lock_file)
    for host in hosts:
        result = installs[host]["result"]
        assert installs[host]["changed"], (host, result)
        assert sorted((p["ref"], p["action"], p["pack"]["version"]) for p in result["packs"]) == sorted(
            (ref, "install", version) for ref, (_registry, version) in EXPECTED.items()), (host, result)
        assert not os.path.exists(dirs[host])
    assert "+version: 1" in run.stdout  # the lock diff
    assert site.archive_gets() == {}  # check mode downloads nothing
    assert sum(site.index_gets().values()) == 3

    # 2. real run: lock written, every host installs the locked packs from the locked sources (each host downloads)
    run, lock, installs = step(check=False)
    assert lock["changed"] and all(installs[host]["changed"] for host in hosts)
    pins = read_lock(lock_file)
    assert dict((ref, (entry["registry"], entry["version"])) for ref, entry in pins.items()) == EXPECTED
    for host in hosts:
        have = installed(dirs[host])
        assert dict((ref, (meta["registry"], meta["version"])) for ref, meta in have.items()) == EXPECTED, host
        assert all(meta["checksum"] == pins[ref]["source"]["checksum"] for ref, meta in have.items()), host
    assert sum(site.index_gets().values()) == 3  # the check run's cache served the real run
    assert site.archive_gets() == dict((site.archive_path(ref), len(hosts)) for ref in EXPECTED)
    with open(lock_file, "rb") as handle:
        lock_bytes = handle.read()
    before = dict((host, installed(dirs[host])) for host in hosts)

    # 3. and 4. check mode again, real again: no change anywhere, no request to any registry, nothing rewritten
    site.server.reset_log()
    for check in (True, False):
        run, lock, installs = step(check=check)
        assert not lock["changed"] and not any(e["changed"] for e in installs.values()), run
        assert all(run.stats[host]["changed"] == 0 for host in hosts), run.stats
        assert site.server.requests == [], [r.path for r in site.server.requests]
        with open(lock_file, "rb") as handle:
            assert handle.read() == lock_bytes
        assert dict((host, installed(dirs[host])) for host in hosts) == before


# --------------------------------------------------------------------------- 51 hosts: counts, checksums, drift


def remote_interpreter(workdir):
    """(python, log): a venv with PyYAML only, of pyenv's oldest Python 3.8+ whose minor differs from the controller's.

    A sitecustomize in the venv appends one line per interpreter start to ``log`` (version and script), so the
    test can show that the modules really ran there.  Without such a pyenv Python, the controller's interpreter.
    """
    candidates = []
    for minor in (8, 9, 10, 12, 13):
        if minor != sys.version_info[1]:
            candidates.extend(sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.%d.*/bin/python" % minor)))[-1:])
    base = candidates[0] if candidates else sys.executable
    venv = os.path.join(workdir, "target-venv")
    subprocess.run([base, "-m", "venv", "--without-pip", venv], check=True, capture_output=True)
    python = os.path.join(venv, "bin", "python")
    site_packages = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                   capture_output=True, text=True, check=True).stdout.strip()
    pip = subprocess.run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--disable-pip-version-check",
                          "PyYAML"], capture_output=True, text=True, check=False)
    if pip.returncode != 0:  # no package index: PyYAML's pure-Python package works on any Python 3.8+
        shutil.copytree(os.path.dirname(yaml.__file__), os.path.join(site_packages, "yaml"),
                        ignore=shutil.ignore_patterns("*.so", "__pycache__"))
    log = os.path.join(workdir, "interpreter.log")
    with open(os.path.join(site_packages, "sitecustomize.py"), "w") as handle:
        handle.write("import os, sys\nwith open(%r, 'a') as _log:\n"
                     "    _log.write('%%d.%%d %%s\\n' %% (sys.version_info[0], sys.version_info[1], os.path.basename(sys.argv[0])))\n" % log)
    return python, log


@pytest.fixture
def ssh_host(tmp_path):
    """(SshServer, interpreter, log), or (None, reason, None) when sshd cannot be installed or started."""
    workdir = str(tmp_path / "ssh-host")
    os.makedirs(workdir)
    python, log = remote_interpreter(workdir)
    try:
        server = SshServer(os.path.join(workdir, "sshd")).start()
    except SshdUnavailable as exc:
        yield None, "cannot run sshd: %s" % exc, None
        return
    try:
        yield server, python, log
    finally:
        server.stop()


@pytest.mark.slow
def test_fleet_of_51_hosts_one_fetch_per_index_and_archive_identical_bytes_and_drift(site, tmp_path, ssh_host):
    server, remote_python, interpreter_log = ssh_host
    fleet = make_fleet(tmp_path, 50, python=bare_python(), **role_vars(site, tmp_path, packs_fetch_on="controller"))
    if server is not None:
        fleet.add_host("remote01", packs_dir=packs_dir(tmp_path, "remote01"), **server.inventory_vars(remote_python))
    hosts = fleet.names
    assert len(hosts) == (51 if server else 50)
    inventory = fleet.write_inventory()

    # one cold run (empty controller cache) over the whole fleet, 10 forks
    run = converge(tmp_path, inventory)
    installs = by_task(run, INSTALL_TASK)
    assert sorted(installs) == hosts
    for host in hosts:
        assert installs[host]["changed"] and installs[host]["result"]["fetched_on_controller"] == sorted(EXPECTED), installs[host]
    assert len(run.results(action=LOCK)) == 1

    # each index once per play (<= 3), each distinct archive exactly once whatever the fleet size; the public
    # registry's newer slack and its pack named like the internal one are never downloaded
    assert site.index_gets() == {"corp": 1, "community": 1, "public": 1}
    assert site.archive_gets() == dict((site.archive_path(ref), 1) for ref in EXPECTED)

    # every host has the same bytes: the locked archive checksum, the same tree, the files of the published pack
    pins = read_lock(str(tmp_path / "packs.lock.yml"))
    for ref in EXPECTED:
        assert pins[ref]["source"]["checksum"] == site.checksum(ref)
    trees = {}
    for host in hosts:
        have = installed(packs_dir(tmp_path, host))
        assert sorted(have) == sorted(EXPECTED), host
        for ref, meta in have.items():
            assert (meta["registry"], meta["version"], meta["checksum"]) == EXPECTED[ref] + (site.checksum(ref),), (host, meta)
            trees.setdefault(ref, set()).add(meta["tree_checksum"])
    for ref in EXPECTED:
        assert len(trees[ref]) == 1, (ref, trees[ref])
        source_tree = site.archives[(ref, EXPECTED[ref][1])][2]
        assert trees[ref] == {synth.tree_checksum(source_tree)}, ref
        expected_files = file_digests(source_tree)
        for host in ("worker01", "worker50", "remote01")[:3 if server else 2]:
            assert file_digests(os.path.join(packs_dir(tmp_path, host), ref)) == expected_files, (host, ref)

    if server is not None:
        # the SSH host ran the module with its own interpreter (pyenv 3.8 when available; the controller runs 3.11+)
        version = subprocess.run([remote_python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, check=True).stdout.strip()
        with open(interpreter_log) as handle:
            starts = handle.read().split("\n")
        assert "%s AnsiballZ_attune_pack.py" % version in starts, starts
        assert "Accepted publickey" in server.read_log()

    # drift: a modified file (worker07, and the SSH host), a missing pack (worker13), another version (worker21)
    with open(os.path.join(packs_dir(tmp_path, "worker07"), "slack", "actions", "hello.py"), "a") as handle:
        handle.write("# edited by hand\n")
    deviating = ["worker07", "worker13", "worker21"]
    if server is not None:
        deviating.insert(0, "remote01")
        with open(os.path.join(packs_dir(tmp_path, "remote01"), "aws", "README.md"), "a") as handle:
            handle.write("edited by hand\n")
    shutil.rmtree(os.path.join(packs_dir(tmp_path, "worker13"), "github"))
    old = os.path.join(site.files, "slack-2.0.0.tar.gz")
    adhoc = subprocess.run(
        [os.path.join(BIN_DIR, "ansible"), "-i", inventory, "worker21", "-m", PACK,
         "-a", json.dumps({"name": "slack", "src": old, "checksum": site.checksum("slack", "2.0.0"), "packs_dir": packs_dir(tmp_path, "worker21")}),
         "-e", "ansible_python_interpreter=%s" % sys.executable],
        cwd=str(tmp_path), env=ansible_env(tmp_path), capture_output=True, text=True, check=False)
    assert adhoc.returncode == 0, adhoc.stdout + adhoc.stderr
    assert installed(packs_dir(tmp_path, "worker21"))["slack"]["version"] == "2.0.0"

    report = run_playbook(tmp_path, "drift_report.yml", inventory, extra_vars={"packs_lock_file": str(tmp_path / "packs.lock.yml")})
    assert report.returncode == 0, report  # report only by default
    verified = report.by_host(INSTALLED)
    assert sorted(verified) == hosts and not any(e["changed"] for e in verified.values())
    lines = messages(report, "Print the drift of each host")
    assert sorted(lines) == hosts
    assert lines["worker07"] == "DRIFT: modified files slack", lines["worker07"]
    if server is not None:
        assert lines["remote01"] == "DRIFT: modified files aws", lines["remote01"]
    assert lines["worker13"] == "DRIFT: missing github", lines["worker13"]
    assert lines["worker21"] == "DRIFT: other version slack 2.0.0 (locked 2.1.0)", lines["worker21"]
    for host in hosts:
        if host not in deviating:
            assert lines[host] == "in sync: 4 locked packs installed as locked", (host, lines[host])
    summary = messages(report, "Summary")
    assert list(summary.values()) == [
        "%d of %d hosts deviate from %s: %s; missing packs on 1, other versions on 1, other sources on 0, modified files on %d"
        % (len(deviating), len(hosts), tmp_path / "packs.lock.yml", ", ".join(deviating), len(deviating) - 2)], summary

    # packs_drift_fail: the play fails on drift and names the deviating hosts only
    failing = run_playbook(tmp_path, "drift_report.yml", inventory, limit="worker01,worker02,worker13",
                           extra_vars={"packs_lock_file": str(tmp_path / "packs.lock.yml"), "packs_drift_fail": True})
    assert failing.returncode != 0, failing
    failed = [e for e in failing.results() if e["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["result"]["msg"] == "drift from the lock file on 1 of 3 hosts: worker13", failed
    if server is None:
        pytest.skip("the 50 local hosts passed; the SSH host was left out: %s" % remote_python)


# --------------------------------------------------------------------------- prune, lock update


def test_remove_unlisted_removes_only_unlisted_managed_packs(site, tmp_path):
    variables = role_vars(site, tmp_path, packs_list=["slack@^2", "aws", "github"], packs_fetch_on="controller")
    fleet = make_fleet(tmp_path, 3, python=bare_python(), **variables)
    hosts = fleet.names
    converge(tmp_path, fleet.write_inventory())
    for host in hosts:  # a pack copied by hand (no provenance metadata) must survive the pruning
        synth.make_pack_tree(os.path.join(packs_dir(tmp_path, host), "handmade"), "handmade", "1.0.0")
    before = dict((host, installed(packs_dir(tmp_path, host))) for host in hosts)
    assert all(sorted(have) == ["aws", "github", "slack"] for have in before.values())

    inventory = fleet.write_inventory(group_vars={"packs_list": ["slack@^2", "aws"], "packs_remove_unlisted": True})
    check = converge(tmp_path, inventory, check=True)
    # the install task (from the lock the run would write) keeps slack and aws and would remove github only
    for host in hosts:
        event = check.results(action=PACK, host=host, task=INSTALL_TASK)
        assert len(event) == 1 and event[0]["changed"], (host, event)
        assert sorted((p["ref"], p["action"]) for p in event[0]["result"]["packs"]) == [("aws", "none"), ("github", "remove"),
                                                                                        ("slack", "none")]
        assert installed(packs_dir(tmp_path, host)) == before[host]  # check mode removed nothing

    real = converge(tmp_path, inventory)
    for host in hosts:
        event = real.results(action=PACK, host=host, task=INSTALL_TASK)
        assert event[0]["changed"] and [p["ref"] for p in event[0]["result"]["packs"] if p["action"] == "remove"] == ["github"]
        have = installed(packs_dir(tmp_path, host))
        assert sorted(have) == ["aws", "slack"]
        assert have["slack"] == before[host]["slack"] and have["aws"] == before[host]["aws"]  # untouched
        assert os.path.isfile(os.path.join(packs_dir(tmp_path, host), "handmade", "pack.yaml"))
        assert not os.path.exists(os.path.join(packs_dir(tmp_path, host), "github"))
    assert sorted(read_lock(str(tmp_path / "packs.lock.yml"))) == ["aws", "slack"]

    again = converge(tmp_path, inventory)
    assert all(again.stats[host]["changed"] == 0 for host in hosts), again.stats


def test_lock_update_upgrades_only_the_named_pack(site, tmp_path):
    variables = role_vars(site, tmp_path, packs_list=["slack@^2", "aws"], packs_fetch_on="controller")
    fleet = make_fleet(tmp_path, 3, python=bare_python(), **variables)
    hosts = fleet.names
    inventory = fleet.write_inventory()
    converge(tmp_path, inventory)
    lock_file = str(tmp_path / "packs.lock.yml")
    before = dict((host, installed(packs_dir(tmp_path, host))) for host in hosts)
    assert all((have["slack"]["version"], have["aws"]["version"]) == ("2.1.0", "1.2.0") for have in before.values())

    # the registry publishes newer versions of both: without an update nothing moves and no registry is asked
    site.publish("community", "slack", "2.2.0")
    site.publish("community", "aws", "1.3.0")
    site.server.reset_log()
    with open(lock_file, "rb") as handle:
        pinned = handle.read()
    again = converge(tmp_path, inventory)
    assert all(again.stats[host]["changed"] == 0 for host in hosts), again.stats
    assert site.server.requests == []
    with open(lock_file, "rb") as handle:
        assert handle.read() == pinned

    # packs_lock_update: [slack] re-resolves slack against a fresh index (the cache is still warm) and upgrades it
    update = converge(tmp_path, inventory, extra_vars={"packs_lock_update": ["slack"]}, diff=True)
    lock = update.results(action=LOCK)[0]["result"]
    assert lock["updated"] == ["slack"] and lock["kept"] == ["aws"], lock
    assert site.index_gets()["community"] == 1
    pins = read_lock(lock_file)
    assert (pins["slack"]["version"], pins["aws"]["version"]) == ("2.2.0", "1.2.0")
    assert site.archive_gets() == {site.archives[("slack", "2.2.0")][0]: 1}
    for host in hosts:
        event = by_task(update, INSTALL_TASK)[host]["result"]
        assert sorted((p["ref"], p["action"]) for p in event["packs"]) == [("aws", "none"), ("slack", "upgrade")], event
        have = installed(packs_dir(tmp_path, host))
        assert have["slack"]["version"] == "2.2.0" and have["slack"]["checksum"] == site.checksum("slack", "2.2.0")
        assert have["aws"] == before[host]["aws"]  # not reinstalled
