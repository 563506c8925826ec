#!/usr/bin/env python
"""Where the time of a warm ad hoc ``attune_pack_search`` goes, next to ``ping`` (issue 17: the floor and why).

Run: ``.venv/bin/python bench/bench_floor.py`` (about a minute; ``BENCH_RUNS``, default 9).

Five ad hoc commands on localhost, interleaved in each round (one ``ansible`` process each, as a user types them):

1. ``ansible.builtin.ping``;
2. ``noop``: a collection module that imports nothing of ours and returns at once (what any collection module costs
   over ``ping``: the collection loader, the module's own source in the payload);
3. ``graph``: a module with exactly the imports of ``attune_pack_search`` that returns without searching (adds the
   payload build over our ``module_utils`` graph on the controller and their import on the host);
4. ``search (module)``: ``attune_pack_search``'s source under another name, so that no action plugin runs (adds the
   search itself: settings, cache read, the query);
5. ``attune.packs.attune_pack_search``: the real thing, with its action plugin.

The three bench modules live in a throw-away collection ``attune_bench.floor`` in the run's temp directory; modules
2-4 are generated from ``plugins/modules/attune_pack_search.py`` so that they follow it when it changes. The cache is
warm (one run before the rounds). Prints the medians, each step's cost over the previous one, and the payload each
module carries (bytes and files, from ansible's own ``modify_module``); writes ``bench/results/floor.json``.
"""
import ast
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests"))

from conftest import COLLECTIONS_ROOT  # noqa: E402  (also links the checkout into COLLECTIONS_ROOT)
from support.play import base_env  # noqa: E402
from support.registry_server import ServerProcess  # noqa: E402
from support.synth import make_index  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "9"))
SEARCH_SOURCE = os.path.join(REPO, "plugins", "modules", "attune_pack_search.py")

NOOP = '''#!/usr/bin/python
DOCUMENTATION = "module: noop"
from ansible.module_utils.basic import AnsibleModule


def main():
    module = AnsibleModule(argument_spec=dict(query=dict(type="str"), ca_path=dict(type="str"), cache_dir=dict(type="str")),
                           supports_check_mode=True)
    module.exit_json(changed=False, packs=[])


if __name__ == "__main__":
    main()
'''

PAYLOAD = r"""
import io, json, sys, zipfile, base64, re
from ansible.executor import module_common
from ansible.parsing.dataloader import DataLoader
from ansible.plugins.loader import init_plugin_loader, module_loader
from ansible.template import Templar

init_plugin_loader(sys.argv[2].split(":"))
name = sys.argv[1]
path = module_loader.find_plugin(name)
built = module_common.modify_module(module_name=name, module_path=path, module_args={}, templar=Templar(loader=DataLoader()),
                                    task_vars={"ansible_python_interpreter": sys.executable}, module_compression="ZIP_DEFLATED")
data = built.b_module_data
zipped = re.search(rb"zip_data=(?:b?)'([^']*)'|ZIPDATA = b?\"\"\"(.*?)\"\"\"", data, re.S)
raw = base64.b64decode(zipped.group(1) or zipped.group(2))
infos = [i for i in zipfile.ZipFile(io.BytesIO(raw)).infolist() if i.filename.endswith(".py")]
ours = [i for i in infos if i.filename.startswith("ansible_collections/attune/")]
print(json.dumps({"bytes": len(data), "files": len(infos), "our_files": len(ours), "our_source": sum(i.file_size for i in ours)}))
"""


def graph_module(path):
    """A module with the top-level imports of the module at ``path`` (in order) and a main() that returns at once."""
    with open(path) as handle:
        source = handle.read()
    tree = ast.parse(source)
    lines = source.splitlines()
    imports = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.append("\n".join(lines[node.lineno - 1:node.end_lineno]))
    if not any("module_utils._" in line for line in imports):
        raise RuntimeError("%s: no module_utils import found; update bench_floor.py" % path)
    return "#!/usr/bin/python\n%s\nDOCUMENTATION = 'module: graph'\n\n\n%s" % ("\n".join(imports), NOOP.split("\n\n\n", 1)[1])


def make_collection(root):
    modules = os.path.join(root, "ansible_collections", "attune_bench", "floor", "plugins", "modules")
    os.makedirs(modules)
    with open(os.path.join(root, "ansible_collections", "attune_bench", "floor", "galaxy.yml"), "w") as handle:
        handle.write("namespace: attune_bench\nname: floor\nversion: 1.0.0\nreadme: README.md\nauthors: [bench]\n")
    with open(SEARCH_SOURCE) as handle:
        source = handle.read()
    for name, text in (("noop", NOOP), ("graph", graph_module(SEARCH_SOURCE)), ("search_module", source)):
        with open(os.path.join(modules, name + ".py"), "w") as handle:
            handle.write(text)


def payload(module, paths):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=paths)
    proc = subprocess.run([sys.executable, "-c", PAYLOAD, module, paths], env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("%s: %s" % (module, proc.stderr[-3000:]))
    return json.loads(proc.stdout)


def main():
    results = {"machine": "%s, %s CPUs, Python %s" % (platform.platform(), os.cpu_count(), platform.python_version()),
               "runs": RUNS}
    with tempfile.TemporaryDirectory(prefix="attune-bench-floor-") as workdir:
        www = os.path.join(workdir, "www")
        os.makedirs(www)
        with open(os.path.join(www, "small.json"), "w") as handle:
            json.dump(make_index(50, registry_name="bench"), handle)
        bench_root = os.path.join(workdir, "collections")
        make_collection(bench_root)
        paths = "%s:%s" % (COLLECTIONS_ROOT, bench_root)
        with ServerProcess(www, workdir) as server:
            config = os.path.join(workdir, "config.yaml")
            with open(config, "w") as handle:
                handle.write("pack_registry:\n  approved_private_hosts: [127.0.0.1]\n  indices:\n    - name: bench\n"
                             "      url: %s\n" % server.url("small.json"))
            inventory = os.path.join(workdir, "inventory.ini")
            with open(inventory, "w") as handle:
                handle.write("localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
            env = base_env({"ATTUNE_CONFIG": config, "ANSIBLE_COLLECTIONS_PATH": paths})
            ansible = os.path.join(os.path.dirname(sys.executable), "ansible")
            args = "query=slack ca_path=%s cache_dir=%s" % (server.ca_path, os.path.join(workdir, "cache"))
            commands = [
                ("ping", "ansible.builtin.ping", None),
                ("noop", "attune_bench.floor.noop", args),
                ("graph", "attune_bench.floor.graph", args),
                ("search (module)", "attune_bench.floor.search_module", args),
                ("search", "attune.packs.attune_pack_search", args),
            ]

            def run(module, module_args):
                cmd = [ansible, "localhost", "-i", inventory, "-m", module] + (["-a", module_args] if module_args else [])
                proc = subprocess.run(cmd, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, check=False)
                if proc.returncode != 0 or "SUCCESS" not in proc.stdout:
                    raise RuntimeError("%s failed:\n%s%s" % (module, proc.stdout, proc.stderr))
                if module.endswith("search") or module.endswith("search_module"):
                    if not re.search(r'"ref": "slack', proc.stdout):
                        raise RuntimeError("%s found no slack pack:\n%s" % (module, proc.stdout))

            for dummy, module, module_args in commands:  # warm the cache and the page cache
                run(module, module_args)
            samples = dict((name, []) for name, dummy, dummy2 in commands)
            for dummy in range(RUNS):
                for name, module, module_args in commands:
                    start = time.perf_counter()
                    run(module, module_args)
                    samples[name].append(time.perf_counter() - start)
            sizes = dict((name, payload(module, paths)) for name, module, dummy in commands)
    ping = statistics.median(samples["ping"])
    rows = []
    previous = None
    for name, dummy, dummy2 in commands:
        median = statistics.median(samples[name])
        rows.append({"step": name, "median_s": median, "ratio_to_ping": median / ping,
                     "over_previous_s": None if previous is None else median - previous,
                     "samples": samples[name], "payload": sizes[name]})
        previous = median
    results["rows"] = rows
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", "floor.json"), "w") as handle:
        json.dump(results, handle, indent=2)
    print("machine: %s; %d interleaved rounds, medians" % (results["machine"], RUNS))
    print()
    print("| ad hoc on localhost | median | × ping | over the row above | payload | files (ours) | our source |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        size = row["payload"]
        print("| %s | %.3f s | %.2f× | %s | %d B | %d (%d) | %d B |" % (
            row["step"], row["median_s"], row["ratio_to_ping"],
            "" if row["over_previous_s"] is None else "%+.3f s" % row["over_previous_s"],
            size["bytes"], size["files"], size["our_files"], size["our_source"]))


if __name__ == "__main__":
    main()
