#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_index_entry
short_description: Compute the registry index entry of one Attune pack, as Attune's index builder does
version_added: 0.3.0
description:
  - Reads a pack (a checkout at a commit, a directory tree, or the archive it is published as) and returns the entry
    that describes it in a pack registry index (format 1.0), ready for M(attune.packs.attune_pack_index).
  - "Fields follow the builder of Attune's public index (attune-system/index C(scripts/build_index.py)) and Attune's CLI
    (C(attune pack index-entry)): C(label) before C(name); C(tags) before C(keywords) before C(meta.keywords) (sorted,
    unique); C(license) before C(meta.license); C(homepage) before C(meta.documentation_url); list C(dependencies) become
    C({packs: [...]}); C(contents) from the top-level YAML files of C(actions/), C(sensors/), C(triggers/), C(rules/) and
    C(workflows/), with the inline maps of C(pack.yaml) as fallback, and actions with a C(workflow_file) listed as
    workflows."
  - Where the CLI and the builder differ, the builder is followed. C(meta) always has a C(category) (default
    V(uncategorized)) and, for a git source at a commit, C(commit). C(repository) is the git repository the entry
    points at. Missing C(description), C(author) and C(license) come from O(defaults), as the builder takes them
    from the hosting repository.
  - The git source's checksum is Attune's framed directory checksum of the pack directory; the archive source's
    checksum is the sha256 of the archive bytes (O(archive_path)) or the given O(archive_checksum).
  - "Refused as Attune's validators refuse them: a branch or tag in O(git_ref) (unless O(allow_branch_refs)), URLs that
    are not https, carry credentials, a query string or a fragment, a C(pack.yaml) whose C(ref) or C(version) is
    missing or invalid, and C(pack.yaml) values of the wrong type."
  - Writes nothing. Runs where the pack is (a CI runner, the controller).
extends_documentation_fragment:
  - attune.packs.common.PYYAML
  - attune.packs.attributes
options:
  path:
    description:
      - The pack directory, for example a checkout at the commit given in O(git_ref).
      - The pack root is found as Attune's installer finds it. That is the directory itself when it has C(pack.yaml),
        else C(pack/), else the first subdirectory holding one. The git checksum covers that root.
      - Required unless O(archive_path) is given, in which case the entry is computed from the pack inside the archive,
        as the index builder does.
    type: path
  git_url:
    description:
      - HTTPS URL of the git repository, for the entry's C(git) install source.
    type: str
  git_ref:
    description:
      - The lowercase 40-hex commit O(path) is checked out at. Required with O(git_url).
    type: str
  allow_branch_refs:
    description:
      - Accept a branch or tag in O(git_ref). Only for development indices. A production index pins commits, and the
        public index's validator refuses anything else.
    type: bool
    default: false
  archive_url:
    description:
      - HTTPS URL the archive is served from, for the entry's C(archive) install source. It must name a C(.zip),
        C(.tar.gz), C(.tgz), C(.gz) or C(.tar) file, or be a code host tarball URL ending in C(/tar.gz/<commit>).
    type: str
  archive_path:
    description:
      - The archive file exactly as served at O(archive_url). Its sha256 becomes the checksum.
      - With O(path) too, the pack inside the archive must be the same tree as O(path) (see O(verify_archive_tree)).
    type: path
  archive_checksum:
    description:
      - C(sha256:) and 64 lowercase hex digits of the bytes served at O(archive_url), when the file is not at hand.
        With O(archive_path), they must agree.
    type: str
  verify_archive_tree:
    description:
      - With O(path) and O(archive_path), extract the archive with the installer's rules and refuse the entry when the
        pack tree inside differs from O(path). Otherwise the git and archive sources would install different trees.
    type: bool
    default: true
  defaults:
    description:
      - Values the builder takes from the hosting repository when C(pack.yaml) has none.
    type: dict
    suboptions:
      description:
        description: Used when C(pack.yaml) has no C(description). Otherwise the description is empty.
        type: str
      author:
        description:
          - Used when C(pack.yaml) has no C(author). Otherwise the owner in an C(https://host/OWNER/REPO) repository
            URL is used, else V(Unknown).
        type: str
      license:
        description: SPDX id used when neither C(license) nor C(meta.license) is set. Otherwise V(NOASSERTION).
        type: str
      repository:
        description:
          - HTTPS URL of the repository page. Defaults to O(git_url) without C(.git), else C(pack.yaml) C(repository) or
            C(meta.repository_url).
        type: str
      meta:
        description: Keys merged into the entry's C(meta), for example C(default_branch) or C(stars).
        type: dict
attributes:
  check_mode:
    support: full
    details:
      - The module only reads. It behaves the same in check mode.
  diff_mode:
    support: N/A
    details:
      - Nothing is changed.
  idempotent:
    support: full
notes:
  - The checksum of the git source is computed with the path order of Attune's verifier (component by component).
    The index builder sorts whole path strings. The two differ only for a tree where a name is a prefix of a sibling
    followed by a character below C(/), for example C(a-b) next to C(a/x). There, the verifier's order is the one
    that installs.
seealso:
  - module: attune.packs.attune_pack_index
  - module: attune.packs.attune_pack_mirror
"""

EXAMPLES = r"""
---
- name: Entry of the pack checked out by CI at this commit
  attune.packs.attune_pack_index_entry:
    path: "{{ lookup('ansible.builtin.env', 'GITHUB_WORKSPACE') }}"
    git_url: https://github.com/example-packs/network.git
    git_ref: "{{ lookup('ansible.builtin.env', 'GITHUB_SHA') }}"
    archive_url: "https://codeload.github.com/example-packs/network/tar.gz/{{ lookup('ansible.builtin.env', 'GITHUB_SHA') }}"
    archive_path: /tmp/network.tar.gz
    defaults:
      license: Apache-2.0
  delegate_to: localhost
  register: network

- name: Entry of a pack published only as an archive
  attune.packs.attune_pack_index_entry:
    archive_url: https://packs.example.com/files/network-1.2.0.tar.gz
    archive_path: dist/network-1.2.0.tar.gz
  register: network_archive
"""

RETURN = r"""
entry:
  description: The index entry, keys in the index builder's order.
  returned: success
  type: dict
  sample:
    ref: network
    label: Network
    description: Network automation
    version: 1.2.0
    author: example-packs
    license: Apache-2.0
    keywords: [network]
    runtime_deps: []
    install_sources:
      - type: git
        url: https://github.com/example-packs/network.git
        ref: 0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2
        checksum: "sha256:dd59734f1f73978cd6e6c9b2415db4f7aeaa0813180eb3dfbe2714d2247250d1"
    contents: {actions: [{name: ping, description: Ping a host}], sensors: [], triggers: [], rules: [], workflows: []}
    meta: {category: uncategorized, commit: 0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2}
    repository: https://github.com/example-packs/network
ref:
  description: The pack ref.
  returned: success
  type: str
  sample: network
version:
  description: The pack version.
  returned: success
  type: str
  sample: 1.2.0
tree_checksum:
  description: C(sha256:) framed directory checksum of the pack root. It is the git source's checksum.
  returned: success
  type: str
  sample: "sha256:dd59734f1f73978cd6e6c9b2415db4f7aeaa0813180eb3dfbe2714d2247250d1"
pack_dir:
  description: The pack root that was read (inside O(path)), or V(null) when the pack was read from O(archive_path).
  returned: success
  type: str
  sample: /builds/network
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_libraries, fail
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.module_utils._publishing import _publish


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path"),
            git_url=dict(type="str"),
            git_ref=dict(type="str"),
            allow_branch_refs=dict(type="bool", default=False),
            archive_url=dict(type="str"),
            archive_path=dict(type="path"),
            archive_checksum=dict(type="str"),
            verify_archive_tree=dict(type="bool", default=True),
            defaults=dict(type="dict", options=dict(
                description=dict(type="str"),
                author=dict(type="str"),
                license=dict(type="str"),
                repository=dict(type="str"),
                meta=dict(type="dict"),
            )),
        ),
        required_one_of=[("path", "archive_path")],
        required_together=[("git_url", "git_ref")],
        supports_check_mode=True,
    )
    check_libraries(module, ["PyYAML"])

    try:
        result = _publish.run_index_entry(module.params)
    except AttuneError as exc:
        fail(module, exc, changed=False)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
