# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the v1.0 index model and its validation (may change without notice).

``validate_index(data, registry='name', strict=False)`` checks a decoded index
against the v1.0 format (attune-format.md section 1) with voluptuous and
returns it.  Errors name the registry and the path of the bad field, e.g.
``registry corp: invalid index format: packs[3].install_sources[0].checksum:
…``.  Unknown keys are tolerated unless ``strict`` (for registry operators).
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import check_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ChecksumError, IndexFormatError
from ansible_collections.attune.packs.plugins.module_utils._base._lazy import VOLUPTUOUS
from ansible_collections.attune.packs.plugins.module_utils._registry._version import INDEX_VERSION_PATTERN, REF_PATTERN

# voluptuous is imported, and the schemas built, on the first validation (_schemas()): an index served from the
# cache is already validated, so a warm search or resolution never pays for them.
vol = None
_SCHEMAS = None

INDEX_FORMAT_VERSION = "1.0"
CONTENT_SECTIONS = ("actions", "sensors", "triggers", "rules", "workflows")
MAX_REPORTED_ERRORS = 5
_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})\Z")
# Attune decodes an index with serde_json into `PackIndex` (crates/common/src/pack_registry/mod.rs @126b167, a
# serde `Deserialize` struct; fetched by client.rs `RegistryClient`).  serde_json's parser refuses nesting deeper than 128 arrays/objects
# (serde_json::Deserializer `remaining_depth`, 128) and lone UTF-16 surrogate escapes ("lone leading surrogate in hex
# escape"); it has no NaN/Infinity literals.  decode_index() refuses the same documents, as "invalid index format" for
# that registry, instead of letting Python's recursion limit or a later UTF-8 encode fail for every registry.
MAX_JSON_DEPTH = 128
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
# semver (the crate Attune compares versions with) holds MAJOR, MINOR and PATCH as u64
MAX_VERSION_COMPONENT = U64_MAX = 2 ** 64 - 1


def _too_deep(text, limit=MAX_JSON_DEPTH):
    """True when the JSON text nests arrays/objects deeper than ``limit`` (strings ignored)."""
    if "\\" in text:
        outside = _JSON_STRING.sub("", text)
    else:  # no escapes: every other '"'-separated piece is inside a string (much faster than the regex)
        outside = "".join(text.split('"')[::2])
    brackets = _NOT_BRACKET.sub("", outside)
    for _unused in range(limit):
        if not brackets:
            return False
        shorter = _EMPTY_PAIR.sub("", brackets)
        if shorter == brackets:
            return False  # unbalanced: json.loads reports it
        brackets = shorter
    return bool(brackets)


def _refuse_constant(name):
    raise ValueError("%s is not JSON" % name)


def decode_index(body, registry=None):
    """Decode an index body (bytes) into Python data; IndexFormatError naming ``registry`` when it is not JSON Attune reads."""
    try:
        text = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise IndexFormatError("invalid index format: the body is not UTF-8 encoded JSON", registry=registry)
    if text.startswith("\ufeff"):
        raise IndexFormatError("invalid index format: the body starts with a byte order mark (not JSON)", registry=registry)
    if _too_deep(text):
        raise IndexFormatError("invalid index format: JSON nested deeper than %d levels" % MAX_JSON_DEPTH, registry=registry)
    try:
        data = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:  # pragma: no cover - _too_deep() refuses these first
        raise IndexFormatError("invalid index format: JSON nested too deeply", registry=registry)
    except ValueError as exc:
        raise IndexFormatError("invalid index format: malformed JSON (%s)" % exc, registry=registry)
    if _SURROGATE_ESCAPE.search(text):
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise IndexFormatError("invalid index format: a string holds a lone UTF-16 surrogate escape (\\ud800-\\udfff)",
                                   registry=registry)
    return data


def _schemas():
    """``{strict: (index schema, pack schema)}``, built on first use; None when voluptuous cannot be imported."""
    global vol, _SCHEMAS  # pylint: disable=global-statement
    if _SCHEMAS is None:
        vol = VOLUPTUOUS.load()
        if vol is not None:
            _SCHEMAS = _build_schemas()
    return _SCHEMAS


def _build_schemas():

    def text(min_length=0):
        def check(value):
            if not isinstance(value, str):
                raise vol.Invalid("expected a string")
            if len(value) < min_length:
                raise vol.Invalid("must not be empty")
            return value
        return check

    def pattern(regex, description):
        def check(value):
            if not isinstance(value, str) or not regex.match(value):
                raise vol.Invalid("expected %s, got %r" % (description, value if isinstance(value, str) else type(value).__name__))
            return value
        return check

    def url(value):
        try:
            return check_url(value, ("https",), "URL")
        except ValueError as exc:
            raise vol.Invalid(str(exc))

    def any_url(value):
        if not isinstance(value, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$", value):
            raise vol.Invalid("expected an absolute URI")
        return value

    def registry_checksum(value):
        try:
            parse_checksum(value, allowed=("sha256",))
        except ChecksumError as exc:
            raise vol.Invalid("%s (index checksums are 'sha256:' + 64 lowercase hex digits)" % exc.message)
        return value

    def version_numbers(value):
        # semver's MAJOR/MINOR/PATCH are u64 (see MAX_VERSION_COMPONENT)
        for number in re.split(r"[.+-]", value)[:3]:
            if len(number) > 20 or int(number) > MAX_VERSION_COMPONENT:
                raise vol.Invalid("version number %s... is larger than %d (MAJOR, MINOR and PATCH are 64-bit)"
                                  % (number[:20], MAX_VERSION_COMPONENT))
        return value

    def unique_strings(value):
        if not isinstance(value, list):
            raise vol.Invalid("expected a list of strings")
        seen = set()
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise vol.Invalid("expected a string", path=[position])
            if item in seen:
                raise vol.Invalid("duplicate item %r (items must be unique)" % item, path=[position])
            seen.add(item)
        return value

    def strings(value):
        if not isinstance(value, list):
            raise vol.Invalid("expected a list of strings")
        for position, item in enumerate(value):
            if not isinstance(item, str):
                raise vol.Invalid("expected a string", path=[position])
        return value

    def nullable(validator):
        def check(value):
            return None if value is None else validator(value)
        return check

    def u64(value):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= U64_MAX:
            raise vol.Invalid("expected an integer from 0 to %d" % U64_MAX)
        return value

    def obj(value):
        if not isinstance(value, dict):
            raise vol.Invalid("expected an object")
        return value

    def build(extra):
        def components(value):
            # hand-written for speed: an index has ~25 components per pack (10,000 packs: 250,000 of them)
            if not isinstance(value, list):
                raise vol.Invalid("expected a list of components")
            for position, item in enumerate(value):
                if not isinstance(item, dict):
                    raise vol.Invalid("expected an object", path=[position])
                name = item.get("name")
                if not isinstance(name, str) or not name:
                    raise vol.Invalid("required key missing" if name is None else "must be a non-empty string", path=[position, "name"])
                if not isinstance(item.get("description"), str):
                    raise vol.Invalid("required key missing" if "description" not in item else "expected a string",
                                      path=[position, "description"])
                if extra == vol.PREVENT_EXTRA and len(item) != 2:
                    unknown = sorted(set(item) - set(("name", "description")))[0]
                    raise vol.Invalid("extra keys not allowed", path=[position, unknown])
            return value

        contents = vol.Schema({vol.Required(section): components for section in CONTENT_SECTIONS}, extra=extra)
        # PackDependencies (mod.rs @126b167): Option<String> versions (null accepted), `packs: Vec<String>` with
        # #[serde(default)] (may be missing, never null), #[serde(deny_unknown_fields)] (refused in strict mode)
        dependencies = vol.Schema(
            {
                vol.Optional("attune_version"): nullable(text()),
                vol.Optional("python_version"): nullable(text()),
                vol.Optional("nodejs_version"): nullable(text()),
                vol.Optional("packs"): strings,
            },
            extra=extra,
        )
        # PackMeta (mod.rs @126b167): `downloads`/`stars: Option<u64>`, `tested_attune_versions: Vec<String>` with
        # #[serde(default)], everything else goes to the #[serde(flatten)] `extra` map: unknown keys are accepted even
        # in strict mode
        meta = vol.Schema(
            {
                vol.Optional("downloads"): nullable(u64),
                vol.Optional("stars"): nullable(u64),
                vol.Optional("tested_attune_versions"): strings,
            },
            extra=vol.ALLOW_EXTRA,
        )
        git_source = vol.Schema(
            {
                vol.Required("type"): "git",
                vol.Required("url"): url,
                vol.Required("ref"): text(1),
                vol.Required("checksum"): registry_checksum,
            },
            extra=extra,
        )
        archive_source = vol.Schema(
            {vol.Required("type"): "archive", vol.Required("url"): url, vol.Required("checksum"): registry_checksum},
            extra=extra,
        )

        def install_source(value):
            if not isinstance(value, dict):
                raise vol.Invalid("expected an object")
            kind = value.get("type")
            if kind == "git":
                return git_source(value)
            if kind == "archive":
                return archive_source(value)
            raise vol.Invalid("unknown install source type %r (expected 'git' or 'archive')" % (kind,), path=["type"])

        def sources(value):
            if not isinstance(value, list) or not value:
                raise vol.Invalid("expected a non-empty list of install sources")
            return [install_source_at(position, item) for position, item in enumerate(value)]

        def install_source_at(position, item):
            try:
                return install_source(item)
            except vol.MultipleInvalid as exc:
                raise vol.MultipleInvalid([_prefixed(error, [position]) for error in exc.errors])
            except vol.Invalid as exc:
                raise _prefixed(exc, [position])

        pack = vol.Schema(
            {
                vol.Required("ref"): pattern(REF_PATTERN, "a ref matching ^[a-z][a-z0-9_-]*$"),
                vol.Required("label"): text(1),
                vol.Required("description"): text(),
                # PackIndexEntry (mod.rs @126b167): the Option<...> fields (use_case, email, homepage, repository,
                # dependencies, meta) accept null; the others do not
                vol.Optional("use_case"): nullable(text()),
                vol.Required("version"): vol.All(pattern(INDEX_VERSION_PATTERN, "a semantic version MAJOR.MINOR.PATCH[-pre|+build]"),
                                                 version_numbers),
                vol.Required("author"): text(1),
                vol.Optional("email"): nullable(text()),
                vol.Optional("homepage"): nullable(any_url),
                vol.Optional("repository"): nullable(url),
                vol.Required("license"): text(1),
                vol.Required("keywords"): unique_strings,
                vol.Required("runtime_deps"): unique_strings,
                vol.Required("install_sources"): sources,
                vol.Required("contents"): contents,
                vol.Optional("dependencies"): nullable(dependencies),
                vol.Optional("meta"): nullable(vol.All(obj, meta)),
            },
            extra=extra,
        )
        top = vol.Schema(
            {
                vol.Required("registry_name"): text(1),
                vol.Required("registry_url"): url,
                vol.Required("version"): vol.All(text(1), _format_version),
                vol.Required("last_updated"): pattern(_RFC3339, "an RFC 3339 timestamp"),
                vol.Required("packs"): list,
            },
            extra=extra,
        )
        return top, pack

    def _format_version(value):
        if value != INDEX_FORMAT_VERSION:
            raise vol.Invalid("unsupported index format version %r (this collection reads %r)" % (value, INDEX_FORMAT_VERSION))
        return value

    return {False: build(vol.ALLOW_EXTRA), True: build(vol.PREVENT_EXTRA)}


def _prefixed(error, prefix):
    return type(error)(error.error_message if hasattr(error, "error_message") else str(error), path=list(prefix) + list(error.path))


def format_path(path):
    text = ""
    for item in path:
        if isinstance(item, int):
            text += "[%d]" % item
        else:
            name = str(getattr(item, "schema", item))
            text += ("." if text else "") + name
    return text or "(top level)"


def _describe(error, prefix=()):
    message = error.error_message if hasattr(error, "error_message") else str(error)
    if message == "extra keys not allowed":
        message = "unknown key (refused in strict mode)"
    elif message.startswith("required key not provided"):
        message = "required key missing"
    elif message.startswith("expected list") or message.startswith("expected dict"):
        message = message.replace("expected dict", "expected an object").replace("expected list", "expected a list")
    elif message.startswith("not a valid value"):
        message = "not a valid value"
    return "%s: %s" % (format_path(list(prefix) + list(error.path)), message)


def _errors_of(exc):
    return list(exc.errors) if isinstance(exc, vol.MultipleInvalid) else [exc]


FILE_URL_HOST = "https://file.invalid"


def file_url_path(url):
    """The absolute path of a ``file:///absolute/path`` URL; None for any other URL.

    ValueError for a file URL with a host, a relative path, a query or a fragment."""
    if not isinstance(url, str) or url[:7].lower() != "file://":
        return None
    path = url[7:]
    if not path.startswith("/") or path.startswith("//") or "?" in path or "#" in path or re.search(r"\s", path):
        raise ValueError("must be file:///absolute/path (no host, query, fragment or whitespace)")
    return path


def file_urls_as_https(index, local_root=None):
    """``(copy of index, problems)``: the file:// URLs of ``registry_url`` and of the archive sources read
    ``https://file.invalid/<path>``, for the format validator, which knows only https (as Attune's does).

    ``local_root``: each archive file must lie under this directory (the directory of a file:// registry's index),
    so a local index names only files beside it.  Only the dicts holding a file:// URL are copied."""
    problems = []

    def swap(value, where, root=None):
        try:
            path = file_url_path(value)
        except ValueError as exc:
            problems.append("%s: %s" % (where, exc))
            return value
        if path is None:
            return value
        if root is not None and not os.path.normpath(path).startswith(root.rstrip("/") + "/"):
            problems.append("%s: %s is outside %s, the directory of this file:// registry" % (where, path, root))
        return FILE_URL_HOST + path

    def is_file(value):
        return isinstance(value, str) and value[:7].lower() == "file://"

    if not isinstance(index, dict):
        return index, problems
    index = dict(index, registry_url=swap(index.get("registry_url"), "registry_url"))
    if not isinstance(index.get("packs"), list):
        return index, problems
    packs = []
    for position, pack in enumerate(index["packs"]):
        sources = pack.get("install_sources") if isinstance(pack, dict) else None
        if isinstance(sources, list) and any(isinstance(s, dict) and is_file(s.get("url")) for s in sources):
            copied = []
            for number, source in enumerate(sources):
                if isinstance(source, dict) and is_file(source.get("url")):
                    where = "packs[%d].install_sources[%d].url" % (position, number)
                    if source.get("type") != "archive":
                        problems.append("%s: file:// is only for archive sources (git sources are https)" % where)
                    source = dict(source, url=swap(source["url"], where, local_root))
                copied.append(source)
            pack = dict(pack, install_sources=copied)
        packs.append(pack)
    index["packs"] = packs
    return index, problems


def validate_index(data, registry=None, strict=False, local_root=None):
    """Validate a decoded index and return it (same object).

    Raises :class:`IndexFormatError` naming the registry, the field path and,
    where known, the pack ref.

    ``local_root``: the index was read from a ``file://`` registry in this directory; its ``registry_url`` and
    archive sources may then be ``file:///absolute/path`` URLs, archives under ``local_root`` only (a mirror
    built by attune_pack_mirror with a file:// base_url).  Attune itself accepts only https in an index: such an
    index is for this collection on the controller.  Never set for an index fetched over the network.
    """
    schemas = _schemas()
    if schemas is None:
        raise IndexFormatError("voluptuous is required to validate indices", registry=registry)
    top_schema, pack_schema = schemas[bool(strict)]
    if not isinstance(data, dict):
        raise IndexFormatError("invalid index format: the document must be a JSON object, not %s" % type(data).__name__, registry=registry)
    original = data
    problems = []
    if local_root is not None:
        data, problems = file_urls_as_https(data, local_root)
    try:
        top_schema(data)
    except vol.Invalid as exc:
        problems.extend(_describe(error) for error in _errors_of(exc))
    packs = data.get("packs")
    first_ref = None
    if isinstance(packs, list):
        for position, pack in enumerate(packs):
            if not isinstance(pack, dict):
                problems.append("packs[%d]: expected an object" % position)
            else:
                try:
                    pack_schema(pack)
                except vol.Invalid as exc:
                    ref = pack.get("ref") if isinstance(pack.get("ref"), str) else None
                    first_ref = first_ref or ref
                    for error in _errors_of(exc):
                        problems.append(_describe(error, ["packs", position]) + (" (pack %r)" % ref if ref else ""))
            if len(problems) >= MAX_REPORTED_ERRORS:
                break
    if problems:
        more = " (further errors not shown)" if len(problems) >= MAX_REPORTED_ERRORS else ""
        raise IndexFormatError("invalid index format: " + "; ".join(problems[:MAX_REPORTED_ERRORS]) + more, registry=registry)
    return original


def preferred_source(entry, prefer="git"):
    """The install source to use first (``prefer`` type if present, else the first one)."""
    sources = entry.get("install_sources") or []
    for source in sources:
        if source.get("type") == prefer:
            return source
    return sources[0] if sources else None


def fallback_source(entry, chosen):
    """Attune's fallback: the first archive source when git was chosen (None otherwise)."""
    if chosen is None or chosen.get("type") != "git":
        return None
    for source in entry.get("install_sources") or []:
        if source.get("type") == "archive":
            return source
    return None
