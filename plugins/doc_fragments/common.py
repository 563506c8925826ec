# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """The author of every plugin and the Python libraries the plugins need (one place for both)."""

    # plugins that talk to registries
    DOCUMENTATION = r"""
options: {}
author:
  - attune.packs contributors (@attune-system)
requirements:
  - requests >= 2.25
  - PyYAML >= 5.1
  - voluptuous >= 0.12
"""

    # plugins that only read files on the host
    PYYAML = r"""
options: {}
author:
  - attune.packs contributors (@attune-system)
requirements:
  - PyYAML >= 5.1
"""
