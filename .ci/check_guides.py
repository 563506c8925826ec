# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of the user guides (docs/docsite/rst) beyond what antsibull-docs lints.

* docs/docsite/extra-docs.yml lists every guide and only existing ones;
* the troubleshooting guide has a section for every error kind of plugins/module_utils/_base/_errors.py;
* the framed-checksum script in the running-registries guide prints the format's test vector and agrees with
  the collection's own _checksum.framed_dir_checksum on a tree with the a-b / a/x ordering case.
"""

import os
import re
import subprocess
import sys
import tempfile

import yaml

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RST = os.path.join(REPO, "docs", "docsite", "rst")
TEST_VECTOR = "sha256:e9837162383488cb9b187ea585ce8963634d7d04f75abeb0c43d5456de0d6b13"


def read(path):
    with open(os.path.join(REPO, path), encoding="utf-8") as f:
        return f.read()


def check_toctree(problems):
    extra = yaml.safe_load(read("docs/docsite/extra-docs.yml"))
    listed = [name for section in extra["sections"] for name in section["toctree"]]
    present = sorted(n[:-4] for n in os.listdir(RST) if n.endswith(".rst"))
    for name in sorted(set(present) - set(listed)):
        problems.append("docs/docsite/rst/%s.rst is not listed in docs/docsite/extra-docs.yml" % name)
    for name in sorted(set(listed) - set(present)):
        problems.append("docs/docsite/extra-docs.yml lists %s, which does not exist" % name)
    for name in present:
        label = ".. _ansible_collections.attune.packs.docsite.%s:" % name
        if not read("docs/docsite/rst/%s.rst" % name).startswith(label):
            problems.append("%s.rst must start with the label %s" % (name, label))
    return len(present)


def check_error_kinds(problems):
    kinds = re.findall(r'^\s+kind = "([a-z_]+)"', read("plugins/module_utils/_base/_errors.py"), re.M)
    guide = read("docs/docsite/rst/guide_troubleshooting.rst")
    for kind in kinds:
        if not re.search(r"^``%s``\n-+\n" % re.escape(kind), guide, re.M):
            problems.append("guide_troubleshooting.rst has no section ``%s`` (error kind in _errors.py)" % kind)
    return kinds


def check_checksum_script(problems):
    guide = read("docs/docsite/rst/guide_running_registries.rst")
    match = re.search(r"\.\. code-block:: python\n\n((?:(?: {6}.*)?\n)+)", guide)
    if not match:
        problems.append("guide_running_registries.rst: no python code block")
        return
    script = "\n".join(line[6:] for line in match.group(1).splitlines())
    collections = os.path.join(REPO, ".build", "collections")
    link = os.path.join(collections, "ansible_collections", "attune", "packs")
    if not os.path.lexists(link):  # the same link as tests/conftest.py makes
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(REPO, os.path.dirname(link)), link)
    sys.path.insert(0, collections)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "framed_checksum.py")
        with open(path, "w") as f:
            f.write(script)
        vector = os.path.join(tmp, "vector")
        os.makedirs(os.path.join(vector, "nested"))
        with open(os.path.join(vector, "nested", "file.txt"), "w") as f:
            f.write("fixture\n")
        tricky = os.path.join(tmp, "tricky")
        for rel, content in (("a/x", "1"), ("a-b", "2"), ("pack.yaml", "ref: t\n"), (".git/HEAD", "x"), ("z/é.txt", "3")):
            os.makedirs(os.path.dirname(os.path.join(tricky, rel)), exist_ok=True)
            with open(os.path.join(tricky, rel), "w", encoding="utf-8") as f:
                f.write(content)
        got = subprocess.run([sys.executable, path, vector], check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
        if got != TEST_VECTOR:
            problems.append("the guide's framed-checksum script prints %s for the test vector, expected %s" % (got, TEST_VECTOR))
        got = subprocess.run([sys.executable, path, tricky], check=True, stdout=subprocess.PIPE,
                             universal_newlines=True).stdout.strip()
        try:
            from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import framed_dir_checksum  # pylint: disable=import-outside-toplevel
        except ImportError as exc:
            problems.append("cannot import the collection's _checksum (%s); run from a checkout with .build/collections" % exc)
            return
        want = "sha256:" + framed_dir_checksum(tricky)
        if got != want:
            problems.append("the guide's framed-checksum script prints %s for a-b / a/x, the collection %s" % (got, want))


def main():
    problems = []
    count = check_toctree(problems)
    kinds = check_error_kinds(problems)
    check_checksum_script(problems)
    for problem in problems:
        print("check-guides: FAIL: %s" % problem)
    if problems:
        return 1
    print("check-guides: OK: %d guides; troubleshooting covers %d error kinds; the checksum script matches" % (count, len(kinds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
