"""A simulated fleet of Attune hosts for role/playbook tests, and a runner for ``ansible-playbook``.

``Fleet(workdir, size)`` writes a YAML inventory with a group ``attune_workers``
of ``size`` hosts (``worker01`` ...), each ``ansible_connection=local`` with its
own config path ``<workdir>/hosts/<host>/etc/attune/config.yaml``; extra hosts
(for example one reached over SSH) can be added with ``add_host``.

``run_playbook()`` runs ``ansible-playbook`` with the default stdout callback
(so the human output can be searched for leaked secrets) plus the test-only
``attune_test_events`` callback, which records every task result as a JSON
line; :class:`Run` parses those into per-host results and the play recap.
ansible-core ships no JSON stdout callback, and this is sturdier than a regex
over the recap.
"""
import json
import os
import subprocess
import sys

import yaml

from conftest import COLLECTIONS_ROOT, REPO_ROOT

BIN_DIR = os.path.dirname(sys.executable)
CALLBACK_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins")
PLAYBOOK_DIR = os.path.join(REPO_ROOT, "playbooks")
GROUP = "attune_workers"


class Run(object):
    """One ``ansible-playbook`` run: return code, output and recorded results."""

    def __init__(self, proc, events):
        self.returncode = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.events = events
        self.stats = dict((e["host"], e["stats"]) for e in events if e["event"] == "stats")

    @property
    def output(self):
        return self.stdout + self.stderr

    def results(self, action=None, host=None, task=None):
        found = []
        for event in self.events:
            if event["event"] != "result":
                continue
            if action is not None and event["action"] != action:
                continue
            if host is not None and event["host"] != host:
                continue
            if task is not None and task not in event["task"]:
                continue
            found.append(event)
        return found

    def by_host(self, action):
        """``{host: result event}`` of the (single) task with ``action`` on each host."""
        events = {}
        for event in self.results(action):
            assert event["host"] not in events, "action %s ran twice on %s" % (action, event["host"])
            events[event["host"]] = event
        return events

    def __repr__(self):
        return "Run(rc=%r)\n--- stdout (tail)\n%s\n--- stderr (tail)\n%s" % (
            self.returncode, self.stdout[-6000:], self.stderr[-3000:])


class Fleet(object):
    def __init__(self, workdir, size=20, python=None, common_vars=None):
        self.workdir = str(workdir)
        self.python = python or sys.executable
        self.hosts = {}
        self.group_vars = dict(common_vars or {})
        for number in range(1, size + 1):
            self.add_host("worker%02d" % number)

    def config_path(self, host):
        return os.path.join(self.workdir, "hosts", host, "etc", "attune", "config.yaml")

    def add_host(self, name, **host_vars):
        values = dict(
            ansible_connection="local",
            ansible_python_interpreter=self.python,
            registry_config_path=self.config_path(name),
        )
        values.update(host_vars)
        self.hosts[name] = values
        return values

    @property
    def names(self):
        return sorted(self.hosts)

    def write_inventory(self, host_vars=None, group_vars=None):
        """Write the inventory; ``host_vars`` ({host: {var: value}}) and ``group_vars`` override per run."""
        hosts = {}
        for name, values in self.hosts.items():
            merged = dict(values)
            merged.update((host_vars or {}).get(name, {}))
            hosts[name] = merged
        variables = dict(self.group_vars)
        variables.update(group_vars or {})
        inventory = {"all": {"children": {GROUP: {"hosts": hosts, "vars": variables}}}}
        path = os.path.join(self.workdir, "inventory.yml")
        with open(path, "w") as handle:
            yaml.safe_dump(inventory, handle, sort_keys=False)
        return path

    def read_config(self, host):
        with open(self.config_path(host), "rb") as handle:
            return handle.read()


def ansible_env(workdir, extra=None):
    env = dict(os.environ)
    env.update(
        ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT,
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_HOST_KEY_CHECKING="False",
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_DEPRECATION_WARNINGS="False",
        ANSIBLE_LOCALHOST_WARNING="False",
        ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR,
        ANSIBLE_CALLBACKS_ENABLED="attune_test_events",
        ANSIBLE_LOCAL_TEMP=os.path.join(str(workdir), ".ansible-tmp"),
        ANSIBLE_FORKS="10",
    )
    env.pop("ANSIBLE_STDOUT_CALLBACK", None)
    env.update(extra or {})
    return env


def run_playbook(workdir, playbook, inventory, check=False, diff=False, verbosity=0, extra_vars=None,
                 limit=None, env=None, timeout=900):
    """Run ``playbook`` (a path, or a name in the collection's playbooks/) and collect its events."""
    workdir = str(workdir)
    if not os.path.isabs(playbook) and not os.path.exists(playbook):
        playbook = os.path.join(PLAYBOOK_DIR, playbook)
    events_path = os.path.join(workdir, "events.jsonl")
    if os.path.exists(events_path):
        os.unlink(events_path)
    cmd = [os.path.join(BIN_DIR, "ansible-playbook"), "-i", inventory, playbook]
    if check:
        cmd.append("--check")
    if diff:
        cmd.append("--diff")
    if verbosity:
        cmd.append("-" + "v" * verbosity)
    if limit:
        cmd.extend(["--limit", limit])
    if extra_vars:
        # extra vars through a file: nothing (tokens included) on the command line
        vars_path = os.path.join(workdir, "extra-vars.json")
        with open(vars_path, "w") as handle:
            json.dump(extra_vars, handle)
        cmd.extend(["-e", "@" + vars_path])
    run_env = ansible_env(workdir, env)
    run_env["ATTUNE_TEST_EVENTS"] = events_path
    proc = subprocess.run(cmd, cwd=workdir, env=run_env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, check=False)
    events = []
    if os.path.exists(events_path):
        with open(events_path) as handle:
            events = [json.loads(line) for line in handle if line.strip()]
    return Run(proc, events)
