#!/usr/bin/env python
"""Attune-API fleet benchmark (issue 11).  Run: ``.venv/bin/python bench/bench_attune_api.py``.

N Attune deployments (``BENCH_DEPLOYMENTS``, default 8; one tests/support/attune_server.py child process each, with
its own CA, integration token and request log) named by N inventory hosts (``ansible_connection=local``), and three
registries with real archives on one logging HTTPS test server (tests/support/pack_site.py, M = 4 packs;
``BENCH_PACKS=20`` publishes and pins synthetic packs ``bulkNN`` in the community registry up to M = 20).

1. cold run of ``playbooks/pin_fleet.yml`` (role ``attune.packs.packs`` with ``packs_api_url`` per host): wall time,
   index GETs, archive GETs, uploads (must be N x M);
2. ``BENCH_RUNS`` times (default 5), alternating, side by side in one run:
   - the converged role (``pin_fleet.yml``, no change anywhere, must upload nothing);
   - the role's install task alone (``attune_pack`` + ``lock_file`` + ``api_url``);
   - the baseline: one ``ansible.builtin.uri`` ``GET /api/v1/packs`` per deployment (with a bearer token obtained
     before the timing, so the baseline does no login at all).
   Median and min wall seconds and the ratios, and the Attune requests per deployment of the converged install
   task (issue 17: login + ``GET /api/v1/packs``, whatever M).

Prints Markdown tables and writes ``bench/results/attune_api.json``.
"""
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import contextlib

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

import conftest  # noqa: E402,F401  pylint: disable=unused-import
from support.attune_server import AttuneServerProcess  # noqa: E402
from support.pack_site import EXPECTED, PACKS, PackSite  # noqa: E402
from support.play import ansible_bin, base_env  # noqa: E402
from support.registry_server import RegistryServer  # noqa: E402

from ansible_collections.attune.packs.plugins.module_utils._attune import _api  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
DEPLOYMENTS = int(os.environ.get("BENCH_DEPLOYMENTS", "8"))
FORKS = int(os.environ.get("BENCH_FORKS", "10"))
PACK_COUNT = int(os.environ.get("BENCH_PACKS", str(len(PACKS))))
BULK = ["bulk%02d" % number for number in range(max(PACK_COUNT - len(PACKS), 0))]
PLAYBOOK = os.path.join(REPO, "playbooks", "pin_fleet.yml")
RECAP = re.compile(r"^(\S+)\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def run_play(workdir, inventory, playbook, hosts, expect_changed):
    cmd = [ansible_bin("ansible-playbook"), "-i", inventory, playbook, "--forks", str(FORKS)]
    env = base_env({"ANSIBLE_LOCAL_TEMP": os.path.join(workdir, ".ansible-tmp")})
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    recap = dict((m.group(1), [int(m.group(i)) for i in range(2, 6)]) for m in RECAP.finditer(proc.stdout))
    if proc.returncode != 0 or sorted(recap) != hosts or any(v[2] or v[3] for v in recap.values()):
        raise RuntimeError("%s failed (rc=%s):\n%s\n%s" % (playbook, proc.returncode, proc.stdout[-4000:], proc.stderr[-3000:]))
    changed = sorted(host for host, values in recap.items() if values[1])
    if expect_changed is not None and changed != (hosts if expect_changed else []):
        raise RuntimeError("%s: changed on %s\n%s" % (playbook, changed, proc.stdout[-4000:]))
    return wall


def uploads(attunes):
    return sum(1 for a in attunes.values() for e in a.read_log() if e["path"] == "/api/v1/packs/upload" and e["method"] == "POST")


def attune_requests(attunes):
    return sum(len(a.read_log()) for a in attunes.values())


def main():
    base = tempfile.mkdtemp(prefix="bench-attune-api-")
    result = {"deployments": DEPLOYMENTS, "packs": len(EXPECTED) + len(BULK), "runs": RUNS, "forks": FORKS,
              "platform": platform.platform(), "nproc": os.cpu_count(), "python": platform.python_version()}
    try:
        with contextlib.ExitStack() as stack:
            server = stack.enter_context(RegistryServer())
            site = PackSite(server, os.path.join(base, "site"))
            for ref in BULK:
                site.publish("community", ref, "1.0.0")
            attunes = {}
            for number in range(1, DEPLOYMENTS + 1):
                workdir = os.path.join(base, "attune%02d" % number)
                os.makedirs(workdir)
                attunes["deploy%02d" % number] = stack.enter_context(
                    AttuneServerProcess(workdir, config={"integration_tokens": ["ci"], "standard_packs": [{"ref": "core"}]}))
            bundle = os.path.join(base, "ca-bundle.pem")
            with open(bundle, "wb") as out:
                for path in [server.ca_path] + [a.ca_path for a in attunes.values()]:
                    with open(path, "rb") as handle:
                        out.write(handle.read())
            hosts = {}
            for name, attune in attunes.items():
                client = _api.AttuneApi(attune.url(), token=attune.tokens["ci"], ca_path=bundle)
                client._login()  # pylint: disable=protected-access
                hosts[name] = {"packs_api_url": attune.url(), "packs_api_token": attune.tokens["ci"],
                               "bench_jwt": client._access}  # pylint: disable=protected-access
            group_vars = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "packs_list": PACKS + BULK,
                          "packs_lock_file": os.path.join(base, "packs.lock.yml"),
                          "packs_registry_options": site.options(os.path.join(base, "cache"), ca_path=bundle)}
            inventory = os.path.join(base, "inventory.json")
            with open(inventory, "w") as handle:
                json.dump({"attune_workers": {"hosts": hosts, "vars": group_vars}}, handle)
            uri = os.path.join(base, "uri.yml")
            with open(uri, "w") as handle:
                handle.write("- name: One GET /api/v1/packs per deployment\n  hosts: attune_workers\n  gather_facts: false\n"
                             "  tasks:\n    - name: List packs\n      ansible.builtin.uri:\n"
                             "        url: \"{{ packs_api_url }}/api/v1/packs\"\n        ca_path: \"{{ packs_registry_options.ca_path }}\"\n"
                             "        headers:\n          Authorization: \"Bearer {{ bench_jwt }}\"\n")
            install = os.path.join(base, "install_only.yml")
            with open(install, "w") as handle:
                handle.write("- name: Install from the lock only\n  hosts: attune_workers\n  gather_facts: false\n  tasks:\n"
                             "    - name: Install the locked packs\n      attune.packs.attune_pack:\n        name: \"{{ packs_list }}\"\n"
                             "        lock_file: \"{{ packs_lock_file }}\"\n        api_url: \"{{ packs_api_url }}\"\n"
                             "        api_token: \"{{ packs_api_token }}\"\n        ca_path: \"{{ packs_registry_options.ca_path }}\"\n"
                             "        cache_dir: \"{{ packs_registry_options.cache_dir }}\"\n")
            names = sorted(hosts)
            server.reset_log()
            result["cold"] = {"wall": run_play(base, inventory, PLAYBOOK, names, True)}
            gets = [r.path for r in server.requests if r.method == "GET"]
            result["cold"].update(index_gets=sum(1 for p in gets if p.endswith(".json")),
                                  archive_gets=sum(1 for p in gets if p.startswith("/files/")), uploads=uploads(attunes))
            cold_uploads = result["cold"]["uploads"]
            samples = {}
            install_requests = []
            for dummy in range(RUNS):
                for name, playbook, expect in (("converged", PLAYBOOK, False), ("install task only", install, False),
                                               ("uri GET /api/v1/packs", uri, None)):
                    before = attune_requests(attunes) if playbook == install else None
                    samples.setdefault(name, []).append(run_play(base, inventory, playbook, names, expect))
                    if before is not None:
                        install_requests.append((attune_requests(attunes) - before) / float(DEPLOYMENTS))
            result["install_requests_per_deployment"] = summary(install_requests)
            result["converged_uploads"] = uploads(attunes) - cold_uploads
            for key, values in samples.items():
                result[key] = summary(values)
            baseline = result["uri GET /api/v1/packs"]
            result["ratio_median"] = result["converged"]["median"] / baseline["median"]
            result["ratio_min"] = result["converged"]["min"] / baseline["min"]
            result["install_only_ratio_median"] = result["install task only"]["median"] / baseline["median"]
    finally:
        shutil.rmtree(base, ignore_errors=True)
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "attune_api.json"), "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
    c = result["cold"]
    print("Machine: %(platform)s, %(nproc)s CPUs, Python %(python)s; --forks %(forks)s; %(runs)s runs" % result)
    print()
    print("| deployments | packs | cold s | index GETs | archive GETs | uploads (cold) | uploads (converged runs) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    row = (DEPLOYMENTS, result["packs"], c["wall"], c["index_gets"], c["archive_gets"], c["uploads"], result["converged_uploads"])
    print("| %d | %d | %.1f | %d | %d | %d | %d |" % row)
    print()
    print("| converged role s | install task only s | uri GET s | ratio median (min) | install-only ratio |")
    print("|---:|---:|---:|---:|---:|")
    print("| %.2f (%.2f) | %.2f (%.2f) | %.2f (%.2f) | %.2fx (%.2fx) | %.2fx |" % (
        result["converged"]["median"], result["converged"]["min"], result["install task only"]["median"],
        result["install task only"]["min"], result["uri GET /api/v1/packs"]["median"], result["uri GET /api/v1/packs"]["min"],
        result["ratio_median"], result["ratio_min"], result["install_only_ratio_median"]))
    print()
    print("Attune requests per deployment, converged install task: median %.1f (min %.1f, max %.1f)" % (
        result["install_requests_per_deployment"]["median"], result["install_requests_per_deployment"]["min"],
        result["install_requests_per_deployment"]["max"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
