"""requests and voluptuous are imported only when a fetch or a validation needs them.

A warm-cache search, a file:// registry and a no-change install never pay for
them (see docs/performance.md).  Each case runs in a fresh interpreter so that
``sys.modules`` shows what the core really imported.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import COLLECTIONS_ROOT
from support.pack_site import bare_python
from support.synth import make_entry
from testdata import make_index

MU = "ansible_collections.attune.packs.plugins.module_utils"


def run_python(code, python=sys.executable):
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT)
    proc = subprocess.run([python, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_core_imports_neither_requests_nor_voluptuous_until_needed(tmp_path):
    index = tmp_path / "index.json"
    entry = make_entry("slack", "2.1.0", archive_url="https://lazy.example/slack.tar.gz", archive_checksum="sha256:" + "0" * 64)
    index.write_text(json.dumps(make_index("lazy", [entry])))
    seen = run_python("""
        import json, sys
        from %(mu)s._base import _common, _lazy
        from %(mu)s._pack import _install
        from %(mu)s._registry import _fetch, _index, _queries, _resolver
        seen = {"after import": sorted(m for m in ("requests", "voluptuous") if m in sys.modules)}
        seen["stdlib http after import"] = sorted(m for m in ("http.cookiejar", "urllib.request", "http.client", "ssl") if m in sys.modules)
        seen["requests_import_error"] = _lazy.REQUESTS.import_error()
        seen["voluptuous_import_error"] = _lazy.VOLUPTUOUS.import_error()
        body = _fetch.fetch_index("file://%(index)s").body
        seen["after file fetch"] = sorted(m for m in ("requests", "voluptuous") if m in sys.modules)
        _index.validate_index(json.loads(body), registry="lazy")
        seen["after validation"] = sorted(m for m in ("requests", "voluptuous") if m in sys.modules)
        try:
            _fetch.fetch_index("https://127.0.0.1:9/index.json", timeout=5, connect_timeout=5, registry="lazy")
        except _fetch.RegistryUnreachable as exc:
            seen["https error"] = str(exc)
        seen["after https fetch"] = sorted(m for m in ("requests", "voluptuous") if m in sys.modules)
        print(json.dumps(seen))
    """ % {"mu": MU, "index": index})
    assert seen["after import"] == []
    # http.cookiejar (urllib.request, http.client, ssl, email) comes with the first session, as requests does
    assert seen["stdlib http after import"] == [], seen
    assert seen["requests_import_error"] is None and seen["voluptuous_import_error"] is None
    assert seen["after file fetch"] == []
    assert seen["after validation"] == ["voluptuous"]
    assert "registry unreachable" in seen["https error"] and "connection refused" in seen["https error"], seen
    assert seen["after https fetch"] == ["requests", "voluptuous"]


def test_missing_libraries_are_reported_without_importing():
    python = bare_python()
    if python is None:
        pytest.skip("no Python without requests on this machine")
    seen = run_python("""
        import json
        from %(mu)s._base import _lazy
        print(json.dumps({"requests": _lazy.REQUESTS.import_error(), "voluptuous": _lazy.VOLUPTUOUS.import_error()}))
    """ % {"mu": MU}, python=python)
    assert "No module named 'requests'" in seen["requests"]


def test_fetch_without_requests_names_the_library(tmp_path):
    python = bare_python()
    if python is None:
        pytest.skip("no Python without requests on this machine")
    seen = run_python("""
        import json
        from %(mu)s._registry import _fetch
        try:
            _fetch.fetch_index("https://registry.invalid/index.json", registry="corp")
        except _fetch.RegistryUnreachable as exc:
            print(json.dumps({"error": str(exc), "registry": exc.registry}))
    """ % {"mu": MU}, python=python)
    assert seen["registry"] == "corp"
    assert "requests is required" in seen["error"] and "registry.invalid" in seen["error"]


def test_fsync_tree_syncs_every_file_and_directory(tmp_path, monkeypatch):
    from ansible_collections.attune.packs.plugins.module_utils._pack import _packdir

    root = tmp_path / "tree"
    expected = set()
    for index in range(40):
        path = root / ("d%d" % (index % 5)) / ("f%02d" % index)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(str(index))
        expected.add(str(path))
    expected.update(str(root / ("d%d" % n)) for n in range(5))
    expected.add(str(root))
    synced = []
    real_fsync = os.fsync

    def spy(fd):  # records what was synced, then really syncs it
        synced.append(os.readlink("/proc/self/fd/%d" % fd))
        real_fsync(fd)

    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd to name synced descriptors")
    monkeypatch.setattr(_packdir.os, "fsync", spy)
    _packdir._fsync_tree(str(root))
    assert sorted(synced) == sorted(expected)
    assert len(synced) == len(expected)  # each once


def test_fsync_tree_reports_an_error_of_any_thread(tmp_path):
    from ansible_collections.attune.packs.plugins.module_utils._pack import _packdir

    root = tmp_path / "tree"
    root.mkdir()
    for index in range(40):
        (root / ("f%02d" % index)).write_text(str(index))
    os.unlink(str(root / "f17"))
    os.symlink("/etc/hostname", str(root / "f17"))  # O_NOFOLLOW refuses it: the error must surface
    with pytest.raises(OSError):
        _packdir._fsync_tree(str(root))
    shutil.rmtree(str(root))


def test_a_converged_install_loads_no_fetch_extract_git_lock_or_registry_code_nor_pyyaml(tmp_path):
    from support.synth import make_pack_archive

    archive, checksum = make_pack_archive(str(tmp_path), "lazy", "1.0.0")
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {"name": "lazy", "src": archive, "checksum": checksum,
                                                             "packs_dir": str(tmp_path / "packs")}}))
    code = """
        import atexit, json, runpy, sys
        names = ("_pack._extract", "_pack._git", "_registry._fetch", "_pack._lockfile", "_registry._resolver",
                 "_registry._cache", "_registry._index")
        atexit.register(lambda: sys.stderr.write("LOADED " + json.dumps(sorted([n.split(".")[1] for n in names if "%(mu)s." + n in sys.modules]
                                                                              + (["yaml"] if "yaml" in sys.modules else []))) + "\\n"))
        sys.argv = ["attune_pack", %(args)r]
        runpy.run_module("%(mu)s".replace("module_utils", "modules") + ".attune_pack", run_name="__main__")
    """ % {"args": str(args_file), "mu": MU}
    env = dict(os.environ, PYTHONPATH=COLLECTIONS_ROOT)
    env.pop("ATTUNE_CONFIG", None)
    if os.path.exists("/etc/attune/config.yaml"):
        pytest.skip("an Attune config file on this machine: reading it needs PyYAML")
    runs = []
    for dummy in range(2):
        proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, check=False)
        result = json.loads(proc.stdout)
        loaded = [line for line in proc.stderr.splitlines() if line.startswith("LOADED ")]
        assert not result.get("failed") and loaded, proc.stdout + proc.stderr
        runs.append((result["changed"], json.loads(loaded[-1][len("LOADED "):])))
    (installed, first), (again, second) = runs
    assert installed is True and "_extract" in first and "_fetch" in first and "yaml" in first  # an install needs them
    assert again is False and second == []  # a converged host does not (PyYAML: no Attune config file on this host)


def test_lazy_library_reports_missing_and_broken_libraries(tmp_path, monkeypatch):
    from ansible_collections.attune.packs.plugins.module_utils._base._lazy import LazyLibrary

    missing = LazyLibrary("attune_no_such_library_x1")
    assert "No module named 'attune_no_such_library_x1'" in missing.import_error()
    assert missing.load() is None and missing.import_error()

    broken_dir = tmp_path / "attune_broken_library_x1"
    broken_dir.mkdir()
    (broken_dir / "__init__.py").write_text("raise ImportError('half-installed: no _speedups')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    broken = LazyLibrary("attune_broken_library_x1")
    assert broken.import_error() is None  # found on the path: only importing it tells
    assert broken.load() is None
    assert "half-installed: no _speedups" in broken.import_error()  # the real reason, after the failed import

    present = LazyLibrary("json")
    assert present.import_error() is None and present.load() is sys.modules["json"]
