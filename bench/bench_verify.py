#!/usr/bin/env python
"""What ``verify: true`` (role: ``packs_verify``) costs on a converged host (issue 18 item 2).

Run: ``.venv/bin/python bench/bench_verify.py`` (about a minute with the defaults).

One host (``ansible_connection=local``) with ``BENCH_PACKS`` (20) packs of ``BENCH_FILES`` (1,000) files each
(``BENCH_FILE_BYTES``, 2,048 bytes per file, so 40 MB of pack files), installed for real from archives served by
the HTTPS test server.  Then ``BENCH_RUNS`` (5) rounds, each running, in rotating order:

* ``converged``: one ``attune_pack`` task with the 20 locked resolutions (``source``, as the role's lock gives
  them), ``verify: false`` — must report no change;
* ``converged + verify``: the same task with ``verify: true`` — must report no change (every tree is read and
  its framed checksum compared with the ``tree_checksum`` of its record);

and, in-process on the same packs directory (no ansible): ``plan`` (``_install.plan`` of the task, without
verify) and ``verify only`` (``_packdir.modified`` of each pack: the framed checksum of the whole tree).
The page cache is warm (the trees were just written or read); a cold cache adds the disk reads of 40 MB.

Prints medians (and min) of wall seconds and writes ``bench/results/verify.json``.
"""
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from bench_fleet import machine_info  # noqa: E402  (puts tests/ on sys.path and the checkout as the collection)
from support import synth  # noqa: E402
from support.play import ansible_bin, base_env  # noqa: E402
from support.registry_server import RegistryServer  # noqa: E402

from ansible_collections.attune.packs.plugins.module_utils._pack import _install, _packdir  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
PACKS = int(os.environ.get("BENCH_PACKS", "20"))
FILES = int(os.environ.get("BENCH_FILES", "1000"))
FILE_BYTES = int(os.environ.get("BENCH_FILE_BYTES", "2048"))


def summary(samples):
    return {"median": statistics.median(samples), "min": min(samples), "max": max(samples), "samples": samples}


def pack_files(ref):
    """FILES deterministic files of FILE_BYTES in 10 directories."""
    files = {}
    for number in range(FILES):
        seed = hashlib.sha256(("%s/%d" % (ref, number)).encode()).hexdigest()
        files["actions/d%d/f%04d.py" % (number % 10, number)] = (seed * (FILE_BYTES // len(seed) + 1))[:FILE_BYTES]
    return files


def write_play(workdir, packs_dir, resolutions, ca_path, verify):
    task = {"name": "Install the locked packs", "attune.packs.attune_pack": {
        "source": resolutions, "packs_dir": packs_dir, "ca_path": ca_path, "verify": verify}}
    path = os.path.join(workdir, "verify-%s.yml" % ("on" if verify else "off"))
    with open(path, "w") as handle:
        json.dump([{"name": "bench", "hosts": "all", "gather_facts": False, "tasks": [task]}], handle)
    return path


def run_play(workdir, inventory, playbook, expect_changed):
    cmd = [ansible_bin("ansible-playbook"), "-i", inventory, playbook]
    env = base_env({"ANSIBLE_LOCAL_TEMP": os.path.join(workdir, ".ansible-tmp")})
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
    wall = time.perf_counter() - start
    changed = "changed=1" in proc.stdout
    if proc.returncode != 0 or changed != expect_changed:
        raise RuntimeError("%s: rc=%s, changed=%s (expected %s)\n%s\n%s"
                           % (playbook, proc.returncode, changed, expect_changed, proc.stdout[-4000:], proc.stderr[-3000:]))
    return wall


def main():
    workdir = tempfile.mkdtemp(prefix="bench-verify-")
    try:
        with RegistryServer() as server:
            files_dir = os.path.join(workdir, "files")
            os.makedirs(files_dir)
            server.add_directory("/files", files_dir)
            resolutions = []
            for number in range(PACKS):
                ref = "pack%02d" % number
                path, checksum = synth.make_pack_archive(files_dir, ref, "1.0.0", files=pack_files(ref))
                shutil.rmtree(os.path.join(files_dir, "%s-1.0.0.src" % ref))
                resolutions.append({"ref": ref, "version": "1.0.0", "source": {
                    "type": "archive", "url": server.url("files/" + os.path.basename(path)), "checksum": checksum}})
            packs_dir = os.path.join(workdir, "packs")
            inventory = os.path.join(workdir, "inventory.ini")
            with open(inventory, "w") as handle:
                handle.write("host ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
            plays = {"converged": write_play(workdir, packs_dir, resolutions, server.ca_path, False),
                     "converged + verify": write_play(workdir, packs_dir, resolutions, server.ca_path, True)}
            cold = run_play(workdir, inventory, plays["converged"], expect_changed=True)
            params = {"name": None, "state": "present", "source": resolutions, "lock_file": None, "src": None,
                      "force": False, "remove_unlisted": False, "verify": False}
            backend = _install.PacksDirBackend(packs_dir)
            options = _install.Options(packs_dir)
            samples = dict((name, []) for name in list(plays) + ["plan (in-process)", "verify only (in-process)"])
            for round_number in range(RUNS):
                order = list(plays) if round_number % 2 == 0 else list(reversed(list(plays)))
                for name in order:
                    samples[name].append(run_play(workdir, inventory, plays[name], expect_changed=False))
                start = time.perf_counter()
                steps = _install.plan(params, backend, options, check_mode=True)
                samples["plan (in-process)"].append(time.perf_counter() - start)
                assert not any(step.changed for step in steps)
                start = time.perf_counter()
                modified = [ref for ref in (r["ref"] for r in resolutions) if _packdir.modified(packs_dir, ref)]
                samples["verify only (in-process)"].append(time.perf_counter() - start)
                assert not modified, modified
            results = dict((name, summary(values)) for name, values in samples.items())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info = dict(machine_info(), packs=PACKS, files_per_pack=FILES, file_bytes=FILE_BYTES, runs=RUNS, cold_install=cold)
    print("%d packs x %d files x %d bytes (%.0f MB), %d rounds; cold install %.1f s" % (
        PACKS, FILES, FILE_BYTES, PACKS * FILES * FILE_BYTES / 1e6, RUNS, cold))
    print("| run | median s | min s |\n|---|---|---|")
    for name, values in results.items():
        print("| %s | %.2f | %.2f |" % (name, values["median"], values["min"]))
    extra = results["converged + verify"]["median"] - results["converged"]["median"]
    print("verify adds %.2f s per converged run (%.1f ms per pack, %.0f us per file)" % (
        extra, extra * 1000 / PACKS, extra * 1e6 / (PACKS * FILES)))
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "verify.json"), "w") as handle:
        json.dump({"machine": info, "results": results}, handle, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
