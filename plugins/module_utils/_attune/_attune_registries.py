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
(:func:`position_plan`, :func:`removal_plan`).  No Ansible imports here.
"""

from __future__ import annotations

import re

from ansible_collections.attune.packs.plugins.module_utils._attune import _api
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError, PackNotFound
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
