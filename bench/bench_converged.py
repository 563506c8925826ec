#!/usr/bin/env python
"""Converged runs against ``ping``, side by side in one run (issue 10 item 9).

Run: ``.venv/bin/python bench/bench_converged.py`` (about 6 minutes at 45 hosts and 5 rounds).

One fleet of ``BENCH_HOSTS`` (45) inventory hosts built like ``bench_fleet.py``'s (``ansible_connection=local``,
own packs directories, target ``/usr/bin/python3`` without requests when there is one; 4 packs from 3
registries), converged once, then ``BENCH_RUNS`` (5) rounds; each round runs, one after the other:

* ``ping``: an ``ansible.builtin.ping`` play over the fleet;
* ``role controller`` / ``role host``: ``playbooks/pin_fleet.yml`` (role ``attune.packs.packs`` as shipped,
  lock file present) with ``packs_fetch_on`` ``controller`` and ``host``; no host may report a change;
* breakdown plays (``BENCH_BREAKDOWN=0`` skips them): ``install task`` (only the role's install task, the
  ``attune_pack`` module with ``lock_file``), ``role without argument specs`` (a copy of the role without
  ``meta/argument_specs.yml``), ``lock task`` (the role's run-once lock task alone, over the fleet);
* one host: ``ping 1`` and ``attune_pack 1`` (a no-change rerun of ``attune_pack`` with ``src`` + ``checksum``,
  as bench_install's) over a one-host inventory.

The order of the plays rotates from round to round so that load drifts of the shared machine spread over all
of them.  Prints medians (and min) of wall seconds, the ratios to ``ping`` of the same run, and the CPU
seconds; writes ``bench/results/converged.json``.
"""
import json
import os
import shutil
import statistics
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_fleet import REPO, Site, machine_info, run_play, target_python, write_fleet  # noqa: E402
from support.registry_server import RegistryServer  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
HOSTS = int(os.environ.get("BENCH_HOSTS", "45"))
BREAKDOWN = os.environ.get("BENCH_BREAKDOWN", "1") != "0"
PLAYBOOK = os.path.join(REPO, "playbooks", "pin_fleet.yml")


def write(path, text):
    with open(path, "w") as handle:
        handle.write(text)
    return path


def breakdown_plays(workdir):
    """The role without its argument specs (a copy under workdir/roles), and the lock task alone."""
    copy = os.path.join(workdir, "roles", "packs_no_argspec")
    shutil.copytree(os.path.join(REPO, "roles", "packs"), copy)
    os.unlink(os.path.join(copy, "meta", "argument_specs.yml"))
    no_spec = write(os.path.join(workdir, "role_no_argspec.yml"),
                    "- name: Role without argument specs\n  hosts: attune_workers\n  gather_facts: false\n"
                    "  roles:\n    - role: packs_no_argspec\n")
    lock_only = write(os.path.join(workdir, "lock_only.yml"),
                      "- name: Lock task alone\n  hosts: attune_workers\n  gather_facts: false\n  tasks:\n"
                      "    - name: Lock the pack list on the controller\n      attune.packs.attune_pack_lock:\n"
                      "        path: \"{{ packs_lock_file }}\"\n        name: \"{{ packs_list }}\"\n"
                      "        registries: \"{{ packs_registry_options.registries }}\"\n"
                      "        ca_path: \"{{ packs_registry_options.ca_path }}\"\n"
                      "        cache_dir: \"{{ packs_registry_options.cache_dir }}\"\n"
                      "      delegate_to: localhost\n      run_once: true\n")
    return no_spec, lock_only


def single_host(workdir, site, python):
    inventory = write(os.path.join(workdir, "one.ini"), "one ansible_connection=local ansible_python_interpreter=%s\n" % python)
    packs_dir = os.path.join(workdir, "one-packs")
    task = {"name": "Install", "attune.packs.attune_pack": {
        "name": "slack", "src": site.server.url(site.archive_path("slack").lstrip("/")), "checksum": site.checksum("slack"),
        "ca_path": site.server.ca_path, "packs_dir": packs_dir}}
    rerun = write(os.path.join(workdir, "one_rerun.yml"), json.dumps(
        [{"name": "Rerun", "hosts": "all", "gather_facts": False, "tasks": [task]}]))
    ping = write(os.path.join(workdir, "one_ping.yml"), json.dumps(
        [{"name": "Ping", "hosts": "all", "gather_facts": False, "tasks": [{"name": "Ping", "ansible.builtin.ping": {}}]}]))
    return inventory, rerun, ping


def main():
    info = machine_info()
    info["target_python"] = python = target_python()
    info["hosts"] = HOSTS
    base = tempfile.mkdtemp(prefix="attune-bench-converged-")
    samples = {}
    try:
        workdir = os.path.join(base, "fleet")
        os.makedirs(os.path.join(workdir, "roles"))
        with RegistryServer() as server:
            site = Site(server, workdir)
            inventory, hosts = write_fleet(workdir, HOSTS, site, python)
            ping = os.path.join(workdir, "ping.yml")
            run_play(workdir, inventory, PLAYBOOK, hosts, expect_changed=True)  # cold convergence
            one_inventory, one_rerun, one_ping = single_host(workdir, site, sys.executable)  # as bench_install (host downloads)
            run_play(workdir, one_inventory, one_rerun, ["one"], expect_changed=True)
            server.reset_log()
            plays = [
                ("ping", inventory, ping, hosts, None, None),
                ("role controller", inventory, PLAYBOOK, hosts, False, ["packs_fetch_on=controller"]),
                ("role host", inventory, PLAYBOOK, hosts, False, ["packs_fetch_on=host"]),
                ("ping 1", one_inventory, one_ping, ["one"], None, None),
                ("attune_pack 1", one_inventory, one_rerun, ["one"], False, None),
            ]
            if BREAKDOWN:
                no_spec, lock_only = breakdown_plays(workdir)
                plays += [
                    ("install task", inventory, os.path.join(workdir, "install_only.yml"), hosts, False, None),
                    ("role without argument specs", inventory, no_spec, hosts, False, ["packs_fetch_on=controller"]),
                    ("lock task", inventory, lock_only, hosts[:1], False, None),  # run_once: one host in the recap
                ]
            for round_number in range(RUNS):
                shift = round_number % len(plays)
                for name, inv, playbook, names, expect, extra in plays[shift:] + plays[:shift]:
                    wall, cpu = run_play(workdir, inv, playbook, names, expect, extra)
                    samples.setdefault(name, []).append(wall)
                    samples.setdefault(name + " cpu", []).append(cpu)
                print("round %d done (load %.1f)" % (round_number + 1, os.getloadavg()[0]), file=sys.stderr)
            requests = len(server.requests)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    results = dict((key, {"median": statistics.median(v), "min": min(v), "max": max(v), "samples": v}) for key, v in samples.items())
    print("Machine: %(platform)s, %(nproc)s CPUs, Python %(python)s, %(ansible)s, git %(git)s; --forks %(forks)s" % info)
    print("Target interpreter: %s; %d hosts; %d rounds; load avg at the end %.1f; registry requests while converged: %d"
          % (python, HOSTS, RUNS, os.getloadavg()[0], requests))
    print()
    print("| play | wall median s | min s | vs ping (median) | CPU median s | CPU vs ping |")
    print("|---|---:|---:|---:|---:|---:|")
    for name in [key for key in samples if not key.endswith(" cpu")]:
        reference = "ping 1" if name.endswith(" 1") else "ping"
        r, p = results[name], results[reference]
        rc, pc = results[name + " cpu"], results[reference + " cpu"]
        row = (name, r["median"], r["min"], r["median"] / p["median"], rc["median"], rc["median"] / pc["median"])
        print("| %s | %.3f | %.3f | %.2fx | %.2f | %.2fx |" % row)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "converged.json"), "w") as handle:
        json.dump({"machine": info, "results": results, "requests": requests}, handle, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
