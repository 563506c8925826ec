# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of attune.packs.attune_pack_installed (the report is built by module_utils._pack._drift).

* On a host (no ``api_url``): ``lock_file`` is read and validated here, on the controller, and its text is handed
  to the module in the private ``_lock_text``; everything else happens on the host.
* ``api_url``: the packs of that running Attune (``GET /api/v1/packs``), answered here; the report is built by the
  same ``_drift.installed_report`` as on a host, over a listing of Attune's packs.
"""

from __future__ import annotations

from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.module_utils._pack import _drift
from ansible_collections.attune.packs.plugins.plugin_utils._action import RegistryActionBase, TaskFailed


class ActionModule(RegistryActionBase):
    MODULE = "attune.packs.attune_pack_installed"

    def argument_spec(self):
        from ansible_collections.attune.packs.plugins.module_utils._pack._installed_spec import installed_argument_spec

        return installed_argument_spec()

    def task_args(self):
        args = super(ActionModule, self).task_args()
        args.pop("_lock_text", None)  # set here only, from lock_file
        return args

    def check_option_names(self, args):
        """Not here: unknown options are reported by the module (on a host) or by the argument spec validation
        (api_url), with the messages this plugin has always given."""

    def wants_controller(self, args):
        return bool(args.get("api_url"))  # a running Attune: answered here, the module never carries the API client

    def required_libraries(self, params):
        return []  # the API client names a missing requests itself, as an error of that Attune

    def run_module(self, module_args, task_vars):
        if module_args.get("lock_file"):
            from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile

            module_args = dict(module_args, _lock_text=_lockfile.load(module_args["lock_file"]).text)
        return super(ActionModule, self).run_module(module_args, task_vars)

    def on_controller(self, params, args, task_vars):
        """The packs of the Attune at ``api_url``, with drift from ``lock_file``."""
        from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _attune_packs
        from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings

        if params["packs_dir"] or params["verify"]:
            raise TaskFailed("packs_dir and verify do not go with api_url: Attune's API does not expose the pack files",
                             changed=False)
        api = _api.client_from_params(params)
        try:
            settings = load_settings({"cache_dir": params["cache_dir"]}, require_registries=False)
            listing = AttunePacks(api, _attune_packs.UploadRecords(settings.cache_dir, api.api_url), _attune_packs.installed_packs)
            return _drift.installed_report(listing, params["name"], False, lambda: _drift.read_lock(params), self.warn)
        except AttuneError as exc:
            raise TaskFailed.from_error(exc, redact=api.redact, changed=False, api_url=api.api_url)


class AttunePacks(_drift.Listing):
    """The packs of a running Attune as ``attune_pack_installed`` items (``_attune_packs.installed_packs``)."""

    def __init__(self, api, records, installed_packs):
        self.api = api
        self.records = records
        self.installed_packs = installed_packs
        self.where = api.api_url

    def items(self, names):
        return self.installed_packs(self.api, names, self.records)

    def headline(self, installed):
        counts = self.counts(installed)
        return "%d pack%s in Attune %s (%d standard, %d installed by attune.packs)" % (
            len(installed), "" if len(installed) == 1 else "s", self.api.api_url, counts["standard"], counts["managed"])

    def fields(self, installed):
        return {"api_url": self.api.api_url, "counts": self.counts(installed)}

    @staticmethod
    def counts(installed):
        return {"installed": len(installed), "standard": sum(1 for item in installed if item["is_standard"]),
                "managed": sum(1 for item in installed if item["managed"])}
