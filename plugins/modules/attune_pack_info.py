#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_info
short_description: Resolve Attune pack specs to one exact version and install source
version_added: 0.1.0
description:
  - Resolves each spec in O(name) (V(slack), V(slack@2.1.0), V(slack@latest), V(slack@^2.1), V(slack@~2.1.0),
    V(slack@>=2.0,<3)) to one exact version, registry and install source.
  - The first enabled registry, in priority order, that B(holds the ref) wins; the highest version there that
    matches is chosen. Pre-releases only match a range that names a pre-release of the same version.
  - With O(api_url), the answer is the entry Attune itself would install (C(GET /api/v1/pack-indices/packs/{ref}),
    C(routes/packs.rs) C(get_indexed_pack)), that is the first entry of the ref in the first of Attune's enabled registries
    that holds it. Attune knows one version per ref there; a version or range in O(name) is matched against it with
    the rules below, and the task fails, naming the version Attune offers, when it does not match. Attune's own
    install accepts only V(ref), V(ref@latest) or exactly that version (RV(packs[].attune_source)). Attune skips a
    registry it cannot fetch when it answers this query, while its install fails closed on it; the API does not
    report such failures, so neither can this module. O(registry) cannot be combined with O(api_url).
  - Resolution is fail-closed. If a registry that comes first cannot be fetched or validated, the task fails instead
    of falling through to a lower-priority registry that could carry a different pack with the same ref
    (O(on_registry_error=skip) opts out). If the winning registry has the ref but no matching version, the task
    fails and names the versions it has; lower registries are never consulted for it.
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.attune_api.query
  - attune.packs.registry
  - attune.packs.attune_api
  - attune.packs.registry.controller
  - attune.packs.registry.resolve
  - attune.packs.attributes
  - attune.packs.attributes.info_module
options:
  name:
    description:
      - One pack spec, or a list of them. A single string is never split on commas, so V(slack@>=2.0,<3) is one spec.
      - C(ref) alone means the latest release.
    type: raw
    required: true
    aliases: [spec]
seealso:
  - module: attune.packs.attune_pack_search
  - plugin: attune.packs.attune_pack
    plugin_type: lookup
    description: The same resolution on the controller, in templates and C(vars).
"""

EXAMPLES = r"""
---
- name: Resolve one pack
  attune.packs.attune_pack_info:
    name: slack@^2.1
  register: slack

- name: Show the exact version and where it comes from
  ansible.builtin.debug:
    msg: "{{ slack.packs[0].ref }} {{ slack.packs[0].version }} from {{ slack.packs[0].registry }} ({{ slack.packs[0].source.url }})"

- name: Resolve several packs at once, preferring archives
  attune.packs.attune_pack_info:
    name:
      - slack@>=2.0,<3
      - aws@1.2.0
      - github
    prefer_source: archive
  register: resolved

- name: Resolve from one registry only
  attune.packs.attune_pack_info:
    name: monitoring
    registry: corp
"""

RETURN = r"""
packs:
  description: One result per spec, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    ref:
      description: Pack ref.
      type: str
      sample: slack
    spec:
      description: The spec as given.
      type: str
      sample: slack@^2.1
    version:
      description: The exact version chosen.
      type: str
      sample: 2.1.0
    registry:
      description: Configured name of the registry that holds the ref.
      type: str
      sample: public
    registry_url:
      description: URL of that registry (redacted).
      type: str
      sample: https://registry.example/index.json
    registry_id:
      description: Attune's id of the registry (V(null) for an index of Attune's config file).
      returned: O(api_url) was given
      type: int
      sample: 2
    attune_source:
      description: The C(source) Attune's install accepts for this entry (V(ref@version)).
      returned: O(api_url) was given
      type: str
      sample: slack@2.1.0
    registry_priority:
      description: Priority of that registry.
      type: int
      sample: 10
    source:
      description: The preferred install source (O(prefer_source)).
      type: dict
      contains:
        type:
          description: V(git) or V(archive).
          type: str
        url:
          description: Source URL.
          type: str
        ref:
          description: Git commit, branch or tag. Only for git sources.
          type: str
        checksum:
          description: C(sha256:…) of the archive bytes, or Attune's framed directory checksum of the git tree.
          type: str
      sample:
        type: git
        url: https://github.com/attune-packs/slack.git
        ref: 0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2
        checksum: "sha256:dd59734f1f73978cd6e6c9b2415db4f7aeaa0813180eb3dfbe2714d2247250d1"
    fallback_source:
      description: The source Attune tries if the git source fails (the entry's first archive), else V(null).
      type: dict
      sample:
        type: archive
        url: https://codeload.github.com/attune-packs/slack/tar.gz/0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2
        checksum: "sha256:0d260c8b6c5fea4550bf0ae2ac23f8015502b6e053cb869614b58df29775698a"
    sources:
      description: Every install source of the entry, in index order.
      type: list
      elements: dict
      sample: []
    entry:
      description: The full index entry (label, description, contents, dependencies, meta …).
      type: dict
      sample: {}
    shadowed_in:
      description: Lower-priority registries that also hold this ref and were not used.
      type: list
      elements: str
      sample: [public]
    skipped_registries:
      description: Higher-priority registries skipped because of O(on_registry_error=skip), with the error.
      type: list
      elements: dict
      sample: []
skipped_registries:
  description:
    - The registries skipped because of O(on_registry_error=skip) while resolving any of the specs, each once, with the
      error (also per pack in RV(packs[].skipped_registries)). Empty when none was skipped, and always empty with O(api_url).
  returned: always
  type: list
  elements: dict
  sample:
    - name: corp
      url: https://packs.corp.example/index.json
      error: "registry corp is unreachable: ..."
api_url:
  description: The Attune API that answered.
  returned: O(api_url) was given
  type: str
  sample: https://attune.example.com
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: "slack@^2.1 -> slack 2.1.0 (registry public)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import controller_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._registry._queries import info, info_argument_spec, refuse_api_url, run


def main():
    argument_spec = info_argument_spec()
    argument_spec.update(controller_argument_spec())
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if module.params["api_url"]:  # answered on the controller by the action plugin (issue 17)
        refuse_api_url(module)
    run(module, lambda client: info(client, module.params, module.warn))


if __name__ == "__main__":
    main()
