# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of attune.packs.attune_pack_installed: reads ``lock_file`` on the controller (validated there) and
hands its text to the module in the private ``_lock_text``; everything else happens on the host."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

from ansible_collections.attune.packs.plugins.module_utils._errors import AttuneError


class ActionModule(ActionBase):

    def run(self, tmp=None, task_vars=None):
        result = super(ActionModule, self).run(tmp, task_vars)
        args = dict(self._task.args)
        args.pop("_lock_text", None)
        if args.get("lock_file"):
            from ansible_collections.attune.packs.plugins.module_utils import _lockfile

            try:
                args["_lock_text"] = _lockfile.load(args["lock_file"]).text
            except AttuneError as exc:
                result.update(failed=True, changed=False, msg=str(exc), error=exc.to_dict())
                return result
        result.update(self._execute_module(module_name="attune.packs.attune_pack_installed", module_args=args, task_vars=task_vars))
        return result
