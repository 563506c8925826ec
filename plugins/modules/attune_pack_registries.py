#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_registries
short_description: List the Attune pack registries a host is configured with
version_added: 0.1.0
description:
  - Lists the pack registries of the host's Attune configuration (or of O(registries)) in the order they are
    consulted, that is by ascending priority, equal priorities in configuration order.
  - With O(probe=true) each enabled registry's index is fetched (through the shared cache) and validated, and its
    reachability, pack count, published name and last update are added.
  - Header values are never returned, only header names; credentials in URLs are redacted.
  - With O(api_url), the list is Attune's own (C(GET /api/v1/pack-indices)), the registries in its database, in
    Attune's order, with Attune's ids and enabled flags; RV(registries[].priority) is Attune's position. The config
    file's indices, which Attune also consults while its database holds only the standard index, are not part of
    Attune's list. With O(probe=true), RV(registries[].pack_count) is the number of packs Attune's browse lists for
    the registry; Attune does not report fetch failures, so an empty answer leaves RV(registries[].reachable) V(null).
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.attune_api.query
  - attune.packs.registry
  - attune.packs.attune_api
  - attune.packs.registry.controller
  - attune.packs.attributes
  - attune.packs.attributes.info_module
options:
  probe:
    description:
      - Fetch and validate every enabled registry's index and report the outcome per registry.
      - A failing registry does not fail the task; it is reported in RV(registries[].error).
    type: bool
    default: false
seealso:
  - module: attune.packs.attune_pack_search
  - module: attune.packs.attune_pack_info
  - module: attune.packs.attune_registry_config
    description: >-
      Writes the registry configuration this module reads; the role C(attune.packs.registry_config)
      drives it from inventory.
"""

EXAMPLES = r"""
---
- name: List the registries configured in /etc/attune/config.yaml
  attune.packs.attune_pack_registries:
  register: registries

- name: Check that every registry answers with a valid index
  attune.packs.attune_pack_registries:
    probe: true
  register: probe

- name: Fail when a registry is unreachable
  ansible.builtin.assert:
    that: probe.registries | selectattr('enabled') | rejectattr('reachable') | list | length == 0

- name: List registries given inline instead of the config file
  attune.packs.attune_pack_registries:
    registries:
      - name: corp
        url: https://packs.example.com/index.json
        priority: 1
        headers:
          Authorization: "Bearer {{ corp_registry_token }}"
      - name: public
        url: https://raw.githubusercontent.com/attune-system/index/main/index.json
        priority: 10
"""

RETURN = r"""
registries:
  description: The configured registries in search order, disabled ones included.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Configured name, else the redacted URL.
      type: str
      sample: corp
    url:
      description: Index URL with credentials and query string redacted.
      type: str
      sample: https://packs.example.com/index.json
    priority:
      description: Priority; lower is consulted first.
      type: int
      sample: 1
    id:
      description: Attune's id of the registry.
      returned: O(api_url) was given
      type: int
      sample: 2
    position:
      description: Attune's position (also in RV(registries[].priority)); lower is searched first.
      returned: O(api_url) was given
      type: int
      sample: 1
    enabled:
      description: Whether the registry is consulted.
      type: bool
      sample: true
    headers:
      description: Names of the headers sent to the registry (never their values).
      type: list
      elements: str
      sample: [Authorization]
    reachable:
      description: Whether the index was fetched and validated. V(null) for disabled registries.
      returned: O(probe=true)
      type: bool
      sample: true
    pack_count:
      description: Number of pack entries in the index.
      returned: O(probe=true) and the registry is reachable
      type: int
      sample: 44
    registry_name:
      description: The C(registry_name) the index publishes.
      returned: O(probe=true) and the registry is reachable
      type: str
      sample: Attune Standard Pack Index
    last_updated:
      description: The C(last_updated) timestamp the index publishes.
      returned: O(probe=true) and the registry is reachable
      type: str
      sample: "2026-08-22T01:53:58Z"
    error:
      description: Why the registry could not be used (V(disabled) for disabled registries).
      returned: O(probe=true) and the registry is disabled or unreachable
      type: str
      sample: "registry corp: authentication failed: HTTP 401 from https://packs.example.com/index.json"
enabled:
  description: Value of C(pack_registry.enabled). When V(false), no registry is consulted and RV(msg) says so.
  returned: success
  type: bool
  sample: true
config_path:
  description: The Attune config file that was read, V(null) when only O(registries) was used.
  returned: success
  type: str
  sample: /etc/attune/config.yaml
api_url:
  description: The Attune API that answered.
  returned: O(api_url) was given
  type: str
  sample: https://attune.example.com
msg:
  description: Summary for people.
  returned: success
  type: str
  sample: 2 registries configured (2 enabled)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import controller_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._registry._queries import registries, registries_argument_spec, refuse_api_url, run


def main():
    argument_spec = registries_argument_spec()
    argument_spec.update(controller_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["api_url"]:  # answered on the controller by the action plugin (issue 17)
        refuse_api_url(module)
    run(module, lambda client: registries(client, module.params, module.warn))


if __name__ == "__main__":
    main()
