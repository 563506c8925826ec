"""Hostile sources and killed installs, through the real ``attune.packs.attune_pack`` module.

Everything is real: ``ansible-playbook`` on localhost, archives and git
repositories served over HTTPS on 127.0.0.1 (trustme CA), a registry index
pointing at them, ``SIGKILL``.

* Kill suite: an upgrade of a pack of some thousand files is killed
  (``SIGKILL`` of the module's python, of every process ansible-playbook
  started and of its process group) while downloading, while extracting,
  once the new tree is staged, right after the swap, and at random delays.
  Afterwards the pack is the complete old or the complete new version, never
  a mix, and a rerun finishes the job and leaves no leftovers.
* Hostile suite: a good version of ``demo`` is installed once and copied into
  one ``packs_dir`` per case; one playbook (one host per case) then tries to
  install or upgrade each from a hostile source.  Each case must fail with a
  message naming the pack and the cause and the source,
  leave the installed tree byte-identical (modes included) with its provenance
  (``packs_dir/.attune/demo.json``) unchanged, and leave nothing behind in ``packs_dir``.  The full list of
  hostile archives is exercised at unit level (tests/unit/.../test_extract.py);
  here a representative set goes through the whole module.

Each suite is computed once per session (shared by the xdist workers through
a file lock, see :func:`shared_once`) with a handful of ansible-playbook runs;
parametrized tests then assert on the recorded outcome of every case.  No
assertion is about time: sleeps and polling only pick the moment of a kill.
Set ``ATTUNE_KILL_SEED`` to replay the random kill delays.
"""

import fcntl
import glob
import json
import os
import random
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest
import yaml

from support import gitrepo, hostile_archives, synth
from support.hostile_archives import member, tar_gz
from support.play import ansible_bin, base_env, run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

MODULE = "attune.packs.attune_pack"
REF = "demo"  # the ref hostile_archives.PACK_YAML declares
LOCK_FILE = ".attune-lock"
FORKS = "4"
MODULE_KEYS = ("name", "src", "version", "checksum", "ca_path", "packs_dir", "registries", "cache_dir", "refresh", "archive_max_bytes",
               "max_entries", "max_entry_bytes", "max_total_bytes")


def pack_yaml(version, ref=REF):
    return yaml.safe_dump({"ref": ref, "label": "Demo", "description": "A demo pack", "version": version}, sort_keys=False).encode()


# -- state of a packs_dir ------------------------------------------------------------


def snapshot(root):
    """{relative path: (mode, content)} of ``root`` and everything below it; symlinks as ('link', target)."""
    result = {".": (os.lstat(root).st_mode, None)}
    for base, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(dirs + files):
            path = os.path.join(base, name)
            rel = os.path.relpath(path, root)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                result[rel] = ("link", os.readlink(path))
            elif stat.S_ISREG(mode):
                with open(path, "rb") as handle:
                    result[rel] = (mode, handle.read())
            else:
                result[rel] = (mode, None)
    return result


def differences(before, after):
    """Sorted paths that were added, removed or changed (content or mode) between two snapshots."""
    return sorted(path for path in set(before) | set(after) if before.get(path) != after.get(path))


def leftovers(packs_dir):
    """Hidden entries of ``packs_dir`` (staging, old and trash directories, pending or temporary provenance files),
    the lock file and the committed provenance records (``.attune/<ref>.json``) excepted."""
    if not os.path.isdir(packs_dir):
        return []
    found = sorted(name for name in os.listdir(packs_dir) if name.startswith(".") and name not in (LOCK_FILE, ".attune"))
    records = os.path.join(packs_dir, ".attune")
    if os.path.isdir(records):
        found += sorted(".attune/" + name for name in os.listdir(records) if not re.fullmatch(r"[a-z][a-z0-9_-]*\.json", name))
    return found


def read_metadata(tree):
    """Provenance of the pack at ``tree`` (``<packs_dir>/<ref>``) as a reader must take it (see synth.read_provenance)."""
    return synth.read_provenance(os.path.dirname(tree), os.path.basename(tree))


def _record_bytes(packs_dir):
    """The provenance record of ``demo`` but its ``tree_inode`` and ``tree_generation``: each case runs on a copy of
    the pristine packs_dir (another directory inode), whose record the module re-links after checking the tree's
    checksum."""
    with open(synth.provenance_path(packs_dir, REF), "rb") as handle:
        record = json.load(handle)
    record.pop("tree_inode", None)
    record.pop("tree_generation", None)
    return record


def listing(packs_dir):
    return sorted(name for name in os.listdir(packs_dir) if name not in (LOCK_FILE, ".attune"))


# -- running many hosts, sharing one computation between xdist workers -------------------


def run_per_host(workdir, host_args):
    """One play over one local host per item of ``host_args`` ({host: module args}); returns {host: result}."""
    os.makedirs(workdir, exist_ok=True)
    inventory = os.path.join(workdir, "hosts.yml")
    hosts = dict((host, {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "case_args": args})
                 for host, args in host_args.items())
    with open(inventory, "w") as handle:
        yaml.safe_dump({"all": {"hosts": hosts}}, handle)
    task = {MODULE: dict((key, "{{ case_args.%s | default(omit) }}" % key) for key in MODULE_KEYS)}
    play = run_tasks(workdir, [task], inventory=inventory, hosts="all", extra_args=["-f", FORKS])
    missing = [host for host in host_args if not play.results.get(host)]
    if missing:
        raise RuntimeError("no result recorded for %s: %r" % (", ".join(missing), play))
    return dict((host, play.results[host][0]) for host in host_args)


def _compute_once(root, name, tmp_path_factory, blocking):
    """Compute suite ``name`` into ``root/attune-<name>.json`` unless done; False when another worker holds it (non-blocking)."""
    with open(str(root / ("attune-%s.lock" % name)), "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            return False
        result = root / ("attune-%s.json" % name)
        if not result.exists():
            data = SUITES[name](str(tmp_path_factory.mktemp(name)))
            partial = root / ("attune-%s.json.part" % name)
            partial.write_text(json.dumps(data))
            os.replace(str(partial), str(result))
    return True


def shared_once(request, tmp_path_factory):
    """The result of ``SUITES[fixture name](workdir)``, computed once per session whichever xdist worker asks first.

    A worker that finds the suite being computed by another one computes the
    other suites the selected tests need meanwhile (so that two workers do not
    wait on each other), then waits on the file lock and reads the result.
    """
    name = request.fixturename
    root = tmp_path_factory.getbasetemp()
    if getattr(request.config, "workerinput", None) is not None:
        root = root.parent  # shared by every worker of this session
    if not _compute_once(root, name, tmp_path_factory, blocking=False):
        for other in sorted(SUITES):
            if other != name and any(other in item.fixturenames for item in request.session.items):
                _compute_once(root, other, tmp_path_factory, blocking=False)
        _compute_once(root, name, tmp_path_factory, blocking=True)
    return json.loads((root / ("attune-%s.json" % name)).read_text())


# -- processes -----------------------------------------------------------------------


def _children():
    """{ppid: [pids]} of every process, from /proc."""
    tree = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as handle:
                data = handle.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(name))
    return tree


def descendants(pid):
    tree = _children()
    found, todo = [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().decode("utf-8", "replace").split("\0")
    except OSError:
        return []


def _pids_of_run(proc):
    """Every live process whose command line names the run's private remote_tmp (found even if orphaned)."""
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) != proc.pid and not _gone(int(name)) and any(proc.remote_tmp in arg for arg in _argv(int(name))):
            found.append(int(name))
    return found


def module_pids(proc):
    """The python processes running the attune_pack module for the ansible-playbook ``proc``."""
    found = []
    for pid in _pids_of_run(proc):
        argv = _argv(pid)
        if len(argv) > 1 and "python" in os.path.basename(argv[0]) and argv[1].endswith("AnsiballZ_attune_pack.py"):
            found.append(pid)
    return found


def _gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as handle:
            data = handle.read()
    except OSError:
        return True
    return data[data.rindex(")") + 2:].split()[0] in ("Z", "X")


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def kill_install(proc):
    """SIGKILL the module's python, then ansible-playbook's process group and everything it started; wait until all are dead."""
    modules = module_pids(proc)
    _kill(modules)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    others = descendants(proc.pid)
    _kill(others)
    proc.wait()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        stray = _pids_of_run(proc)  # started in the meantime by a process that was being killed
        _kill(stray)
        if not stray and all(_gone(pid) for pid in modules + others):
            break
        time.sleep(0.01)


def start_play(workdir, tasks):
    """Start ``ansible-playbook`` for ``tasks`` on localhost in a new session (so its process group can be killed)."""
    os.makedirs(workdir, exist_ok=True)
    playbook = os.path.join(workdir, "play.yml")
    with open(playbook, "w") as handle:
        yaml.safe_dump([{"name": "killed", "hosts": "localhost", "gather_facts": False, "tasks": tasks}], handle, sort_keys=False)
    inventory = os.path.join(workdir, "inventory.ini")
    with open(inventory, "w") as handle:
        handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    remote_tmp = os.path.join(workdir, "remote-tmp")
    env = base_env({"ANSIBLE_REMOTE_TMP": remote_tmp, "ANSIBLE_LOCAL_TEMP": os.path.join(workdir, "local-tmp")})
    with open(os.path.join(workdir, "output.txt"), "wb") as output:
        proc = subprocess.Popen([ansible_bin("ansible-playbook"), "-i", inventory, playbook], cwd=workdir, env=env,
                                stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    proc.remote_tmp = remote_tmp + os.sep
    return proc


def killed_run(workdir, tasks, trigger, deadline=120):
    """Start the play, poll ``trigger(since)`` until it is true, then kill everything.

    ``since`` is the time since the module's python appeared (None before;
    looked for every 20 ms: a /proc scan is not free).  Returns ``(fired,
    since)``: fired is False when the play ended first (it is killed anyway:
    nothing of it survives the call).
    """
    proc = start_play(workdir, tasks)
    fired = False
    started = None
    looked = 0.0
    try:
        limit = time.monotonic() + deadline
        while proc.poll() is None and time.monotonic() < limit:
            now = time.monotonic()
            if started is None and now - looked >= 0.02:
                looked = now
                if module_pids(proc):
                    started = now
            if trigger(None if started is None else now - started):
                fired = True
                break
            time.sleep(0.002)
    finally:
        kill_install(proc)
    return fired, None if started is None else time.monotonic() - started


# -- kill suite ------------------------------------------------------------------------

# Enough files that extracting and checksumming the new tree, and deleting the old one after the swap, take a while.
OLD_FILES = 2500
NEW_FILES = 1000
SLOW_PIECES = 20
SLOW_DELAY = 0.5  # the slow route sends the new archive in 20 pieces, one every 0.5 s
RANDOM_KILLS = 4
KILL_POINTS = ["download", "extract", "staged", "swapped"]
NEW = "2.0.0"


def big_pack(path, version, count, file_size, seed):
    """Write the archive of ``demo <version>`` with ``count`` files; return (checksum, expected snapshot of the installed tree).

    The expected snapshot is what ``snapshot()`` must find once the pack is installed, ``.attune`` excepted:
    directories 0755, files 0644 or 0755 for the executable one.
    """
    rng = random.Random(seed)
    top = "%s-%s/" % (REF, version)
    members = [member(top.rstrip("/"), "dir"), member(top + "pack.yaml", data=pack_yaml(version)),
               member(top + "bin/run.sh", data=b"#!/bin/sh\necho " + version.encode() + b"\n", mode=0o755)]
    members += [member(top + "data/%02d/file%05d.bin" % (index % 40, index), data=rng.randbytes(file_size)) for index in range(count)]
    tar_gz(path, members)
    expected = {".": (stat.S_IFDIR | 0o755, None)}
    for item in members[1:]:
        rel = item["name"][len(top):]
        parts = rel.split("/")
        for depth in range(1, len(parts)):
            expected["/".join(parts[:depth])] = (stat.S_IFDIR | 0o755, None)
        expected[rel] = (stat.S_IFREG | (item["mode"] or 0o644), item["data"])
    return synth.sha256_file(path), expected


def _staging_dirs(packs_dir):
    return glob.glob(os.path.join(packs_dir, ".attune-staging-%s-*" % REF))


def _partial_downloads(packs_dir):
    return [os.path.getsize(path) for path in glob.glob(os.path.join(packs_dir, ".attune-staging-*", "archive0.download"))]


def _triggers(packs_dir, server, slow_route):
    """Kill points, each a trigger polled while the play runs."""
    requests_before = server.count(slow_route)

    def downloading(since):
        # the server has the request (and trickles the body for seconds): the module is in the middle of the download
        return server.count(slow_route) > requests_before and bool(_partial_downloads(packs_dir))

    def extracting(since):
        return any(os.path.isdir(os.path.join(d, "extract0")) and not os.path.lexists(os.path.join(d, "tree")) for d in _staging_dirs(packs_dir))

    def staged(since):
        return any(os.path.isdir(os.path.join(d, "tree")) for d in _staging_dirs(packs_dir))

    def swapped(since):
        return (read_metadata(os.path.join(packs_dir, REF)) or {}).get("version") == NEW and bool(_staging_dirs(packs_dir))

    return {"download": downloading, "extract": extracting, "staged": staged, "swapped": swapped}


def _after(delay):
    """Fires ``delay`` seconds after the module's python appeared."""
    return lambda since: since is not None and since >= delay


def _kill_workdir(workdir):
    """A tmpfs directory when there is one (fsyncs of thousands of files on a slow disk would dominate), else ``workdir``."""
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        return tempfile.mkdtemp(prefix="attune-kill-", dir="/dev/shm")
    return workdir


def _kill_suite(workdir):
    scratch = _kill_workdir(workdir)
    try:
        return _run_kill_suite(scratch)
    finally:
        if scratch != workdir:
            shutil.rmtree(scratch, ignore_errors=True)


def _run_kill_suite(workdir):
    """Install the old version once, then kill upgrades at chosen points and at random delays; rerun them all at once."""
    with RegistryServer() as server:
        files = os.path.join(workdir, "files")
        os.makedirs(files)
        server.add_directory("/files", files)
        old_sum, dummy = big_pack(os.path.join(files, "demo-1.0.0.tar.gz"), "1.0.0", OLD_FILES, 64, seed=1)
        new_path = os.path.join(files, "demo-2.0.0.tar.gz")
        new_sum, new = big_pack(new_path, NEW, NEW_FILES, 1024, seed=2)
        with open(new_path, "rb") as handle:
            new_body = handle.read()
        shutil.copy(new_path, os.path.join(files, "slow-demo-2.0.0.tar.gz"))  # served once the slow route is removed
        slow_route = "/files/slow-demo-2.0.0.tar.gz"
        server.add_slow(slow_route, SLOW_DELAY, body=new_body, mode="trickle", pieces=SLOW_PIECES)

        def args(route, checksum, packs_dir):
            return {"name": REF, "src": server.url(route.lstrip("/")), "checksum": checksum, "ca_path": server.ca_path, "packs_dir": packs_dir}

        # the old version, installed for real once; every kill starts from a copy of it
        pristine = os.path.join(workdir, "pristine", "packs")
        result = run_per_host(os.path.join(workdir, "pristine"), {"pristine": args("/files/demo-1.0.0.tar.gz", old_sum, pristine)})["pristine"]
        if result.get("failed") or not result.get("changed"):
            raise RuntimeError("installing the old version failed: %r" % (result,))
        old = snapshot(os.path.join(pristine, REF))

        def state(packs_dir):
            """'old' (byte-identical), 'new' (exactly the new archive's files and modes, metadata of the new version) or what differs."""
            tree = os.path.join(packs_dir, REF)
            if not os.path.isdir(tree):
                return "missing"
            now = snapshot(tree)
            meta = read_metadata(tree) or {}
            # the provenance a reader takes must describe the tree that is there (issue 9 item 9)
            if meta.get("tree_checksum") != synth.tree_checksum(tree):
                return "provenance of another tree: %r" % (meta,)
            if now == old:
                return "old" if meta.get("version") == "1.0.0" else "old tree, provenance %r" % (meta,)
            if now == new and meta.get("version") == NEW and meta.get("checksum") == new_sum:
                return "new"
            return "mixed: %s" % ", ".join(differences(old, now)[:20])

        # what must hold right after a kill for it to count as "killed at that point"
        landed = {
            "download": lambda d: state(d) == "old" and bool(_partial_downloads(d)) and all(size < len(new_body) for size in _partial_downloads(d)),
            "extract": lambda d: bool(_staging_dirs(d)),
            "staged": lambda d: bool(_staging_dirs(d)),
            "swapped": lambda d: state(d) == "new" and bool(_staging_dirs(d)),
        }
        seed = int(os.environ.get("ATTUNE_KILL_SEED") or random.SystemRandom().randrange(2 ** 32))
        rng = random.Random(seed)
        plans = [(point, slow_route if point == "download" else "/files/demo-2.0.0.tar.gz", 3) for point in KILL_POINTS]
        plans += [("random-%d" % index, "/files/demo-2.0.0.tar.gz", 1) for index in range(RANDOM_KILLS)]
        runs = []
        duration = None  # from the module's start to the swap, measured by the "swapped" kill: the random kills spread over it
        for name, route, attempts in plans:
            packs_dir = os.path.join(workdir, name, "packs")
            record = {"name": name, "route": route, "fired": False, "attempts": 0, "delay": None, "packs_dir": packs_dir}
            for attempt in range(attempts):
                if os.path.isdir(packs_dir):
                    shutil.rmtree(packs_dir)
                shutil.copytree(pristine, packs_dir, symlinks=True)
                if name in landed:
                    trigger = _triggers(packs_dir, server, slow_route)[name]
                else:
                    delay = record["delay"] = round(rng.uniform(0, duration or 3.0), 3)
                    trigger = _after(delay)
                record["attempts"] = attempt + 1
                fired, since = killed_run(os.path.join(workdir, name, "run%d" % attempt), [{MODULE: args(route, new_sum, packs_dir)}], trigger)
                record["fired"] = fired and (name not in landed or landed[name](packs_dir))
                if record["fired"]:
                    if name == "swapped" and since:
                        duration = since * 1.5
                    break
            record["state_after_kill"] = state(packs_dir)
            record["leftovers_after_kill"] = leftovers(packs_dir)
            record["partial_download"] = _partial_downloads(packs_dir)
            runs.append(record)

        # the download is fast again; one rerun per killed packs_dir, all in one playbook
        server.remove(slow_route)
        results = run_per_host(os.path.join(workdir, "rerun"), dict((run["name"], args(run["route"], new_sum, run["packs_dir"])) for run in runs))
        for run in runs:
            result = results[run["name"]]
            run.update(rerun_failed=bool(result.get("failed")), rerun_msg=result.get("msg"), rerun_changed=result.get("changed"),
                       final_state=state(run["packs_dir"]), final_leftovers=leftovers(run["packs_dir"]))
        return {"runs": runs, "archive_size": len(new_body), "duration": duration, "seed": seed}


@pytest.fixture(scope="module")
def kill_suite(request, tmp_path_factory):
    data = shared_once(request, tmp_path_factory)
    return dict((run["name"], run) for run in data["runs"]), data


@pytest.mark.parametrize("point", KILL_POINTS)
def test_killed_upgrade_leaves_a_complete_version_and_a_rerun_finishes(kill_suite, point):
    runs, data = kill_suite
    run = runs[point]
    assert run["fired"], "no kill landed at the %s point in %d attempts: %r" % (point, run["attempts"], run)
    if point == "download":
        # killed mid-download: the old version untouched, the partial download in a staging directory
        assert run["state_after_kill"] == "old", run
        assert run["partial_download"] and all(size < data["archive_size"] for size in run["partial_download"]), run
    elif point == "swapped":
        assert run["state_after_kill"] == "new", run
    else:
        assert run["state_after_kill"] in ("old", "new"), run
    assert all(name.startswith((".attune-staging-%s-" % REF, ".attune/%s.json.new" % REF)) for name in run["leftovers_after_kill"]), run
    assert not run["rerun_failed"], run
    assert run["final_state"] == "new", run


@pytest.mark.parametrize("point", KILL_POINTS)
def test_rerun_after_a_kill_leaves_no_leftovers(kill_suite, point):
    runs, dummy = kill_suite
    run = runs[point]
    assert run["fired"] and run["leftovers_after_kill"], run
    assert not run["rerun_failed"] and run["final_state"] == "new", run
    assert run["final_leftovers"] == [], run


def test_random_kills_during_an_upgrade(kill_suite):
    runs, data = kill_suite
    randoms = [run for name, run in sorted(runs.items()) if name.startswith("random-")]
    assert len(randoms) == RANDOM_KILLS
    for run in randoms:
        context = "seed %s (ATTUNE_KILL_SEED replays it), delays over %ss: %r" % (data["seed"], data["duration"], run)
        assert run["state_after_kill"] in ("old", "new"), context
        assert not run["rerun_failed"] and run["final_state"] == "new", context
        assert run["final_leftovers"] == [], context


# -- hostile suite ---------------------------------------------------------------------

WRONG = "sha256:" + "1" * 64
# archives of support/hostile_archives that go through the whole module (all of them are unit-tested)
HOSTILE_ARCHIVES = ["tar-traversal", "tar-absolute", "zip-traversal", "tar-symlink", "tar-symlink-write-through", "tar-hardlink",
                    "tar-char-device", "tar-fifo", "tar-oversized-entry", "tar-too-many-entries", "tar-gzip-bomb", "not-an-archive"]
INVALID_PACKS = ["missing-pack-yaml", "pack-yaml-bad-yaml", "pack-yaml-missing-version"]
REGISTRY_CASES = ["registry-wrong-checksum", "registry-pack-yaml-other-ref", "registry-pack-yaml-other-version", "registry-archive-too-big",
                  "git-and-archive-bad-checksums", "git-bad-checksum-archive-hostile"]
FAILING_CASES = HOSTILE_ARCHIVES + INVALID_PACKS + ["src-wrong-checksum", "git-symlink"] + REGISTRY_CASES
FALLBACK_CASE = "git-bad-checksum-falls-back-to-archive"


class Case(object):
    """One hostile install: module ``args``, regexes the failure message must match, the source URLs involved."""

    def __init__(self, case_id, args, words, sources, paths, succeeds=False):
        self.id = case_id
        self.args = args
        self.words = list(words)
        self.sources = list(sources)
        self.paths = list(paths)  # server paths the module must have requested (it really tried the hostile source)
        self.succeeds = succeeds

    def to_dict(self):
        return dict(self.__dict__)


def _ext_for(path):
    with open(path, "rb") as handle:
        return ".zip" if handle.read(2) == b"PK" else ".tar.gz"


def good_members(version, ref=REF, yaml_bytes=None, extra=()):
    """A valid pack under ``demo/`` with an executable file (so modes matter in the comparisons)."""
    return [member("demo", "dir"), member("demo/pack.yaml", data=yaml_bytes if yaml_bytes is not None else pack_yaml(version, ref)),
            member("demo/README.md", data=b"# Demo " + version.encode() + b"\n"),
            member("demo/actions/run.sh", data=b"#!/bin/sh\necho run\n", mode=0o755),
            member("demo/actions/run.yaml", data=b"name: run\nrunner_type: local-shell-script\nentry_point: run.sh\n")] + list(extra)


class HostileSite(object):
    """An HTTPS server publishing hostile files, git repositories and a registry index of ``demo`` versions."""

    def __init__(self, server, root):
        self.server = server
        self.files = os.path.join(root, "files")
        os.makedirs(self.files)
        server.add_directory("/files", self.files)
        self.entries = []
        self.cases = []
        self.registry = {"registries": [{"name": "public", "url": server.url("index.json"), "priority": 10}],
                         "ca_path": server.ca_path, "cache_dir": os.path.join(root, "cache"), "refresh": True}

    def file(self, name, build):
        """Write ``files/<name>`` with ``build(path)``; return (url, server path, sha256 checksum)."""
        path = os.path.join(self.files, name)
        build(path)
        return self.server.url("files/" + name), "/files/" + name, synth.sha256_file(path)

    def archive(self, name, members):
        return self.file(name, lambda path: tar_gz(path, members))

    def git(self, version, name, checksum=WRONG):
        bare, commit = gitrepo.make_git_pack_repo(self.files, REF, version, name=name)
        return bare, self.server.url("files/" + os.path.basename(bare)), commit, checksum

    def src_case(self, case_id, url, path, checksum, words, **options):
        args = {"name": REF, "src": url, "checksum": checksum, "ca_path": self.server.ca_path}
        args.update(options)
        self.cases.append(Case(case_id, args, words, [url], [path]))

    def entry_case(self, case_id, version, words, archive, archive_checksum=None, git=False, options=None, succeeds=False):
        """Publish ``demo <version>`` (a git source with a wrong checksum first when ``git``, then ``archive``)."""
        sources, paths, git_args = [], [], {}
        if git:
            dummy, git_url, commit, checksum = self.git(version, case_id)
            git_args = {"git_url": git_url, "git_commit": commit, "git_checksum": checksum}
            sources.append(git_url)
            paths.append("/files/%s.git/info/refs" % case_id)
        url, path, checksum = self.archive(case_id + ".tar.gz", archive)
        sources.append(url)
        paths.append(path)
        self.entries.append(synth.make_entry(REF, version, archive_url=url, archive_checksum=archive_checksum or checksum, **git_args))
        args = dict(self.registry, name="%s@%s" % (REF, version))
        args.update(options or {})
        self.cases.append(Case(case_id, args, words, sources, paths, succeeds))


def build_cases(site):
    """Every hostile case: its files served by ``site``, its registry entries published."""
    # 1. hostile archives (support/hostile_archives) as direct sources with their correct checksum
    hostile = dict((case.id, case) for case in hostile_archives.CASES)
    for case_id in HOSTILE_ARCHIVES:
        case = hostile[case_id]
        scratch = os.path.join(site.files, case_id + ".build")
        case.build(scratch)
        name = case_id + _ext_for(scratch)  # not-an-archive keeps a .tar.gz name
        url, path, checksum = site.file(name, lambda target, scratch=scratch: os.rename(scratch, target))
        site.src_case(case_id, url, path, checksum, [case.message], **case.limits)

    # 2. archives that unpack fine but do not hold a valid pack
    invalid = {
        "missing-pack-yaml": ([member("demo", "dir"), member("demo/README.md", data=b"no pack.yaml\n")], [r"no pack\.yaml"]),
        "pack-yaml-bad-yaml": (good_members("1.0.1", yaml_bytes=b"ref: demo\nlabel: [unclosed\n"), [r"pack\.yaml is not valid YAML"]),
        # Attune (packs.rs register_pack_internal) requires only ref and version: label/description may be missing
        "pack-yaml-missing-version": (good_members("1.0.1", yaml_bytes=b"ref: demo\nlabel: Demo\ndescription: no version\n"),
                                      [r"pack\.yaml is missing required field 'version'"]),
    }
    for case_id in INVALID_PACKS:
        members, words = invalid[case_id]
        url, path, checksum = site.archive(case_id + ".tar.gz", members)
        site.src_case(case_id, url, path, checksum, words)
    url, path, dummy = site.archive("src-wrong-checksum.tar.gz", good_members("1.0.1"))
    site.src_case("src-wrong-checksum", url, path, WRONG, [r"checksum mismatch", "expected " + WRONG])

    # 3. a git repository holding a symlink, given directly
    bare, git_url, dummy, dummy = site.git("1.0.2", "git-symlink")
    os.symlink("/etc/passwd", os.path.join(gitrepo.source_dir(bare), "passwd"))
    gitrepo.add_commit(bare, message="add a symlink")
    site.src_case("git-symlink", git_url, "/files/git-symlink.git/info/refs", WRONG, [r"contains a symlink: passwd"], version="main")

    # 4. registry entries, one version of demo each
    site.entry_case("registry-wrong-checksum", "1.1.0", [r"checksum mismatch", "expected " + WRONG], good_members("1.1.0"), WRONG)
    site.entry_case("registry-pack-yaml-other-ref", "1.2.0", [r"pack\.yaml ref 'other' does not match the resolved entry 'demo'"],
                    good_members("1.2.0", ref="other"))
    site.entry_case("registry-pack-yaml-other-version", "1.3.0",
                    [r"pack\.yaml version '1\.3\.1' does not match the resolved entry version '1\.3\.0'"], good_members("1.3.1"))
    blob = member("demo/blob.bin", data=random.Random(3).randbytes(256 * 1024))
    site.entry_case("registry-archive-too-big", "1.4.0", [r"larger than archive_max_bytes \(65536 bytes\)"],
                    good_members("1.4.0", extra=[blob]), options={"archive_max_bytes": 65536})
    site.entry_case(FALLBACK_CASE, "1.7.0", [], good_members("1.7.0"), git=True, succeeds=True)
    site.entry_case("git-and-archive-bad-checksums", "1.8.0", [r"checksum mismatch for archive"], good_members("1.8.0"), WRONG, git=True)
    traversal = [member("demo", "dir"), member("demo/pack.yaml", data=pack_yaml("1.9.0")), member("../evil.txt", data=b"evil")]
    site.entry_case("git-bad-checksum-archive-hostile", "1.9.0", [r"checksum mismatch for git tree", r"'\.\./evil\.txt'.*path traversal"],
                    traversal, git=True)
    return site.cases


def _hostile_suite(workdir):
    """Install the good version once, copy it per case, run every case in one playbook, record outcome and state."""
    with RegistryServer() as server:
        site = HostileSite(server, workdir)
        good_url, dummy, good_sum = site.archive("demo-1.0.0.tar.gz", good_members("1.0.0", yaml_bytes=hostile_archives.PACK_YAML))
        site.entries.append(synth.make_entry(REF, "1.0.0", archive_url=good_url, archive_checksum=good_sum))
        cases = build_cases(site)
        server.add_json("/index.json", make_index("public", site.entries))
        shutil.rmtree(hostile_archives.SYMLINK_TARGET, ignore_errors=True)
        os.makedirs(hostile_archives.SYMLINK_TARGET)
        evil_before = os.path.exists("/tmp/attune-evil.txt")

        pristine = os.path.join(workdir, "pristine", "packs")
        result = run_per_host(os.path.dirname(pristine), {"pristine": dict(site.registry, name="%s@1.0.0" % REF, packs_dir=pristine)})["pristine"]
        if result.get("failed") or not result.get("changed"):
            raise RuntimeError("installing the good version failed: %r" % (result,))
        before = snapshot(os.path.join(pristine, REF))
        record_before = _record_bytes(pristine)
        host_args = {}
        for case in cases:
            packs_dir = os.path.join(workdir, "cases", case.id, "packs")
            shutil.copytree(pristine, packs_dir, symlinks=True)
            host_args[case.id] = dict(case.args, packs_dir=packs_dir)
        server.reset_log()
        results = run_per_host(os.path.join(workdir, "hostile"), host_args)

        outcome = {}
        for case in cases:
            packs_dir = os.path.join(workdir, "cases", case.id, "packs")
            tree = os.path.join(packs_dir, REF)
            after = snapshot(tree) if os.path.isdir(tree) else {}
            escaped = [path for path in glob.glob(os.path.join(workdir, "cases", case.id, "**"), recursive=True) if "evil" in os.path.basename(path)]
            result = results[case.id]
            outcome[case.id] = dict(case.to_dict(), result=dict((key, result.get(key)) for key in ("failed", "changed", "msg", "warnings")),
                                    changed_paths=differences(before, after), listing=listing(packs_dir),
                                    leftovers=leftovers(packs_dir), escaped=escaped, metadata=read_metadata(tree),
                                    record_unchanged=_record_bytes(packs_dir) == record_before,
                                    requested=dict((path, server.count(path)) for path in case.paths))
        symlink_target = sorted(os.listdir(hostile_archives.SYMLINK_TARGET))
        shutil.rmtree(hostile_archives.SYMLINK_TARGET, ignore_errors=True)
        return {
            "cases": outcome,
            "order": [case.id for case in cases],
            "pristine": (read_metadata(os.path.join(pristine, REF)) or {}).get("version"),
            "symlink_target": symlink_target,
            "evil_created": os.path.exists("/tmp/attune-evil.txt") and not evil_before,
        }


SUITES = {"kill_suite": _kill_suite, "hostile": _hostile_suite}  # fixture name -> computation


@pytest.fixture(scope="module")
def hostile(request, tmp_path_factory):
    return shared_once(request, tmp_path_factory)


def test_hostile_suite_ran_every_case(hostile):
    assert hostile["pristine"] == "1.0.0"
    assert sorted(hostile["order"]) == sorted(FAILING_CASES + [FALLBACK_CASE])
    assert len(FAILING_CASES) >= 15


@pytest.mark.parametrize("case_id", FAILING_CASES)
def test_hostile_source_fails_and_keeps_the_installed_version(hostile, case_id):
    case = hostile["cases"][case_id]
    result = case["result"]
    msg = result["msg"] or ""
    assert result["failed"] is True and not result["changed"], case
    assert msg.startswith("pack %s: " % REF), case
    for word in case["words"]:
        assert re.search(word, msg), "%r not in %r" % (word, msg)
    assert all(count >= 1 for count in case["requested"].values()), "the hostile source was never fetched: %r" % (case,)
    # the installed version is byte-identical (files, modes, metadata) and nothing else is left in packs_dir
    assert case["changed_paths"] == [], case
    assert case["metadata"]["version"] == "1.0.0" and case["record_unchanged"], case
    assert case["listing"] == [REF], case
    assert case["leftovers"] == [], case
    assert case["escaped"] == [], case


@pytest.mark.parametrize("case_id", FAILING_CASES)
def test_hostile_failure_names_the_source(hostile, case_id):
    case = hostile["cases"][case_id]
    msg = case["result"]["msg"] or ""
    assert case["result"]["failed"] and case["sources"], case
    for url in case["sources"]:
        assert url in msg, "source %s not named in %r" % (url, msg)


def test_git_checksum_mismatch_falls_back_to_the_archive(hostile):
    case = hostile["cases"][FALLBACK_CASE]
    result = case["result"]
    assert not result["failed"] and result["changed"] is True, case
    assert case["metadata"]["version"] == "1.7.0" and case["metadata"]["installed_from"]["type"] == "archive", case
    git_url, archive_url = case["sources"]
    warnings = [text for text in result["warnings"] or [] if "fallback" in text]
    assert len(warnings) == 1, result
    assert "pack %s" % REF in warnings[0] and archive_url in warnings[0] and git_url in warnings[0], warnings
    assert "checksum mismatch for git tree" in warnings[0], warnings
    assert all(count >= 1 for count in case["requested"].values()), case
    assert case["leftovers"] == [] and case["listing"] == [REF], case


def test_nothing_was_written_outside_the_staging_area(hostile):
    assert hostile["symlink_target"] == []
    assert hostile["evil_created"] is False
