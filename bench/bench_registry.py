#!/usr/bin/env python
"""Registry benchmarks (issue 2).  Run: ``make bench`` or ``.venv/bin/python bench/bench_registry.py``.

1. Ad hoc ``attune.packs.attune_pack_search`` on localhost with a warm cache
   vs ``ansible.builtin.ping`` on the same host, alternating, N runs each.
2. Synthetic indices of 2,500 and 10,000 packs served over HTTPS by a separate
   server process: cold fetch + validate + cache write, warm search (cache
   hit), and a ref resolution, all timed inside one Python process the way
   the module runs them (RegistryClient from a fresh object each time).

Prints a Markdown table and writes bench/results/registry.json.
"""
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

# conftest is imported for its side effect: it sets up the ansible_collections path.
import conftest  # noqa: E402,F401  pylint: disable=unused-import
from support.play import base_env  # noqa: E402
from support.registry_server import ServerProcess  # noqa: E402
from support.synth import make_index  # noqa: E402

from ansible_collections.attune.packs.plugins.module_utils._registry._cache import IndexCache  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._registry._fetch import fetch_index  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._registry._index import validate_index  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "7"))


def timed(func, repeat):
    samples = []
    result = None
    for dummy in range(repeat):
        start = time.perf_counter()
        result = func()
        samples.append(time.perf_counter() - start)
    return samples, result


def adhoc_vs_ping(workdir, index_url, ca_path):
    cache = os.path.join(workdir, "adhoc-cache")
    config = os.path.join(workdir, "config.yaml")
    with open(config, "w") as handle:
        handle.write("pack_registry:\n  approved_private_hosts: [127.0.0.1]\n  indices:\n    - name: bench\n      url: %s\n"
                     % index_url)
    inventory = os.path.join(workdir, "inventory.ini")
    with open(inventory, "w") as handle:
        handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    env = base_env({"ATTUNE_CONFIG": config})
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
    search = [ansible, "localhost", "-i", inventory, "-m", "attune.packs.attune_pack_search",
              "-a", "query=slack ca_path=%s cache_dir=%s" % (ca_path, cache)]
    ping = [ansible, "localhost", "-i", inventory, "-m", "ansible.builtin.ping"]

    def run(cmd):
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
        if proc.returncode != 0:
            raise RuntimeError(proc.stdout + proc.stderr)

    run(search)  # warm the cache
    run(ping)
    times = {"search": [], "ping": []}
    for dummy in range(RUNS):
        for name, cmd in (("ping", ping), ("search", search)):
            start = time.perf_counter()
            run(cmd)
            times[name].append(time.perf_counter() - start)
    return times


def index_bench(workdir, server, name, n_packs):
    settings_opts = {
        "registries": [{"name": name, "url": server.url("%s.json" % name)}],
        "ca_path": server.ca_path,
        "index_max_bytes": 200 * 1024 * 1024,
        "cache_dir": os.path.join(workdir, "cache-" + name),
    }

    def client(**extra):
        return RegistryClient(load_settings(dict(settings_opts, **extra), environ={}))

    def cold():
        c = client(cache_enabled=False)
        return c.search("zzz-no-match")

    def cold_cached():
        c = client(refresh=True)
        c.cache.discard(c.cache.key(c.registries()[0].url, {}))
        return c.search("zzz-no-match")

    cold_samples, dummy = timed(cold, 3)
    cold_cache_samples, dummy = timed(cold_cached, 3)
    warm_samples, (packs, _failed) = timed(lambda: client().search("slack"), RUNS)
    target = "slack-%05d" % 0
    refs = [p["ref"] for p in packs]
    target = refs[len(refs) // 2] if refs else target
    resolve_samples, resolved = timed(lambda: client().resolve(target + "@^1"), RUNS)
    list_all, (everything, _f) = timed(lambda: client().search(""), 3)
    phases = cold_phases(workdir, server, name)
    return {
        "cold_phases_s": phases,
        "packs": n_packs,
        "cold_fetch_validate_s": statistics.median(cold_samples),
        "cold_fetch_validate_cache_write_s": statistics.median(cold_cache_samples),
        "warm_search_s": statistics.median(warm_samples),
        "warm_search_hits": len(packs),
        "warm_list_all_s": statistics.median(list_all),
        "resolve_s": statistics.median(resolve_samples),
        "resolved": "%s %s" % (resolved["ref"], resolved["version"]),
        "listed": len(everything),
    }


def cold_phases(workdir, server, name, repeat=3):
    """Where a cold load goes: HTTPS fetch, JSON decode, validation, cache write (median of ``repeat``)."""
    url = server.url("%s.json" % name)
    cache = IndexCache(os.path.join(workdir, "phases-" + name))
    samples = {"fetch": [], "decode": [], "validate": [], "cache write": []}
    for dummy in range(repeat):
        start = time.perf_counter()
        body = fetch_index(url, verify=server.ca_path, max_bytes=200 * 1024 * 1024).body
        fetched = time.perf_counter()
        data = json.loads(body)
        decoded = time.perf_counter()
        validate_index(data, registry=name)
        validated = time.perf_counter()
        cache.store(cache.key(url), data, url)
        stored = time.perf_counter()
        for key, value in (("fetch", fetched - start), ("decode", decoded - fetched), ("validate", validated - decoded),
                           ("cache write", stored - validated)):
            samples[key].append(value)
    return dict((key, statistics.median(values)) for key, values in samples.items())


def main():
    results = {"machine": "%s, %s CPUs, Python %s" % (platform.platform(), os.cpu_count(), platform.python_version())}
    with tempfile.TemporaryDirectory(prefix="attune-bench-") as workdir:
        root = os.path.join(workdir, "www")
        os.makedirs(root)
        sizes = {"idx2500": 2500, "idx10000": 10000, "small": 50}
        for name, count in sizes.items():
            data = json.dumps(make_index(count, registry_name=name)).encode()
            with open(os.path.join(root, name + ".json"), "wb") as handle:
                handle.write(data)
            results.setdefault("index_bytes", {})[name] = len(data)
        with ServerProcess(root, workdir) as server:
            results["indices"] = [index_bench(workdir, server, name, count) for name, count in sizes.items() if name != "small"]
            times = adhoc_vs_ping(workdir, server.url("small.json"), server.ca_path)
    ping = statistics.median(times["ping"])
    search = statistics.median(times["search"])
    results["adhoc"] = {"runs": RUNS, "ping_median_s": ping, "search_median_s": search, "ratio": search / ping,
                        "ping_samples": times["ping"], "search_samples": times["search"]}
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "registry.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print("machine: %s" % results["machine"])
    print()
    print("| measurement | median |")
    print("|---|---|")
    print("| ad hoc `ansible.builtin.ping` (localhost) | %.3f s |" % ping)
    print("| ad hoc `attune_pack_search` warm cache | %.3f s (%.2fx ping) |" % (search, search / ping))
    for item in results["indices"]:
        mb = results["index_bytes"]["idx%d" % item["packs"]] / 1e6
        print("| %d packs (%.1f MB): cold fetch + validate (no cache) | %.3f s |" % (item["packs"], mb, item["cold_fetch_validate_s"]))
        print("| %d packs: cold fetch + validate + cache write | %.3f s |" % (item["packs"], item["cold_fetch_validate_cache_write_s"]))
        print("| %d packs: cold phases: %s | |" % (item["packs"], ", ".join(
            "%s %.3f s" % (key, value) for key, value in item["cold_phases_s"].items())))
        print("| %d packs: warm search `slack` (%d hits) | %.4f s |" % (item["packs"], item["warm_search_hits"], item["warm_search_s"]))
        print("| %d packs: warm list all (%d) | %.4f s |" % (item["packs"], item["listed"], item["warm_list_all_s"]))
        print("| %d packs: resolve `%s` | %.4f s |" % (item["packs"], item["resolved"], item["resolve_s"]))


if __name__ == "__main__":
    main()
