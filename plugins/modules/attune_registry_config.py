#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_registry_config
short_description: Write the pack_registry section of an Attune config file
version_added: 0.1.0
description:
  - Writes the C(pack_registry) section of Attune's C(config.yaml) so that Attune and the modules of this collection
    (which read that file by default) use the same pack registries.
  - The section is validated with the collection's own validator before anything is written; invalid input fails with
    a message naming the bad key and registry entry, and the file is left untouched.
  - The module owns the top-level C(pack_registry) key only. Every other top-level section (C(database), C(security),
    C(packs_base_dir), ...) keeps its values. The text outside the C(pack_registry) block, comments included, is kept
    as it is; the block itself, comments inside it included, is replaced as a whole. When the block cannot be spliced
    without changing another section (for example a top-level flow mapping, or an anchor defined inside the block
    and used elsewhere), the whole file is rewritten with every value kept but without comments, and
    RV(comments_preserved) is V(false).
  - The section is written in full, every key with an explicit value, so that what Attune reads does not depend on
    its built-in defaults.
  - The file is replaced atomically (a temporary file in the same directory, renamed over the old one). Owner, group
    and mode are applied to the temporary file before the rename, so the file, which carries registry tokens, never
    exists with looser permissions, not even for an instant. A failure at any point leaves the previous file as it
    was.
  - Header values are secret. They are never returned and are shown as C(<redacted>) in diffs.
extends_documentation_fragment:
  - attune.packs.common.PYYAML
  - ansible.builtin.files
  - attune.packs.attributes
options:
  path:
    description:
      - The Attune config file.
      - Created, with its directory when O(create_dirs=true), when missing.
      - An existing file that is not valid YAML, or whose top level is not a mapping, is never rewritten; the module
        fails instead.
    type: path
    default: /etc/attune/config.yaml
    aliases: [dest]
  pack_registry:
    description:
      - The whole C(pack_registry) section. Keys that are not given get Attune's defaults.
      - The keys and their meaning are those of Attune's configuration (see the collection's docs).
    type: dict
    default: {}
    suboptions:
      enabled:
        description:
          - V(false) disables index resolution and all remote pack traffic in Attune.
        type: bool
        default: true
      indices:
        description:
          - The registries, consulted in ascending O(pack_registry.indices[].priority); equal priorities keep list order.
        type: list
        elements: dict
        default: []
        suboptions:
          url:
            description:
              - URL of the index file. V(https://…), V(file:///path), or V(http://…) when
                O(pack_registry.allow_http=true).
              - Query strings and credentials in the URL are refused; put credentials in
                O(pack_registry.indices[].headers).
              - Required in every entry.
            type: str
          name:
            description:
              - Name of the registry, unique among the entries.
            type: str
          priority:
            description:
              - Lower numbers are consulted first.
            type: int
            default: 100
          enabled:
            description:
              - Disabled registries are kept in the file but never consulted.
            type: bool
            default: true
          headers:
            description:
              - HTTP headers sent to this registry, typically C(Authorization) with a bearer token. Values are literal
                (Attune does not expand C(${VAR})).
              - Values are secret; they never appear in results or diffs.
              - Headers managed by the HTTP client (C(Host), C(Content-Length), C(Connection), C(Proxy-*),
                C(X-Forwarded*), ...) are refused.
            type: dict
          ca_path:
            description:
              - CA bundle (PEM) used by the modules of this collection to verify this registry's certificate.
              - An extension of this collection; written only when set.
            type: path
      cache_enabled:
        description:
          - Whether fetched indices are cached.
        type: bool
        default: true
      cache_ttl:
        description:
          - Seconds a fetched index stays fresh.
        type: int
        default: 3600
      timeout:
        description:
          - Total download timeout in seconds.
        type: int
        default: 120
      connect_timeout:
        description:
          - Connection timeout in seconds.
        type: int
        default: 10
      index_max_bytes:
        description:
          - Larger index bodies are rejected.
        type: int
        default: 10485760
      archive_max_bytes:
        description:
          - Larger pack archives are rejected.
        type: int
        default: 104857600
      verify_checksums:
        description:
          - Verify pack checksums.
        type: bool
        default: true
      allow_http:
        description:
          - Permit plain V(http://) registries and sources.
        type: bool
        default: false
      allow_unverified_direct_remote_installs:
        description:
          - Permit direct git/archive URL installs without registry checksums.
        type: bool
        default: false
      approved_public_hosts:
        description:
          - Public hosts that may be contacted. The default is the GitHub hosts the Attune standard index needs.
        type: list
        elements: str
        default: [github.com, codeload.github.com, raw.githubusercontent.com]
      approved_private_hosts:
        description:
          - Private hosts that may be contacted.
        type: list
        elements: str
        default: []
      approved_private_cidrs:
        description:
          - Private networks (CIDR) that may be contacted.
        type: list
        elements: str
        default: []
  backup:
    description:
      - Keep a copy of the old file, named after it with a time stamp, when the file changes.
      - The backup gets the same owner, group and mode as the new file, since it carries the old tokens.
    type: bool
    default: false
  create_dirs:
    description:
      - Create the directory of O(path) (mode C(0755)) when it is missing. When V(false), a missing directory is an error.
    type: bool
    default: true
  variable_prefix:
    description:
      - Report errors in terms of variables with this prefix instead of C(pack_registry.) keys, for example
        C(registry_config_indices[1] (corp).headers) instead of C(pack_registry.indices[1] (corp).headers).
      - Used by the P(attune.packs.registry_config#role) role.
    type: str
  mode:
    description:
      - The permissions of the file, in octal (quote it, for example V("0640"), so that YAML keeps the leading zero) or in
        symbolic form (V(u=rw,g=r)).
      - When not given, a new file gets mode C(0600) and an existing file keeps its mode, except that a file that will
        hold header values is never left readable by others - an existing file with any permission for others
        (for example C(0644)) gets its group and other permissions removed (C(0600)), with a warning and
        RV(mode_tightened=true).
      - Backups get the same mode.
    type: raw
notes:
  - The comparison that decides whether the task reports a change is made on the parsed C(pack_registry) section, so reformatting or
    comments alone never cause a rewrite; a file whose section was written with implicit defaults is rewritten once
    with explicit values.
attributes:
  check_mode:
    support: full
    details:
      - Computes the new file, its permissions and the diff without writing anything.
  diff_mode:
    support: full
    details:
      - Shows the C(pack_registry) section before and after, header values shown as C(<redacted>) (or
        C(<redacted, changed>) when a value changes), plus owner, group and mode changes.
  idempotent:
    support: full
seealso:
  - name: The attune.packs.registry_config role
    link: https://github.com/attune-system/attune.packs/tree/main/roles/registry_config
    description: Configures this section from inventory variables on a whole fleet (C(ansible-doc -t role attune.packs.registry_config)).
  - module: attune.packs.attune_pack_registries
  - module: attune.packs.attune_pack_search
"""

EXAMPLES = r"""
---
- name: Configure a private registry before the public index
  attune.packs.attune_registry_config:
    path: /etc/attune/config.yaml
    owner: root
    group: attune
    mode: "0640"
    backup: true
    pack_registry:
      indices:
        - name: corp
          url: https://packs.example.com/index.json
          priority: 1
          headers:
            Authorization: "Bearer {{ vault_corp_registry_token }}"
        - name: public
          url: https://raw.githubusercontent.com/attune-system/index/main/index.json
          priority: 10
      cache_ttl: 600
      approved_private_hosts:
        - packs.example.com

- name: Disable all remote pack traffic
  attune.packs.attune_registry_config:
    pack_registry:
      enabled: false
"""

RETURN = r"""
path:
  description: The config file.
  returned: always
  type: str
  sample: /etc/attune/config.yaml
pack_registry:
  description:
    - The section as written (or as it would be written in check mode), every key explicit.
    - Header values are replaced by C(<redacted>); URLs are redacted.
  returned: success
  type: dict
  sample:
    enabled: true
    indices:
      - url: https://packs.example.com/index.json
        name: corp
        priority: 1
        enabled: true
        headers:
          Authorization: <redacted>
    cache_ttl: 600
    cache_enabled: true
    timeout: 120
    connect_timeout: 10
    index_max_bytes: 10485760
    archive_max_bytes: 104857600
    verify_checksums: true
    allow_http: false
    allow_unverified_direct_remote_installs: false
    approved_public_hosts: [github.com, codeload.github.com, raw.githubusercontent.com]
    approved_private_hosts: [packs.example.com]
    approved_private_cidrs: []
content_changed:
  description: Whether the C(pack_registry) section differs (or differed) from the desired one.
  returned: success
  type: bool
  sample: true
created:
  description: Whether the file did not exist before.
  returned: success
  type: bool
  sample: false
comments_preserved:
  description:
    - Whether the text outside the C(pack_registry) block, comments included, is kept as it was.
    - V(false) when the file had to be rewritten as a whole; every value of the other sections is still kept.
  returned: success
  type: bool
  sample: true
mode_tightened:
  description:
    - Whether the mode of an existing file was tightened (group and other permissions removed) because O(mode) was
      not given, the file holds header values and others had permissions on it.
  returned: success
  type: bool
  sample: false
backup_file:
  description: The backup of the old file.
  returned: O(backup=true) and the file changed (in check mode, the name it would have had)
  type: str
  sample: /etc/attune/config.yaml.2851.2026-09-01@10:11:12~
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: pack_registry written to /etc/attune/config.yaml (2 registries)
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._registry import _config, _config_file
from ansible_collections.attune.packs.plugins.module_utils._base._common import check_libraries

SECTION_OPTION_TYPES = {bool: "bool", int: "int"}


def section_argument_spec():
    """The suboptions of ``pack_registry``, built from the shared model (``_config.SECTION_KEYS``)."""
    options = {}
    for key, (kind, default) in _config.SECTION_KEYS.items():
        if key == "indices":
            options[key] = dict(
                type="list",
                elements="dict",
                default=[],
                options=dict(
                    url=dict(type="str"),
                    name=dict(type="str"),
                    priority=dict(type="int", default=_config.DEFAULT_PRIORITY),
                    enabled=dict(type="bool", default=True),
                    headers=dict(type="dict", no_log=True),
                    ca_path=dict(type="path"),
                ),
            )
        elif kind is list:
            options[key] = dict(type="list", elements="str", default=list(default))
        else:
            options[key] = dict(type=SECTION_OPTION_TYPES[kind], default=default)
    return options


def argument_spec():
    return dict(
        path=dict(type="path", default=_config.DEFAULT_CONFIG_PATH, aliases=["dest"]),
        pack_registry=dict(type="dict", default={}, options=section_argument_spec()),
        backup=dict(type="bool", default=False),
        create_dirs=dict(type="bool", default=True),
        variable_prefix=dict(type="str"),
    )


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True, add_file_common_args=True)
    check_libraries(module, ["PyYAML"])
    params = module.params
    try:
        result = _config_file.update_file(module, params["path"], params["pack_registry"], backup=params["backup"],
                                          create_dirs=params["create_dirs"], variable_prefix=params["variable_prefix"])
    except _config_file.UpdateFailed as exc:
        module.fail_json(msg=exc.msg, **exc.result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
