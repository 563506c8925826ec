# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check the build context that ``ansible-builder create`` made for execution-environment/.

Usage: python .ci/check_ee.py CONTEXT_DIR INSTALLED_COLLECTIONS_PATH ANSIBLE_BUILDER

* the Containerfile installs the Galaxy requirements and runs ansible-builder's introspection (which collects
  the Python and system requirements of every installed collection) and the bindep/pip install steps;
* the context carries the collection tarball and the requirements.yml that names it, and the tarball is this
  collection (MANIFEST.json) with meta/execution-environment.yml in it;
* ``ansible-builder introspect`` on the installed collection with the EE's own requirements.txt (what the build
  runs inside the image) yields every Python requirement of requirements.txt (requests from the collection,
  voluptuous from the EE file because ansible-builder drops it from collections, PyYAML with ansible-core) and our
  system requirement (git).
"""

import json
import os
import re
import subprocess
import sys
import tarfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def requirement_names(path):
    names = set()
    with open(os.path.join(REPO, path)) as f:
        for line in f:
            line = line.split("#", 1)[0].strip()
            if line:
                names.add(re.split(r"[<>=!~\[; ]", line, 1)[0].lower())
    return names


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    context, installed, builder = argv[1:]
    problems = []

    with open(os.path.join(context, "Containerfile")) as f:
        containerfile = f.read()
    for needle in ("ansible-galaxy collection install", "requirements.yml", "introspect",
                   "install-from-bindep", "COPY _build/collections/ /build/collections/"):
        if needle not in containerfile:
            problems.append("Containerfile lacks %r" % needle)

    with open(os.path.join(context, "_build", "requirements.yml")) as f:
        requirements = yaml.safe_load(f)
    names = [c.get("name") for c in requirements.get("collections", [])]
    if names != ["collections/attune-packs.tar.gz"]:
        problems.append("_build/requirements.yml names %r, expected the collection tarball" % names)

    tarball = os.path.join(context, "_build", "collections", "attune-packs.tar.gz")
    if not os.path.isfile(tarball):
        problems.append("context lacks %s" % tarball)
    else:
        with tarfile.open(tarball) as tar:
            manifest = json.load(tar.extractfile("MANIFEST.json"))["collection_info"]
            members = set(tar.getnames())
        if (manifest["namespace"], manifest["name"]) != ("attune", "packs"):
            problems.append("tarball is %s.%s" % (manifest["namespace"], manifest["name"]))
        for path in ("meta/execution-environment.yml", "meta/ee-bindep.txt", "requirements.txt"):
            if path not in members:
                problems.append("tarball lacks %s (ansible-builder reads it)" % path)

    user_pip = os.path.join(context, "_build", "requirements.txt")
    if not os.path.isfile(user_pip):
        problems.append("context lacks _build/requirements.txt (the EE's own Python requirements)")
    out = subprocess.run([builder, "introspect", "--sanitize", "--user-pip", user_pip, installed], check=True,
                         stdout=subprocess.PIPE, universal_newlines=True).stdout
    data = yaml.safe_load(out)
    python = " ".join(data.get("python", []) if isinstance(data.get("python"), list) else [str(data.get("python"))])
    system = " ".join(data.get("system", []) if isinstance(data.get("system"), list) else [str(data.get("system"))])
    if "ansible-core" not in containerfile:
        problems.append("Containerfile does not install ansible-core (which brings PyYAML)")
    for name in sorted(requirement_names("requirements.txt") - {"pyyaml"}):
        if not re.search(r"(?i)(^|\s)%s\b" % re.escape(name), python):
            problems.append("introspect: Python requirement %s missing from %r" % (name, python))
    if not re.search(r"(^|\s)git\b", system):
        problems.append("introspect: system requirement git missing from %r" % system)
    if "requests" not in out or "from collection attune.packs" not in out:
        problems.append("introspect does not attribute the requirements to attune.packs:\n%s" % out)

    for problem in problems:
        print("check-ee: FAIL: %s" % problem)
    if problems:
        return 1
    print("check-ee: OK: context %s; introspect of attune.packs:\n%s" % (context, out.rstrip()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
