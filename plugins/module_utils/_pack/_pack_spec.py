# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the argument spec of ``attune_pack`` (module and action plugin)."""

from __future__ import annotations

from ansible_collections.attune.packs.plugins.module_utils._base._common import (
    api_argument_spec, controller_argument_spec, registry_argument_spec, resolve_argument_spec,
)


def pack_argument_spec():
    """Argument spec of ``attune_pack`` (module and action plugin)."""
    spec = registry_argument_spec()
    spec.update(resolve_argument_spec())
    spec.update(controller_argument_spec())
    spec.update(
        name=dict(type="raw", aliases=["pack"]),
        state=dict(type="str", choices=["present", "latest", "absent"], default="present"),
        src=dict(type="str"),
        version=dict(type="str"),
        checksum=dict(type="str"),
        source=dict(type="raw"),
        lock_file=dict(type="path"),
        # None: host, or controller with api_url (the action plugin decides)
        fetch_on=dict(type="str", choices=["host", "controller", "attune"]),
        force=dict(type="bool", default=False),
        # issue 18: reinstall a managed pack whose tree no longer matches the tree_checksum of its record
        verify=dict(type="bool", default=False),
        remove_unlisted=dict(type="bool", default=False),
        packs_dir=dict(type="path"),
        allow_unverified=dict(type="bool"),
        verify_checksums=dict(type="bool"),
        allow_local_git=dict(type="bool", default=False),
        archive_max_bytes=dict(type="int"),
        # None: extract_archive's own defaults (_extract.DEFAULT_MAX_*), not repeated here
        max_entries=dict(type="int"),
        max_entry_bytes=dict(type="int"),
        max_total_bytes=dict(type="int"),
        skip_tests=dict(type="bool", default=False),
        skip_deps=dict(type="bool", default=False),
        # private: set by the action plugin for the host (like ansible.builtin.copy's _original_basename)
        _resolved=dict(type="raw"),
        _local_copies=dict(type="dict"),
    )
    # a running Attune (issue 11; doc fragment attune.packs.attune_api, handled on the controller by the action
    # plugin); validate_certs/ca_path are the registry options
    from ansible.module_utils.basic import env_fallback  # pylint: disable=import-outside-toplevel

    spec.update(api_argument_spec(env_fallback, url_from_env=False, tls=False))
    return spec


PACK_CONSTRAINTS = dict(
    mutually_exclusive=[("src", "source"), ("src", "lock_file"), ("source", "lock_file")],
    required_by={"version": "src", "checksum": "src"},
    required_one_of=[("name", "source")],
)
