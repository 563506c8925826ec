#!/usr/bin/env python
"""Fleet benchmark (issue 5).  Run: ``make bench`` or ``.venv/bin/python bench/bench_fleet.py``.

A simulated fleet of N inventory hosts (``ansible_connection=local``, each with
its own packs directory, target interpreter ``/usr/bin/python3`` when it lacks
``requests``, so the controller does all registry and download work) and three
registries served over HTTPS by the test server (in-process, every request
logged).  The play is ``playbooks/pin_fleet.yml`` (role ``attune.packs.packs``)
with four packs from the three registries and ``packs_fetch_on: controller``.

For each fleet size (``BENCH_SIZES``, default ``10,25,50``):

1. cold convergence: empty controller cache, no lock file, empty hosts: wall and
   CPU time, index and archive GETs;
2. ``BENCH_RUNS`` times (default 5), alternating: the role on the converged
   fleet (must report no change on any host), an ``ansible.builtin.ping`` play
   over the same inventory, and (profile) a play with only the role's install
   task (``attune_pack`` + ``lock_file``, no lock task, no argument validation,
   no skipped tasks).  Median and min of wall and CPU seconds, and the ratios.

Environment: ``BENCH_RUNS`` (5), ``BENCH_SIZES`` (``10,25,50``), ``BENCH_FORKS``
(10), ``BENCH_MAX_LOAD``/``BENCH_MAX_WAIT`` (wait for a quiet machine before each
size, as bench_install does).  Prints Markdown tables and writes
``bench/results/fleet.json``.
"""
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

# tests/conftest.py puts the checkout on sys.path as ansible_collections.attune.packs
import conftest  # noqa: E402,F401  pylint: disable=unused-import
from support.play import ansible_bin, base_env  # noqa: E402
from support.pack_site import PACKS, REGISTRIES, PackSite, bare_python  # noqa: E402
from support.registry_server import RegistryServer  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
SIZES = sorted(int(s) for s in os.environ.get("BENCH_SIZES", "10,25,50").split(",") if s.strip())
FORKS = int(os.environ.get("BENCH_FORKS", "10"))
MAX_LOAD = float(os.environ.get("BENCH_MAX_LOAD", "0") or 0)
MAX_WAIT = float(os.environ.get("BENCH_MAX_WAIT", "900"))
PLAYBOOK = os.path.join(REPO, "playbooks", "pin_fleet.yml")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def target_python():
    return bare_python() or sys.executable


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def cpu_seconds():
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return children.ru_utime + children.ru_stime


def wait_quiet():
    deadline = time.monotonic() + MAX_WAIT
    while MAX_LOAD and os.getloadavg()[0] >= MAX_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    return os.getloadavg()[0]


class Site(PackSite):
    def counts(self):
        gets = [r.path for r in self.server.requests if r.method == "GET"]
        return {"index_gets": sum(1 for p in gets if p.endswith(".json")), "archive_gets": sum(1 for p in gets if p.startswith("/files/")),
                "distinct_archives": len(set(p for p in gets if p.startswith("/files/")))}


def write_fleet(workdir, size, site, python):
    cache = os.path.join(workdir, "controller-cache")
    group_vars = {
        "ansible_connection": "local",
        "ansible_python_interpreter": python,
        "packs_list": PACKS,
        "packs_lock_file": os.path.join(workdir, "packs.lock.yml"),
        "packs_fetch_on": "controller",
        "packs_registry_options": {
            "registries": [{"name": name, "url": site.server.url(name + ".json"), "priority": number}
                           for number, name in enumerate(REGISTRIES, 1)],
            "ca_path": site.server.ca_path,
            "cache_dir": cache,
        },
    }
    hosts = dict(("worker%02d" % n, {"packs_dir": os.path.join(workdir, "hosts", "worker%02d" % n, "packs")}) for n in range(1, size + 1))
    inventory = os.path.join(workdir, "inventory.json")
    with open(inventory, "w") as handle:
        json.dump({"attune_workers": {"hosts": hosts, "vars": group_vars}}, handle)
    with open(os.path.join(workdir, "ping.yml"), "w") as handle:
        handle.write("- name: Ping\n  hosts: attune_workers\n  gather_facts: false\n  tasks:\n    - name: Ping\n      ansible.builtin.ping:\n")
    # profile: the role's install task alone (the lock file already exists)
    with open(os.path.join(workdir, "install_only.yml"), "w") as handle:
        handle.write(
            "- name: Install from the lock only\n  hosts: attune_workers\n  gather_facts: false\n  tasks:\n"
            "    - name: Install the locked packs\n      attune.packs.attune_pack:\n        name: \"{{ packs_list }}\"\n"
            "        lock_file: \"{{ packs_lock_file }}\"\n        packs_dir: \"{{ packs_dir }}\"\n        fetch_on: controller\n"
            "        ca_path: \"{{ packs_registry_options.ca_path }}\"\n        cache_dir: \"{{ packs_registry_options.cache_dir }}\"\n")
    return inventory, sorted(hosts)


def run_play(workdir, inventory, playbook, hosts, expect_changed, extra=()):
    """(wall, cpu) of one ansible-playbook run; checks the recap (every host ok; changed hosts as expected, None: any).

    ``extra``: ``-e`` values.  Roles are also looked up in ``workdir/roles``.
    """
    cmd = [ansible_bin("ansible-playbook"), "-i", inventory, playbook, "--forks", str(FORKS)]
    for value in extra or ():
        cmd += ["-e", value]
    env = base_env({"ANSIBLE_LOCAL_TEMP": os.path.join(workdir, ".ansible-tmp"), "ANSIBLE_ROLES_PATH": os.path.join(workdir, "roles")})
    env.pop("ANSIBLE_PYTHON_INTERPRETER", None)
    cpu = cpu_seconds()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    recap = dict((m.group(1), [int(m.group(i)) for i in range(2, 6)]) for m in RECAP.finditer(proc.stdout))
    if proc.returncode != 0 or sorted(recap) != hosts or any(v[2] or v[3] for v in recap.values()):
        raise RuntimeError("%s failed (rc=%s):\n%s\n%s" % (playbook, proc.returncode, proc.stdout[-4000:], proc.stderr[-3000:]))
    changed = sorted(host for host, values in recap.items() if values[1])
    if expect_changed is not None and changed != (hosts if expect_changed else []):
        raise RuntimeError("%s: changed on %s, expected %s\n%s" % (playbook, changed, "all" if expect_changed else "none", proc.stdout[-4000:]))
    return wall, cpu


def bench_size(base, size, python):
    workdir = os.path.join(base, "fleet-%d" % size)
    os.makedirs(workdir)
    result = {"hosts": size, "loadavg": wait_quiet()}
    with RegistryServer() as server:
        site = Site(server, workdir)
        inventory, hosts = write_fleet(workdir, size, site, python)
        server.reset_log()
        wall, cpu = run_play(workdir, inventory, PLAYBOOK, hosts, expect_changed=True)
        result["cold"] = {"wall": wall, "cpu": cpu}
        result["cold"].update(site.counts())
        server.reset_log()
        plays = (("converged", PLAYBOOK, False), ("ping", os.path.join(workdir, "ping.yml"), None),
                 ("install task only", os.path.join(workdir, "install_only.yml"), False))
        samples = {}
        for dummy in range(RUNS):
            for name, playbook, expect in plays:
                wall, cpu = run_play(workdir, inventory, playbook, hosts, expect_changed=expect)
                samples.setdefault(name, []).append(wall)
                samples.setdefault(name + " cpu", []).append(cpu)
        result["converged_requests"] = len(server.requests)
    for key, values in samples.items():
        result[key] = summary(values)
    result["ratio_median"] = result["converged"]["median"] / result["ping"]["median"]
    result["ratio_min"] = result["converged"]["min"] / result["ping"]["min"]
    result["ratio_cpu_median"] = result["converged cpu"]["median"] / result["ping cpu"]["median"]
    result["install_only_ratio_median"] = result["install task only"]["median"] / result["ping"]["median"]
    result["loadavg_end"] = os.getloadavg()[0]
    return result


def machine_info():
    version = subprocess.run([ansible_bin("ansible"), "--version"], capture_output=True, text=True, check=False).stdout.splitlines()[0]
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()
    return {"platform": platform.platform(), "nproc": os.cpu_count(), "python": platform.python_version(), "ansible": version,
            "git": git or "unknown", "forks": FORKS, "runs": RUNS}


def report(info, results):
    print("Machine: %(platform)s, %(nproc)s CPUs, Python %(python)s, %(ansible)s, git %(git)s; --forks %(forks)s, %(runs)s runs"
          % info)
    print("Target interpreter: %s" % info["target_python"])
    print()
    print("Cold convergence (empty controller cache, no lock, empty hosts; 4 packs from 3 registries, fetch_on controller):")
    print()
    print("| hosts | wall s | CPU s | index GETs | archive GETs (distinct) | load avg |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in results:
        c = r["cold"]
        print("| %d | %.1f | %.1f | %d | %d (%d) | %.1f |" % (
            r["hosts"], c["wall"], c["cpu"], c["index_gets"], c["archive_gets"], c["distinct_archives"], r["loadavg"]))
    print()
    print("Converged fleet (role, no change on any host) vs ansible.builtin.ping over the same inventory, median (min) of %d:" % RUNS)
    print()
    print("| hosts | role s | ping s | ratio median (min) | CPU ratio | install task only s (ratio) | requests |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        print("| %d | %.1f (%.1f) | %.1f (%.1f) | %.2fx (%.2fx) | %.2fx | %.1f (%.2fx) | %d |" % (
            r["hosts"], r["converged"]["median"], r["converged"]["min"], r["ping"]["median"], r["ping"]["min"], r["ratio_median"],
            r["ratio_min"], r["ratio_cpu_median"], r["install task only"]["median"], r["install_only_ratio_median"],
            r["converged_requests"]))


def slopes(results):
    """CPU seconds per additional host (between the smallest and the largest fleet), and the fixed part."""
    first, last = results[0], results[-1]
    if first["hosts"] == last["hosts"]:
        return {}
    span = float(last["hosts"] - first["hosts"])
    out = {}
    for key in ("converged cpu", "ping cpu", "install task only cpu"):
        per_host = (last[key]["median"] - first[key]["median"]) / span
        out[key] = {"per_host": per_host, "fixed": first[key]["median"] - per_host * first["hosts"]}
    return out


def report_slopes(per_host):
    if not per_host:
        return
    print()
    print("CPU seconds per host (slope of the medians between the smallest and the largest fleet) and fixed part:")
    print()
    print("| play | CPU s per host | vs ping | fixed CPU s |")
    print("|---|---:|---:|---:|")
    ping = per_host["ping cpu"]["per_host"]
    for key, label in (("ping cpu", "ansible.builtin.ping"), ("install task only cpu", "install task only"), ("converged cpu", "role (converged)")):
        print("| %s | %.3f | %+.3f | %.1f |" % (label, per_host[key]["per_host"], per_host[key]["per_host"] - ping, per_host[key]["fixed"]))


def main():
    info = machine_info()
    info["target_python"] = target_python()
    base = tempfile.mkdtemp(prefix="attune-bench-fleet-")
    try:
        results = [bench_size(base, size, info["target_python"]) for size in SIZES]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    per_host = slopes(results)
    report(info, results)
    report_slopes(per_host)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "fleet.json"), "w") as handle:
        json.dump({"machine": info, "results": results, "cpu_per_host": per_host}, handle, indent=2, sort_keys=True)


if __name__ == "__main__":
    main()
