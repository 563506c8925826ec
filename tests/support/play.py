"""Run the collection's plugins for real through ``ansible-playbook`` and ``ansible`` (ad hoc).

``run_tasks()`` writes a playbook whose tasks register their results, adds a
last task (outside check mode) that dumps every host's results to JSON, runs
it, and returns the parsed results together with the raw stdout/stderr (so
tests can grep them for leaked secrets).
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import yaml

from conftest import COLLECTIONS_ROOT, REPO_ROOT  # noqa: F401  (tests/conftest.py; importing it sets the collection path)

BIN_DIR = os.path.dirname(sys.executable)
TARGET_REQUIREMENTS = os.path.join(REPO_ROOT, "requirements.txt")


def ansible_bin(name):
    path = os.path.join(BIN_DIR, name)
    return path if os.path.exists(path) else shutil.which(name)


def base_env(extra=None):
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
        ANSIBLE_PYTHON_INTERPRETER=sys.executable,
    )
    env.update(extra or {})
    return env


class PlayResult(object):
    def __init__(self, proc, results):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.results = results  # host -> [task result dicts]

    @property
    def output(self):
        return self.stdout + self.stderr

    def host(self, name="localhost"):
        return self.results[name]

    def __repr__(self):
        return "PlayResult(rc=%r)\n%s\n%s" % (self.returncode, self.stdout[-4000:], self.stderr[-4000:])


def run_tasks(workdir, tasks, inventory=None, hosts="localhost", check=False, diff=False, env=None, verbosity=0,
              extra_args=(), gather_facts=False, play_vars=None):
    """Run ``tasks`` (list of task dicts) on ``hosts``; every task result is captured (errors ignored)."""
    workdir = str(workdir)
    out_dir = os.path.join(workdir, "results")
    if os.path.isdir(out_dir):
        shutil.rmtree(out_dir)
    os.makedirs(out_dir)
    registered = []
    play_tasks = []
    for position, task in enumerate(tasks):
        task = dict(task)
        name = "result_%d" % position
        task.setdefault("register", name)
        task.setdefault("ignore_errors", True)
        registered.append(task["register"])
        play_tasks.append(task)
    play_tasks.append({
        "name": "Dump results",
        "ansible.builtin.copy": {
            "content": "{{ [%s] | to_json }}" % ", ".join(registered),
            "dest": os.path.join(out_dir, "{{ inventory_hostname }}.json"),
            "mode": "0600",
        },
        "delegate_to": "localhost",
        "check_mode": False,
        "diff": False,
    })
    play = [{"name": "test", "hosts": hosts, "gather_facts": gather_facts, "tasks": play_tasks, "vars": play_vars or {}}]
    playbook = os.path.join(workdir, "play.yml")
    with open(playbook, "w") as handle:
        yaml.safe_dump(play, handle, sort_keys=False)
    if inventory is None:
        inventory = os.path.join(workdir, "inventory.ini")
        with open(inventory, "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    cmd = [ansible_bin("ansible-playbook"), "-i", inventory, playbook]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    cmd.extend(extra_args)
    proc = subprocess.run(cmd, cwd=workdir, env=base_env(env), capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    results = {}
    for path in glob.glob(os.path.join(out_dir, "*.json")):
        with open(path) as handle:
            results[os.path.basename(path)[:-5]] = json.load(handle)
    return PlayResult(proc, results)


def run_adhoc(workdir, module, args, inventory=None, pattern="localhost", env=None, extra_args=()):
    """``ansible PATTERN -m MODULE -a ARGS``; returns (CompletedProcess, {host: result})."""
    workdir = str(workdir)
    tree = os.path.join(workdir, "tree")
    if os.path.isdir(tree):
        shutil.rmtree(tree)
    if inventory is None:
        inventory = os.path.join(workdir, "inventory.ini")
        with open(inventory, "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    cmd = [ansible_bin("ansible"), pattern, "-i", inventory, "-m", module, "-a", args, "-t", tree] + list(extra_args)
    proc = subprocess.run(cmd, cwd=workdir, env=base_env(env), capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    results = {}
    if os.path.isdir(tree):
        for name in os.listdir(tree):
            with open(os.path.join(tree, name)) as handle:
                results[name] = json.load(handle)
    return proc, results


def target_python(version, with_requirements=True):
    """A Python ``version`` (e.g. '3.9') from pyenv for modules to run on, optionally a venv with requirements.txt.

    Returns None when pyenv has no such Python.  The venv is cached in .build/.
    """
    candidates = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/%s.*/bin/python" % version)))
    if not candidates:
        return None
    interpreter = candidates[-1]
    if not with_requirements:
        return interpreter
    venv = os.path.join(REPO_ROOT, ".build", "targets", "py%s" % version.replace(".", ""))
    python = os.path.join(venv, "bin", "python")
    stamp = os.path.join(venv, ".requirements-installed")
    if not os.path.exists(stamp):
        subprocess.run([interpreter, "-m", "venv", "--clear", venv], check=True, capture_output=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", TARGET_REQUIREMENTS],
                       check=True, capture_output=True)
        with open(stamp, "w") as handle:
            handle.write("ok\n")
    return python
