# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the read-only registry queries answered by a running Attune (may change without notice).

With ``api_url``, ``attune_pack_registries``, ``attune_pack_search``,
``attune_pack_info`` and the ``attune_pack`` lookup answer from the registries
Attune itself uses (its database, ``routes/packs.rs`` ``effective_pack_registry``)
instead of a config file.  This file adapts Attune's answers to the return
shapes of the file-registry queries (``_queries.py`` / ``_resolver.py``), plus
Attune's registry ids:

* list   = ``GET /api/v1/pack-indices`` (``list_pack_indices``), in Attune's order;
* search = ``GET /api/v1/pack-indices/packs?q=`` (``browse_indexed_packs``);
* info   = ``GET /api/v1/pack-indices/packs/{ref}`` (``get_indexed_pack``): the entry Attune would install.

Also the position plan of the ``registry_config`` role's API target
(:func:`position_plan`, :func:`removal_plan`), and the one pack index the
``attune_registry`` module manages (:func:`check_index_options`,
:func:`ensure_index`: ``POST``/``PUT``/``DELETE /api/v1/pack-indices``).
No Ansible imports here.
"""

from __future__ import annotations

import re

from ansible_collections.attune.packs.plugins.module_utils._attune import _api
from ansible_collections.attune.packs.plugins.module_utils._attune._api_errors import ApiConflict, ApiError, ApiNotFound
from ansible_collections.attune.packs.plugins.module_utils._registry import _config, _outbound
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError, InvalidArguments, OutboundRefused, PackNotFound
from ansible_collections.attune.packs.plugins.module_utils._registry._index import fallback_source, preferred_source
from ansible_collections.attune.packs.plugins.module_utils._registry._version import PackSpec, try_parse_version

# Registry options that describe file registries; they have no meaning when Attune answers.
FILE_ONLY_OPTIONS = ("registries", "config_path", "environment")

# The standard index Attune seeds (migrations 20250101000026_standard_pack_index.sql and
# 20260822000003_standard_pack_index_v040.sql): a commit-pinned (or main) index.json of attune-system/index.
# The API does not return the row's is_standard flag, so the role recognises it by URL.
STANDARD_INDEX_PATTERN = r"^https://raw\.githubusercontent\.com/attune-system/index/[^/]+/index\.json$"


def client(params, environ=None):
    """An :class:`_api.AttuneApi` from query parameters; refuses options that only make sense for file registries."""
    given = [name for name in FILE_ONLY_OPTIONS if params.get(name)]
    if given:
        raise ConfigError("%s cannot be combined with api_url: with api_url the registries are the ones Attune "
                          "itself uses (its database)" % ", ".join(given))
    params = dict(params)
    if not params.get("api_token") and not params.get("api_username") and environ is not None:
        params["api_token"] = environ.get("ATTUNE_API_TOKEN")  # the lookup has no env_fallback of its own
    return _api.client_from_params(params)


# ---------------------------------------------------------------------------
# list


def registry_view(row):
    """A pack-index row in the shape of ``attune_pack_registries`` (file registries) plus Attune's id/position."""
    return {
        "name": row.get("name") or redact_url(row.get("url")),
        "url": redact_url(row.get("url")),
        "priority": row.get("position"),
        "enabled": bool(row.get("enabled")),
        "headers": sorted(row.get("headers") or {}),
        "id": row.get("id"),
        "position": row.get("position"),
    }


def _select(rows, registry):
    """The rows named by ``registry`` (id, name or URL); raises the 'unknown registry' error."""
    if not registry:
        return rows
    key = str(registry)
    chosen = [r for r in rows if key in (str(r.get("id")), r.get("name"), r.get("url"))
              or (key.startswith("https://") and _api.registry_url_key(key) == _api.registry_url_key(r.get("url")))]
    if not chosen:
        names = ", ".join("%s (id %s)" % (r.get("name") or redact_url(r.get("url")), r.get("id")) for r in rows) or "none"
        raise ConfigError("unknown registry %r: Attune's registries are: %s" % (registry, names))
    return chosen


def registries(api, params, warn):
    rows = api.list_indices()
    selected = _select(rows, params.get("registry"))
    results = [registry_view(r) for r in selected]
    if params.get("probe"):
        for row, item in zip(selected, results):
            if not row.get("enabled"):
                item.update(reachable=None, error="disabled")
                continue
            # Attune's browse skips a registry it cannot fetch (routes/packs.rs browse_indexed_packs logs a warning):
            # an empty answer cannot tell an unreachable registry from an empty one.
            count = len(api.browse(registry_id=row["id"]))
            item["pack_count"] = count
            if count:
                item["reachable"] = True
            else:
                item["reachable"] = None
                item["error"] = "Attune lists no pack from this registry (empty, or Attune could not fetch it)"
    enabled = len([r for r in selected if r.get("enabled")])
    msg = "%d registries in Attune's database (%d enabled)" % (len(selected), enabled)
    return dict(changed=False, registries=results, enabled=True, config_path=None, api_url=api.api_url, msg=msg)


# ---------------------------------------------------------------------------
# search


def _search_item(item):
    pack, reg = item.get("pack") or {}, item.get("registry") or {}
    return {
        "ref": pack.get("ref"),
        "version": pack.get("version"),
        "label": pack.get("label"),
        "description": pack.get("description"),
        "author": pack.get("author"),
        "keywords": list(pack.get("keywords") or []),
        "registry": reg.get("name") or redact_url(reg.get("url")),
        "registry_url": redact_url(reg.get("url")),
        "priority": reg.get("position"),
        "registry_id": reg.get("id"),
        "also_in": [],
    }


def search(api, params, warn):
    query = (params.get("query") or "").strip()
    registry = params.get("registry")
    rows = None
    if registry:
        rows = _select(api.list_indices(), registry)
    if params.get("dedupe", True):
        if rows is None:
            items = api.browse(query=query)
        else:
            items = [i for row in rows for i in api.browse(query=query, registry_id=row["id"])]
        packs = [_search_item(i) for i in items]
    else:
        # Attune's browse returns one entry per ref; every registry's own answer is the closest to "every entry"
        rows = [r for r in (rows if rows is not None else api.list_indices()) if r.get("enabled")]
        packs = [_search_item(i) for row in rows for i in api.browse(query=query, registry_id=row["id"])]
    msg = "%d pack%s found by Attune's browse" % (len(packs), "" if len(packs) == 1 else "s")
    return dict(changed=False, packs=packs, failed_registries=[], api_url=api.api_url, msg=msg)


# ---------------------------------------------------------------------------
# info


def resolve(api, spec, prefer_source="git"):
    """The entry Attune would install for ``spec`` (GET /api/v1/pack-indices/packs/{ref}), as ``attune_pack_info``.

    Attune answers with the first entry of the first effective registry that holds the ref (routes/packs.rs
    ``get_indexed_pack``): one version per ref.  A version spec is matched against that version with the
    collection's rules; Attune's own install accepts only ``ref``, ``ref@latest`` or exactly that version
    (``resolve_registry_request``: "Pack X version Y not found (available: Z)").
    """
    parsed = spec if isinstance(spec, PackSpec) else PackSpec.parse(spec)
    data = api.get_indexed_pack(parsed.ref)
    if not data or not data.get("pack"):
        raise PackNotFound("pack %r not found in the registries of Attune %s" % (parsed.ref, api.api_url), pack=parsed.ref)
    entry, reg = data["pack"], data.get("registry") or {}
    label = reg.get("name") or redact_url(reg.get("url"))
    version = entry.get("version")
    if parsed.constraint.select([(try_parse_version(version), entry)]) is None:
        raise PackNotFound(
            "no version of %s matches %s: Attune offers %s only (the entry of the first of its registries that holds "
            "the ref; Attune installs only %s, %s@latest or %s@%s)"
            % (parsed.ref, parsed.constraint, version, parsed.ref, parsed.ref, parsed.ref, version),
            registry=label, pack=parsed.ref)
    source = preferred_source(entry, prefer_source)
    return {
        "ref": parsed.ref,
        "spec": parsed.text,
        "version": version,
        "registry": label,
        "registry_url": redact_url(reg.get("url")),
        "registry_priority": reg.get("position"),
        "registry_id": reg.get("id"),
        "attune_source": "%s@%s" % (parsed.ref, version),
        "source": _public(source),
        "fallback_source": _public(fallback_source(entry, source)),
        "sources": [_public(s) for s in entry.get("install_sources") or []],
        "entry": entry,
        "shadowed_in": [],
        "skipped_registries": [],
    }


def _public(source):
    if not source:
        return None
    return dict((k, source[k]) for k in ("type", "url", "ref", "checksum") if k in source)


def info(api, params, warn):
    name = params.get("name")
    specs = [name] if isinstance(name, str) else [str(s) for s in (name or [])]
    if not specs:
        raise ConfigError("name must name at least one pack spec")
    if params.get("registry"):
        raise ConfigError("registry cannot be combined with api_url in attune_pack_info: Attune resolves a ref "
                          "across all its enabled registries")
    packs = [resolve(api, spec, params.get("prefer_source") or "git") for spec in specs]
    msg = "; ".join("%s -> %s %s (Attune registry %s, id %s)" % (p["spec"], p["ref"], p["version"], p["registry"],
                                                                 p["registry_id"]) for p in packs)
    return dict(changed=False, packs=packs, skipped_registries=[], api_url=api.api_url, msg=msg)


QUERIES = {"registries": registries, "search": search, "info": info}


def answer(operation, params, warn, environ=None):
    """Run one query (``registries``, ``search`` or ``info``) against Attune; errors are AttuneError."""
    return QUERIES[operation](client(params, environ), params, warn)


def lookup(terms, params, environ=None):
    if params.get("registry"):
        raise ConfigError("registry cannot be combined with api_url: Attune resolves a ref across all its enabled registries")
    api = client(params, environ)
    return [resolve(api, term, params.get("prefer_source") or "git") for term in terms]


# ---------------------------------------------------------------------------
# registry_config role: API target


def position_plan(indices, offset=1):
    """``registry_config_indices`` → Attune positions, as Attune orders the config file's indices.

    Attune consults the config file's indices after the database rows, each at ``offset + priority``
    (routes/packs.rs ``effective_static_registry_indices``; offset = highest row position + 1, i.e. 1 behind the
    seeded standard index at 0), sorted by priority with ties in file order.  The same positions in the database
    keep that order; equal priorities get consecutive positions so that the order never depends on row ids.
    Returns ``[{index, url, name, position, enabled}]`` in that order (no header values: ``index`` points into
    ``indices``).  ``enabled`` is None when the entry does not set it: the registry then keeps Attune's value (a
    registry disabled in Attune stays disabled; a new one is enabled).
    """
    items = []
    for number, entry in enumerate(indices or []):
        if not isinstance(entry, dict) or not entry.get("url"):
            raise ConfigError("registry_config_indices[%d]: url is required" % number)
        priority = entry.get("priority")
        priority = 100 if priority is None else int(priority)
        items.append((priority, number, entry))
    items.sort(key=lambda item: (item[0], item[1]))
    out, last = [], None
    for priority, number, entry in items:
        position = int(offset) + priority
        if last is not None and position <= last:
            position = last + 1
        last = position
        enabled = entry.get("enabled")
        out.append({"index": number, "url": entry["url"], "name": entry.get("name"), "position": position,
                    "enabled": None if enabled is None else bool(enabled)})
    return out


def removal_plan(rows, indices, remove_standard=False, standard_pattern=STANDARD_INDEX_PATTERN, kept=None):
    """Rows of Attune's list (``attune_pack_registries`` with api_url) not among ``indices``: ``[{id, url, name, position}]``.

    ``kept``: Attune's ids of the listed registries (or the ``attune_registry`` results of putting them into
    Attune, whose ``registry.id`` is read).  When given, a row is kept only when its id is among them: rows are
    matched by id, never by URL, because Attune's list shows URLs redacted (``…?***`` for a query string,
    ``***@`` for credentials) and a redacted URL matches no listed registry.  Without ``kept``, rows are matched
    by URL (Attune's URL identity); a row shown redacted matches no listed URL (they carry no query or credentials).
    The standard index (recognised by ``standard_pattern``, see STANDARD_INDEX_PATTERN) is kept unless
    ``remove_standard``.
    """
    kept_ids = None if kept is None else set(_kept_id(item) for item in kept) - set([None])
    wanted = set(_api.registry_url_key(e["url"]) for e in indices or [] if isinstance(e, dict) and e.get("url"))

    def is_listed(row):
        if kept_ids is not None:
            return row.get("id") in kept_ids
        return _api.registry_url_key(row.get("url")) in wanted

    pattern = re.compile(standard_pattern) if standard_pattern else None
    out = []
    for row in rows or []:
        url = row.get("url")
        if is_listed(row):
            continue
        if not remove_standard and pattern is not None and pattern.search(_api.registry_url_key(url) or ""):
            continue
        out.append({"id": row.get("id"), "url": url, "name": row.get("name"), "position": row.get("position")})
    return out


def _kept_id(item):
    """An id from ``kept``: an int, or an attune_registry result / registry view (``registry.id`` or ``id``)."""
    if isinstance(item, dict):
        item = item.get("registry", item)
        item = item.get("id") if isinstance(item, dict) else None
    if isinstance(item, bool) or item is None:
        return None
    try:
        return int(item)
    except (TypeError, ValueError):
        raise ConfigError("kept: expected Attune ids or attune_registry results, got %r" % (item,))


# ---------------------------------------------------------------------------
# One managed pack index (the attune_registry module)


def index_view(row):
    """A pack-index row as the module returns it: header values are never shown (Attune returns them redacted)."""
    if row is None:
        return None
    return {"id": row.get("id"), "name": row.get("name"), "url": row.get("url"), "position": row.get("position"),
            "enabled": row.get("enabled"), "headers": dict((name, _api.REDACTED) for name in sorted(row.get("headers") or {}))}


def find_index(rows, url=None, name=None):
    """The row of ``rows`` (Attune's order) with the same URL (Attune's URL identity) or, without ``url``, ``name``."""
    if url:
        key = _api.registry_url_key(url)
        matches = [row for row in rows if _api.registry_url_key(row.get("url")) == key]
    else:
        matches = [row for row in rows if row.get("name") == name]
        if len(matches) > 1:
            raise ApiError("%d pack indices are named %r; identify the registry by url" % (len(matches), name))
    return matches[0] if matches else None


# Attune's CreatePackRegistryIndexRequest / UpdatePackRegistryIndexRequest (routes/packs.rs): position is an i32.
INDEX_POSITION_MAX = 2 ** 31 - 1


def check_index_options(url=None, name=None, state="present", position=None, enabled=None, headers=None,
                        index_id=None, allow_http=False):
    """Refuse option values of one pack index before any request (``InvalidArguments``, kind invalid_arguments).

    The rules are attune_registry_config's (``_config``: check_registry_url, check_registry_name, check_header,
    the integer check) and the outbound policy's structural URL checks (``_outbound.parse_target``, what Attune's
    ``validate_managed_registry_url`` applies): https, or http:// only with ``allow_http``; no credentials, query
    string or fragment; header names HTTP tokens not managed by the client, values strings without CR/LF/NUL or
    other controls, latin-1; a name without control or invisible formatting characters; 0 <= position <= i32.
    Header values are secret and never appear in the message.
    """
    def refuse(message):
        raise InvalidArguments(message)

    try:
        if index_id is not None:
            _config._check_type("id", index_id, int, _config.I64_MAX)  # pylint: disable=protected-access
        if not url and not name and index_id is None:
            refuse("give the registry's url, name or id")
        if url is not None and not isinstance(url, str):
            refuse("url must be a string")
        if state == "absent":
            return  # nothing is sent but the id of the row found
        if url:
            _config.check_registry_url("url", url, allow_http)
            if url.lower().startswith("file:"):
                refuse("url: a registry of a running Attune is fetched by Attune over https (or http:// with "
                       "allow_http); file:// is only for the config file (%s)" % _config.redact_url(url))
            _outbound.parse_target(url, allow_http=allow_http)
        if name is not None:
            _config.check_registry_name("name", name)
        if position is not None:
            _config._check_type("position", position, int, INDEX_POSITION_MAX)  # pylint: disable=protected-access
        if enabled is not None and not isinstance(enabled, bool):
            refuse("enabled: expected a boolean (true/false)")
        if headers is not None:
            if not isinstance(headers, dict):
                refuse("headers: expected a mapping of header names to values")
            seen = set()
            for header, value in headers.items():
                _config.check_header("headers", header, value)
                if header.lower() in seen:
                    refuse("headers: header %r given twice" % header)
                seen.add(header.lower())
    except (ConfigError, OutboundRefused) as exc:
        raise InvalidArguments(str(exc))


def ensure_index(api, url=None, name=None, state="present", position=None, enabled=None, headers=None,
                 update_headers="on_create", check_mode=False, index_id=None, allow_http=False):
    """Make one pack index of Attune match; returns ``dict(changed, before, after, action)`` (views, no secrets).

    The index is found by ``index_id`` (Attune's id), else by ``url`` (Attune's URL identity), else by ``name``.
    Only what is given changes: ``name``, ``position``, ``enabled`` and ``headers`` left at None keep the stored
    values (on create, Attune's defaults apply: enabled, appended at the end, no name, no headers).

    Header values cannot be read back from Attune, so they are compared by name only: with
    ``update_headers='on_create'`` they are sent when the index is created or when the set of header names
    differs; with ``'always'`` they are sent on every run (and the result is always changed).
    """
    check_index_options(url=url, name=name, state=state, position=position, enabled=enabled, headers=headers,
                        index_id=index_id, allow_http=allow_http)
    for value in (headers or {}).values():
        api.add_secret(value)
    rows = api.list_indices()
    if index_id is not None:
        matches = [row for row in rows if row.get("id") == index_id]
        current = matches[0] if matches else None
        label = "id %d" % index_id
    else:
        current = find_index(rows, url=url, name=name)
        label = url or name
    before = index_view(current)
    if state == "absent":
        if current is None:
            return dict(changed=False, before=None, after=None, action="none")
        if not check_mode:
            try:
                api.delete_index(current["id"])
            except ApiConflict as exc:
                raise ApiConflict("cannot remove pack index %s: %s (Attune refuses to delete the last non-standard index "
                                  "while the config file's pack_registry.indices would come back into force)"
                                  % (label, exc.attune_message), api_url=api.api_url, status=409,
                                  attune_message=exc.attune_message)
        return dict(changed=True, before=before, after=None, action="delete")
    if current is None:
        if index_id is not None:
            raise ApiNotFound("Attune has no pack index with id %d; give url (without id) to create one" % index_id,
                              api_url=api.api_url, status=404)
        if not url:
            raise ApiError("no pack index is named %r; url is required to create it" % name, api_url=api.api_url)
        after = {"id": None, "name": name, "url": url,
                 "position": position if position is not None else max([r.get("position", 0) for r in rows] + [-1]) + 1,
                 "enabled": bool(enabled) if enabled is not None else True,
                 "headers": dict((k, _api.REDACTED) for k in sorted(headers or {}))}
        if not check_mode:
            after = index_view(api.create_index(url, name=name, position=position, enabled=enabled, headers=headers))
        return dict(changed=True, before=None, after=after, action="create")
    changes = {}
    if url and current.get("url") != url and _api.registry_url_key(current.get("url")) != _api.registry_url_key(url):
        changes["url"] = url
    if name is not None and current.get("name") != name:
        changes["name"] = name
    if position is not None and current.get("position") != position:
        changes["position"] = position
    if enabled is not None and bool(current.get("enabled")) != bool(enabled):
        changes["enabled"] = bool(enabled)
    if headers is not None:
        if update_headers == "always" or sorted(headers) != sorted(current.get("headers") or {}):
            changes["headers"] = headers
    if not changes:
        return dict(changed=False, before=before, after=before, action="none")
    after = dict(before)
    after.update((k, v) for k, v in changes.items() if k != "headers")
    if "headers" in changes:
        after["headers"] = dict((k, _api.REDACTED) for k in sorted(headers))
    if not check_mode:
        after = index_view(api.update_index(current["id"], **changes))
    return dict(changed=True, before=before, after=after, action="update", changed_fields=sorted(changes))
