# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: publishing an index -- one pack to one entry, and the index file (may change without notice).

Rules follow the builder of the public index (attune-system/index ``scripts/build_index.py`` ``build_entry``,
``scripts/validate_index.py`` ``validate_policy``) and Attune's CLI (attune-system/attune
``crates/cli/src/commands/pack_index.rs`` ``build_index_entry``, ``validate_pack_index``, ``handle_index_merge``).
Where the two differ the builder wins (attune-format.md section 7); each difference is named where it is decided:

* ``description`` missing: the builder takes the hosting repository's description, the CLI ``""``; here the
  ``defaults`` given by the caller, else ``""``.
* ``author`` missing: the builder takes the repository owner's login, the CLI ``"Unknown"``; here ``defaults``,
  else the owner in a ``https://host/OWNER/REPO`` repository URL, else ``"Unknown"``.
* ``repository``: the builder always writes the repository the entry was built from (``git_url`` without ``.git``);
  the CLI reads ``repository`` / ``meta.repository_url`` from pack.yaml; here ``defaults.repository``, else the git
  URL without ``.git``, else the CLI's pack.yaml fields.
* ``license`` missing: pack.yaml ``license``, ``meta.license``, then ``defaults.license`` (the repository's licence,
  as the builder), else ``NOASSERTION``.
* ``meta``: the builder always writes one, with ``category`` defaulting to ``uncategorized`` and ``commit`` (the
  indexed commit); the CLI copies pack.yaml's ``meta`` only.  Here the builder's, plus ``defaults.meta``.
* numbers in lists: the builder renders them with ``json.dumps`` (``1.0`` stays ``"1.0"``); so do we.
* git checksum: the builder orders whole path strings, Attune's verifier component by component; we use
  ``_checksum.framed_dir_checksum`` (the verifier's order), which differs only in the case documented there.

:func:`run_index_entry` is the ``attune_pack_index_entry`` task (``_index_task.run_index``, apart because it reads
registries, is ``attune_pack_index``'s).

Pure core: no Ansible imports; PyYAML for pack.yaml.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import os
import re
import shutil
import stat
import tempfile

from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import file_digest, framed_dir_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import (
    AttuneError,
    IndexFormatError,
    InvalidArguments,
    InvalidPackStructure,
)
from ansible_collections.attune.packs.plugins.module_utils._base._fs import atomic_write, chown_like
from ansible_collections.attune.packs.plugins.module_utils._registry._index import (
    CONTENT_SECTIONS, INDEX_FORMAT_VERSION, decode_index, file_urls_as_https, validate_index)
from ansible_collections.attune.packs.plugins.module_utils._registry._version import REF_PATTERN, VERSION_PATTERN, Version

COMMIT_SHA = re.compile(r"^[0-9a-f]{40}\Z")
SHA256 = re.compile(r"^sha256:[0-9a-f]{64}\Z")
EPOCH = "1970-01-01T00:00:00Z"
# builder (build_index.py build_entry): the order keys are written in
ENTRY_KEY_ORDER = ("ref", "label", "description", "version", "author", "license", "keywords", "runtime_deps", "install_sources",
                   "contents", "meta", "repository", "email", "homepage", "use_case", "dependencies")
INDEX_KEY_ORDER = ("registry_name", "registry_url", "version", "last_updated", "packs")
MAX_ERRORS = 20


class PublishError(AttuneError):
    """A pack or index cannot be published as asked (the message names the pack, the field or the file)."""

    kind = "publish_error"


def _yaml():
    from ansible_collections.attune.packs.plugins.module_utils._base._lazy import YAML  # pylint: disable=import-outside-toplevel

    module = YAML.load()
    if module is None:
        raise PublishError("the PyYAML Python library is required to read pack.yaml")
    return module


# -- pack.yaml ---------------------------------------------------------------------------------------------

def _load_yaml(path, what):
    yaml = _yaml()
    try:
        with open(path, "rb") as handle:
            value = yaml.safe_load(handle.read().decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise InvalidPackStructure("unable to parse %s: %s" % (what, " ".join(str(exc).split())))
    except (IOError, OSError) as exc:
        raise InvalidPackStructure("cannot read %s: %s" % (what, exc.strerror or exc))
    if not isinstance(value, dict):
        raise InvalidPackStructure("%s must contain a YAML object" % what)
    return value


def _scalar_string(value, field):
    """builder ``scalar_string``: strings, or finite numbers rendered as JSON; never booleans or null."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (isinstance(value, float) and not math.isfinite(value)):
        raise InvalidPackStructure("pack.yaml %s values must be strings or finite numbers" % field)
    return json.dumps(value, allow_nan=False)


def _strings(value, field):
    """builder ``strings``: a list of scalars, rendered, de-duplicated and sorted."""
    if not isinstance(value, list):
        raise InvalidPackStructure("pack.yaml %s must be an array" % field)
    return sorted(set(_scalar_string(item, field) for item in value))


def _required_string(value, field):
    if not isinstance(value, str):
        raise InvalidPackStructure("pack.yaml %s must be a string" % field)
    return value


def _preferred_string(manifest, field, metadata, metadata_field):
    if field in manifest:
        return _required_string(manifest[field], field)
    if metadata_field in metadata:
        return _required_string(metadata[metadata_field], "meta." + metadata_field)
    return None


def _keywords(manifest, metadata):
    for source, field, prefix in ((manifest, "tags", ""), (manifest, "keywords", ""), (metadata, "keywords", "meta.")):
        if field in source:
            return _strings(source[field], prefix + field)
    return []


def _normalize_meta(value):
    if not isinstance(value, dict):
        raise InvalidPackStructure("pack.yaml meta must be an object")
    if any(not isinstance(key, str) for key in value):
        raise InvalidPackStructure("pack.yaml meta keys must be strings")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidPackStructure("pack.yaml meta must be JSON-compatible: %s" % exc)
    tested = value.get("tested_attune_versions")
    if tested is not None:
        if not isinstance(tested, list) or any(not isinstance(item, str) for item in tested):
            raise InvalidPackStructure("pack.yaml meta.tested_attune_versions must be an array of strings")
        if len(tested) != len(set(tested)):
            raise InvalidPackStructure("pack.yaml meta.tested_attune_versions values must be unique")
    return dict(value)


def _nonempty_string(metadata, fields, context):
    for field in fields:
        if field not in metadata:
            continue
        value = metadata[field]
        if not isinstance(value, str):
            raise InvalidPackStructure("%s %s must be a string" % (context, field))
        if value:
            return value
    return None


def _inline_components(manifest, kind):
    if kind not in manifest:
        return []
    components = manifest[kind]
    if not isinstance(components, dict):
        raise InvalidPackStructure("pack.yaml %s must be an object" % kind)
    summaries = []
    for name, metadata in components.items():
        if not isinstance(name, str):
            raise InvalidPackStructure("pack.yaml %s component names must be strings" % kind)
        if not isinstance(metadata, dict):
            raise InvalidPackStructure("pack.yaml %s.%s must be an object" % (kind, name))
        _nonempty_string(metadata, ("workflow_file",), "%s.%s" % (kind, name))
        description = _nonempty_string(metadata, ("description", "label"), "%s.%s" % (kind, name)) or ""
        summaries.append({"name": name, "description": description})
    return sorted(summaries, key=lambda item: item["name"])


def _component_files(root, kind):
    """Top-level ``*.yaml``/``*.yml`` regular files of ``root/kind`` (not nested), sorted by name."""
    directory = os.path.join(root, kind)
    try:
        info = os.lstat(directory)
    except FileNotFoundError:
        return []
    if not stat.S_ISDIR(info.st_mode):
        raise InvalidPackStructure("%s is not a directory" % kind)
    with os.scandir(directory) as entries:
        names = [entry.name for entry in entries if entry.name.endswith((".yaml", ".yml")) and entry.is_file(follow_symlinks=False)]
    return sorted(names)


def inventory_components(root, pack_ref, manifest):
    """``contents`` of the pack at ``root`` (builder ``inventory_components``; CLI ``filesystem_contents``)."""
    contents = dict((kind, []) for kind in CONTENT_SECTIONS)
    for kind in CONTENT_SECTIONS:
        names = _component_files(root, kind)
        if not names:
            contents[kind].extend(_inline_components(manifest, kind))
            continue
        for name in names:
            rel = "%s/%s" % (kind, name)
            context = "component " + rel
            metadata = _load_yaml(os.path.join(root, kind, name), rel)
            target = kind
            if kind == "actions" and _nonempty_string(metadata, ("workflow_file",), context):
                target = "workflows"
            component = _nonempty_string(metadata, ("ref", "name"), context) or os.path.splitext(name)[0]
            if component.startswith(pack_ref + "."):
                component = component[len(pack_ref) + 1:]
            description = _nonempty_string(metadata, ("description", "label"), context) or ""
            contents[target].append({"name": component, "description": description})
    for values in contents.values():
        values.sort(key=lambda item: item["name"])
    return contents


def _normalize_dependencies(value):
    if isinstance(value, list):
        return {"packs": _strings(value, "dependencies")}
    if not isinstance(value, dict):
        raise InvalidPackStructure("pack.yaml dependencies must be an array or object")
    result = {}
    for field in ("attune_version", "python_version", "nodejs_version"):
        if field in value:
            result[field] = _scalar_string(value[field], "dependencies." + field)
    result["packs"] = _strings(value.get("packs", []), "dependencies.packs")
    return result


# -- URLs and checksums --------------------------------------------------------------------------------------

def check_source_url(url, field, allow_file=False):
    """An index URL as both validators want it: https, a host, no credentials, query, fragment or whitespace.

    ``allow_file``: also a ``file:///absolute/path`` URL (no host, no query or fragment), for an index read by this
    collection on the controller only (a mirror with a file:// base_url); Attune refuses it in an index.
    """
    from urllib.parse import urlsplit  # pylint: disable=import-outside-toplevel

    if not isinstance(url, str) or not url:
        raise PublishError("%s must be a non-empty https:// URL" % field)
    if url.strip() != url or re.search(r"\s", url):
        raise PublishError("%s must not contain whitespace" % field)
    try:
        parts = urlsplit(url)
        parts.port  # pylint: disable=pointless-statement
    except ValueError:
        raise PublishError("%s %s is not a valid URL" % (field, redact_url(url)))
    if allow_file and parts.scheme.lower() == "file":
        if parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
            raise PublishError("%s %s must be file:///absolute/path (no host)" % (field, redact_url(url)))
        if parts.query or parts.fragment or "?" in url or "#" in url:
            raise PublishError("%s %s must not carry a query string or fragment" % (field, redact_url(url)))
        return url
    if parts.scheme.lower() != "https":
        raise PublishError("%s %s must use https:// (Attune refuses other schemes in an index)" % (field, redact_url(url)))
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise PublishError("%s %s must not carry credentials (Attune sends no credentials for sources; "
                           "use a host reachable without them)" % (field, redact_url(url)))
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise PublishError("%s %s must not carry a query string or fragment" % (field, redact_url(url)))
    if not parts.hostname:
        raise PublishError("%s %s has no host" % (field, redact_url(url)))
    return url


def check_sha256(value, field):
    if not isinstance(value, str) or not SHA256.match(value):
        raise PublishError("%s must be 'sha256:' followed by 64 lowercase hex digits (Attune accepts only sha256 in an index)" % field)
    return value


# -- one pack -> one entry -----------------------------------------------------------------------------------

def build_entry(pack_dir, git_url=None, git_ref=None, archive_url=None, archive_checksum=None, archive_path=None,
                allow_branch=False, defaults=None):
    """The index entry of the pack tree ``pack_dir`` (its root holds pack.yaml) and its install sources.

    Returns ``(entry, tree_checksum)``; ``tree_checksum`` is ``sha256:`` + the framed directory checksum.
    """
    defaults = defaults or {}
    pack_yaml = os.path.join(pack_dir, "pack.yaml")
    try:
        info = os.lstat(pack_yaml)
    except OSError:
        raise InvalidPackStructure("pack.yaml not found in directory %s" % pack_dir)
    if not stat.S_ISREG(info.st_mode):
        raise InvalidPackStructure("%s is not a regular file" % pack_yaml)
    manifest = _load_yaml(pack_yaml, "pack.yaml")
    metadata = _normalize_meta(manifest["meta"]) if "meta" in manifest else {}
    for field in ("ref", "version"):
        if field not in manifest:
            raise InvalidPackStructure("pack.yaml must declare %s (missing)" % field)
    pack_ref = _required_string(manifest["ref"], "ref")
    version = _required_string(manifest["version"], "version")
    if not REF_PATTERN.match(pack_ref):
        raise InvalidPackStructure("pack.yaml ref %r must match ^[a-z][a-z0-9_-]*$" % pack_ref)
    if not VERSION_PATTERN.match(version):
        raise InvalidPackStructure("pack.yaml version %r is not a semantic version MAJOR.MINOR.PATCH[-pre][+build]" % version, pack=pack_ref)
    try:
        return _build_entry(pack_dir, pack_ref, version, manifest, metadata, git_url, git_ref, archive_url, archive_checksum,
                            archive_path, allow_branch, defaults)
    except AttuneError as exc:
        if exc.pack is None:
            exc.pack = pack_ref
            exc.args = (exc.format(),)
        raise


def _build_entry(pack_dir, pack_ref, version, manifest, metadata, git_url, git_ref, archive_url, archive_checksum, archive_path,
                 allow_branch, defaults):
    tree_checksum = "sha256:" + framed_dir_checksum(pack_dir)
    sources = []
    if git_url is not None:
        check_source_url(git_url, "git_url")
        if not git_ref:
            raise PublishError("git_ref is required with git_url (a 40-hex commit)")
        if not COMMIT_SHA.match(git_ref):
            if not allow_branch:
                raise PublishError("git_ref %r is not a lowercase 40-hex commit: production indices pin the commit (a branch or "
                                   "tag moves); resolve it first, or set allow_branch_refs for a development index" % git_ref)
            from ansible_collections.attune.packs.plugins.module_utils._pack._git import check_git_version  # pylint: disable=import-outside-toplevel

            check_git_version(git_ref)
        sources.append({"type": "git", "url": git_url, "ref": git_ref, "checksum": tree_checksum})
    elif git_ref is not None:
        raise PublishError("git_ref requires git_url")
    if archive_path is not None or archive_checksum is not None:
        if archive_url is None:
            raise PublishError("archive_path and archive_checksum require archive_url (the URL the archive is served from)")
    if archive_url is not None:
        check_source_url(archive_url, "archive_url")
        from ansible_collections.attune.packs.plugins.module_utils._pack._extract import archive_format_from_url  # pylint: disable=import-outside-toplevel

        if archive_format_from_url(archive_url) is None:
            raise PublishError("archive_url %s does not name an archive Attune installs (.zip, .tar.gz, .tgz, .gz, .tar, or a "
                               "code host's .../tar.gz/<commit>)" % redact_url(archive_url))
        digest = None
        if archive_path is not None:
            digest = "sha256:" + file_digest(archive_path, "sha256")
        if archive_checksum is not None:
            check_sha256(archive_checksum, "archive_checksum")
            if digest is not None and digest != archive_checksum:
                raise PublishError("archive_checksum %s does not match archive_path %s (%s)" % (archive_checksum, archive_path, digest))
            digest = archive_checksum
        if digest is None:
            raise PublishError("archive_url needs archive_path (the file, checksummed here) or archive_checksum (sha256 of the exact "
                               "bytes served)")
        sources.append({"type": "archive", "url": archive_url, "checksum": digest})
    if not sources:
        raise PublishError("at least one install source is required: give git_url (with git_ref) or archive_url")

    repository = defaults.get("repository")
    if repository is None and git_url is not None:
        repository = git_url[:-4] if git_url.endswith(".git") else git_url
    if repository is None:
        repository = _preferred_string(manifest, "repository", metadata, "repository_url")
    license_id = _preferred_string(manifest, "license", metadata, "license")
    if license_id is None:
        license_id = defaults.get("license") or "NOASSERTION"
    if "author" in manifest:
        author = _required_string(manifest["author"], "author")
    else:
        author = defaults.get("author") or _owner_of(repository) or "Unknown"
    if "label" in manifest:
        label = _required_string(manifest["label"], "label")
    else:
        label = _required_string(manifest.get("name", pack_ref), "name")
    if "description" in manifest:
        description = _required_string(manifest["description"], "description")
    else:
        description = str(defaults.get("description") or "")
    # the builder's order: pack.yaml meta, category, default_branch, commit, stars, repository_id
    extra_meta = dict(defaults.get("meta") or {})
    entry_meta = dict(metadata)
    entry_meta.setdefault("category", "uncategorized")
    if "default_branch" in extra_meta:
        entry_meta["default_branch"] = extra_meta.pop("default_branch")
    if git_url is not None and COMMIT_SHA.match(git_ref):
        entry_meta["commit"] = git_ref
    entry_meta.update(extra_meta)
    entry = {
        "ref": pack_ref,
        "label": label,
        "description": description,
        "version": version,
        "author": author,
        "license": str(license_id),
        "keywords": _keywords(manifest, metadata),
        "runtime_deps": _strings(manifest.get("runtime_deps", []), "runtime_deps"),
        "install_sources": sources,
        "contents": inventory_components(pack_dir, pack_ref, manifest),
        "meta": _normalize_meta(entry_meta),
    }
    if repository is not None:
        entry["repository"] = repository
    if "email" in manifest:
        entry["email"] = _required_string(manifest["email"], "email")
    homepage = _preferred_string(manifest, "homepage", metadata, "documentation_url")
    if homepage is not None:
        entry["homepage"] = homepage
    use_case = _preferred_string(manifest, "use_case", metadata, "use_case")
    if use_case is not None:
        entry["use_case"] = use_case
    if "dependencies" in manifest:
        entry["dependencies"] = _normalize_dependencies(manifest["dependencies"])
    problems = entry_problems(entry, allow_branch=allow_branch)
    if problems:
        raise PublishError("the entry would be invalid: " + "; ".join(problems))
    return entry, tree_checksum


def _owner_of(url):
    match = re.match(r"^https://[^/]+/([^/]+)/[^/]+/?\Z", url or "")
    return match.group(1) if match else None


def ordered_entry(entry):
    """``entry`` with its keys in the builder's order (unknown keys after, sorted)."""
    result = dict((key, entry[key]) for key in ENTRY_KEY_ORDER if key in entry)
    for key in sorted(set(entry) - set(ENTRY_KEY_ORDER)):
        result[key] = entry[key]
    return result


# -- validation (Attune's validate_pack_index + the index repository's validate_policy) -----------------------

_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z")


def parse_timestamp(value):
    """An RFC 3339 timestamp as an aware datetime; ValueError when it is not one (Python 3.8: no fromisoformat 'Z')."""
    match = _TIMESTAMP.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("not an RFC 3339 timestamp: %r" % (value,))
    year, month, day, hour, minute, second, fraction, zulu, sign, off_h, off_m = match.groups()
    offset = datetime.timedelta(0)
    if not zulu:
        offset = datetime.timedelta(hours=int(off_h), minutes=int(off_m)) * (1 if sign == "+" else -1)
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    return datetime.datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro,
                             tzinfo=datetime.timezone(offset))


def _rfc3339(value):
    try:
        parse_timestamp(value)
    except ValueError:
        return False
    return True


def _url_problem(value, field, allow_file=False):
    try:
        check_source_url(value, field, allow_file)
    except PublishError as exc:
        return exc.message
    return None


def entry_problems(pack, allow_branch=False, allow_file=False):
    """What Attune's ``validate_pack_index`` and the custom ``validate_policy`` refuse in one entry (messages name the field).

    ``allow_file``: install sources may be file:// URLs (see :func:`check_source_url`)."""
    problems = []
    ref = pack.get("ref")
    if not isinstance(ref, str) or not REF_PATTERN.match(ref):
        problems.append("ref: must match ^[a-z][a-z0-9_-]*$ (got %r)" % (ref,))
    for field in ("label", "author", "license"):
        if not isinstance(pack.get(field), str) or not pack.get(field).strip():
            problems.append("%s: must not be empty" % field)
    version = pack.get("version")
    if not isinstance(version, str) or not VERSION_PATTERN.match(version):
        problems.append("version: %r is not semantic versioning" % (version,))
    homepage = pack.get("homepage")
    if homepage is not None and (not isinstance(homepage, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+\Z", homepage)):
        problems.append("homepage: must be a valid URL")
    repository = pack.get("repository")
    if repository is not None:
        problem = _url_problem(repository, "repository") if isinstance(repository, str) else "repository: must be a string"
        if problem:
            problems.append(problem)
    for field in ("keywords", "runtime_deps"):
        values = pack.get(field)
        if isinstance(values, list) and len(values) != len(set(json.dumps(v) for v in values)):
            problems.append("%s: values must be unique" % field)
    meta = pack.get("meta")
    if isinstance(meta, dict) and isinstance(meta.get("tested_attune_versions"), list):
        tested = meta["tested_attune_versions"]
        if len(tested) != len(set(json.dumps(v) for v in tested)):
            problems.append("meta.tested_attune_versions: values must be unique")
    sources = pack.get("install_sources")
    if not isinstance(sources, list) or not sources:
        problems.append("install_sources: at least one install source is required")
        sources = []
    for position, source in enumerate(sources):
        where = "install_sources[%d]" % position
        if not isinstance(source, dict):
            problems.append(where + ": must be an object")
            continue
        problem = _url_problem(source.get("url"), where + ".url", allow_file)
        if problem:
            problems.append(problem)
        if not isinstance(source.get("checksum"), str) or not SHA256.match(source.get("checksum")):
            problems.append(where + ".checksum: must be sha256:<64 lowercase hex characters>")
        if source.get("type") == "git":
            git_ref = source.get("ref")
            if (not isinstance(git_ref, str) or not git_ref.strip() or git_ref.strip() != git_ref or git_ref.startswith("-")
                    or any(ord(ch) < 32 or ord(ch) == 127 for ch in git_ref)):
                problems.append(where + ".ref: Git sources require a ref")
            elif not allow_branch and not COMMIT_SHA.match(git_ref):
                problems.append(where + ".ref: %r is not an immutable 40-character lowercase commit SHA" % git_ref)
    contents = pack.get("contents")
    if isinstance(contents, dict):
        for kind in CONTENT_SECTIONS:
            names = set()
            for component in contents.get(kind) or []:
                name = component.get("name") if isinstance(component, dict) else None
                if not isinstance(name, str) or not name.strip() or name in names:
                    problems.append("contents.%s: component names must be non-empty and unique (%r)" % (kind, name))
                names.add(name)
    return problems


def validate_publishable(index, allow_branch=False, label="index", allow_file=False):
    """Raise :class:`IndexFormatError` unless ``index`` passes the v1.0 format in strict mode and the publishing rules.

    Every error names the entry (position and ref) and the field.  ``allow_file``: ``registry_url`` and install
    sources may be file:// URLs (an index read by this collection only, see :func:`check_source_url`).
    """
    validate_index(file_urls_as_https(index)[0] if allow_file else index, registry=label, strict=True)
    problems = []
    if not index["registry_name"].strip():
        problems.append("registry_name: must not be empty")
    problem = _url_problem(index["registry_url"], "registry_url", allow_file)
    if problem:
        problems.append(problem)
    if not _rfc3339(index["last_updated"]):
        problems.append("last_updated: must be an RFC 3339 timestamp")
    previous = None
    for position, pack in enumerate(index["packs"]):
        ref = pack.get("ref")
        where = "packs[%d] (pack %r)" % (position, ref)
        if previous is not None and isinstance(ref, str) and previous >= ref:
            problems.append("%s: ref: pack refs must be unique and sorted (%r comes after %r)" % (where, ref, previous))
        previous = ref if isinstance(ref, str) else previous
        problems.extend("%s: %s" % (where, problem) for problem in entry_problems(pack, allow_branch, allow_file))
        if len(problems) >= MAX_ERRORS:
            break
    if problems:
        more = " (further errors not shown)" if len(problems) >= MAX_ERRORS else ""
        raise IndexFormatError("invalid index: " + "; ".join(problems[:MAX_ERRORS]) + more, registry=label)
    return index


# -- the index file ------------------------------------------------------------------------------------------

def now_rfc3339():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def dump_index(index):
    """The text of an index as the builder writes it: 2-space indent, ASCII only, builder key order, final newline."""
    document = dict((key, index[key]) for key in INDEX_KEY_ORDER if key in index)
    document["packs"] = [ordered_entry(pack) for pack in index["packs"]]
    return json.dumps(document, indent=2, ensure_ascii=True, allow_nan=False) + "\n"


def read_index_file(path, missing_ok=True):
    """``(data, text)`` of an index file, or ``(None, None)`` when it is missing and ``missing_ok``."""
    try:
        with open(path, "rb") as handle:
            body = handle.read()
    except FileNotFoundError:
        if missing_ok:
            return None, None
        raise PublishError("index file %s does not exist" % path)
    except (IOError, OSError) as exc:
        raise PublishError("cannot read index file %s: %s" % (path, exc.strerror or exc))
    data = decode_index(body, registry=path)
    return data, body.decode("utf-8")


def write_text(path, text, mode=None):
    """Replace ``path`` atomically with ``text``; an existing file keeps its mode and owner, a new one gets ``mode``
    (None: 0644)."""
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        raise PublishError("cannot write %s: directory %s does not exist" % (path, directory))
    try:
        current = os.stat(path)
    except FileNotFoundError:
        current = None
    except OSError as exc:
        raise PublishError("cannot write %s: %s" % (path, exc.strerror or exc))
    if current is not None and not stat.S_ISREG(current.st_mode):
        raise PublishError("cannot write %s: it exists and is not a regular file" % path)
    final_mode = stat.S_IMODE(current.st_mode) if current is not None else (0o644 if mode is None else mode)
    try:
        with atomic_write(path, mode=final_mode, prepare=(lambda tmp: chown_like(tmp, current)) if current is not None else None) as handle:
            handle.write(text.encode("utf-8"))
    except (IOError, OSError) as exc:
        raise PublishError("cannot write %s: %s" % (path, exc.strerror or exc))


def merge_indices(inputs, allow_branch=False):
    """Attune's ``index-merge``: ``inputs`` is ``[(label, index)]``, each validated first; the highest semver wins per
    ref (an equal version keeps the first); the registry name and URL come from the first input and ``last_updated``
    is the latest.  Returns ``(registry_name, registry_url, last_updated, packs, duplicates)``."""
    if not inputs:
        raise InvalidArguments("merge needs at least one input index")
    chosen = {}
    order = []
    duplicates = 0
    latest = None
    identity = None
    for label, index in inputs:
        validate_publishable(index, allow_branch=allow_branch, label=label)
        stamp = parse_timestamp(index["last_updated"])
        if identity is None:
            identity = (index["registry_name"], index["registry_url"])
        if latest is None or stamp > latest[0]:
            latest = (stamp, index["last_updated"])
        for pack in index["packs"]:
            ref = pack["ref"]
            version = Version.parse(pack["version"])
            if ref in chosen:
                duplicates += 1
                if version > chosen[ref][0]:
                    chosen[ref] = (version, pack)
            else:
                chosen[ref] = (version, pack)
                order.append(ref)
    packs = [copy.deepcopy(chosen[ref][1]) for ref in sorted(chosen)]
    return identity[0], identity[1], latest[1], packs, duplicates


def collapse_duplicates(packs):
    """One entry per ref (the highest version; equal versions keep the first): an index written by hand with several
    entries of one ref (a version history the collection reads) is published as Attune installs it.  Returns
    ``(packs, collapsed_refs)``."""
    chosen = {}
    collapsed = []
    for pack in packs:
        ref = pack.get("ref")
        version = None
        try:
            version = Version.parse(pack.get("version"))
        except AttuneError:
            pass
        if ref in chosen:
            if ref not in collapsed:
                collapsed.append(ref)
            if version is not None and (chosen[ref][0] is None or version > chosen[ref][0]):
                chosen[ref] = (version, pack)
        else:
            chosen[ref] = (version, pack)
    return [chosen[ref][1] for ref in chosen], collapsed


class IndexChange(object):
    """The outcome of :func:`update_index`: the new index, its text, and what changed."""

    def __init__(self, index, text, old_text, added, replaced, removed, unchanged, collapsed, duplicates):
        self.index = index
        self.text = text
        self.old_text = old_text
        self.added = added
        self.replaced = replaced
        self.removed = removed
        self.unchanged = unchanged
        self.collapsed = collapsed
        self.duplicates = duplicates

    @property
    def changed(self):
        return self.text != self.old_text


def _comparable(index):
    return json.dumps({"registry_name": index.get("registry_name"), "registry_url": index.get("registry_url"),
                       "version": index.get("version"), "packs": index.get("packs")}, sort_keys=True)


def update_index(current, registry_name=None, registry_url=None, entries=(), remove=(), merged=None, replace=True,
                 allow_branch=False, clock=now_rfc3339, label="index", allow_file=False):
    """Compute the new index.

    ``current``: the decoded existing index or None.  ``merged``: the result of :func:`merge_indices` (its packs
    replace the current ones, its identity is used unless ``registry_name``/``registry_url`` are given).
    ``entries`` are added or replaced by ref; ``remove`` refs are dropped.  ``last_updated`` changes only when the
    content changes.  ``allow_file``: file:// URLs are accepted (a mirror read by this collection only).
    """
    old_text = dump_index(current) if current is not None and _is_index_shaped(current) else None
    collapsed = []
    if merged is not None:
        name, url, stamp, packs, duplicates = merged
        base_stamp = stamp
    else:
        duplicates = 0
        if current is not None:
            if not _is_index_shaped(current):
                raise PublishError("index file %s is not an index (a JSON object with registry_name, registry_url, version, "
                                   "last_updated and packs)" % label)
            packs, collapsed = collapse_duplicates(copy.deepcopy(current["packs"]))
            name, url = current.get("registry_name"), current.get("registry_url")
        else:
            packs, name, url = [], None, None
        base_stamp = None
    name = registry_name if registry_name is not None else name
    url = registry_url if registry_url is not None else url
    if not name or not url:
        raise InvalidArguments("registry_name and registry_url are required to create the index %s" % label)
    by_ref = dict((pack.get("ref"), pack) for pack in packs)
    added, replaced, unchanged = [], [], []
    seen = set()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PublishError("entries[%d]: must be an index entry (a mapping)" % position)
        ref = entry.get("ref")
        if ref in seen:
            raise PublishError("entries[%d] (pack %r): ref is given twice in entries (an index lists one entry per ref)" % (position, ref))
        seen.add(ref)
        problems = entry_problems(entry, allow_branch, allow_file)
        if problems:
            raise PublishError("entries[%d] (pack %r): %s" % (position, ref, "; ".join(problems)), pack=ref if isinstance(ref, str) else None)
        entry = ordered_entry(copy.deepcopy(entry))
        if ref in by_ref:
            if by_ref[ref] == entry:
                unchanged.append(ref)
                continue
            if not replace:
                raise PublishError("entries[%d]: pack %r already exists in the index with other content; set replace: true to "
                                   "replace it" % (position, ref), pack=ref)
            replaced.append(ref)
        else:
            added.append(ref)
        by_ref[ref] = entry
    removed = []
    for ref in remove or ():
        if ref in seen:
            raise InvalidArguments("pack %r is both in entries and in remove" % ref, pack=ref)
        if ref in by_ref:
            del by_ref[ref]
            removed.append(ref)
    new_packs = [ordered_entry(by_ref[ref]) for ref in sorted(by_ref, key=lambda r: r if isinstance(r, str) else "")]
    candidate = {"registry_name": name, "registry_url": url, "version": INDEX_FORMAT_VERSION, "last_updated": EPOCH,
                 "packs": new_packs}
    if current is not None and _is_index_shaped(current) and _comparable(candidate) == _comparable(current) \
            and current.get("version") == INDEX_FORMAT_VERSION:
        candidate["last_updated"] = current["last_updated"]
    elif merged is not None and not (added or replaced or removed):
        candidate["last_updated"] = base_stamp
    else:
        candidate["last_updated"] = clock()
    validate_publishable(candidate, allow_branch=allow_branch, label=label, allow_file=allow_file)
    text = dump_index(candidate)
    return IndexChange(candidate, text, old_text, sorted(added), sorted(replaced), sorted(removed), sorted(unchanged),
                       collapsed, duplicates)


def _is_index_shaped(data):
    return isinstance(data, dict) and isinstance(data.get("packs"), list) and all(isinstance(p, dict) for p in data["packs"])


# -- the pack tree of an archive, for comparing it with a checkout --------------------------------------------

def archive_tree_checksum(archive_path, workdir, pack=None):
    """``sha256:`` framed checksum of the pack root inside ``archive_path`` (extracted with the installer's rules into
    the new directory ``workdir``) -- the tree Attune installs from that archive."""
    from ansible_collections.attune.packs.plugins.module_utils._pack._extract import extract_archive  # pylint: disable=import-outside-toplevel
    from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import find_pack_root  # pylint: disable=import-outside-toplevel

    extract_archive(archive_path, workdir, pack=pack)
    root = find_pack_root(workdir, pack=pack, what="the archive %s" % os.path.basename(archive_path))
    return root, "sha256:" + framed_dir_checksum(root)


# -- the attune_pack_index_entry task ---------------------------------------------------------------------------

def run_index_entry(params):
    """The ``attune_pack_index_entry`` task on ``params`` (the module's parameters): its result; raises core errors.

    The entry is built from the pack directory ``path`` (its pack root), else from the pack inside ``archive_path``.
    With both (and ``verify_archive_tree``), the archive's pack tree must be the directory's tree.  Nothing is written
    (the caller's failed result has ``changed`` false).
    """
    from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import find_pack_root  # pylint: disable=import-outside-toplevel

    defaults = dict((key, value) for key, value in (params["defaults"] or {}).items() if value is not None)
    scratch = tempfile.mkdtemp(prefix="attune-entry-")
    try:
        pack_dir = None
        if params["path"]:
            if not os.path.isdir(params["path"]):
                raise PublishError("path %s is not a directory" % params["path"])
            pack_dir = find_pack_root(params["path"], what="path %s" % params["path"])
            root = pack_dir
        else:
            root, _tree = archive_tree_checksum(params["archive_path"], os.path.join(scratch, "archive"))
        entry, tree_checksum = build_entry(
            root, git_url=params["git_url"], git_ref=params["git_ref"], archive_url=params["archive_url"],
            archive_checksum=params["archive_checksum"], archive_path=params["archive_path"],
            allow_branch=params["allow_branch_refs"], defaults=defaults)
        if pack_dir and params["archive_path"] and params["verify_archive_tree"]:
            _root, archive_tree = archive_tree_checksum(params["archive_path"], os.path.join(scratch, "archive"), pack=entry["ref"])
            if archive_tree != tree_checksum:
                raise PublishError(
                    "the pack inside archive_path %s (%s) is not the tree at path %s (%s): the entry's git and archive "
                    "sources would install different packs" % (params["archive_path"], archive_tree, pack_dir, tree_checksum),
                    pack=entry["ref"])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return dict(changed=False, entry=entry, ref=entry["ref"], version=entry["version"], tree_checksum=tree_checksum,
                pack_dir=pack_dir)
