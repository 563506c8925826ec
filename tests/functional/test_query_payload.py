"""The query modules carry only what runs on the host (issue 17).

attune_pack_registries / search / info answer ``api_url`` in their action plugin on the controller, so their AnsiballZ
payload must not carry the Attune API client (``module_utils/_attune/``).  The payload is built as ansible builds it
(``ansible.executor.module_common.modify_module``, as bench/bench_payload.py does), in a fresh interpreter.  That the
``api_url`` queries still answer (ad hoc and in plays, resolve_on host or controller) is tested in
test_attune_queries.py.
"""
import base64
import io
import json
import os
import re
import subprocess
import sys
import zipfile

import pytest

from conftest import COLLECTIONS_ROOT, REPO_ROOT

QUERY_MODULES = ["attune_pack_search", "attune_pack_info", "attune_pack_registries"]

BUILD = r"""
import json, sys
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar

init_plugin_loader([sys.argv[2]])
name = sys.argv[1]
built = module_common.modify_module(module_name=name, module_path=module_loader.find_plugin(name), module_args={},
                                    templar=Templar(loader=DataLoader()),
                                    task_vars={"ansible_python_interpreter": sys.executable}, module_compression="ZIP_STORED")
sys.stdout.buffer.write(built.b_module_data)
"""


def payload_files(module):
    """Names of the files in the AnsiballZ payload ansible builds for ``module``."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT)
    proc = subprocess.run([sys.executable, "-c", BUILD, module, COLLECTIONS_ROOT], env=env, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    zipped = re.search(rb"zip_data=(?:b?)'([^']*)'|ZIPDATA = b?\"\"\"(.*?)\"\"\"", proc.stdout, re.S)
    assert zipped, "no zip in the payload of %s" % module
    raw = base64.b64decode(zipped.group(1) or zipped.group(2))
    return [info.filename for info in zipfile.ZipFile(io.BytesIO(raw)).infolist()]


@pytest.mark.parametrize("name", QUERY_MODULES)
def test_query_payload_carries_no_attune_api_client(name):
    files = payload_files("attune.packs." + name)
    ours = [f for f in files if "ansible_collections/attune/packs/" in f]
    # the module and its registry core are there (the test looks at the right payload) ...
    assert any(f.endswith("plugins/modules/%s.py" % name) for f in ours), ours
    assert any(f.endswith("module_utils/_registry/_queries.py") for f in ours), ours
    # ... the API client is not
    assert [f for f in ours if "/module_utils/_attune/" in f] == [], ours


@pytest.mark.parametrize("name", QUERY_MODULES)
def test_module_without_its_action_plugin_refuses_api_url(tmp_path, name):
    """The module on its own (no action plugin: not possible through ansible) fails with invalid_arguments."""
    args = {"api_url": "https://attune.example.com", "query": "slack", "name": "slack"}
    if name != "attune_pack_info":
        del args["name"]
    if name != "attune_pack_search":
        del args["query"]
    args_file = tmp_path / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    # the module runs as ansible would run it (args file as argv[1]); exit_json/fail_json end the process, so the
    # collection modules it imported are reported from an exit handler
    wrapper = "\n".join([
        "import atexit, runpy, sys",
        "atexit.register(lambda: sys.stderr.write('ATTUNE_MODULES=%r' % [m for m in sys.modules if '.module_utils._attune' in m]))",
        "sys.argv = ['module', sys.argv[1]]",
        "runpy.run_module('ansible_collections.attune.packs.plugins.modules.%s', run_name='__main__')" % name,
    ])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([COLLECTIONS_ROOT, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", wrapper, str(args_file)], env=env, capture_output=True, text=True,
                          check=False, cwd=REPO_ROOT)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert proc.returncode == 1 and result["failed"], proc.stdout + proc.stderr
    assert result["error"]["kind"] == "invalid_arguments", result
    assert "api_url" in result["msg"] and "action plugin" in result["msg"], result
    assert "ATTUNE_MODULES=[]" in proc.stderr, proc.stderr


# What a module's payload must not carry (issue 17: ansible parses every file a module can import on every run, about
# 1 ms per KB on the benchmark machine, docs/performance.md).  A module that only reads installed packs carries no
# extractor and no registry client; one that edits a config file carries no pack code at all; the lock carries no
# extractor (a git pin needs the pack-root rule only, _pack_yaml).
NOT_CARRIED = {
    "attune_pack_installed": ["_pack/_extract.py", "_pack/_install.py", "_registry/_resolver.py", "_registry/_fetch.py",
                              "_registry/_cache.py", "_registry/_index.py", "/_attune/"],
    "attune_registry_config": ["/_pack/", "_registry/_resolver.py", "_registry/_fetch.py", "_registry/_cache.py", "/_attune/"],
    "attune_pack_lock": ["_pack/_extract.py", "_pack/_install.py", "_pack/_packdir.py", "/_attune/"],
}


@pytest.mark.parametrize("name", sorted(NOT_CARRIED))
def test_payload_carries_only_what_the_module_runs(name):
    files = payload_files("attune.packs." + name)
    ours = [f for f in files if "ansible_collections/attune/packs/" in f]
    assert any(f.endswith("plugins/modules/%s.py" % name) for f in ours), ours
    assert any(f.endswith("module_utils/_base/_common.py") for f in ours), ours  # the graph was followed
    carried = sorted(f for f in ours for part in NOT_CARRIED[name] if part in f)
    assert carried == [], "%s carries %s" % (name, carried)
