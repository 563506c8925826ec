#!/usr/bin/env python
"""Install benchmarks (issue 4).  Run: ``make bench`` or ``.venv/bin/python bench/bench_install.py``.

A synthetic pack archive (.tar.gz; many small compressible files plus a few
big incompressible ones) is served over HTTPS by the test server
(``tests/support/registry_server.py``, in its own process).  Measured, each
``BENCH_RUNS`` times (default 5), median and min:

1. Install time of the largest archive (default 50 MB):
   - baseline ``curl -s --cacert CA URL -o f && sha256sum f && tar -xzf f``
     (and its three steps timed one by one);
   - ``attune.packs.attune_pack`` (``src`` + ``checksum``) run by
     ``ansible-playbook`` on localhost;
   - the same install in this process through ``_install`` (no ansible), with
     and without the fsync of the new tree, and split in phases (download +
     sha256, extraction, tree checksum, fsync).
2. Peak memory (``ru_maxrss`` from ``os.wait4``) of the real module process
   (``python -m ...plugins.modules.attune_pack args.json``, no ansible) while
   installing archives of 10 and 50 MB, against the same process doing a
   no-change run (its idle baseline: same imports, nothing downloaded).
3. A no-change rerun of ``attune_pack`` (pack installed) vs an
   ``ansible.builtin.ping`` play over the same inventory, alternating.

Environment: ``BENCH_RUNS`` (default 5), ``BENCH_SIZES_MB`` (default ``10,50``;
the largest is used for the timings), ``BENCH_MAX_LOAD`` (e.g. ``0.5``: before
each section wait, at most ``BENCH_MAX_WAIT`` seconds, for the 1-minute load
average to drop below it; the load averages are printed either way).  Prints Markdown tables and writes
``bench/results/install.json``.
"""
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

# tests/conftest.py puts the checkout on sys.path as ansible_collections.attune.packs
from conftest import COLLECTIONS_ROOT  # noqa: E402
from support.play import ansible_bin, base_env  # noqa: E402
from support.registry_server import ServerProcess  # noqa: E402
from support.synth import make_archive, make_pack_tree  # noqa: E402

from ansible_collections.attune.packs.plugins.module_utils._pack import _install, _packdir  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import framed_dir_checksum  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._base._errors import SourceError  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._pack._extract import extract_archive  # noqa: E402
from ansible_collections.attune.packs.plugins.module_utils._registry._fetch import download  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
# On a shared machine: wait (up to BENCH_MAX_WAIT seconds) until the 1-minute load average is below this.
MAX_LOAD = float(os.environ.get("BENCH_MAX_LOAD", "0") or 0)
MAX_WAIT = float(os.environ.get("BENCH_MAX_WAIT", "900"))
SIZES_MB = sorted(int(s) for s in os.environ.get("BENCH_SIZES_MB", "10,50").split(",") if s.strip())
REF = "benchpack"
VERSION = "1.0.0"
MODULE = "ansible_collections.attune.packs.plugins.modules.attune_pack"
SMALL_FILES_PER_MB = 40
BIG_FILES = 4
WORDS = ("action", "alert", "backup", "channel", "deploy", "entry_point", "host", "incident", "message", "parameters",
         "policy", "restart", "runner_type", "secret", "service", "snapshot", "ticket", "trigger", "user", "volume")


# -- test data -----------------------------------------------------------------------


def _small_text(rng, index):
    lines = ["# generated file %d" % index, "---"]
    for line in range(rng.randint(20, 200)):
        words = " ".join(rng.choice(WORDS) for dummy in range(rng.randint(3, 8)))
        lines.append("%s_%d: %s %d" % (rng.choice(WORDS), line, words, rng.randint(0, 99999)))
    return "\n".join(lines) + "\n"


def make_pack_archive(workdir, size_mb, seed=1):
    """A .tar.gz of about ``size_mb`` MB: SMALL_FILES_PER_MB small text files per MB + BIG_FILES random blobs."""
    rng = random.Random(seed)
    files = {}
    for index in range(SMALL_FILES_PER_MB * size_mb):
        ext = "py" if index % 3 == 0 else "yaml"
        files["actions/group%02d/action_%05d.%s" % (index % 25, index, ext)] = _small_text(rng, index)
    tree = make_pack_tree(os.path.join(workdir, "src-%dmb" % size_mb), REF, VERSION, files=files)
    out = os.path.join(workdir, "www", "%s-%dmb.tar.gz" % (REF, size_mb))
    make_archive(tree, out, "tar.gz", top_dir="%s-%s" % (REF, VERSION))
    small_only = os.path.getsize(out)
    remaining = max(size_mb * 1000 * 1000 - small_only, BIG_FILES)
    os.makedirs(os.path.join(tree, "assets"))
    for index in range(BIG_FILES):
        with open(os.path.join(tree, "assets", "blob%d.bin" % index), "wb") as handle:
            handle.write(rng.randbytes(remaining // BIG_FILES))
    make_archive(tree, out, "tar.gz", top_dir="%s-%s" % (REF, VERSION))
    digest = hashlib.sha256()
    with open(out, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    count = sum(len(names) for dummy, dummy2, names in os.walk(tree))
    unpacked = sum(os.path.getsize(os.path.join(d, n)) for d, dummy, names in os.walk(tree) for n in names)
    shutil.rmtree(tree)
    return {"size_mb": size_mb, "path": out, "bytes": os.path.getsize(out), "sha256": digest.hexdigest(),
            "checksum": "sha256:" + digest.hexdigest(), "files": count, "unpacked_bytes": unpacked}


# -- helpers -------------------------------------------------------------------------


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def fresh_dir(base, name):
    path = os.path.join(base, name)
    if os.path.lexists(path):
        shutil.rmtree(path)
    os.makedirs(path)
    return path


def run_checked(cmd, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False, **kwargs)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%s):\n%s\n%s" % (cmd[0], proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


def _cpu_seconds():
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed_call(func, settle=True):
    """``(wall seconds, CPU seconds, result)``; CPU = this process + the children it waited for meanwhile.

    The CPU time of the HTTPS server process is not included (it is reaped only at the end).
    Dirty pages of the previous measurement are written out first (``os.sync()``, not timed): without it each
    measurement pays for the write-back of the one before, and the order of the rows decides the numbers.
    """
    if settle:
        os.sync()
    cpu = _cpu_seconds()
    start = time.perf_counter()
    result = func()
    return time.perf_counter() - start, _cpu_seconds() - cpu, result


def record(samples, key, measured):
    """Append a ``timed_call`` measurement to ``samples[key]`` (wall) and ``samples[key + ' cpu']``; return its result."""
    samples.setdefault(key, []).append(measured[0])
    samples.setdefault(key + " cpu", []).append(measured[1])
    return measured[2]


def wait_quiet(section, loads):
    """Before a section: wait for a quiet machine when BENCH_MAX_LOAD is set; note the load average."""
    deadline = time.monotonic() + MAX_WAIT
    while MAX_LOAD and os.getloadavg()[0] >= MAX_LOAD and time.monotonic() < deadline:
        time.sleep(5)
    loads[section] = os.getloadavg()[0]


def installed_checksum(packs_dir):
    meta = _packdir.read_metadata(packs_dir, REF)
    if not meta or meta.get("version") != VERSION:
        raise RuntimeError("pack %s not installed in %s: %r" % (REF, packs_dir, meta))
    return meta["checksum"]


def machine_info():
    model = "unknown"
    with open("/proc/cpuinfo") as handle:
        for line in handle:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    version = run_checked([ansible_bin("ansible"), "--version"]).stdout.splitlines()[0]
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True, check=False).stdout.strip()
    return {"platform": platform.platform(), "nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "ansible": version, "loadavg_start": os.getloadavg(), "git": git or "unknown"}


# -- 1. install time ------------------------------------------------------------------


BASELINE = 'curl -s --cacert "$CA" "$URL" -o f && sha256sum f && tar -xzf f'
# the same, durable like attune_pack's default install (which fsyncs the new tree before activating it)
BASELINE_SYNC = BASELINE + ' && sync'


def baseline_once(work, url, ca_path, archive):
    where = fresh_dir(work, "baseline")
    env = dict(os.environ, CA=ca_path, URL=url)
    measured = timed_call(lambda: run_checked(["bash", "-c", BASELINE], cwd=where, env=env))
    proc = measured[2]
    if proc.stdout.split()[0] != archive["sha256"]:
        raise RuntimeError("baseline: sha256sum printed %s" % proc.stdout)
    shutil.rmtree(where)
    where = fresh_dir(work, "baseline")
    measured_sync = timed_call(lambda: run_checked(["bash", "-c", BASELINE_SYNC], cwd=where, env=env))
    steps = {}
    step_dir = fresh_dir(work, "baseline-steps")
    for name, cmd in (("curl", ["curl", "-s", "--cacert", ca_path, url, "-o", "f"]), ("sha256sum", ["sha256sum", "f"]),
                      ("tar -xzf", ["tar", "-xzf", "f"])):
        steps[name] = timed_call(lambda cmd=cmd: run_checked(cmd, cwd=step_dir))[0]
    shutil.rmtree(where)
    shutil.rmtree(step_dir)
    return measured, measured_sync, steps


def core_install(packs_dir, url, checksum, ca_path, durable=True):
    """What the module does for ``src`` + ``checksum``, called directly (no ansible, no AnsibleModule)."""
    options = _install.Options(packs_dir, ca_path=ca_path, durable=durable)
    target = _install.src_target(REF, url, None, checksum, options)
    step = _install.plan_target(packs_dir, target)
    if step.action != "install":
        raise RuntimeError("expected an install, planned %s" % step.action)
    _install.apply([step], options)


def core_phases(work, url, archive, ca_path):
    """The install's main costs one by one, with the same functions the install uses."""
    where = fresh_dir(work, "phases")
    times = {}
    path = os.path.join(where, "download")
    hasher = hashlib.sha256()

    def fetch():
        with open(path, "wb") as handle:
            download(url, handle, verify=ca_path, hashers=(hasher,), error_class=SourceError, pack=REF)

    times["download + sha256 (requests, TLS)"] = timed_call(fetch)[0]
    if hasher.hexdigest() != archive["sha256"]:
        raise RuntimeError("phases: checksum mismatch")
    dest = os.path.join(where, "extract")
    times["extract (gzip + tar, checked writes)"] = timed_call(lambda: extract_archive(path, dest))[0]
    root = os.path.join(dest, "%s-%s" % (REF, VERSION))
    times["framed tree checksum (tree_checksum)"] = timed_call(lambda: framed_dir_checksum(root))[0]
    # right after the extraction, no sync in between: this is what the durable install pays
    shutil.rmtree(dest)
    extracted = timed_call(lambda: extract_archive(path, dest))[0]
    times["extract + fsync of every file (durable)"] = extracted + timed_call(lambda: _packdir._fsync_tree(root), settle=False)[0]
    shutil.rmtree(where)
    return times


def write_playbook(work, name, task):
    path = os.path.join(work, name)
    play = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": [task]}]
    with open(path, "w") as handle:
        json.dump(play, handle, indent=1)  # JSON is YAML
    return path


def playbook_runner(work, inventory, playbook, extra_vars, env):
    vars_file = os.path.join(work, os.path.basename(playbook) + ".vars.json")
    with open(vars_file, "w") as handle:
        json.dump(extra_vars, handle)
    cmd = [ansible_bin("ansible-playbook"), "-i", inventory, playbook, "-e", "@" + vars_file]

    def run(expect_changed):
        proc = run_checked(cmd, cwd=work, env=env)
        recap = [line for line in proc.stdout.splitlines() if line.startswith("localhost") and "ok=" in line]
        wanted = "changed=%d" % (1 if expect_changed else 0)
        if not recap or wanted not in recap[-1] or "failed=0" not in recap[-1]:
            raise RuntimeError("unexpected play recap (wanted %s):\n%s" % (wanted, proc.stdout[-3000:]))
        return proc
    return run


def bench_install_time(work, server, archive, inventory, env):
    url = server.url(os.path.basename(archive["path"]))
    packs_root = os.path.join(work, "installs")
    os.makedirs(packs_root)
    install_task = {"name": "Install", "attune.packs.attune_pack": {
        "name": REF, "src": "{{ url }}", "checksum": "{{ checksum }}", "ca_path": "{{ ca }}", "packs_dir": "{{ packs_dir }}"}}
    ansible_packs = os.path.join(packs_root, "ansible")
    run_install = playbook_runner(work, inventory, write_playbook(work, "install.yml", install_task),
                                  {"url": url, "checksum": archive["checksum"], "ca": server.ca_path, "packs_dir": ansible_packs}, env)
    samples = {}
    steps = {}
    phases = {}
    # warm-up: page cache, TLS session code paths, ansible's caches
    baseline_once(work, url, server.ca_path, archive)
    run_install(True)
    shutil.rmtree(ansible_packs)
    for dummy in range(RUNS):
        measured, measured_sync, step_times = baseline_once(work, url, server.ca_path, archive)
        record(samples, "baseline", measured)
        record(samples, "baseline_sync", measured_sync)
        for name, value in step_times.items():
            steps.setdefault(name, []).append(value)
        for key, durable in (("core", True), ("core_no_fsync", False)):
            packs_dir = os.path.join(packs_root, key)
            record(samples, key, timed_call(lambda d=packs_dir, f=durable: core_install(d, url, archive["checksum"], server.ca_path, f)))
            if installed_checksum(packs_dir) != archive["checksum"]:
                raise RuntimeError("core install recorded another checksum")
            shutil.rmtree(packs_dir)
        record(samples, "ansible", timed_call(lambda: run_install(True)))
        if installed_checksum(ansible_packs) != archive["checksum"]:
            raise RuntimeError("ansible install recorded another checksum")
        shutil.rmtree(ansible_packs)
        for name, value in core_phases(work, url, archive, server.ca_path).items():
            phases.setdefault(name, []).append(value)
    result = {key: summary(value) for key, value in samples.items()}
    result["baseline_steps"] = {name: summary(value) for name, value in steps.items()}
    result["core_phases"] = {name: summary(value) for name, value in phases.items()}
    return result


# -- 2. peak memory ---------------------------------------------------------------------


# A small launcher process starts the module and reads its rusage with wait4.  The module must not be
# started from this (big) process directly: Linux carries the RSS high-water mark of the memory the child
# had before exec (with vfork, the parent's own) into the child's ru_maxrss.
LAUNCHER = """
import json, os, subprocess, sys, time
start = time.perf_counter()
with open(sys.argv[1], "wb") as out:
    proc = subprocess.Popen([sys.executable, "-m"] + sys.argv[2:], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
print(json.dumps({"rc": proc.returncode, "maxrss_kib": usage.ru_maxrss, "seconds": time.perf_counter() - start}))
"""


def run_module(work, args, label, module=MODULE):
    """Run a module as its own process (``python -m module args.json``, no ansible); return (result, ru_maxrss KiB, seconds)."""
    args_file = os.path.join(work, "module-args-%s.json" % label)
    with open(args_file, "w") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, handle)
    out_path = os.path.join(work, "module-out-%s.json" % label)
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT)
    proc = run_checked([sys.executable, "-c", LAUNCHER, out_path, module, args_file], env=env, cwd=work)
    usage = json.loads(proc.stdout)
    with open(out_path) as handle:
        text = handle.read()
    if usage["rc"] != 0:
        raise RuntimeError("module run %s failed (rc=%s): %s" % (label, usage["rc"], text[-3000:]))
    return json.loads(text), usage["maxrss_kib"], usage["seconds"]


def bench_memory(work, server, archives):
    rows = []
    for archive in archives:
        url = server.url(os.path.basename(archive["path"]))
        peaks, idles, times, idle_times = [], [], [], []
        for run in range(max(3, min(RUNS, 5))):
            packs_dir = fresh_dir(work, "mem-packs")
            args = {"name": REF, "src": url, "checksum": archive["checksum"], "ca_path": server.ca_path, "packs_dir": packs_dir}
            result, peak, elapsed = run_module(work, args, "install-%d-%d" % (archive["size_mb"], run))
            if not result.get("changed") or result["pack"]["checksum"] != archive["checksum"]:
                raise RuntimeError("module install did not install: %r" % result)
            result, idle, idle_time = run_module(work, args, "idle-%d-%d" % (archive["size_mb"], run))
            if result.get("changed"):
                raise RuntimeError("module rerun changed: %r" % result)
            peaks.append(peak / 1024.0)
            idles.append(idle / 1024.0)
            times.append(elapsed)
            idle_times.append(idle_time)
            shutil.rmtree(packs_dir)
        deltas = [p - i for p, i in zip(peaks, idles)]
        rows.append({"size_mb": archive["size_mb"], "archive_bytes": archive["bytes"], "peak_mib": summary(peaks),
                     "idle_mib": summary(idles), "delta_mib": summary(deltas), "module_process_s": summary(times),
                     "idle_process_s": summary(idle_times)})
    return rows


# -- 3. no-change rerun vs ping -----------------------------------------------------------


def bench_rerun(work, server, archive, inventory, env):
    url = server.url(os.path.basename(archive["path"]))
    packs_dir = os.path.join(work, "rerun-packs")
    install_task = {"name": "Install", "attune.packs.attune_pack": {
        "name": REF, "src": "{{ url }}", "checksum": "{{ checksum }}", "ca_path": "{{ ca }}", "packs_dir": "{{ packs_dir }}"}}
    run_install = playbook_runner(work, inventory, write_playbook(work, "rerun.yml", install_task),
                                  {"url": url, "checksum": archive["checksum"], "ca": server.ca_path, "packs_dir": packs_dir}, env)
    run_ping = playbook_runner(work, inventory, write_playbook(work, "ping.yml", {"name": "Ping", "ansible.builtin.ping": {}}), {}, env)
    run_install(True)
    run_ping(False)
    archive_path = "/" + os.path.basename(archive["path"])
    gets_before = sum(1 for r in server.read_log() if r["path"] == archive_path and r["method"] == "GET")
    samples = {}
    for dummy in range(RUNS):
        record(samples, "ping", timed_call(lambda: run_ping(False)))
        record(samples, "rerun", timed_call(lambda: run_install(False)))
    # the module processes alone (no ansible-playbook around them)
    args = {"name": REF, "src": url, "checksum": archive["checksum"], "ca_path": server.ca_path, "packs_dir": packs_dir}
    for run in range(RUNS):
        samples.setdefault("ping module process", []).append(run_module(work, {}, "ping-%d" % run, "ansible.modules.ping")[2])
        result, dummy, elapsed = run_module(work, args, "rerun-%d" % run)
        if result.get("changed"):
            raise RuntimeError("module rerun changed: %r" % result)
        samples.setdefault("attune_pack module process", []).append(elapsed)
    gets_after = sum(1 for r in server.read_log() if r["path"] == archive_path and r["method"] == "GET")
    result = {key: summary(value) for key, value in samples.items()}
    result["ratio_median"] = result["rerun"]["median"] / result["ping"]["median"]
    result["ratio_min"] = result["rerun"]["min"] / result["ping"]["min"]
    result["ratio_cpu_median"] = result["rerun cpu"]["median"] / result["ping cpu"]["median"]
    result["archive_gets_during_reruns"] = gets_after - gets_before
    return result


# -- report ---------------------------------------------------------------------------------


def report(results):
    machine = results["machine"]
    big = results["archives"][-1]
    inst = results["install"]
    mb = big["bytes"] / 1e6
    print("machine: %s; %s CPUs (%s); Python %s; %s" % (
        machine["platform"], machine["nproc"], machine["cpu"], machine["python"], machine["ansible"]))
    print("load average (1 min) at start %.2f, before each section %s, at end %.2f; checkout %s" % (
        machine["loadavg_start"][0], ", ".join("%s %.2f" % item for item in machine["loadavg_sections"].items()),
        machine["loadavg_end"][0], machine["git"]))
    print("runs per measurement: %d; nice %d" % (RUNS, results["nice"]))
    print()
    print("Archives:")
    print()
    print("| archive | size | files | unpacked |")
    print("|---|---|---|---|")
    for archive in results["archives"]:
        print("| %s | %.1f MB | %d | %.1f MB |" % (
            os.path.basename(archive["path"]), archive["bytes"] / 1e6, archive["files"], archive["unpacked_bytes"] / 1e6))
    print()
    print("Install of the %.1f MB archive over HTTPS:" % mb)
    print()
    print("| measurement | median | min | throughput (median) | vs baseline (throughput) | CPU s (median) |")
    print("|---|---|---|---|---|---|")
    base = inst["baseline"]["median"]
    rows = (("baseline: curl + sha256sum + tar -xzf", "baseline"),
            ("baseline + sync (durable, like the default install)", "baseline_sync"),
            ("attune_pack via ansible-playbook", "ansible"),
            ("core in-process (_install.apply, durable)", "core"),
            ("core in-process, no fsync (durable=False)", "core_no_fsync"))
    for label, key in rows:
        item = inst[key]
        print("| %s | %.3f s | %.3f s | %.1f MB/s | %.2fx | %.2f |" % (
            label, item["median"], item["min"], mb / item["median"], base / item["median"], inst[key + " cpu"]["median"]))
    print()
    print("| baseline step | median | min |")
    print("|---|---|---|")
    for name, item in inst["baseline_steps"].items():
        print("| %s | %.3f s | %.3f s |" % (name, item["median"], item["min"]))
    print()
    print("| core phase | median | min |")
    print("|---|---|---|")
    for name, item in inst["core_phases"].items():
        print("| %s | %.3f s | %.3f s |" % (name, item["median"], item["min"]))
    print()
    print("ansible overhead (ansible-playbook median - core median): %.3f s" % (inst["ansible"]["median"] - inst["core"]["median"]))
    print()
    print("Peak memory of the module process (ru_maxrss):")
    print()
    print("| archive | install peak (median / max) | no-change run (idle) | peak - idle (median / max) | install process time (median) |")
    print("|---|---|---|---|---|")
    for row in results["memory"]:
        print("| %.1f MB | %.1f / %.1f MiB | %.1f MiB | %.1f / %.1f MiB | %.3f s |" % (
            row["archive_bytes"] / 1e6, row["peak_mib"]["median"], row["peak_mib"]["max"], row["idle_mib"]["median"],
            row["delta_mib"]["median"], row["delta_mib"]["max"], row["module_process_s"]["median"]))
    rerun = results["rerun"]
    print()
    print("No-change rerun vs ping (ansible-playbook, localhost):")
    print()
    print("| measurement | median | min | CPU s (median) |")
    print("|---|---|---|---|")
    print("| `ansible.builtin.ping` play | %.3f s | %.3f s | %.2f |" % (rerun["ping"]["median"], rerun["ping"]["min"], rerun["ping cpu"]["median"]))
    print("| `attune_pack` no-change rerun play | %.3f s | %.3f s | %.2f |" % (
        rerun["rerun"]["median"], rerun["rerun"]["min"], rerun["rerun cpu"]["median"]))
    print("| ratio | %.2fx | %.2fx | %.2fx |" % (rerun["ratio_median"], rerun["ratio_min"], rerun["ratio_cpu_median"]))
    print()
    print("The module processes alone (run directly, no ansible-playbook):")
    print()
    print("| module process | median | min |")
    print("|---|---|---|")
    for key in ("ping module process", "attune_pack module process"):
        print("| %s | %.3f s | %.3f s |" % (key, rerun[key]["median"], rerun[key]["min"]))
    print()
    print("archive GETs during the %d reruns: %d" % (RUNS, rerun["archive_gets_during_reruns"]))


def _terminate(signum, frame):  # pylint: disable=unused-argument
    raise SystemExit(128 + signum)  # so the server process and the temp directory are cleaned up


def main():
    signal.signal(signal.SIGTERM, _terminate)
    results = {"machine": machine_info(), "runs": RUNS, "nice": os.nice(0)}
    with tempfile.TemporaryDirectory(prefix="attune-bench-install-") as work:
        os.makedirs(os.path.join(work, "www"))
        results["archives"] = [make_pack_archive(work, size) for size in SIZES_MB]
        inventory = os.path.join(work, "inventory.ini")
        with open(inventory, "w") as handle:
            handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
        env = base_env()
        loads = results["machine"]["loadavg_sections"] = {}
        with ServerProcess(os.path.join(work, "www"), work) as server:
            wait_quiet("install", loads)
            results["install"] = bench_install_time(work, server, results["archives"][-1], inventory, env)
            wait_quiet("memory", loads)
            results["memory"] = bench_memory(work, server, results["archives"])
            wait_quiet("rerun", loads)
            results["rerun"] = bench_rerun(work, server, results["archives"][-1], inventory, env)
    results["machine"]["loadavg_end"] = os.getloadavg()
    for archive in results["archives"]:
        archive["path"] = os.path.basename(archive["path"])
    out_dir = os.path.join(HERE, "results")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "install.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    report(results)


if __name__ == "__main__":
    main()
