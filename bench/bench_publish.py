#!/usr/bin/env python
"""Publishing benchmarks (issue 19).  Run: ``.venv/bin/python bench/bench_publish.py``.

Measured in this process through the core (``_publish``, ``_mirror``; no ansible), each ``BENCH_RUNS`` times
(default 3), median and min, against a floor of standard tools doing the same reads, hashes and packing:

1. **Entry + index for a pack of 1,000 files** (``BENCH_FILES``, 4 KiB each on average, 60 component YAML files)
   and its tar.gz: ``build_entry`` (pack.yaml, contents inventory, framed checksum of the tree, sha256 of the
   archive) + ``archive_tree_checksum`` (the archive extracted and its tree compared, as ``attune_pack_index_entry``
   does with ``path`` and ``archive_path``) + ``update_index`` + ``write_text``.
   Floor: ``sha256sum`` of every file and of the archive, plus ``tar -xzf`` of the archive.
2. **Mirror of 44 packs** (``BENCH_PACKS``), each with a git source (a local bare repository, ``file://``) and an
   archive source served over HTTPS on 127.0.0.1 by the test server (a child process): every archive downloaded
   and verified, every git source cloned, verified and packed into a deterministic tar.gz, then the index.
   Floor, per pack: ``curl`` of the archive + ``sha256sum`` of it, ``git clone`` of the repository, and
   ``tar -czf`` + ``sha256sum`` of the checked-out tree.
   A second, incremental run (everything already mirrored) is timed too.

Writes ``bench/results/publish.json``.
"""
import json
import os
import platform
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
from support import gitrepo  # noqa: E402
from support.registry_server import ServerProcess  # noqa: E402
from support.synth import make_archive, make_pack_tree  # noqa: E402

from ansible_collections.attune.packs.plugins.module_utils._publishing import _mirror, _publish  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
FILES = int(os.environ.get("BENCH_FILES", "1000"))
PACKS = int(os.environ.get("BENCH_PACKS", "44"))
COMMIT = "0" * 40


def timed(func, runs=RUNS):
    times = []
    for _run in range(runs):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return {"median": statistics.median(times), "min": min(times), "runs": runs}


def shell(cmd, **kwargs):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def big_pack(root, files):
    content = {}
    for position in range(files - 62):
        content["lib/part%02d/file%04d.py" % (position % 40, position)] = ("# %d\n" % position) + "x = %r\n" % (os.urandom(1500).hex(),)
    for position in range(60):
        content["actions/action%02d.yaml" % position] = "name: action%02d\ndescription: Action %d\n" % (position, position)
    return make_pack_tree(root, "bigpack", "1.0.0", files=content)


def bench_entry(work):
    tree = big_pack(os.path.join(work, "bigpack"), FILES)
    count = sum(len(names) for _d, _s, names in os.walk(tree))
    archive = make_archive(tree, os.path.join(work, "bigpack.tar.gz"), top_dir="bigpack-" + COMMIT)
    index_path = os.path.join(work, "index.json")

    def ours():
        scratch = tempfile.mkdtemp(dir=work)
        entry, tree_sum = _publish.build_entry(tree, git_url="https://git.example/bigpack.git", git_ref=COMMIT,
                                               archive_url="https://files.example/bigpack/tar.gz/" + COMMIT, archive_path=archive)
        _root, archive_sum = _publish.archive_tree_checksum(archive, os.path.join(scratch, "x"))
        assert archive_sum == tree_sum
        change = _publish.update_index(None, "bench", "https://packs.example/index.json", entries=[entry])
        _publish.write_text(index_path, change.text)
        shutil.rmtree(scratch)

    def floor():
        scratch = tempfile.mkdtemp(dir=work)
        shell("find . -type f -print0 | xargs -0 sha256sum > /dev/null", cwd=tree)
        shell("sha256sum %s > /dev/null && tar -xzf %s -C %s" % (archive, archive, scratch))
        shutil.rmtree(scratch)

    return {"files": count, "archive_bytes": os.path.getsize(archive), "ours": timed(ours), "floor": timed(floor)}


def bench_mirror(work):
    www = os.path.join(work, "www")
    repos = os.path.join(work, "repos")
    os.makedirs(www)
    os.makedirs(repos)
    packs = []
    for position in range(PACKS):
        ref = "pack%02d" % position
        content = dict(("lib/f%03d.py" % n, "v = %r\n" % os.urandom(600).hex()) for n in range(40))
        bare, commit = gitrepo.make_git_pack_repo(repos, ref, "1.0.0", files=content)
        checkout = gitrepo.source_dir(bare)
        archive = make_archive(checkout, os.path.join(www, "%s.tar.gz" % ref), top_dir="%s-%s" % (ref, commit))
        packs.append((ref, bare, commit, checkout, archive))
    total = sum(os.path.getsize(p[4]) for p in packs)
    with ServerProcess(www, work) as server:
        wanted = []
        for ref, bare, commit, checkout, archive in packs:
            entry, _tree = _publish.build_entry(checkout, git_url="https://git.example/%s.git" % ref, git_ref=commit,
                                                archive_url=server.url("%s.tar.gz" % ref), archive_path=archive)
            sources = [dict(entry["install_sources"][0], url="file://" + bare), entry["install_sources"][1]]
            wanted.append(_mirror.Wanted(entry, sources, "bench"))
        options = _mirror.MirrorOptions(verify=server.ca_path, ca_path=server.ca_path, allow_local_git=True)

        def run_mirror(dest):
            mirror = _mirror.Mirror(dest, "https://mirror.example", options)
            entries = [mirror.mirror_pack(item) for item in wanted]
            change = _publish.update_index(mirror.current, "mirror", "https://mirror.example/index.json", entries=entries)
            _publish.write_text(mirror.index_path, change.text)
            return mirror

        dests = []

        def cold():
            dest = tempfile.mkdtemp(dir=work)
            dests.append(dest)
            run_mirror(dest)

        cold_times = timed(cold)
        incremental = timed(lambda: run_mirror(dests[-1]))
        assert run_mirror(dests[-1]).fetched == []

        def floor():
            scratch = tempfile.mkdtemp(dir=work)
            for ref, bare, _commit, _checkout, _archive in packs:
                target = os.path.join(scratch, ref)
                shell("curl -s --cacert %s %s -o %s.tar.gz && sha256sum %s.tar.gz > /dev/null"
                      % (server.ca_path, server.url("%s.tar.gz" % ref), target, target))
                shell("git clone -q file://%s %s.git" % (bare, target), env=gitrepo.git_env())
                shell("tar -czf %s.built.tar.gz --exclude=.git -C %s.git . && sha256sum %s.built.tar.gz > /dev/null"
                      % (target, target, target))
            shutil.rmtree(scratch)

        floor_times = timed(floor)
    return {"packs": PACKS, "archive_bytes_total": total, "cold": cold_times, "incremental": incremental, "floor": floor_times}


def main():
    work = tempfile.mkdtemp(prefix="bench-publish-")
    try:
        results = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load": os.getloadavg()},
                   "entry": bench_entry(work), "mirror": bench_mirror(work)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "publish.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    entry, mirror = results["entry"], results["mirror"]
    print("| measurement | ours (median / min) | floor (median / min) | ratio |")
    print("|---|---|---|---|")
    print("| entry + index, %d files | %.2f / %.2f s | %.2f / %.2f s | %.2fx |" % (
        entry["files"], entry["ours"]["median"], entry["ours"]["min"], entry["floor"]["median"], entry["floor"]["min"],
        entry["ours"]["median"] / entry["floor"]["median"]))
    print("| mirror %d packs, cold | %.2f / %.2f s | %.2f / %.2f s | %.2fx |" % (
        mirror["packs"], mirror["cold"]["median"], mirror["cold"]["min"], mirror["floor"]["median"], mirror["floor"]["min"],
        mirror["cold"]["median"] / mirror["floor"]["median"]))
    print("| mirror %d packs, incremental rerun | %.2f / %.2f s | | |" % (
        mirror["packs"], mirror["incremental"]["median"], mirror["incremental"]["min"]))
    print("load average", os.getloadavg())


if __name__ == "__main__":
    main()
