#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_mirror
short_description: Build an offline mirror of Attune pack registries, for sites without internet
version_added: 0.3.0
description:
  - Resolves the packs in O(name), or pins them from O(lock_file), against the upstream registries. Their archives
    go into the directory O(dest) and an index into O(dest)C(/index.json). Serve the directory from any static HTTPS
    server at O(base_url) and give Attune that index as a registry. Then nothing has to reach the internet.
  - Every pack is verified against its upstream checksum before it enters the mirror. Archive sources are kept
    byte-identical, under C(packs/<ref>/<sha256>.tar.gz) (or C(.zip), C(.tar)), with the same checksum. A git
    source is checked out at its commit and verified, then turned into a deterministic archive
    C(packs/<ref>/git-<commit>-<tree>.tar.gz). Its sha256 goes into the mirror's index, and the pack tree inside
    has the upstream framed checksum.
  - The mirror's entry of a pack is the upstream entry. Its install sources are replaced, in the same order, by
    those archives under O(base_url). Attune installs the first of them, as it installs the upstream git source
    first.
  - With O(lock_file), the sources the lock pins are mirrored (its git commit and checksums). A lock made upstream
    with V(git) sources installs the same tree checksum from the mirror. One made with V(archive) sources installs
    the same bytes.
  - B(Incremental.) A rerun downloads only what is new. Archives already in the mirror are re-hashed and kept.
    Packs not asked for stay in the mirror unless O(prune) is set.
  - Archives are published before the index that names them. The index is replaced atomically, so a reader never
    sees an entry whose file is missing or unverified. When a pack fails, the task fails and the index is not
    written.
  - The index is validated as Attune's C(validate_pack_index) validates it. It lists one entry per ref, sorted, and
    C(last_updated) changes only when its content changes.
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.registry
  - attune.packs.attributes
options:
  dest:
    description:
      - The mirror directory. It must exist.
    type: path
    required: true
  base_url:
    description:
      - Where the mirror is read from. Every install source of the mirror's index is under it, and its
        C(registry_url) is O(base_url)C(/index.json).
      - B(A mirror read by Attune) (its registry in Attune, for example with M(attune.packs.attune_registry)) needs
        the HTTPS URL O(dest) is served from, for example V(https://packs.internal.example/mirror). Attune refuses
        non-https sources.
      - B(A mirror read by this collection on the controller only) can be V(file:///absolute/dir), the directory the
        mirror is read from, usually O(dest) itself (or where it is carried to). Then no web server is needed. Give
        V(file:///absolute/dir/index.json) as the registry of M(attune.packs.attune_pack_lock) and of
        M(attune.packs.attune_pack) with O(attune.packs.attune_pack#module:fetch_on=controller) (no C(allow_http)
        needed, since a C(file://) index may name C(file://) archives in its own directory); the hosts receive the archives
        from the controller. Such an index cannot be given to Attune, nor read by M(attune.packs.attune_pack) with
        C(fetch_on=host) on another machine.
      - An HTTPS mirror can also be read as C(file://) by this collection on the controller; use
        V(file:///path/to/dest/index.json) as the registry URL; installs then download the archives from O(base_url).
    type: str
    required: true
  name:
    description:
      - Pack specs to mirror (V(slack@^2.1), V(aws@1.2.0), V(github)), one string or a list. Each is resolved as
        M(attune.packs.attune_pack_info) resolves it.
      - Exactly one of O(name) and O(lock_file) is required.
    type: raw
  lock_file:
    description:
      - A lock file written by M(attune.packs.attune_pack_lock). Each locked pack is mirrored at its locked version,
        from the sources the lock pins.
    type: path
  prune:
    description:
      - Remove from the mirror the packs that are not in O(name) or O(lock_file), and delete the archives the new
        index no longer names.
    type: bool
    default: false
  registry_name:
    description:
      - The C(registry_name) of the mirror's index. Defaults to the current index's, else V(Attune pack mirror).
    type: str
  archive_max_bytes:
    description:
      - Largest archive downloaded or built. Defaults to C(pack_registry.archive_max_bytes), else 100 MiB.
    type: int
  on_registry_error:
    description:
      - What resolution does when a registry that comes before the one holding a pack cannot be fetched or validated.
      - V(fail) (default) stops. V(skip) skips that registry with a warning.
    type: str
    choices: [fail, skip]
    default: fail
attributes:
  check_mode:
    support: full
    details:
      - Resolves the packs and reports what would be fetched, written and removed. Nothing is downloaded or written.
  diff_mode:
    support: full
    details:
      - Shows the mirror's index text before and after (in check mode, only when nothing has to be fetched).
  idempotent:
    support: full
    details:
      - A second run with the same list downloads nothing and reports no change, unless upstream changed.
notes:
  - "Attune must be allowed to reach the mirror's host. If it resolves to a private address, list it in
    C(pack_registry.approved_private_hosts) (or its range in C(approved_private_cidrs)). A public address goes in
    C(approved_public_hosts). The mirror's index names no other host. RV(approved_host) is that host."
  - Needs git on the host that runs it when a pack has a git source.
seealso:
  - module: attune.packs.attune_pack_lock
  - module: attune.packs.attune_pack_index
  - module: attune.packs.attune_registry
"""

EXAMPLES = r"""
---
- name: Mirror the locked packs for the air-gapped site
  attune.packs.attune_pack_mirror:
    dest: /srv/transfer/packs-mirror
    base_url: https://packs.site.internal/mirror
    lock_file: "{{ playbook_dir }}/packs.lock.yml"
    registries:
      - name: public
        url: https://raw.githubusercontent.com/attune-system/index/main/index.json
    prune: true
  delegate_to: localhost
  run_once: true

- name: Mirror the locked packs into a directory read by this collection on the controller (no web server)
  attune.packs.attune_pack_mirror:
    dest: /srv/packs-mirror
    base_url: file:///srv/packs-mirror
    lock_file: "{{ playbook_dir }}/packs.lock.yml"
  delegate_to: localhost
  run_once: true

- name: Mirror a few packs by spec
  attune.packs.attune_pack_mirror:
    dest: /srv/mirror
    base_url: https://packs.site.internal
    name: [slack@^2.1, aws]
"""

RETURN = r"""
index_path:
  description: The mirror's index file.
  returned: always
  type: str
  sample: /srv/mirror/index.json
index:
  description: The mirror's index as written. In check mode it is left out when something would have to be fetched.
  returned: success
  type: dict
  sample: {registry_name: Attune pack mirror, registry_url: "https://packs.site.internal/index.json", version: "1.0",
           last_updated: "2026-09-01T10:00:00Z", packs: []}
added:
  description: Refs new in the mirror.
  returned: success
  type: list
  elements: str
  sample: [slack]
updated:
  description: Refs whose mirrored entry changed, for example a new version.
  returned: success
  type: list
  elements: str
  sample: []
kept:
  description: Refs already mirrored as they are now.
  returned: success
  type: list
  elements: str
  sample: [aws]
removed:
  description: Refs removed from the mirror (O(prune)).
  returned: success
  type: list
  elements: str
  sample: []
fetched:
  description: Upstream sources downloaded or checked out in this run (redacted URLs).
  returned: success
  type: list
  elements: str
  sample: ["https://codeload.github.com/attune-packs/slack/tar.gz/0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2"]
files_removed:
  description: Files deleted from O(dest) because the index no longer names them (O(prune)).
  returned: success
  type: list
  elements: str
  sample: [packs/slack/0d260c8b6c5fea4550bf0ae2ac23f8015502b6e053cb869614b58df29775698a.tar.gz]
approved_host:
  description:
    - The host Attune must be allowed to reach (C(approved_private_hosts) or C(approved_public_hosts)).
    - V(null) with a C(file://) O(base_url) (Attune cannot read such a mirror).
  returned: success
  type: str
  sample: packs.site.internal
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: "mirror /srv/mirror: added slack; kept aws; fetched 2 sources"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_libraries, fail, registry_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.module_utils._publishing import _mirror


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(
        dest=dict(type="path", required=True),
        base_url=dict(type="str", required=True),
        name=dict(type="raw"),
        lock_file=dict(type="path"),
        prune=dict(type="bool", default=False),
        registry_name=dict(type="str"),
        archive_max_bytes=dict(type="int"),
        on_registry_error=dict(type="str", choices=["fail", "skip"], default="fail"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, required_one_of=[("name", "lock_file")],
                           mutually_exclusive=[("name", "lock_file")])
    check_libraries(module)

    try:
        result = _mirror.run_mirror(module.params, check_mode=module.check_mode,
                                    diff=module._diff, warn=module.warn)  # pylint: disable=protected-access
    except AttuneError as exc:
        fail(module, exc, changed=getattr(exc, "changed", False), index_path=_mirror.index_path_of(module.params["dest"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
