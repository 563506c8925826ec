# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: attune_pack
short_description: Resolve Attune pack specs on the controller
version_added: 0.1.0
description:
  - Resolves each term (a pack spec such as V(slack), V(slack@2.1.0), V(slack@^2.1) or V(slack@>=2.0,<3)) to one exact
    version and install source, with the same rules and options as M(attune.packs.attune_pack_info), on the
    controller.
  - Returns one dictionary per term, the same as RV(attune.packs.attune_pack_info#module:packs[]).
  - The registries come from O(registries), else from the controller's Attune config file (O(config_path)).
  - With O(api_url), each term resolves to the entry a running Attune would install, as
    M(attune.packs.attune_pack_info) does with O(attune.packs.attune_pack_info#module:api_url); the token comes from
    O(api_token) or E(ATTUNE_API_TOKEN).
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.attune_api.query
  - attune.packs.registry
  - attune.packs.attune_api
  - attune.packs.registry.resolve
options:
  _terms:
    description: Pack specs to resolve.
    type: list
    elements: str
    required: true
seealso:
  - module: attune.packs.attune_pack_info
"""

EXAMPLES = r"""
---
- name: Pin the version resolved on the controller
  ansible.builtin.debug:
    msg: "slack resolves to {{ lookup('attune.packs.attune_pack', 'slack@^2.1', registries=my_registries).version }}"

- name: Resolve several packs into a variable
  ansible.builtin.set_fact:
    resolved: "{{ query('attune.packs.attune_pack', 'slack@^2.1', 'aws@1.2.0', config_path='/etc/attune/config.yaml') }}"
"""

RETURN = r"""
_raw:
  description: One resolution per term, as RV(attune.packs.attune_pack_info#module:packs[]) describes.
  type: list
  elements: dict
"""

import os

from ansible.errors import AnsibleLookupError
from ansible.module_utils.common.text.converters import to_native
from ansible.plugins.lookup import LookupBase
from ansible.utils.display import Display

from ansible_collections.attune.packs.plugins.module_utils._base._common import REGISTRY_OPTION_NAMES, check_target_options, missing_libraries
from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError

display = Display()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        missing = missing_libraries()
        if missing:
            raise AnsibleLookupError(
                "attune.packs.attune_pack needs these Python libraries on the controller: %s"
                % ", ".join("%s>=%s" % (name, minimum) for name, minimum, _tb in missing)
            )
        from ansible_collections.attune.packs.plugins.module_utils._registry._queries import resolve_all
        from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient

        options = dict((name, self.get_option(name)) for name in REGISTRY_OPTION_NAMES + ("prefer_source", "on_registry_error"))
        try:
            check_target_options({"api_url": self.get_option("api_url")})  # empty is refused (issue 16 item 1)
        except AttuneError as exc:
            raise AnsibleLookupError(to_native(exc))
        if self.get_option("api_url"):  # answer from the registries of a running Attune
            from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _attune_registries

            options.update((name, self.get_option(name)) for name in _api.API_OPTION_NAMES)
            try:
                return _attune_registries.lookup([to_native(term) for term in terms], options, os.environ)
            except AttuneError as exc:
                raise AnsibleLookupError(to_native(exc))
        try:
            client = RegistryClient(load_settings(options))
            return resolve_all(client, [to_native(term) for term in terms], options, display.warning)
        except AttuneError as exc:
            raise AnsibleLookupError(to_native(exc))
