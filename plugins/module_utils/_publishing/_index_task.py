# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the ``attune_pack_index`` task (may change without notice).

:func:`run_index` reads the index file, merges the ``merge`` inputs (files read here, URLs and registry names fetched
as registries), applies ``entries``/``remove`` (``_publish.update_index``) and writes the file.  Separate from
``_publish`` because fetching registries needs the registry client (``_resolver``, ``_fetch``): ``_publish`` is also
shipped with ``attune_pack_index_entry``, which fetches nothing (every module_utils file a module can import goes
into its payload).

No Ansible imports.
"""

from __future__ import annotations

import os

from ansible_collections.attune.packs.plugins.module_utils._publishing import _publish
from ansible_collections.attune.packs.plugins.module_utils._base._common import registry_options
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError


def _is_url(item):
    return "://" in item


def required_libraries(params):
    """The libraries the task needs: voluptuous (validation), and requests when a merge input is a URL."""
    return ["voluptuous"] + (["requests"] if any(_is_url(item) for item in params["merge"] or []) else [])


def load_merge_inputs(params, items):
    """``[(label, decoded index)]`` of the merge inputs: files read here, URLs and registry names fetched."""
    from ansible_collections.attune.packs.plugins.module_utils._registry import _config, _fetch  # pylint: disable=import-outside-toplevel
    from ansible_collections.attune.packs.plugins.module_utils._registry._index import decode_index  # pylint: disable=import-outside-toplevel
    from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient  # pylint: disable=import-outside-toplevel

    client = None
    inputs = []
    for item in items:
        if not _is_url(item) and os.path.exists(item):
            data, _text = _publish.read_index_file(item, missing_ok=False)
            inputs.append((item, data))
            continue
        if client is None:
            # URLs and registry names: fetched as registries, with the registry options (a URL of O(registries)
            # keeps its headers and CA)
            options = registry_options(params)
            registries = [dict(r) for r in (params["registries"] or [])]
            configured = set(r["url"] for r in registries)
            registries.extend({"url": url} for url in items if _is_url(url) and url not in configured)
            options["registries"] = registries or None
            client = RegistryClient(_config.load_settings(options, require_registries=False))
        try:
            registry = client.select(item)[0]
        except AttuneError as exc:
            if not _is_url(item):
                raise _publish.PublishError("merge input %s is neither a file nor a configured registry (%s)" % (item, exc.message))
            raise
        result = _fetch.fetch_index(registry.url, **client._fetch_kwargs(registry))  # pylint: disable=protected-access
        inputs.append((registry.label, decode_index(result.body, registry=registry.label)))
    return inputs


def run_index(params, check_mode=False, diff=False, warn=lambda message: None):
    """The ``attune_pack_index`` task on ``params`` (the module's parameters): its result; raises core errors.

    The file is written only when its text changes, never in check mode; on failure it is left as it was (the
    caller's failed result has ``changed`` false and ``path``).
    """
    path = params["path"]
    current, _text = _publish.read_index_file(path, missing_ok=True)
    merged = None
    if params["merge"] is not None:
        merged = _publish.merge_indices(load_merge_inputs(params, params["merge"]), allow_branch=params["allow_branch_refs"])
    change = _publish.update_index(current, params["registry_name"], params["registry_url"], params["entries"],
                                   params["remove"], merged=merged, replace=params["replace"],
                                   allow_branch=params["allow_branch_refs"], label=path)
    if change.changed and not check_mode:
        _publish.write_text(path, change.text)

    parts = []
    for name, refs in (("added", change.added), ("replaced", change.replaced), ("removed", change.removed),
                       ("collapsed to one entry", change.collapsed)):
        if refs:
            parts.append("%s %s" % (name, ", ".join(refs)))
    if merged is not None:
        parts.append("merged %d inputs" % len(params["merge"]))
    summary = "; ".join(parts) or "no change to the packs"
    msg = "index %s: %s (%d packs)%s" % (path, summary, len(change.index["packs"]), "" if change.changed else ", up to date")
    if check_mode and change.changed:
        msg = "check mode, not written: " + msg
    if change.collapsed:
        warn("index %s had several entries for %s; Attune installs the first entry of a ref, so only the highest "
             "version of each is kept" % (path, ", ".join(change.collapsed)))
    result = dict(changed=change.changed, path=path, index=change.index, added=change.added, replaced=change.replaced,
                  unchanged=change.unchanged, removed=change.removed, collapsed=change.collapsed,
                  duplicates_resolved=change.duplicates, msg=msg)
    if diff:
        result["diff"] = dict(before=change.old_text or "", after=change.text, before_header=path, after_header=path)
    return result
