# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of attune.packs.attune_pack_installed: reads ``lock_file`` on the controller (validated there) and
hands its text to the module in the private ``_lock_text``; everything else happens on the host."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_target_options
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        args.pop("_lock_text", None)
        try:
            check_target_options(args)  # an empty api_url is refused, not read as "the host's files" (issue 16 item 1)
        except AttuneError as exc:
            result.update(failed=True, changed=False, msg=str(exc), error=exc.to_dict())
            return result
        if args.get("api_url"):
            try:
                result.update(self.on_attune(args))
            except AttuneError as exc:
                result.update(failed=True, changed=False, msg=str(exc), error=exc.to_dict())
            return result
        if args.get("lock_file"):
            from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile

            try:
                args["_lock_text"] = _lockfile.load(args["lock_file"]).text
            except AttuneError as exc:
                result.update(failed=True, changed=False, msg=str(exc), error=exc.to_dict())
                return result
        result.update(self._execute_module(module_name="attune.packs.attune_pack_installed", module_args=args, task_vars=task_vars))
        return result

    def on_attune(self, args):
        """The packs of the Attune at ``api_url`` (GET /api/v1/packs), with drift from ``lock_file``; on the controller."""
        from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

        from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _attune_packs
        from ansible_collections.attune.packs.plugins.module_utils._pack import _drift, _lockfile
        from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings
        from ansible_collections.attune.packs.plugins.module_utils._pack._installed_spec import installed_argument_spec

        validated = ArgumentSpecValidator(installed_argument_spec()).validate(args)
        if validated.error_messages:
            return dict(failed=True, changed=False, msg="; ".join(validated.error_messages))
        params = validated.validated_parameters
        if params["packs_dir"] or params["verify"]:
            return dict(failed=True, changed=False, msg="packs_dir and verify do not go with api_url: Attune's API does not "
                                                        "expose the pack files")
        api = _api.client_from_params(params)
        try:
            settings = load_settings({"cache_dir": params["cache_dir"]}, require_registries=False)
            records = _attune_packs.UploadRecords(settings.cache_dir, api.api_url)
            names = []
            for name in params["name"] or []:
                if name.strip() and name.strip() not in names:
                    names.append(name.strip())
            packs = _attune_packs.installed_packs(api, names, records)
            lock = _lockfile.load(params["lock_file"]) if params["lock_file"] else None
            drift = None
            if lock is not None:
                by_ref = dict((item["ref"], item) for item in packs)
                items = list(packs)
                for ref in lock.refs():
                    if ref not in by_ref:
                        items.extend(_attune_packs.installed_packs(api, [ref], records))
                drift = _drift.compare(lock.entries(), items, {}, lock.label)
        except AttuneError as exc:
            return dict(failed=True, changed=False, msg=api.redact(str(exc)), error=exc.to_dict(), api_url=api.api_url)
        missing = [item["ref"] for item in packs if not item["installed"]]
        installed = [item for item in packs if item["installed"]]
        standard = sum(1 for item in installed if item["is_standard"])
        managed = sum(1 for item in installed if item["managed"])
        msg = "%d pack%s in Attune %s (%d standard, %d installed by attune.packs)" % (
            len(installed), "" if len(installed) == 1 else "s", api.api_url, standard, managed)
        if missing:
            msg += "; not installed: %s" % ", ".join(missing)
        result = dict(changed=False, packs=packs, missing=missing, api_url=api.api_url,
                      counts={"installed": len(installed), "standard": standard, "managed": managed})
        if drift is not None:
            result["drift"] = drift
            msg += "; " + drift["msg"]
        result["msg"] = msg
        return result
