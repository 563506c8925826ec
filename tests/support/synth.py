"""Deterministic synthetic test data: indices, pack trees, archives and checksums.

- ``make_index(n_packs, ...)``: a v1.0 index (valid against
  ``index.schema.json``) with realistic entries of about 4 KB each (like the
  standard index), so 2,500 packs make about 10.0 MB (9.5 MiB) of JSON, just
  under the default ``index_max_bytes`` of 10 MiB.  Same arguments, same
  document.
- ``make_entry(...)`` / ``wrap_index(...)``: small hand-made indices around
  real sources (git repositories and archives that a test serves).
- ``make_pack_tree(dir, ref, version, files=...)``: a pack directory with a
  valid ``pack.yaml``.
- ``make_archive(src_dir, out_path, fmt, top_dir)``: byte-for-byte reproducible
  ``.tar.gz`` / ``.tgz`` / ``.tar`` / ``.zip`` archives.
- ``sha256_file`` and ``tree_checksum``: checksums computed here, independently
  of the collection's own code, so tests cross-check it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import stat
import tarfile
import zipfile

import yaml

FIXED_MTIME = 1704067200  # 2024-01-01T00:00:00Z: timestamps inside archives
FIXED_ZIP_TIME = (2024, 1, 1, 0, 0, 0)
LAST_UPDATED = "2026-01-01T00:00:00Z"
FRAME_MAGIC = b"attune-pack-file-v1"

DOMAINS = [
    "slack", "aws", "github", "monitoring", "jira", "pagerduty", "kubernetes", "docker", "vault", "terraform",
    "azure", "gcp", "datadog", "splunk", "servicenow", "okta", "zabbix", "nagios", "elastic", "redis",
    "postgres", "mysql", "mongodb", "rabbitmq", "kafka", "jenkins", "gitlab", "bitbucket", "twilio", "sendgrid",
    "email", "http", "ssh", "windows", "linux", "vsphere", "openstack", "cloudflare", "dns", "ldap",
]
VERBS = [
    "create", "delete", "get", "list", "update", "start", "stop", "restart", "sync", "describe",
    "search", "enable", "disable", "attach", "detach", "approve", "notify", "rotate", "backup", "restore",
]
NOUNS = [
    "instance", "volume", "user", "group", "channel", "message", "ticket", "incident", "alert", "host",
    "service", "bucket", "repository", "issue", "pull_request", "deployment", "secret", "policy", "snapshot", "record",
]
KEYWORDS = [
    "automation", "chatops", "cloud", "notifications", "incident-response", "devops", "observability", "security",
    "identity", "networking", "storage", "database", "ci-cd", "ticketing", "messaging", "compliance", "backup",
    "containers", "infrastructure", "alerting", "metrics", "logging", "orchestration", "remediation",
]
AUTHORS = [
    ("Attune Maintainers", "packs@attune.example.org"),
    ("Integration Guild", "guild@integrations.example.org"),
    ("Ops Tooling Team", "ops-tools@example.com"),
    ("Community Contributors", "community@example.net"),
]
LICENSES = ["Apache-2.0", "MIT", "BSD-3-Clause", "GPL-3.0-or-later"]
RUNTIMES = ["python", "nodejs", "shell", "powershell-remoting"]


def _hex(data, algo="sha256"):
    return hashlib.new(algo, data.encode("utf-8")).hexdigest()


def _slug(name):
    out = "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")
    return out or "registry"


def _versions(rng, count):
    """``count`` strictly ascending semver strings."""
    return ["%d.%d.%d" % (1 + j // 4, j % 4, rng.randint(0, 9)) for j in range(count)]


def _components(domain, kind, count, verbs):
    out = []
    for name in verbs[:count]:
        out.append({
            "name": name,
            "description": "%s %s (%s) with validated input" % (kind, name.replace("_", " "), domain),
        })
    return sorted(out, key=lambda c: c["name"])


def make_entry(ref, version, git_url=None, git_commit=None, git_checksum=None, archive_url=None,
               archive_checksum=None, **overrides):
    """A minimal valid pack entry around real sources (git first, then archive).

    ``overrides`` replace or add keys (``dependencies=...``, ``meta=...``,
    ``keywords=[...]``...); a value of ``None`` removes the key.
    """
    sources = []
    if git_url:
        sources.append({"type": "git", "url": git_url, "ref": git_commit, "checksum": git_checksum})
    if archive_url:
        sources.append({"type": "archive", "url": archive_url, "checksum": archive_checksum})
    entry = {
        "ref": ref,
        "label": ref.replace("_", " ").replace("-", " ").title(),
        "description": "Test pack %s %s" % (ref, version),
        "version": version,
        "author": "attune.packs tests",
        "license": "Apache-2.0",
        "keywords": [ref],
        "runtime_deps": ["python"],
        "install_sources": sources,
        "contents": {"actions": [{"name": "hello", "description": "Say hello"}], "sensors": [], "triggers": [],
                     "rules": [], "workflows": []},
    }
    for key, value in overrides.items():
        if value is None:
            entry.pop(key, None)
        else:
            entry[key] = value
    return entry


def wrap_index(packs, registry_name="test-registry", registry_url=None, last_updated=LAST_UPDATED):
    """A v1.0 index document around ``packs``."""
    return {
        "registry_name": registry_name,
        "registry_url": registry_url or "https://registry.example.test/%s" % _slug(registry_name),
        "version": "1.0",
        "last_updated": last_updated,
        "packs": list(packs),
    }


def make_index(n_packs, registry_name="synthetic", seed=0, versions_per_ref=1, base_url="https://packs.example.test",
               registry_url=None):
    """A deterministic index of ``n_packs`` refs, each with ``versions_per_ref`` entries (ascending versions).

    Refs are ``<domain>-<i:05d>`` (for example ``slack-00000``); every entry
    has a git source pinned to a 40-hex commit and an archive source, both with
    sha256 checksums (plausible, not downloadable), ~20 actions, sensors,
    triggers, rules, workflows, dependencies and meta.  Git sources live at
    ``{base_url}/git/<ref>.git`` and archives at
    ``{base_url}/archives/<ref>-<version>.tar.gz``.
    """
    rng = random.Random("%s:%s" % (seed, registry_name))
    packs = []
    refs = []
    for i in range(n_packs):
        domain = DOMAINS[rng.randrange(len(DOMAINS))]
        ref = "%s-%05d" % (domain, i)
        author, email = AUTHORS[rng.randrange(len(AUTHORS))]
        license_ = LICENSES[rng.randrange(len(LICENSES))]
        keywords = sorted(set([domain] + rng.sample(KEYWORDS, rng.randint(4, 7))))
        runtimes = ["python"] + rng.sample(RUNTIMES[1:], rng.randint(0, 1))
        action_names = sorted({"%s_%s" % (v, n) for v in rng.sample(VERBS, 6) for n in rng.sample(NOUNS, 4)})
        rng.shuffle(action_names)
        deps = []
        if refs and rng.random() < 0.3:
            deps.append("%s@^1.0.0" % refs[rng.randrange(len(refs))])
        for version in _versions(rng, max(1, versions_per_ref)):
            commit = _hex("%s:%s@%s" % (seed, ref, version), "sha1")
            contents = {
                "actions": _components(domain, "Action", 20, action_names),
                "sensors": _components(domain, "Sensor", rng.randint(1, 3), ["%s_watcher" % n for n in NOUNS]),
                "triggers": _components(domain, "Trigger", rng.randint(1, 3), ["%s_changed" % n for n in NOUNS]),
                "rules": _components(domain, "Rule", rng.randint(0, 2), ["notify_on_%s" % n for n in NOUNS]),
                "workflows": _components(domain, "Workflow", rng.randint(1, 3), ["%s_lifecycle" % n for n in NOUNS]),
            }
            packs.append({
                "ref": ref,
                "label": "%s %s Integration" % (domain.capitalize(), NOUNS[i % len(NOUNS)].replace("_", " ").title()),
                "description": "Manage %s %ss and related resources from Attune workflows; pack %d of the %s registry" % (
                    domain.capitalize(), NOUNS[i % len(NOUNS)].replace("_", " "), i, registry_name),
                "use_case": "Automate routine %s operations with audited, least-privilege actions" % domain,
                "version": version,
                "author": author,
                "email": email,
                "homepage": "%s/packs/%s" % (base_url, ref),
                "repository": "%s/git/%s.git" % (base_url, ref),
                "license": license_,
                "keywords": keywords,
                "runtime_deps": runtimes,
                "install_sources": [
                    {"type": "git", "url": "%s/git/%s.git" % (base_url, ref), "ref": commit,
                     "checksum": "sha256:" + _hex("tree:" + commit)},
                    {"type": "archive", "url": "%s/archives/%s-%s.tar.gz" % (base_url, ref, version),
                     "checksum": "sha256:" + _hex("archive:" + commit)},
                ],
                "contents": contents,
                "dependencies": {"attune_version": ">=0.1.0", "python_version": ">=3.9", "packs": list(deps)},
                "meta": {"downloads": rng.randint(0, 250000), "stars": rng.randint(0, 900),
                         "tested_attune_versions": ["0.1.0", "0.2.0"][:rng.randint(1, 2)]},
            })
        refs.append(ref)
    return wrap_index(packs, registry_name=registry_name,
                      registry_url=registry_url or "https://registry.example.test/%s" % _slug(registry_name))


def index_bytes(index):
    """Serialised index as served (UTF-8 JSON)."""
    return json.dumps(index).encode("utf-8")


# ---------------------------------------------------------------------------
# Pack trees


def make_pack_tree(directory, ref, version, files=None, label=None, description=None, pack_yaml_extra=None):
    """Write a pack into ``directory`` (created if needed) and return it.

    Default files: ``pack.yaml`` (ref, label, description, version, author,
    email, keywords), ``README.md``, ``actions/hello.yaml`` and
    ``actions/hello.py``.  ``files`` maps relative paths to ``str``/``bytes``
    content to add or replace, or to ``None`` to leave a default file out
    (``{'pack.yaml': None}`` makes an invalid pack).  ``pack_yaml_extra``
    overrides keys of ``pack.yaml`` (a ``None`` value removes the key).
    """
    meta = {
        "ref": ref,
        "label": label or ref.replace("_", " ").replace("-", " ").title(),
        "description": description or "Test pack %s" % ref,
        "version": version,
        "author": "attune.packs tests",
        "email": "tests@example.invalid",
        "keywords": [ref, "test"],
    }
    for key, value in (pack_yaml_extra or {}).items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    content = {
        "pack.yaml": yaml.safe_dump(meta, sort_keys=False, default_flow_style=False),
        "README.md": "# %s\n\nVersion %s of the %s test pack.\n" % (meta.get("label", ref), version, ref),
        "actions/hello.yaml": yaml.safe_dump({
            "name": "hello", "runner_type": "python-script", "entry_point": "hello.py",
            "description": "Say hello", "parameters": {"name": {"type": "string", "default": "world"}},
        }, sort_keys=False),
        "actions/hello.py": "import sys\n\n\ndef main(name='world'):\n    return 'hello %s' % name\n\n\n"
                            "if __name__ == '__main__':\n    print(main(*sys.argv[1:]))\n",
    }
    content.update(files or {})
    os.makedirs(directory, exist_ok=True)
    for rel, data in sorted(content.items()):
        path = os.path.join(directory, *rel.split("/"))
        if data is None:
            if os.path.lexists(path):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)
    return directory


# ---------------------------------------------------------------------------
# Archives and checksums


def _walk_sorted(src_dir):
    """Yield ``(relpath, abspath, is_dir)`` in sorted order; symlinks and special files are refused."""
    for dirpath, dirnames, filenames in os.walk(src_dir):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, src_dir)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else "%s/%s" % (rel_dir.replace(os.sep, "/"), name)
            mode = os.lstat(full).st_mode
            if stat.S_ISLNK(mode) or not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise ValueError("make_archive only packs regular files and directories: %s" % full)
            yield rel, full, stat.S_ISDIR(mode)


def _file_mode(full):
    return 0o755 if os.stat(full).st_mode & stat.S_IXUSR else 0o644


def make_archive(src_dir, out_path, fmt="tar.gz", top_dir=None):
    """Pack ``src_dir`` into ``out_path`` reproducibly and return ``out_path``.

    ``fmt``: ``tar.gz``/``tgz`` (gzip without name or time), ``tar`` or ``zip``.
    ``top_dir``: put everything under this single top-level directory (like a
    GitHub codeload tarball ``repo-<sha>/``); ``None`` puts files at the root.
    Entries are sorted, owned by 0:0, dated 2024-01-01, mode 0644/0755.
    """
    entries = list(_walk_sorted(src_dir))
    prefix = (top_dir.strip("/") + "/") if top_dir else ""
    tmp = out_path + ".tmp"
    if fmt in ("tar.gz", "tgz", "tar"):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if prefix:
                tar.addfile(_tarinfo(prefix.rstrip("/"), tarfile.DIRTYPE, 0o755))
            for rel, full, is_dir in entries:
                if is_dir:
                    tar.addfile(_tarinfo(prefix + rel, tarfile.DIRTYPE, 0o755))
                    continue
                with open(full, "rb") as f:
                    data = f.read()
                info = _tarinfo(prefix + rel, tarfile.REGTYPE, _file_mode(full))
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        payload = raw.getvalue()
        with open(tmp, "wb") as out:
            if fmt == "tar":
                out.write(payload)
            else:
                with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as gz:
                    gz.write(payload)
    elif fmt == "zip":
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
            if prefix:
                zf.writestr(_zipinfo(prefix, 0o40755, True), b"")
            for rel, full, is_dir in entries:
                if is_dir:
                    zf.writestr(_zipinfo(prefix + rel + "/", 0o40755, True), b"")
                    continue
                with open(full, "rb") as f:
                    zf.writestr(_zipinfo(prefix + rel, 0o100000 | _file_mode(full), False), f.read())
    else:
        raise ValueError("unknown archive format %r (tar.gz, tgz, tar, zip)" % (fmt,))
    os.replace(tmp, out_path)
    return out_path


def _tarinfo(name, kind, mode):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.mtime = FIXED_MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _zipinfo(name, mode, is_dir):
    info = zipfile.ZipInfo(name, FIXED_ZIP_TIME)
    info.create_system = 3  # unix, so external_attr carries the mode
    info.external_attr = (mode << 16) | (0x10 if is_dir else 0)
    info.compress_type = zipfile.ZIP_STORED if is_dir else zipfile.ZIP_DEFLATED
    return info


def make_pack_archive(out_dir, ref, version, fmt="tar.gz", top_dir=True, files=None, pack_yaml_extra=None):
    """Build a pack tree and archive it in ``out_dir``; return ``(archive_path, 'sha256:...')``.

    ``top_dir=True`` nests the pack under ``<ref>-<version>/``; a string names
    the directory; ``False``/``None`` puts ``pack.yaml`` at the archive root.
    """
    src = make_pack_tree(os.path.join(out_dir, "%s-%s.src" % (ref, version)), ref, version, files=files,
                         pack_yaml_extra=pack_yaml_extra)
    top = "%s-%s" % (ref, version) if top_dir is True else (top_dir or None)
    ext = {"tgz": "tgz", "tar.gz": "tar.gz", "tar": "tar", "zip": "zip"}[fmt]
    path = make_archive(src, os.path.join(out_dir, "%s-%s.%s" % (ref, version, ext)), fmt=fmt, top_dir=top)
    return path, sha256_file(path)


def sha256_file(path):
    """``'sha256:<hex>'`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            digest.update(block)
    return "sha256:" + digest.hexdigest()


def tree_checksum(root):
    """Attune's framed directory checksum, written independently of the collection's code.

    Regular files only (anything named ``.git`` is skipped, symlinks and
    special files are an error), visited component by component in sorted
    order (the verifier's order); each file contributes the magic, the
    8-byte big-endian path length, the ``/``-joined path, the 8-byte content
    length and the content.  Returns ``'sha256:<hex>'``.
    """
    files = []

    def visit(directory, parts):
        for name in sorted(os.listdir(directory)):
            if name == ".git":
                continue
            full = os.path.join(directory, name)
            mode = os.lstat(full).st_mode
            if stat.S_ISDIR(mode):
                visit(full, parts + (name,))
            elif stat.S_ISREG(mode):
                files.append((parts + (name,), full))
            else:
                raise ValueError("not a regular file: %s" % full)

    visit(root, ())
    digest = hashlib.sha256()
    for parts, full in files:
        rel = "/".join(parts).encode("utf-8")
        with open(full, "rb") as f:
            data = f.read()
        digest.update(FRAME_MAGIC)
        digest.update(len(rel).to_bytes(8, "big"))
        digest.update(rel)
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return "sha256:" + digest.hexdigest()


def provenance_path(packs_dir, ref):
    """Where the collection keeps the provenance of an installed pack: ``<packs_dir>/.attune/<ref>.json`` (outside the tree)."""
    return os.path.join(packs_dir, ".attune", ref + ".json")


def legacy_provenance_path(packs_dir, ref):
    """Where 0.1.0 kept it: ``<packs_dir>/<ref>/.attune/metadata.json`` (inside the tree)."""
    return os.path.join(packs_dir, ref, ".attune", "metadata.json")


def read_provenance(packs_dir, ref):
    """The provenance record a reader must take for ``ref``, or None; independent of the collection's code.

    A pending record (``<ref>.json.new``, written before the swap) counts when its ``tree_inode`` is the inode of
    ``<packs_dir>/<ref>`` (the swap happened), else the committed ``<ref>.json``; a 0.1.0 record inside the tree last.
    """
    try:
        inode = os.lstat(os.path.join(packs_dir, ref)).st_ino
    except OSError:
        return None
    candidates = [(provenance_path(packs_dir, ref) + ".new", True), (provenance_path(packs_dir, ref), False),
                  (legacy_provenance_path(packs_dir, ref), False)]
    for path, pending in candidates:
        try:
            with open(path) as handle:
                record = json.load(handle)
        except (OSError, ValueError):
            continue
        if pending and record.get("tree_inode") != inode:
            continue
        return record
    return None
