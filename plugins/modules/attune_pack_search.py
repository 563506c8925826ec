#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_search
short_description: Search Attune pack registries by keyword
version_added: 0.1.0
description:
  - Searches the enabled pack registries, in priority order, for packs whose ref, label, description or one of whose
    keywords contains O(query) (case-insensitive). An empty O(query) lists every pack.
  - Search is best-effort, like Attune's. A registry that cannot be fetched or validated is reported in
    RV(failed_registries) and as a warning while the others answer. The task fails only when every registry failed.
  - Results are de-duplicated by ref, the first registry wins and RV(packs[].also_in) names the registries it
    shadows. When a registry lists several versions of a ref, the highest is shown.
  - Works ad hoc, for example C(ansible workers -m attune.packs.attune_pack_search -a query=slack).
  - With O(api_url), the answer is Attune's own browse (C(GET /api/v1/pack-indices/packs?q=)) over the registries
    Attune uses, in its order; for example
    C(ansible attune_prod -m attune.packs.attune_pack_search -a 'query=slack api_url=https://attune.example.com').
    Attune matches the same fields (and C(use_case)), shows one entry per ref (the first registry's, as listed
    there), and skips registries it cannot fetch without saying so, so RV(failed_registries) is empty and
    RV(packs[].also_in) too. O(registry) selects one of Attune's registries by id, name or URL; with
    O(dedupe=false) each enabled registry is browsed on its own.
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.attune_api.query
  - attune.packs.registry
  - attune.packs.attune_api
  - attune.packs.registry.controller
  - attune.packs.attributes
  - attune.packs.attributes.info_module
options:
  query:
    description:
      - Text to look for. Matches a substring of the ref, label, description or any keyword, ignoring case.
    type: str
    default: ""
  dedupe:
    description:
      - Return one result per ref (the first registry's). With V(false), every matching entry of every registry is
        returned, each version separately.
    type: bool
    default: true
seealso:
  - module: attune.packs.attune_pack_info
  - module: attune.packs.attune_pack_registries
  - plugin: attune.packs.attune_pack
    plugin_type: lookup
"""

EXAMPLES = r"""
---
- name: Search every configured registry for Slack packs
  attune.packs.attune_pack_search:
    query: slack
  register: found

- name: Show what was found
  ansible.builtin.debug:
    msg: "{{ found.packs | map(attribute='ref') | list }}"

- name: List everything one registry offers
  attune.packs.attune_pack_search:
    registry: corp

- name: Search a registry given inline, with a private CA
  attune.packs.attune_pack_search:
    query: monitoring
    registries:
      - name: corp
        url: https://packs.corp.example/index.json
        headers:
          Authorization: "Bearer {{ vault_registry_token }}"
    ca_path: /etc/pki/corp-ca.pem
"""

RETURN = r"""
packs:
  description: Matching packs in registry priority order.
  returned: success
  type: list
  elements: dict
  contains:
    ref:
      description: Pack ref.
      type: str
      sample: slack
    version:
      description: Version in the index (the highest of the registry's entries for this ref).
      type: str
      sample: 2.1.0
    label:
      description: Human-readable name.
      type: str
      sample: Slack Integration
    description:
      description: Description from the index.
      type: str
      sample: Send messages and monitor Slack channels
    author:
      description: Author from the index.
      type: str
      sample: Attune Community
    keywords:
      description: Keywords from the index.
      type: list
      elements: str
      sample: [chat, notifications]
    registry:
      description: Configured name of the registry the result comes from.
      type: str
      sample: corp
    registry_url:
      description: URL of that registry (redacted).
      type: str
      sample: https://packs.corp.example/index.json
    priority:
      description: Priority of that registry.
      type: int
      sample: 1
    registry_id:
      description: Attune's id of the registry (V(null) for an index of Attune's config file).
      returned: O(api_url) was given
      type: int
      sample: 2
    also_in:
      description: Lower-priority registries that also list this ref (shadowed). Empty when O(dedupe=false).
      type: list
      elements: str
      sample: [public]
failed_registries:
  description: Registries that could not be searched.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Configured name.
      type: str
      sample: mirror
    url:
      description: Registry URL (redacted).
      type: str
      sample: https://mirror.example/index.json
    error:
      description: Why, naming the registry and the cause.
      type: str
      sample: "registry mirror: registry unreachable: https://mirror.example/index.json: connection refused"
api_url:
  description: The Attune API that answered.
  returned: O(api_url) was given
  type: str
  sample: https://attune.example.com
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: 3 packs found in 2 registries
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import controller_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._registry._queries import search, search_argument_spec, refuse_api_url, run


def main():
    argument_spec = search_argument_spec()
    argument_spec.update(controller_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["api_url"]:  # answered on the controller by the action plugin (issue 17)
        refuse_api_url(module)
    run(module, lambda client: search(client, module.params, module.warn))


if __name__ == "__main__":
    main()
