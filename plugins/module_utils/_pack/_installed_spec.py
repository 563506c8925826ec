# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the argument spec of ``attune_pack_installed`` (module and action plugin)."""

from __future__ import annotations

from ansible_collections.attune.packs.plugins.module_utils._base._common import api_argument_spec


def installed_argument_spec():
    from ansible.module_utils.basic import env_fallback  # pylint: disable=import-outside-toplevel

    spec = dict(
        name=dict(type="list", elements="str", aliases=["pack"]),
        packs_dir=dict(type="path"),
        verify=dict(type="bool", default=False),
        lock_file=dict(type="path"),
        # private: the lock file's text, read on the controller by the action plugin
        _lock_text=dict(type="str"),
        config_path=dict(type="path"),
        environment=dict(type="str"),
        cache_dir=dict(type="path"),
    )
    # a running Attune (handled on the controller by the action plugin); api_url never from ATTUNE_API_URL
    spec.update(api_argument_spec(env_fallback, url_from_env=False))
    return spec
