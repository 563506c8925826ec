# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of attune.packs.attune_pack.

* ``lock_file``: read on the controller; each pack of ``name`` becomes the
  exact resolution the lock pins, passed to the module as ``source``.
* ``resolve_on: controller``: specs are resolved here (shared index cache);
  the module receives the resolutions and, with ``state: present``, still keeps
  an installed version that satisfies the spec.
* ``fetch_on: controller``: the module first reports which archives it needs
  (nothing when the host is up to date); they are downloaded once into the
  controller's content-addressed cache, copied to the host, and the module runs
  again with them (and verifies them again).
"""

from __future__ import annotations

import os

from ansible_collections.attune.packs.plugins.module_utils._common import REGISTRY_OPTION_NAMES
from ansible_collections.attune.packs.plugins.module_utils._errors import AttuneError
from ansible_collections.attune.packs.plugins.plugin_utils._action import RegistryActionBase, TaskFailed

# Registry options the host does not need once the controller has resolved (ca_path and validate_certs stay:
# they also apply to the host's downloads).
HOST_TOO = ("ca_path", "validate_certs", "timeout", "connect_timeout", "allow_http")
CONTROLLER_ONLY = tuple(name for name in REGISTRY_OPTION_NAMES if name not in HOST_TOO)


class ActionModule(RegistryActionBase):
    MODULE = "attune.packs.attune_pack"

    def argument_spec(self):
        from ansible_collections.attune.packs.plugins.module_utils._queries import pack_argument_spec

        return pack_argument_spec()

    def validator_kwargs(self):
        from ansible_collections.attune.packs.plugins.module_utils._queries import PACK_CONSTRAINTS

        return PACK_CONSTRAINTS

    def wants_controller(self, args):
        if args.get("state") == "absent" or args.get("src"):
            return False
        return bool(args.get("lock_file")) or args.get("resolve_on") == "controller" or args.get("fetch_on") == "controller"

    def on_controller(self, params, args, task_vars):
        from ansible_collections.attune.packs.plugins.module_utils import _lockfile
        from ansible_collections.attune.packs.plugins.module_utils._common import normalise_names
        from ansible_collections.attune.packs.plugins.module_utils._queries import resolve_all

        module_args = dict(args)
        for name in ("lock_file", "resolve_on", "name", "pack"):
            module_args.pop(name, None)
        names = normalise_names(params["name"])
        if params["source"]:
            module_args["name"] = args.get("name", args.get("pack"))
        elif params["lock_file"]:
            if params["state"] == "latest":
                raise TaskFailed("state=latest does not go with lock_file: the lock pins the versions; update it with "
                                 "attune.packs.attune_pack_lock (update: [refs] or all) and install from it")
            lock = _lockfile.load(params["lock_file"])
            module_args["source"] = [_lockfile.source_of(_lockfile.entry_for(lock, name)) for name in names]
        else:
            if not names:
                raise TaskFailed("name must name at least one pack spec")
            resolutions = resolve_all(self.client(params), names, params, self.warn)
            for item in resolutions:
                item["resolved_on_controller"] = True
            module_args["source"] = resolutions
        if not params["source"]:
            for name in CONTROLLER_ONLY:
                module_args.pop(name, None)
        result = self.run_module(module_args, task_vars)
        if result.get("fetch_requests") and not result.get("failed"):
            result = self.fetch_and_rerun(params, module_args, result["fetch_requests"], task_vars)
        return result

    def fetch_and_rerun(self, params, module_args, requests, task_vars):
        from ansible_collections.attune.packs.plugins.module_utils._config import default_cache_dir
        from ansible_collections.attune.packs.plugins.plugin_utils._archive_cache import ArchiveCache

        cache = ArchiveCache(params["cache_dir"] or default_cache_dir())
        verify = False if not params["validate_certs"] else (params["ca_path"] or True)
        local = {}
        for request in requests:
            try:
                local[request["ref"]] = cache.get(request["source"], request["ref"], verify=verify,
                                                  timeout=params["timeout"] or 120, connect_timeout=params["connect_timeout"] or 10,
                                                  max_bytes=params["archive_max_bytes"] or 104857600,
                                                  allow_http=bool(params.get("allow_http")))
            except AttuneError as exc:
                raise TaskFailed(str(exc), changed=False, error=exc.to_dict())
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        try:
            remote = {}
            for ref, path in local.items():
                remote[ref] = self._connection._shell.join_path(tmpdir, "%s-%s" % (ref, os.path.basename(path)))
                self._transfer_file(path, remote[ref])
            self._fixup_perms2([tmpdir] + list(remote.values()))
            sources = []
            for item in module_args["source"] if isinstance(module_args["source"], list) else [module_args["source"]]:
                item = dict(item)
                if item["ref"] in remote:
                    wanted = next(r["source"] for r in requests if r["ref"] == item["ref"])
                    item["source"] = dict(wanted, local_copy=remote[item["ref"]])
                    item["fallback_source"] = None
                sources.append(item)
            module_args = dict(module_args, source=sources)
            result = self.run_module(module_args, task_vars)
            result["fetched_on_controller"] = sorted(remote)
            return result
        finally:
            self._remove_tmp_path(tmpdir)
