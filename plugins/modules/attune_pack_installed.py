#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_installed
short_description: List the Attune packs installed on a host, with their provenance, and detect modified packs
version_added: 0.1.0
description:
  - Lists the packs installed in O(packs_dir), one directory per pack, sorted by ref.
  - For packs installed by M(attune.packs.attune_pack) (RV(packs[].managed=true)), reports their provenance from
    C(<packs_dir>/.attune/<ref>.json), outside the pack tree, such as the version, when it was installed, the source, the
    checksum that was verified, the registry and the spec.
  - Pack directories without that metadata, such as packs copied by hand, are listed with RV(packs[].managed=false)
    and the version from their C(pack.yaml).
  - With O(verify=true), recomputes Attune's framed directory checksum of each installed tree and compares it with
    the checksum recorded at installation time. Packs whose files were changed, added or deleted since then are
    reported in RV(modified).
  - With O(api_url), lists the packs of that running Attune instead (C(GET /api/v1/packs), from the controller),
    with their label and whether they are standard packs; RV(packs[].managed) is V(true) for the packs the controller's
    upload record (see M(attune.packs.attune_pack)) shows this collection installed, unchanged since. With
    O(lock_file), the drift of each locked pack. O(verify) and O(packs_dir) do not apply.
  - Reads only. It never changes anything and reports C(changed=false).
extends_documentation_fragment:
  - attune.packs.common.pyyaml
  - attune.packs.attune_api.target
  - attune.packs.attune_api
  - attune.packs.attributes
  - attune.packs.attributes.info_module
options:
  _lock_text:
    description:
      - Private, set by this module's action plugin (the lock file read and validated on the controller, passed to
        the host). Do not set it in a task; use O(lock_file).
    type: str
  name:
    description:
      - Report only these pack refs, in this order. A ref that is not installed is reported with
        RV(packs[].installed=false) and listed in RV(missing). This is not an error.
      - Omitted or empty, every pack in O(packs_dir) is reported.
    type: list
    elements: str
    aliases: [pack]
  packs_dir:
    description:
      - Where packs are installed. Defaults to C(packs_base_dir) of the host's Attune config file, else
        C(/opt/attune/packs).
      - A directory that does not exist holds no packs. This is not an error.
    type: path
  lock_file:
    description:
      - Compare what is installed with this lock file (written by M(attune.packs.attune_pack_lock)) and return the
        drift of each locked pack in RV(drift). The locked packs are always verified, whatever O(verify) says.
      - The file is read on the controller by the action plugin (on the host when the module runs without it).
    type: path
  verify:
    description:
      - Recompute the framed directory checksum of every reported pack and compare it with the C(tree_checksum)
        recorded when it was installed. See RV(packs[].verified) and RV(modified).
      - The whole tree of each pack is read, which takes time for large packs.
    type: bool
    default: false
  config_path:
    description:
      - Attune config file to read C(packs_base_dir) from when O(packs_dir) is not given.
      - Defaults to E(ATTUNE_CONFIG), else C(/etc/attune/config.yaml). C(config.<environment>.yaml) in the same
        directory is overlaid when O(environment) (or E(ATTUNE_ENV)) is set. E(ATTUNE__PACKS_BASE_DIR) overrides
        C(packs_base_dir), as in Attune.
      - A missing file is an error only when it was named explicitly.
    type: path
  environment:
    description:
      - Attune environment whose C(config.<environment>.yaml) overlay is applied. Defaults to E(ATTUNE_ENV).
    type: str
  cache_dir:
    description:
      - With O(api_url), the controller's cache directory holding the upload records of M(attune.packs.attune_pack)
        (its O(attune.packs.attune_pack#module:cache_dir)). Defaults to the same default.
    type: path
notes:
  - The checksum covers the pack's regular files, their paths and contents, as Attune computes it when it registers
    the pack. C(.git) entries are not covered; neither is the top-level C(.attune) record directory of a pack
    installed by version 0.1.0 (such a record is moved out of the tree by the next run of M(attune.packs.attune_pack)
    on that pack). A symlink or special file in an installed tree fails verification, because
    M(attune.packs.attune_pack) never installs them.
  - With O(verify=true), the module waits for a running M(attune.packs.attune_pack) operation on the same
    O(packs_dir) to finish (at most 10 minutes). It never compares a tree that is being replaced.
  - Leftovers of an interrupted installation (hidden C(.attune-*) directories) are not listed. The next
    M(attune.packs.attune_pack) run on the same O(packs_dir) for that pack (not in check mode, and not with
    O(attune.packs.attune_pack#module:api_url), which works on a running Attune instead) cleans them up.
seealso:
  - module: attune.packs.attune_pack
  - module: attune.packs.attune_pack_info
"""

EXAMPLES = r"""
---
- name: List the packs installed on the host
  attune.packs.attune_pack_installed:
  register: installed

- name: Show ref and version of each pack
  ansible.builtin.debug:
    msg: "{{ installed.packs | items2dict(key_name='ref', value_name='version') }}"

- name: Is slack installed, and which version?
  attune.packs.attune_pack_installed:
    name: slack
  register: slack

- name: Install slack where it is missing
  attune.packs.attune_pack:
    name: slack@^2.1
  when: slack.missing | length > 0

- name: Detect packs whose files were changed since they were installed
  attune.packs.attune_pack_installed:
    packs_dir: /srv/attune/packs
    verify: true
  register: drift

- name: Fail on drift or tampering
  ansible.builtin.assert:
    that: drift.modified | length == 0
    fail_msg: "Modified packs: {{ drift.modified | join(', ') }}"

- name: List the packs of a running Attune and compare them with the lock
  attune.packs.attune_pack_installed:
    api_url: https://attune.example.com
    api_token: "{{ vault_attune_token }}"
    lock_file: "{{ playbook_dir }}/packs.lock.yml"
  register: attune_packs

# Ad hoc, across a fleet:
#   ansible all -m attune.packs.attune_pack_installed -a "verify=true"
#   ansible all -m attune.packs.attune_pack_installed -a "packs_dir=/srv/attune/packs name=slack,aws"
"""

RETURN = r"""
packs:
  description:
    - One item per installed pack, sorted by ref.
    - With O(name), one item per requested ref, in the order given, including refs that are not installed.
  returned: success
  type: list
  elements: dict
  contains:
    ref:
      description: Pack ref (the name of its directory).
      type: str
      sample: slack
    installed:
      description: Whether C(<packs_dir>/<ref>) exists. Only V(false) for refs requested in O(name).
      type: bool
      sample: true
    path:
      description: Directory of the pack, V(null) when it is not installed.
      type: str
      sample: /opt/attune/packs/slack
    managed:
      description:
        - Whether the pack has the provenance metadata of M(attune.packs.attune_pack).
        - V(false) for packs installed by other means, and for packs whose metadata cannot be read (see RV(packs[].error)).
      type: bool
      sample: true
    version:
      description: Installed version, from the metadata, else from C(pack.yaml). V(null) when neither can be read.
      type: str
      sample: 2.1.0
    installed_at:
      description: When the pack was installed (RFC 3339, UTC). V(null) for packs that are not managed.
      type: str
      sample: "2026-03-02T10:15:00Z"
    installed_from:
      description:
        - Where the pack was installed from. C(type) (V(git), V(archive) or V(dir)), then C(url) for remote sources,
          C(ref) and C(commit) for git, and C(path) for a local directory or archive. URLs carry no credentials or
          query strings.
        - V(null) for packs that are not managed.
      type: dict
      sample: {type: git, url: "https://github.com/attune-packs/slack.git", ref: v2.1.0, commit: 64db444b0926e56b996af66084e7e8ab6f4d3d81}
    checksum:
      description: The checksum of the source that was verified at installation. V(null) when none was.
      type: str
      sample: "sha256:36dc2af6af0bc0ed97ce413e5eee35c06d8bdd1bb65900eda14616aca7b28a58"
    registry:
      description: Registry the pack was resolved from. V(null) for direct sources and packs that are not managed.
      type: str
      sample: public
    registry_url:
      description: URL of that registry, without credentials.
      type: str
      sample: https://registry.example/index.json
    spec:
      description: The spec the pack was installed for.
      type: str
      sample: slack@^2.1
    tree_checksum:
      description: Framed directory checksum of the installed tree, recorded at installation time.
      type: str
      sample: "sha256:0b6e7b8a5e86d9f0a2c0f3f1b9a37f4b1f0f1e4cf0f1c77f1e3bd1c6a2e9e5d1"
    current_tree_checksum:
      description: The checksum computed now. Only with O(verify=true), else V(null).
      type: str
      sample: "sha256:0b6e7b8a5e86d9f0a2c0f3f1b9a37f4b1f0f1e4cf0f1c77f1e3bd1c6a2e9e5d1"
    verified:
      description:
        - With O(verify=true), V(true) when the files match what was installed.
        - V(false) when they differ (files changed, added or deleted), or when the tree cannot be checksummed, for example
          because it contains a symlink or a file cannot be read. See RV(packs[].verify_reason).
        - V(null) when there is nothing to compare with (a pack that is not managed or not installed), and always without
          O(verify=true).
      type: bool
      sample: true
    verify_reason:
      description: Why RV(packs[].verified) is not V(true). V(null) when it is, or without O(verify=true).
      type: str
      sample: files differ from what was installed
    label:
      description: With O(api_url), the pack's label in Attune.
      type: str
      sample: Slack
    is_standard:
      description: With O(api_url), whether the pack is a standard pack shipped with Attune.
      type: bool
      sample: false
    error:
      description: A problem reading the pack's metadata or C(pack.yaml), else V(null).
      type: str
      sample: null
modified:
  description: Refs of the packs whose RV(packs[].verified) is V(false), sorted.
  returned: when O(verify=true)
  type: list
  elements: str
  sample: [slack]
drift:
  description: With O(lock_file), how the installed packs differ from it.
  returned: when O(lock_file) is given
  type: dict
  contains:
    deviates:
      description: V(true) when a locked pack is not RV(drift.packs[].status=in-sync).
      type: bool
    packs:
      description: One item per pack of the lock file, sorted by ref.
      type: list
      elements: dict
      contains:
        ref:
          description: Pack ref.
          type: str
        status:
          description:
            - V(in-sync) (installed at the locked version, from a source the lock names, files unchanged),
              V(missing), V(unreadable-provenance) (its provenance record cannot be read), V(other-version),
              V(other-source) (installed from a source whose checksum the lock does not name, or not by
              attune.packs) or V(modified) (files changed since installation).
          type: str
          choices: [in-sync, missing, unreadable-provenance, other-version, other-source, modified]
        locked_version:
          description: The version the lock pins.
          type: str
        installed_version:
          description: The installed version, V(null) when missing.
          type: str
    in_sync:
      description: Refs with that status.
      type: list
      elements: str
    missing:
      description: Refs with that status.
      type: list
      elements: str
    unreadable_provenance:
      description: Refs with that status.
      type: list
      elements: str
    other_version:
      description: Refs with that status.
      type: list
      elements: str
    other_source:
      description: Refs with that status.
      type: list
      elements: str
    modified:
      description: Refs with that status.
      type: list
      elements: str
    unlisted:
      description: Managed packs the lock does not name (information, not drift).
      type: list
      elements: str
    lock_file:
      description: The lock file compared with.
      type: str
    msg:
      description: One line for people.
      type: str
      sample: "DRIFT: missing github; other version slack 2.0.0 (locked 2.1.0)"
missing:
  description: Refs requested in O(name) that are not installed, in the order given. Empty without O(name).
  returned: success
  type: list
  elements: str
  sample: [aws]
packs_dir:
  description: The packs directory that was read.
  returned: success and O(api_url) is not given
  type: str
  sample: /opt/attune/packs
api_url:
  description: The Attune API that was read.
  returned: when O(api_url) is given
  type: str
  sample: https://attune.example.com
counts:
  description: With O(api_url), how many packs Attune has (C(installed)), how many are standard, and how many this
    collection installed (C(managed)).
  returned: when O(api_url) is given
  type: dict
  sample: {installed: 3, standard: 1, managed: 2}
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: "3 packs in /opt/attune/packs (2 managed); verified: 1 modified (slack)"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_libraries
from ansible_collections.attune.packs.plugins.module_utils._pack import _drift
from ansible_collections.attune.packs.plugins.module_utils._pack._installed_spec import installed_argument_spec


def main():
    module = AnsibleModule(
        argument_spec=installed_argument_spec(),
        supports_check_mode=True,
    )
    if module.params["api_url"]:
        module.fail_json(msg="api_url is handled on the controller by the attune.packs.attune_pack_installed action plugin")
    check_libraries(module, ["PyYAML"])

    result = _drift.on_host(module.params, module.warn)  # the same report as with api_url, from the packs_dir
    if result.get("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
