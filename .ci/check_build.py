# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check a built attune.packs artifact and its installed copy.

Usage: python .ci/check_build.py ARTIFACT.tar.gz INSTALLED_COLLECTIONS_PATH

* the tarball holds the collection's tracked content and nothing from the build/dev tree;
* MANIFEST.json names attune.packs at the version of galaxy.yml;
* every module and plugin of the installed copy renders with ``ansible-doc`` without warnings;
* every relative link of README.md (what Galaxy shows) points to a file inside the artifact.
"""

import fnmatch
import json
import os
import posixpath
import re
import subprocess
import sys
import tarfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

REQUIRED = ["MANIFEST.json", "FILES.json", "LICENSE", "meta/runtime.yml"]
FORBIDDEN = [
    ".build", ".build/*", ".venv*", ".ci", ".ci/*", ".git", ".git/*", ".gitignore", ".ansible", ".ansible/*",
    "Makefile", "galaxy.yml", "tests/output", "tests/output/*", "bench/results", "bench/results/*",
    "*__pycache__*", "*.pyc", "*.pytest_cache*", "attune-packs-*.tar.gz",
]
DOC_TYPES = {"modules": "module", "lookup": "lookup", "filter": "filter", "test": "test", "inventory": "inventory",
             "callback": "callback", "connection": "connection", "become": "become", "cache": "cache", "vars": "vars"}


def tracked_files():
    out = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, check=True, stdout=subprocess.PIPE).stdout
    return [p for p in out.decode("utf-8").split("\0") if p]


def check_tarball(artifact, version, problems):
    with tarfile.open(artifact) as tar:
        names = set(m.name for m in tar.getmembers() if m.isfile() or m.issym())
        manifest = json.load(tar.extractfile("MANIFEST.json"))

    for name in REQUIRED:
        if name not in names:
            problems.append("artifact lacks %s" % name)
    for name in sorted(names):
        for pattern in FORBIDDEN:
            if fnmatch.fnmatch(name, pattern):
                problems.append("artifact contains %s (matches %s)" % (name, pattern))
    for path in tracked_files():
        if path.startswith(("plugins/", "roles/", "playbooks/", "meta/", "docs/")) or path == "README.md":
            if path not in names and os.path.exists(os.path.join(REPO, path)):
                problems.append("artifact lacks tracked file %s" % path)

    info = manifest.get("collection_info", {})
    got = (info.get("namespace"), info.get("name"), info.get("version"))
    if got != ("attune", "packs", version):
        problems.append("MANIFEST.json collection_info is %r, expected ('attune', 'packs', %r)" % (got, version))
    return names


def check_readme_links(names, problems):
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    count = 0
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
            continue  # absolute URL or anchor
        count += 1
        path = posixpath.normpath(target.split("#", 1)[0])
        if path.startswith("../") or path == ".." or path.startswith("/"):
            problems.append("README.md links %s, outside the collection (broken on Galaxy and when installed)" % target)
        elif path not in names and not any(n.startswith(path.rstrip("/") + "/") for n in names):
            problems.append("README.md links %s, which is not in the artifact" % target)
    return count


def check_docs(installed, problems):
    root = os.path.join(installed, "ansible_collections", "attune", "packs", "plugins")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.abspath(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="false",
               ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_CONFIG", None)
    ansible_doc = os.path.join(os.path.dirname(sys.executable), "ansible-doc")
    count = 0
    for directory, doc_type in sorted(DOC_TYPES.items()):
        path = os.path.join(root, directory)
        if not os.path.isdir(path):
            continue
        # Jinja2 plugins (filter, test) are documented per function in a YAML sidecar named after it; the .py file
        # that implements several of them has no documentation of its own. Every other type: one .py per plugin.
        suffix = ".yml" if doc_type in ("filter", "test") else ".py"
        for filename in sorted(os.listdir(path)):
            if not filename.endswith(suffix) or filename.startswith("_"):
                continue
            fqcn = "attune.packs." + filename[:-len(suffix)]
            proc = subprocess.run([ansible_doc, "-t", doc_type, fqcn], env=env, cwd="/", check=False,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
            count += 1
            if proc.returncode != 0 or "WARNING" in proc.stderr or fqcn not in proc.stdout:
                problems.append("ansible-doc -t %s %s failed (rc=%s): %s" % (doc_type, fqcn, proc.returncode, proc.stderr.strip()[:500]))
    return count


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    artifact, installed = argv[1], argv[2]
    with open(os.path.join(REPO, "galaxy.yml")) as f:
        version = yaml.safe_load(f)["version"]

    problems = []
    names = check_tarball(artifact, version, problems)
    links = check_readme_links(names, problems)
    count = check_docs(installed, problems)
    for problem in problems:
        print("check-build: FAIL: %s" % problem)
    if problems:
        return 1
    print("check-build: OK: %s has %d files; %d relative README links resolve inside it; %d plugin docs render with ansible-doc"
          % (os.path.basename(artifact), len(names), links, count))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
