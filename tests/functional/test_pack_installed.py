"""attune_pack_installed, for real: packs installed by attune_pack, then listed and verified through
ansible-playbook and ad hoc ``ansible``, on the controller's Python and on a Python 3.9 target.

Everything runs once per module (two playbooks over two hosts, one ad hoc run); the tests assert on the
recorded results.  Between the playbooks the installed trees are tampered with: a changed file, an added
file, a deleted file, a path too long to read, a corrupted metadata.json, plus a pack copied by hand.
"""
import json
import os
import re
import sys

import pytest

from support import synth
from support.play import run_adhoc, run_tasks, target_python

MODULE = "attune.packs.attune_pack_installed"
INSTALL = "attune.packs.attune_pack"
MANAGED = ["alpha", "beta", "epsilon", "gamma", "zeta"]
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def make_deep_path(root, depth=18):
    """Nested directories whose full path exceeds PATH_MAX, with a file at the bottom (built with dir_fd)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for dummy in range(depth):
            os.mkdir("d" * 250, dir_fd=fd)
            child = os.open("d" * 250, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        leaf = os.open("hidden.py", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(leaf, b"print('not part of the pack')\n")
        os.close(leaf)
    finally:
        os.close(fd)


def snapshot(root):
    """{relative path: (mode, bytes)} of what os.walk can reach (read-only proof)."""
    result = {}
    for base, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(base, name)
            if len(path) >= 4000:  # the too-long path of make_deep_path
                continue
            st = os.lstat(path)
            data = None
            if os.path.isfile(path):
                with open(path, "rb") as handle:
                    data = handle.read()
            result[os.path.relpath(path, root)] = (st.st_mode, st.st_mtime_ns, data)
    return result


def tamper(packs_dir):
    with open(os.path.join(packs_dir, "alpha", "README.md"), "r+b") as handle:  # same size, one byte changed
        data = handle.read()
        handle.seek(0)
        handle.write(data.replace(b"Version", b"version", 1))
    with open(os.path.join(packs_dir, "beta", "actions", "extra.py"), "w") as handle:
        handle.write("import os\n")
    os.unlink(os.path.join(packs_dir, "gamma", "actions", "hello.py"))
    make_deep_path(os.path.join(packs_dir, "epsilon"))
    with open(os.path.join(packs_dir, ".attune", "zeta.json"), "w") as handle:  # provenance outside the tree (issue 9 item 9)
        handle.write("{not json")
    synth.make_pack_tree(os.path.join(packs_dir, "manual"), "manual", "9.9.9", files={"README.md": None, "actions/hello.yaml": None,
                                                                                      "actions/hello.py": None})
    os.mkdir(os.path.join(packs_dir, ".attune-old-alpha-0123abcd"))  # leftover of an interrupted run: not a pack
    with open(os.path.join(packs_dir, "notes.txt"), "w") as handle:  # a file, not a pack
        handle.write("x\n")


def write_lock(fleet):
    """A lock file for the tampered fleet: one pack per drift status (see test_lock_file_drift)."""
    with open(os.path.join(fleet.packs_dir("ctl"), ".attune", "alpha.json")) as handle:  # provenance outside the tree
        alpha_checksum = json.load(handle)["checksum"]

    def entry(ref, version, checksum):
        return {"ref": ref, "spec": ref, "version": version, "registry": "public", "registry_url": "https://registry.example/index.json",
                "source": {"type": "archive", "url": "https://files.example/%s.tgz" % ref, "checksum": checksum}}
    other = "sha256:" + "c" * 64
    lock = {"version": 1, "packs": [entry("alpha", "1.0.0", alpha_checksum), entry("beta", "2.0.0", fleet.beta_checksum),
                                    entry("gamma", "9.0.0", other), entry("manual", "9.9.9", other), entry("nosuch", "1.0.0", other),
                                    entry("zeta", "0.2.0", other)]}
    path = os.path.join(fleet.root, "packs.lock.yml")
    with open(path, "w") as handle:
        json.dump(lock, handle)  # JSON is YAML
    return path


class Fleet(object):
    """Sources, an inventory of two local hosts (controller Python, Python 3.9) and the recorded runs."""

    def __init__(self, root):
        self.root = root
        src = os.path.join(root, "src")
        self.sources = {ref: synth.make_pack_tree(os.path.join(src, ref), ref, version)
                        for ref, version in (("alpha", "1.0.0"), ("gamma", "0.3.0"), ("epsilon", "0.1.0"), ("zeta", "0.2.0"))}
        self.beta_archive, self.beta_checksum = synth.make_pack_archive(src, "beta", "2.0.0", fmt="tar.gz")
        self.sources["beta"] = os.path.join(src, "beta-2.0.0.src")
        self.python39 = target_python("3.9")
        self.hosts = {"ctl": sys.executable}
        if self.python39:
            self.hosts["py39"] = self.python39
        self.inventory = os.path.join(root, "inventory.ini")
        with open(self.inventory, "w") as handle:
            for host, python in self.hosts.items():
                config_dir = os.path.join(root, host, "etc")
                os.makedirs(config_dir)
                with open(os.path.join(config_dir, "config.yaml"), "w") as config:
                    config.write("packs_base_dir: %s\n" % os.path.join(root, host, "elsewhere"))
                with open(os.path.join(config_dir, "config.prod.yaml"), "w") as config:
                    config.write("packs_base_dir: %s\n" % self.packs_dir(host))
                handle.write("%s ansible_connection=local ansible_python_interpreter=%s packs_dir=%s config_path=%s\n"
                             % (host, python, self.packs_dir(host), os.path.join(config_dir, "config.yaml")))
        self.not_a_dir = os.path.join(root, "plain-file")
        with open(self.not_a_dir, "w") as handle:
            handle.write("x\n")

    def packs_dir(self, host):
        return os.path.join(self.root, host, "packs")

    def play(self, name, tasks):
        workdir = os.path.join(self.root, name)
        os.makedirs(workdir)
        return run_tasks(workdir, tasks, inventory=self.inventory, hosts="all")

    def adhoc(self, name, args, pattern="all"):
        workdir = os.path.join(self.root, name)
        os.makedirs(workdir)
        return run_adhoc(workdir, MODULE, args, inventory=self.inventory, pattern=pattern)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    fleet = Fleet(str(tmp_path_factory.mktemp("installed")))
    listing = {MODULE: {"packs_dir": "{{ packs_dir }}"}}
    fleet.before = fleet.play("before", [
        {INSTALL: {"name": "alpha", "src": fleet.sources["alpha"], "packs_dir": "{{ packs_dir }}"}},
        {INSTALL: {"name": "beta", "src": fleet.beta_archive, "checksum": fleet.beta_checksum, "packs_dir": "{{ packs_dir }}"}},
        {INSTALL: {"name": "gamma", "src": fleet.sources["gamma"], "packs_dir": "{{ packs_dir }}"}},
        {INSTALL: {"name": "epsilon", "src": fleet.sources["epsilon"], "packs_dir": "{{ packs_dir }}"}},
        {INSTALL: {"name": "zeta", "src": fleet.sources["zeta"], "packs_dir": "{{ packs_dir }}"}},
        listing,
        {MODULE: {"packs_dir": "{{ packs_dir }}", "verify": True}},
        {MODULE: {"packs_dir": "{{ packs_dir }}", "name": ["gamma", "nosuch", "alpha", "gamma"]}},
    ])
    for host in fleet.hosts:
        results = fleet.before.results.get(host)
        assert results and all(not r.get("failed") for r in results[:5]), fleet.before
        tamper(fleet.packs_dir(host))
    fleet.lock_file = write_lock(fleet)
    fleet.snapshots = dict((host, snapshot(fleet.packs_dir(host))) for host in fleet.hosts)
    fleet.after = fleet.play("after", [
        {MODULE: {"packs_dir": "{{ packs_dir }}", "verify": True}, "check_mode": True},
        {MODULE: {"packs_dir": "{{ packs_dir }}", "verify": True}},
        {MODULE: {"packs_dir": "{{ packs_dir }}", "name": ["manual", "alpha", "nosuch"], "verify": True}},
        {MODULE: {"config_path": "{{ config_path }}", "environment": "prod"}},
        {MODULE: {"config_path": "{{ config_path }}"}},
        {MODULE: {"config_path": "{{ config_path }}.missing"}},
        {MODULE: {"packs_dir": fleet.not_a_dir}},
        {MODULE: {"packs_dir": "{{ packs_dir }}", "name": ["../alpha"]}},
        {MODULE: {"packs_dir": "{{ packs_dir }}", "lock_file": fleet.lock_file}},
        {MODULE: {"packs_dir": "{{ packs_dir }}", "lock_file": fleet.lock_file + ".missing"}},
        {"ansible.builtin.command": "{{ ansible_python_interpreter }} -c 'import sys; print(sys.version_info[:2])'"},
    ])
    fleet.adhoc_result = fleet.adhoc("adhoc", "packs_dir=%s name=alpha,nosuch,beta verify=true" % fleet.packs_dir("ctl"), pattern="ctl")
    return fleet


def by_ref(result):
    return dict((item["ref"], item) for item in result["packs"])


def test_lists_installed_packs_with_their_provenance(fleet):
    result = fleet.before.host("ctl")[5]
    assert not result.get("failed") and result["changed"] is False, result
    assert result["packs_dir"] == fleet.packs_dir("ctl")
    assert [item["ref"] for item in result["packs"]] == sorted(MANAGED)
    assert result["missing"] == [] and "modified" not in result
    assert result["msg"] == "5 packs in %s (5 managed)" % fleet.packs_dir("ctl")
    packs = by_ref(result)
    alpha, beta = packs["alpha"], packs["beta"]
    assert alpha["installed"] is True and alpha["managed"] is True and alpha["error"] is None
    assert alpha["path"] == os.path.join(fleet.packs_dir("ctl"), "alpha")
    assert alpha["version"] == "1.0.0" and alpha["registry"] is None and alpha["registry_url"] is None
    assert alpha["installed_from"] == {"type": "dir", "path": fleet.sources["alpha"]}
    assert RFC3339.match(alpha["installed_at"]), alpha
    assert beta["version"] == "2.0.0" and beta["checksum"] == fleet.beta_checksum
    assert beta["installed_from"] == {"type": "archive", "path": fleet.beta_archive}
    for ref, item in packs.items():
        # the recorded checksum is Attune's framed checksum of the source tree (independent implementation)
        assert item["tree_checksum"] == synth.tree_checksum(fleet.sources[ref]), ref
        assert item["verified"] is None and item["verify_reason"] is None and item["current_tree_checksum"] is None


def test_verify_on_intact_packs(fleet):
    result = fleet.before.host("ctl")[6]
    assert not result.get("failed") and result["changed"] is False, result
    assert result["modified"] == []
    for item in result["packs"]:
        assert item["verified"] is True and item["verify_reason"] is None, item
        assert item["current_tree_checksum"] == item["tree_checksum"]
    assert result["msg"].endswith("; verified: no modified pack")


def test_name_filter_reports_missing_refs_without_failing(fleet):
    result = fleet.before.host("ctl")[7]
    assert not result.get("failed") and result["changed"] is False, result
    assert [item["ref"] for item in result["packs"]] == ["gamma", "nosuch", "alpha"]
    nosuch = result["packs"][1]
    assert nosuch["installed"] is False and nosuch["managed"] is False and nosuch["path"] is None and nosuch["version"] is None
    assert result["packs"][0]["version"] == "0.3.0" and result["packs"][2]["version"] == "1.0.0"
    assert result["missing"] == ["nosuch"] and "not installed: nosuch" in result["msg"]


def test_verify_detects_changed_added_deleted_and_unreadable_files(fleet):
    result = fleet.after.host("ctl")[1]
    assert not result.get("failed") and result["changed"] is False, result
    packs = by_ref(result)
    assert sorted(packs) == ["alpha", "beta", "epsilon", "gamma", "manual", "zeta"]  # no leftovers, no plain files
    assert result["modified"] == ["alpha", "beta", "epsilon", "gamma"]
    for ref in ("alpha", "beta", "gamma"):
        assert packs[ref]["verified"] is False and packs[ref]["verify_reason"] == "files differ from what was installed", packs[ref]
        assert packs[ref]["current_tree_checksum"].startswith("sha256:")
        assert packs[ref]["current_tree_checksum"] != packs[ref]["tree_checksum"]
    assert packs["epsilon"]["verified"] is False and "cannot read the installed tree" in packs["epsilon"]["verify_reason"]
    assert "File name too long" in packs["epsilon"]["verify_reason"]
    assert "modified (alpha, beta, epsilon, gamma)" in result["msg"]


def test_packs_without_our_metadata(fleet):
    result = fleet.after.host("ctl")[1]
    packs = by_ref(result)
    manual = packs["manual"]
    assert manual["managed"] is False and manual["installed"] is True and manual["version"] == "9.9.9"
    assert manual["installed_from"] is None and manual["tree_checksum"] is None and manual["error"] is None
    assert manual["verified"] is None and manual["verify_reason"] == "no recorded tree checksum"
    zeta = packs["zeta"]  # its metadata.json was corrupted: reported, not silently trusted
    assert zeta["managed"] is False and zeta["verified"] is None
    assert "not valid JSON" in zeta["error"] and "not valid JSON" in zeta["verify_reason"]
    assert zeta["version"] == "0.2.0"  # from pack.yaml
    assert any("zeta" in warning and "not valid JSON" in warning for warning in result.get("warnings", [])), result
    assert result["msg"].startswith("6 packs in %s (4 managed)" % fleet.packs_dir("ctl"))


def test_check_mode_reports_the_same_and_nothing_is_written(fleet):
    check, real = fleet.after.host("ctl")[0], fleet.after.host("ctl")[1]
    assert check["changed"] is False and not check.get("failed"), check
    assert check["packs"] == real["packs"] and check["modified"] == real["modified"]
    for host in fleet.hosts:
        assert snapshot(fleet.packs_dir(host)) == fleet.snapshots[host], host


def test_name_filter_with_verify(fleet):
    result = fleet.after.host("ctl")[2]
    assert [item["ref"] for item in result["packs"]] == ["manual", "alpha", "nosuch"]
    assert result["modified"] == ["alpha"] and result["missing"] == ["nosuch"]
    assert result["packs"][2]["verified"] is None


def test_packs_dir_defaults_to_the_config_file(fleet):
    tasks = fleet.after.host("ctl")
    with_env, without_env = tasks[3], tasks[4]
    assert not with_env.get("failed") and with_env["packs_dir"] == fleet.packs_dir("ctl"), with_env
    assert len(with_env["packs"]) == 6
    elsewhere = os.path.join(fleet.root, "ctl", "elsewhere")
    assert without_env["packs_dir"] == elsewhere and without_env["packs"] == [], without_env
    assert without_env["msg"] == "no packs: %s does not exist" % elsewhere
    missing = tasks[5]
    assert missing.get("failed") and "config.yaml.missing" in missing["msg"] and "not found" in missing["msg"], missing


def test_clear_failures(fleet):
    not_a_dir, traversal = fleet.after.host("ctl")[6], fleet.after.host("ctl")[7]
    assert not_a_dir.get("failed") and not_a_dir["msg"] == "cannot read packs_dir %s: Not a directory" % fleet.not_a_dir, not_a_dir
    assert traversal.get("failed") and "invalid pack ref '../alpha'" in traversal["msg"], traversal
    assert "Traceback" not in fleet.after.output


def test_lock_file_drift(fleet):
    """lock_file: the drift of every locked pack, compared in the core (issue 10.5); the lock is read on the controller."""
    for host in fleet.hosts:
        result, missing_lock = fleet.after.host(host)[8], fleet.after.host(host)[9]
        assert not result.get("failed") and result["changed"] is False, result
        drift = result["drift"]
        assert [(p["ref"], p["status"]) for p in drift["packs"]] == [
            ("alpha", "modified"), ("beta", "modified"), ("gamma", "other-version"), ("manual", "other-source"),
            ("nosuch", "missing"), ("zeta", "unreadable-provenance")], drift
        assert drift["deviates"] is True and drift["unlisted"] == ["epsilon"] and drift["in_sync"] == []
        assert drift["msg"] == ("DRIFT: missing nosuch; unreadable provenance zeta; other version gamma 0.3.0 (locked 9.0.0); "
                                "other source manual; modified files alpha, beta; unlisted packs: epsilon"), drift["msg"]
        assert "verified" in result["packs"][0] and result["packs"][0]["verified"] is None  # verify=false: packs[] unchanged
        assert missing_lock.get("failed") and missing_lock["error"]["kind"] == "lock_file_error", missing_lock
        assert "packs.lock.yml.missing does not exist" in missing_lock["msg"], missing_lock


def test_adhoc(fleet):
    # ansible ctl -m attune.packs.attune_pack_installed -a "packs_dir=/... name=alpha,nosuch,beta verify=true"
    proc, results = fleet.adhoc_result
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = results["ctl"]
    assert result["changed"] is False and result["packs_dir"] == fleet.packs_dir("ctl")
    assert [item["ref"] for item in result["packs"]] == ["alpha", "nosuch", "beta"]
    assert result["modified"] == ["alpha", "beta"] and result["missing"] == ["nosuch"]
    assert '"modified": [' in proc.stdout and "SUCCESS" in proc.stdout


def test_python39_target(fleet):
    if not fleet.python39:
        pytest.skip("pyenv has no Python 3.9 (~/.pyenv/versions/3.9.*): the Python 3.9 target is not tested")
    ctl_before, py_before = fleet.before.host("ctl"), fleet.before.host("py39")
    ctl_after, py_after = fleet.after.host("ctl"), fleet.after.host("py39")
    for ctl, py in ((ctl_before[5], py_before[5]), (ctl_before[6], py_before[6]), (ctl_after[1], py_after[1]), (ctl_after[2], py_after[2])):
        assert not py.get("failed"), py
        assert [(i["ref"], i["version"], i["managed"], i["verified"], i["verify_reason"]) for i in py["packs"]] == \
               [(i["ref"], i["version"], i["managed"], i["verified"], i["verify_reason"]) for i in ctl["packs"]]
        assert py.get("modified") == ctl.get("modified") and py["missing"] == ctl["missing"]
    assert py_after[0]["modified"] == ["alpha", "beta", "epsilon", "gamma"]
    assert py_after[3]["packs_dir"] == fleet.packs_dir("py39")
    assert py_after[-1]["stdout"] == "(3, 9)" and ctl_after[-1]["stdout"] == str(sys.version_info[:2])
