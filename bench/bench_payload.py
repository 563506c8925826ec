#!/usr/bin/env python
"""What ansible does on the controller before a module runs: build its AnsiballZ payload (issue 10, item 9).

Run: ``.venv/bin/python bench/bench_payload.py`` (a few seconds).

For ``ansible.builtin.ping`` and each attune.packs module given (default: ``attune_pack``, ``attune_pack_lock``,
``attune_pack_installed``), ``BENCH_RUNS`` (7) rounds in fresh interpreters, the modules interleaved within each round: the time of
``ansible.executor.module_common.modify_module`` (ansible finds the ``module_utils`` a module can import by
parsing each of them, then zips them), the payload size and the number of files it carries. ansible does this once
per module and ``ansible-playbook`` run (cached in the run's local temp directory for the other hosts), so it is
a fixed cost of every run, and most of the difference between a one-host ``attune_pack`` run and a ``ping``.

Prints a Markdown table and writes ``bench/results/payload.json``.
"""
import json
import os
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from conftest import COLLECTIONS_ROOT  # noqa: E402  (also links the checkout into COLLECTIONS_ROOT)

RUNS = int(os.environ.get("BENCH_RUNS", "7"))
NAMES = sys.argv[1:] or ["attune_pack", "attune_pack_lock", "attune_pack_installed"]
MODULES = ["ansible.builtin.ping"] + ["attune.packs." + name for name in NAMES]

ONE = r"""
import io, json, sys, time, zipfile, base64, re
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar

init_plugin_loader([sys.argv[2]])
name = sys.argv[1]
path = module_loader.find_plugin(name)
start = time.perf_counter()
built = module_common.modify_module(module_name=name, module_path=path, module_args={}, templar=Templar(loader=DataLoader()),
                                    task_vars={"ansible_python_interpreter": sys.executable}, module_compression="ZIP_DEFLATED")
seconds = time.perf_counter() - start
data = built.b_module_data
zipped = re.search(rb"zip_data=(?:b?)'([^']*)'|ZIPDATA = b?\"\"\"(.*?)\"\"\"", data, re.S)
files = None
if zipped:
    raw = base64.b64decode(zipped.group(1) or zipped.group(2))
    files = len([i for i in zipfile.ZipFile(io.BytesIO(raw)).infolist() if i.filename.endswith(".py")])
print(json.dumps({"seconds": seconds, "bytes": len(data), "files": files}))
"""


def build(module):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS_ROOT, ANSIBLE_LOCAL_TEMP=os.path.join(REPO, ".build", "bench-tmp"))
    proc = subprocess.run([sys.executable, "-c", ONE, module, COLLECTIONS_ROOT], env=env, capture_output=True, text=True,
                          check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s: %s" % (module, proc.stderr[-3000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


def measure(modules):
    """``RUNS`` rounds, each building every module once (interleaved: a noisy moment affects all modules alike)."""
    samples = dict((module, []) for module in modules)
    for dummy in range(RUNS):
        for module in modules:
            samples[module].append(build(module))
    results = {}
    for module, items in samples.items():
        seconds = [s["seconds"] for s in items]
        results[module] = {"seconds": statistics.median(seconds), "min": min(seconds), "bytes": items[0]["bytes"],
                           "files": items[0]["files"], "samples": seconds}
    return results


def main():
    results = measure(MODULES)
    base = results["ansible.builtin.ping"]
    print("| module | payload build, median (min) | vs ping | payload bytes | .py files in it |")
    print("|---|---:|---:|---:|---:|")
    for module, r in results.items():
        files = r["files"] if r["files"] is not None else "?"
        print("| %s | %.3f s (%.3f) | %+.3f s | %d | %s |" % (module, r["seconds"], r["min"], r["seconds"] - base["seconds"], r["bytes"], files))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "payload.json"), "w") as handle:
        json.dump(results, handle, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
