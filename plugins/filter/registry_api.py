# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the registry_config role's API target (docs: registry_positions.yml, registry_removals.yml)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.attune.packs.plugins.module_utils._attune import _attune_registries
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError


def registry_positions(indices, offset=1):
    try:
        return _attune_registries.position_plan(indices, offset=offset)
    except AttuneError as exc:
        raise AnsibleFilterError(str(exc))


def registry_removals(rows, indices, remove_standard=False, standard_pattern=_attune_registries.STANDARD_INDEX_PATTERN,
                      kept=None):
    try:
        return _attune_registries.removal_plan(rows, indices, remove_standard=remove_standard,
                                               standard_pattern=standard_pattern, kept=kept)
    except AttuneError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"registry_positions": registry_positions, "registry_removals": registry_removals}
