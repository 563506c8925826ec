# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the read-only registry operations (may change without notice).

``registries``, ``search`` and ``info`` build the result of the modules of the
same name from a :class:`RegistryClient` and the validated task parameters.
They run inside the module on the host (``resolve_on: host``) or inside the
action plugin on the controller (``resolve_on: controller``): one
implementation, two places.  ``warn`` receives warnings; failures are raised
as core errors.
"""

from __future__ import annotations

from ansible.module_utils.basic import env_fallback

from ansible_collections.attune.packs.plugins.module_utils._base._common import (
    api_argument_spec, check_libraries, fail, normalise_names, registry_argument_spec,
    resolve_argument_spec, settings_from_params,
)
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, ConfigError, InvalidArguments, RegistryUnreachable


def _query_api_argument_spec():
    # api_url switches the query to Attune's registries: never taken from ATTUNE_API_URL (a variable exported for
    # other tasks must not silently change where a search answers from); validate_certs/ca_path are the registry ones
    return api_argument_spec(env_fallback, url_from_env=False, tls=False)


def registries_argument_spec():
    spec = registry_argument_spec()
    spec.update(probe=dict(type="bool", default=False))
    spec.update(_query_api_argument_spec())  # api_url: answer from Attune's registries
    return spec


def search_argument_spec():
    spec = registry_argument_spec()
    spec.update(query=dict(type="str", default=""), dedupe=dict(type="bool", default=True))
    spec.update(_query_api_argument_spec())  # api_url: answer from Attune's registries
    return spec


def info_argument_spec():
    spec = registry_argument_spec()
    spec.update(resolve_argument_spec())
    spec.update(name=dict(type="raw", required=True, aliases=["spec"]))
    spec.update(_query_api_argument_spec())  # api_url: answer from Attune's registries
    return spec


def registries(client, params, warn):
    settings = client.settings
    selected = client.all_registries
    if params["registry"]:
        selected = [r for r in selected if params["registry"] in (r.name, r.url, r.label)]
        if not selected:
            client.select(params["registry"])  # raises the "unknown registry" error
    if params["probe"]:
        results = client.probe(selected)
    else:
        results = [r.for_output() for r in selected]
    enabled_count = len([r for r in selected if r.enabled])
    if settings.enabled:
        msg = "%d registries configured (%d enabled)" % (len(selected), enabled_count)
    else:
        msg = "pack registry disabled (pack_registry.enabled is false): %d registries configured, none consulted" % len(selected)
    return dict(changed=False, registries=results, enabled=settings.enabled, config_path=settings.config_path, msg=msg)


def search(client, params, warn):
    packs, failed = client.search(params["query"], registry=params["registry"], dedupe=params["dedupe"])
    consulted = len(client.select(params["registry"]))
    if failed and len(failed) == consulted:
        raise RegistryUnreachable("search failed: no registry could be searched: " + "; ".join(item["error"] for item in failed))
    for item in failed:
        warn("search skipped a registry: %s" % item["error"])
    msg = "%d pack%s found in %d registr%s" % (len(packs), "" if len(packs) == 1 else "s", consulted - len(failed),
                                               "y" if consulted - len(failed) == 1 else "ies")
    if failed:
        msg += " (%d failed)" % len(failed)
    return dict(changed=False, packs=packs, failed_registries=failed, msg=msg)


def resolve_one(client, spec, params, warn):
    """Resolve one spec (fail-closed, as configured); warn about each registry skipped (``on_registry_error=skip``).

    The one way every plugin resolves: attune_pack (host and controller), attune_pack_info, the lookup, attune_pack_lock.
    ``params`` needs ``registry``, ``prefer_source`` and ``on_registry_error``.
    """
    pack = client.resolve(spec, registry=params["registry"], prefer_source=params["prefer_source"],
                          on_registry_error=params["on_registry_error"])
    for skipped in pack["skipped_registries"]:
        warn("resolving %s skipped a failing registry: %s" % (pack["spec"], skipped["error"]))
    return pack


def resolver_for(client, params, warn):
    """``resolve(spec)`` for ``_install.plan_present``."""
    return lambda spec: resolve_one(client, spec, params, warn)


def resolve_all(client, specs, params, warn):
    """Resolve every spec with :func:`resolve_one`."""
    return [resolve_one(client, spec, params, warn) for spec in specs]


def info(client, params, warn):
    specs = normalise_names(params["name"])
    if not specs:
        raise ConfigError("name must name at least one pack spec")
    packs = resolve_all(client, specs, params, warn)
    msg = "; ".join("%s -> %s %s (registry %s)" % (p["spec"], p["ref"], p["version"], p["registry"]) for p in packs)
    return dict(changed=False, packs=packs, skipped_registries=skipped_registries_of(packs), msg=msg)


def skipped_registries_of(packs):
    """The registries skipped (``on_registry_error: skip``) while resolving ``packs``, each once (the result's top level)."""
    seen, skipped = set(), []
    for pack in packs:
        for item in pack.get("skipped_registries") or ():
            if (item.get("name"), item.get("url")) not in seen:
                seen.add((item.get("name"), item.get("url")))
                skipped.append(item)
    return skipped


# -- the query modules' main (on the host) --------------------------------------------------------------------


def refuse_api_url(module):
    """Fail a query module that received ``api_url``: Attune's registries are asked by the action plugin (issue 17).

    ``attune_pack_registries``, ``attune_pack_search`` and ``attune_pack_info`` answer ``api_url`` on the controller,
    in their action plugin, so that the module's payload does not carry the API client (``module_utils._attune``).
    The module sees ``api_url`` only when it runs without its action plugin.
    """
    fail(module, InvalidArguments(
        "api_url is answered by the action plugin of this module on the controller, not by the module on the host: "
        "run the module as a task or ad hoc (ansible -m attune.packs.<module>) so that its action plugin runs, or leave "
        "api_url out to query the host's registries"), changed=False)


def run(module, body):
    """Run ``body(client)``; core errors become a failed result."""
    check_libraries(module)
    from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient  # pylint: disable=import-outside-toplevel

    try:
        client = RegistryClient(settings_from_params(module.params))
        result = body(client)
    except AttuneError as exc:
        fail(module, exc, changed=False)
    module.exit_json(**result)
