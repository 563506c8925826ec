# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of attune.packs.attune_pack_search: runs the module, or answers on the controller (resolve_on=controller)."""

from __future__ import annotations

from ansible_collections.attune.packs.plugins.module_utils._registry import _queries
from ansible_collections.attune.packs.plugins.plugin_utils._action import QueryAction


class ActionModule(QueryAction):
    MODULE = "attune.packs.attune_pack_search"
    SPEC = staticmethod(_queries.search_argument_spec)
    OPERATION = staticmethod(_queries.search)
