# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the argument spec of ``attune_pack_installed`` (module and action plugin)."""

from __future__ import annotations


def installed_argument_spec():
    from ansible.module_utils.basic import env_fallback  # pylint: disable=import-outside-toplevel

    return dict(
        name=dict(type="list", elements="str", aliases=["pack"]),
        packs_dir=dict(type="path"),
        verify=dict(type="bool", default=False),
        lock_file=dict(type="path"),
        # private: the lock file's text, read on the controller by the action plugin
        _lock_text=dict(type="str"),
        config_path=dict(type="path"),
        environment=dict(type="str"),
        # a running Attune (handled on the controller by the action plugin); api_url never from ATTUNE_API_URL
        api_url=dict(type="str"),
        api_token=dict(type="str", no_log=True, fallback=(env_fallback, ["ATTUNE_API_TOKEN"])),
        api_username=dict(type="str"),
        api_password=dict(type="str", no_log=True),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        api_timeout=dict(type="int", default=600),
        cache_dir=dict(type="path"),
    )
