"""Small index builders and fixture paths shared by the unit and functional tests."""
import json
import os

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES_DIR = os.path.join(os.path.dirname(REPO_ROOT), "shared", "fixtures")
STANDARD_INDEX = os.path.join(FIXTURES_DIR, "attune-standard-index.json")
INDEX_SCHEMA = os.path.join(FIXTURES_DIR, "index.schema.json")
EXAMPLE_INDEX = os.path.join(REPO_ROOT, "docs", "examples", "registry-index.json")


def make_entry(ref, version, digit="a", **extra):
    entry = {
        "ref": ref,
        "label": ref.title(),
        "description": "%s pack" % ref,
        "version": version,
        "author": "tests",
        "license": "Apache-2.0",
        "keywords": [ref, "test"],
        "runtime_deps": [],
        "install_sources": [
            {"type": "git", "url": "https://git.example/%s.git" % ref, "ref": digit * 40, "checksum": "sha256:" + digit * 64},
            {"type": "archive", "url": "https://files.example/%s-%s.tar.gz" % (ref, version), "checksum": "sha256:" + "b" * 64},
        ],
        "contents": {"actions": [{"name": "post", "description": "post"}], "sensors": [], "triggers": [], "rules": [], "workflows": []},
    }
    entry.update(extra)
    return entry


def make_index(name, entries):
    return {"registry_name": name, "registry_url": "https://%s.example/" % name, "version": "1.0",
            "last_updated": "2026-01-01T00:00:00Z", "packs": entries}


def write_index(directory, name, entries):
    """Write an index file and return its file:// URL."""
    path = os.path.join(str(directory), "%s.json" % name)
    with open(path, "w") as handle:
        json.dump(make_index(name, entries), handle)
    return "file://" + path
