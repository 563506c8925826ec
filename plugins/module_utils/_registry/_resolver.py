# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: registry client — list, search, resolve (may change without notice).

Rules (attune-format.md section 3):

* enabled registries in ascending priority, ties in configuration order;
* search is best-effort: failing registries are reported, the others answer;
  results are de-duplicated by ref, the first registry wins (``also_in``);
* resolution is fail-closed: the first registry *holding the ref* wins; a
  higher-priority registry that cannot be fetched or validated fails the
  resolution (unless ``on_registry_error='skip'``); a registry that holds the
  ref without a matching version fails too — never fall through.
"""

from __future__ import annotations

import copy
import os
import time

from ansible_collections.attune.packs.plugins.module_utils._registry import _fetch
from ansible_collections.attune.packs.plugins.module_utils._registry._cache import CacheCorrupt, IndexCache, IndexView
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import (
    AttuneError,
    ConfigError,
    PackNotFound,
    RegistryDisabled,
    suggestion,
)
from ansible_collections.attune.packs.plugins.module_utils._registry._index import (
    decode_index, fallback_source, file_url_path, preferred_source, validate_index)
from ansible_collections.attune.packs.plugins.module_utils._registry._version import PackSpec, try_parse_version

SOURCE_KEYS = ("type", "url", "ref", "checksum")


class Registry(object):
    """One configured registry."""

    __slots__ = ("url", "name", "priority", "enabled", "headers", "ca_path", "position")

    def __init__(self, config, position):
        self.url = config["url"]
        self.name = config.get("name")
        self.priority = config.get("priority", 100)
        self.enabled = config.get("enabled", True)
        self.headers = config.get("headers") or {}
        self.ca_path = config.get("ca_path")
        self.position = position

    @property
    def label(self):
        """The name users see: the configured name, else the redacted URL."""
        return self.name or redact_url(self.url)

    def for_output(self):
        """What a task may show of this registry: its label, the redacted URL, the header names (never values)."""
        return {
            "name": self.label,
            "url": redact_url(self.url),
            "priority": self.priority,
            "enabled": self.enabled,
            "headers": sorted(self.headers),
        }


def source_for_output(source):
    """The documented keys of an index source (the rest of an entry's source mapping is not returned)."""
    return dict((key, source[key]) for key in SOURCE_KEYS if key in source) if source else None


class RegistryClient(object):
    """Everything the plugins ask of the registries goes through here."""

    def __init__(self, settings, cache=None, clock=time.time):
        self.settings = settings
        self.all_registries = sorted(
            (Registry(entry, position) for position, entry in enumerate(settings.indices)),
            key=lambda registry: (registry.priority, registry.position),
        )
        if cache is None:
            cache = IndexCache(settings.cache_dir, ttl=settings.cache_ttl, enabled=settings.cache_enabled)
        self.cache = cache
        self._views = {}
        self._errors = {}
        self.stats = {"fetched": 0, "revalidated": 0, "cache_hits": 0}
        self._clock = clock

    # -- registries -----------------------------------------------------------------
    def ensure_enabled(self):
        if not self.settings.enabled:
            where = (" in %s" % self.settings.config_path) if self.settings.config_path else ""
            raise RegistryDisabled("pack registry disabled (pack_registry.enabled is false%s): no index is consulted" % where)

    def registries(self, include_disabled=False):
        return [r for r in self.all_registries if include_disabled or r.enabled]

    def select(self, name=None):
        """Enabled registries to consult; ``name`` restricts to one (unknown or disabled: ConfigError)."""
        self.ensure_enabled()
        name = name or self.settings.registry
        if name is None:
            chosen = self.registries()
            if not chosen:
                raise ConfigError("no enabled pack registries are configured")
            return chosen
        for registry in self.all_registries:
            if name in (registry.name, registry.url, registry.label):
                if not registry.enabled:
                    raise ConfigError("registry %r is disabled" % name)
                return [registry]
        known = ", ".join(r.label for r in self.all_registries) or "none"
        raise ConfigError("unknown registry %r (configured: %s)" % (name, known))

    # -- indices -------------------------------------------------------------------
    def index(self, registry):
        """The validated :class:`IndexView` of a registry (memoised; errors too)."""
        key = registry.position
        if key in self._views:
            return self._views[key]
        if key in self._errors:
            raise self._errors[key]
        try:
            view = self._load(registry)
        except AttuneError as exc:
            if exc.registry is None:
                exc.registry = registry.label
                exc.args = (exc.format(),)
            self._errors[key] = exc
            raise
        self._views[key] = view
        return view

    def _fetch_kwargs(self, registry):
        settings = self.settings
        return {
            "headers": registry.headers,
            "verify": settings.verify_for(registry.ca_path),
            "timeout": settings.timeout,
            "connect_timeout": settings.connect_timeout,
            "max_bytes": settings.index_max_bytes,
            "registry": registry.label,
            "allow_http": settings.allow_http,  # _fetch applies the scheme rule itself (issue 8 item 8)
        }

    def _decode(self, registry, body):
        data = decode_index(body, registry=registry.label)
        # a file:// registry's index may name archives beside it as file:// URLs (a mirror read on the controller)
        local = file_url_path(registry.url)
        return validate_index(data, registry=registry.label, strict=self.settings.strict,
                              local_root=os.path.dirname(os.path.normpath(local)) if local else None)

    def _load(self, registry):
        cache = self.cache
        if not cache.enabled:
            result = _fetch.fetch_index(registry.url, **self._fetch_kwargs(registry))
            self.stats["fetched"] += 1
            return IndexView.from_index(self._decode(registry, result.body), registry.url)
        key = cache.key(registry.url, registry.headers, self.settings.strict)
        started = self._clock()
        cached = cache.load(key)
        if cached and cache.is_fresh(cached[1]) and not self.settings.refresh:
            self.stats["cache_hits"] += 1
            return cached[0]
        with cache.lock(key):
            # another process may have refreshed the entry while we waited for the lock
            cached = cache.load(key)
            if cached:
                view, mtime = cached
                if cache.is_fresh(mtime) and (not self.settings.refresh or mtime >= started):
                    self.stats["cache_hits"] += 1
                    return view
            etag = last_modified = None
            if cached:
                etag = cached[0].header.get("etag")
                last_modified = cached[0].header.get("last_modified")
            result = _fetch.fetch_index(registry.url, etag=etag, last_modified=last_modified, **self._fetch_kwargs(registry))
            if result.not_modified and cached:
                cache.touch(key)
                self.stats["revalidated"] += 1
                return cached[0]
            self.stats["fetched"] += 1
            index = self._decode(registry, result.body)
            return cache.store(key, index, registry.url, etag=result.etag, last_modified=result.last_modified)

    def _entries(self, registry, ref):
        view = self.index(registry)
        try:
            return view.entries(ref)
        except CacheCorrupt:
            self._views.pop(registry.position, None)
            return self.index(registry).entries(ref)

    # -- probe / search -------------------------------------------------------------
    def probe(self, registries=None):
        """Fetch each registry (all configured ones by default) and report its state."""
        results = []
        for registry in self.all_registries if registries is None else registries:
            item = registry.for_output()
            if not registry.enabled or not self.settings.enabled:
                item.update({"reachable": None, "error": "disabled"})
            else:
                try:
                    view = self.index(registry)
                except AttuneError as exc:
                    item.update({"reachable": False, "error": str(exc), "error_kind": exc.kind})
                else:
                    item.update({"reachable": True, "pack_count": view.pack_count, "registry_name": view.registry_name,
                                 "last_updated": view.last_updated})
            results.append(item)
        return results

    def search(self, query="", registry=None, dedupe=True):
        """Return ``(packs, failed_registries)``."""
        needle = (query or "").strip().lower()
        chosen = self.select(registry)
        packs = []
        by_ref = {}
        failed = []
        for reg in chosen:
            try:
                view = self.index(reg)
            except AttuneError as exc:
                failed.append({"name": reg.label, "url": redact_url(reg.url), "error": str(exc), "error_kind": exc.kind})
                continue
            best = {}
            order = []
            for row in view.summaries:
                if needle and not _matches(row, needle):
                    continue
                if not dedupe:
                    packs.append(_search_item(row, reg))
                    continue
                ref = row.ref
                current = best.get(ref)
                if current is None:
                    order.append(ref)
                    best[ref] = row
                elif _newer(row.version, current.version):
                    best[ref] = row
            for ref in order:
                if ref in by_ref:
                    by_ref[ref]["also_in"].append(reg.label)
                    continue
                item = _search_item(best[ref], reg)
                by_ref[ref] = item
                packs.append(item)
        return packs, failed

    # -- resolution -----------------------------------------------------------------
    def resolve(self, spec, registry=None, prefer_source="git", on_registry_error="fail"):
        """Resolve one spec to one exact entry and source (a dict, see RETURN of attune_pack_info)."""
        parsed = spec if isinstance(spec, PackSpec) else PackSpec.parse(spec)
        chosen = self.select(registry)
        skipped = []
        winner = None
        shadowed = []
        for reg in chosen:
            try:
                has_ref = self.index(reg).has_ref(parsed.ref)
            except AttuneError as exc:
                if winner is not None:
                    continue  # lower-priority registry: only informative
                if on_registry_error == "skip":
                    skipped.append({"name": reg.label, "url": redact_url(reg.url), "error": str(exc)})
                    continue
                failure = copy.copy(exc)  # same class (authentication failed, invalid index format ...)
                failure.pack = parsed.ref
                failure.message = (
                    "cannot resolve %s: %s; resolution is fail-closed (a lower-priority registry could carry a different "
                    "pack with the same ref), so it stops here: fix the registry or set on_registry_error=skip" % (parsed.text, exc.message)
                )
                failure.args = (failure.format(),)
                raise failure
            if not has_ref:
                continue
            if winner is None:
                winner = reg
            else:
                shadowed.append(reg.label)
        if winner is None:
            names = ", ".join(r.label for r in chosen)
            # issue 18 item 4: the closest refs of the registries read for this resolution (no extra request)
            known = set()
            for reg in chosen:
                view = self._views.get(reg.position)
                if view is not None:
                    known.update(view.refs())
            raise PackNotFound("pack %r not found in any registry (searched: %s)%s" % (parsed.ref, names, suggestion(parsed.ref, known)),
                               pack=parsed.ref)
        entries = self._entries(winner, parsed.ref)
        picked = parsed.constraint.select([(try_parse_version(entry.get("version")), entry) for entry in entries])
        if picked is None:
            available = ", ".join(sorted((e.get("version") for e in entries), key=lambda v: try_parse_version(v) or v)) or "none"
            raise PackNotFound(
                "no version of %s matches %s in this registry (it has: %s); lower-priority registries are not consulted"
                % (parsed.ref, parsed.constraint, available),
                registry=winner.label, pack=parsed.ref,
            )
        entry = picked[1]
        source = preferred_source(entry, prefer_source)
        return {
            "ref": parsed.ref,
            "spec": parsed.text,
            "version": entry.get("version"),
            "registry": winner.label,
            "registry_url": redact_url(winner.url),
            "registry_priority": winner.priority,
            "source": source_for_output(source),
            "fallback_source": source_for_output(fallback_source(entry, source)),
            "sources": [source_for_output(s) for s in entry.get("install_sources") or []],
            "entry": entry,
            "shadowed_in": shadowed,
            "skipped_registries": skipped,
        }


def _matches(row, needle):
    if needle in row.ref.lower() or needle in (row.label or "").lower() or needle in (row.description or "").lower():
        return True
    return any(needle in keyword.lower() for keyword in row.keywords)


def _newer(candidate, current):
    """Search shows the version ``ref@latest`` resolves to: the highest release, pre-releases only if nothing else."""
    a, b = try_parse_version(candidate), try_parse_version(current)
    if a is None:
        return False
    return b is None or (not a.is_prerelease, a) > (not b.is_prerelease, b)


def _search_item(row, registry):
    return {
        "ref": row.ref,
        "version": row.version,
        "label": row.label,
        "description": row.description,
        "author": row.author,
        "keywords": list(row.keywords),
        "registry": registry.label,
        "registry_url": redact_url(registry.url),
        "priority": registry.priority,
        "also_in": [],
    }
