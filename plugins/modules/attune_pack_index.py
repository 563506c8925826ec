#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_index
short_description: Manage an Attune pack registry index file declaratively (add, replace, remove, merge)
version_added: 0.3.0
description:
  - Writes the registry index file O(path) (format 1.0) that Attune and this collection read, the way Attune's
    C(attune pack index-update) and C(index-merge) and the builder of Attune's public index write it.
  - O(entries) are added, or replace the entry of the same ref (typically the RV(attune.packs.attune_pack_index_entry#module:entry)
    of a pack). O(remove) drops refs. O(merge) builds the pack list from several indices instead of the current file.
  - "The index lists one entry per ref, sorted by ref. Attune installs the first entry it finds for a ref, so an index
    with several entries of one ref (a version history, which this collection still reads) is written with only the
    highest version of each ref, and RV(collapsed) names those refs."
  - C(last_updated) changes only when the content changes, so an unchanged run does not write the file.
  - "Before writing, the whole index is validated as Attune's C(validate_pack_index) and the public index's
    C(validate_index.py --custom) validate it: format 1.0 in strict mode, an https C(registry_url), refs that match
    C(^[a-z][a-z0-9_-]*$) and are unique and sorted, semantic versions, non-empty label, author and license, unique
    keywords, https source URLs without credentials, query string or fragment, C(sha256:) checksums, git sources
    pinned to a 40-hex commit (unless O(allow_branch_refs)), and unique component names. Errors name the entry and
    the field."
  - The file is replaced atomically, or not at all. An existing file keeps its mode and owner. A new file is created
    with mode C(0644).
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.registry
  - attune.packs.attributes
options:
  path:
    description:
      - The index file. It is created when missing. Its directory must exist.
    type: path
    required: true
  registry_name:
    description:
      - The index's C(registry_name). Required when the file is created without O(merge).
      - When omitted, the current file's is kept, or the first O(merge) input's.
    type: str
  registry_url:
    description:
      - The index's C(registry_url) (https). Required when the file is created without O(merge).
      - When omitted, the current file's is kept, or the first O(merge) input's.
    type: str
  entries:
    description:
      - Index entries to add, or to put in place of the entry with the same C(ref).
      - Each ref may appear once.
    type: list
    elements: dict
    default: []
  remove:
    description:
      - Refs to remove. A ref not in the index is ignored.
    type: list
    elements: str
    default: []
  replace:
    description:
      - Whether an entry of O(entries) may replace an existing entry of the same ref with other content.
      - With V(false), such an entry fails the task (Attune's C(index-update) without C(--update)). An identical entry
        is never an error.
    type: bool
    default: true
  merge:
    description:
      - Indices whose packs make up the index, with Attune's C(index-merge) semantics. Every input is validated first.
        For a ref in several inputs, the highest semantic version wins, and an equal version keeps the first input's
        entry. The registry name and URL come from the first input (unless O(registry_name) or O(registry_url) are
        given). C(last_updated) is the latest input's.
      - Each item is a local file path, an C(https://) or C(file://) URL, or the name of a registry in O(registries).
        URLs are fetched with the registry options (O(ca_path), O(timeout), and the O(registries[].headers) of a
        registry with that URL).
      - The current file is not an input unless it is listed. O(entries) and O(remove) apply after the merge.
    type: list
    elements: str
  allow_branch_refs:
    description:
      - Accept git sources whose C(ref) is a branch or tag. Only for development indices.
    type: bool
    default: false
  strict:
    description:
      - Not used. Inputs and the result are always validated in strict mode.
attributes:
  check_mode:
    support: full
    details:
      - Computes and validates the new index and reports whether it would change. The file is not written.
  diff_mode:
    support: full
    details:
      - Shows the index text before and after.
  idempotent:
    support: full
notes:
  - C(changed) is V(true) only when the text of the file changes.
  - The registry options are only used to fetch O(merge) URLs.
seealso:
  - module: attune.packs.attune_pack_index_entry
  - module: attune.packs.attune_pack_mirror
"""

EXAMPLES = r"""
---
- name: Compute the entry of the pack CI checked out
  attune.packs.attune_pack_index_entry:
    path: "{{ pack_checkout }}"
    git_url: https://github.com/example-packs/network.git
    git_ref: "{{ commit }}"
  register: network

- name: Put it in the index (added, or replacing the previous network entry)
  attune.packs.attune_pack_index:
    path: "{{ index_checkout }}/index.json"
    registry_name: Example Pack Index
    registry_url: https://packs.example.com/index.json
    entries:
      - "{{ network.entry }}"
    remove: [legacy_network]

- name: Merge a team index into the company index
  attune.packs.attune_pack_index:
    path: /srv/packs/index.json
    merge:
      - /srv/packs/company.json
      - https://team.example.com/packs/index.json
    registry_name: Company Packs
    registry_url: https://packs.example.com/index.json
"""

RETURN = r"""
path:
  description: The index file.
  returned: always
  type: str
  sample: /srv/packs/index.json
index:
  description: The index as written (or as it would be written in check mode).
  returned: success
  type: dict
  sample:
    registry_name: Example Pack Index
    registry_url: https://packs.example.com/index.json
    version: "1.0"
    last_updated: "2026-09-01T10:00:00Z"
    packs: []
added:
  description: Refs of O(entries) that were not in the index.
  returned: success
  type: list
  elements: str
  sample: [network]
replaced:
  description: Refs of O(entries) whose entry changed.
  returned: success
  type: list
  elements: str
  sample: []
unchanged:
  description: Refs of O(entries) already in the index with the same content.
  returned: success
  type: list
  elements: str
  sample: []
removed:
  description: Refs of O(remove) that were in the index.
  returned: success
  type: list
  elements: str
  sample: [legacy_network]
collapsed:
  description: Refs that had several entries in the current file. Only the highest version of each was kept.
  returned: success
  type: list
  elements: str
  sample: []
duplicates_resolved:
  description: How many entries of O(merge) inputs lost to another entry of the same ref.
  returned: success
  type: int
  sample: 0
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: "index /srv/packs/index.json: added network; removed legacy_network (3 packs)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_libraries, fail, registry_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.module_utils._publishing import _index_task  # imports no library itself


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(
        path=dict(type="path", required=True),
        registry_name=dict(type="str"),
        registry_url=dict(type="str"),
        entries=dict(type="list", elements="dict", default=[]),
        remove=dict(type="list", elements="str", default=[]),
        replace=dict(type="bool", default=True),
        merge=dict(type="list", elements="str"),
        allow_branch_refs=dict(type="bool", default=False),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_libraries(module, _index_task.required_libraries(module.params))
    try:
        result = _index_task.run_index(module.params, check_mode=module.check_mode,
                                       diff=module._diff, warn=module.warn)  # pylint: disable=protected-access
    except AttuneError as exc:
        fail(module, exc, changed=False, path=module.params["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
