"""Test bootstrap: make this checkout importable as ``ansible_collections.attune.packs``.

The repository root is the collection root.  We expose it through a symlink at
``.build/collections/ansible_collections/attune/packs`` so that both the unit
tests (plain imports) and the ansible subprocesses started by the functional
tests (``ANSIBLE_COLLECTIONS_PATH``) load the code from this working tree.
"""
import os
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared")
FIXTURES_DIR = os.path.join(SHARED_DIR, "fixtures")  # also in tests/testdata.py
COLLECTIONS_ROOT = os.path.join(REPO_ROOT, ".build", "collections")


def _ensure_collection_link():
    link_dir = os.path.join(COLLECTIONS_ROOT, "ansible_collections", "attune")
    link = os.path.join(link_dir, "packs")
    os.makedirs(link_dir, exist_ok=True)
    if not os.path.islink(link):
        if os.path.exists(link):
            raise RuntimeError("%s exists and is not a symlink" % link)
        try:
            os.symlink(os.path.relpath(REPO_ROOT, link_dir), link)
        except FileExistsError:  # another xdist worker won the race
            pass
    return COLLECTIONS_ROOT


_ensure_collection_link()
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ["ANSIBLE_COLLECTIONS_PATH"] = COLLECTIONS_ROOT
os.environ.setdefault("ANSIBLE_NOCOLOR", "1")
os.environ.setdefault("ANSIBLE_HOST_KEY_CHECKING", "False")
os.environ.setdefault("ANSIBLE_RETRY_FILES_ENABLED", "False")
