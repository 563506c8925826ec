#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack_lock
short_description: Pin Attune packs in a lock file so that every host installs the same versions and bytes
version_added: 0.1.0
description:
  - Writes or updates the lock file O(path) (for example C(packs.lock.yml) next to the playbook) that records, for each pack spec in O(name), the
    exact version chosen by resolution, the registry (name and redacted URL), the install source (C(type), C(url),
    git C(ref), C(checksum)) and the fallback source.
    M(attune.packs.attune_pack) then installs exactly what the lock says, on every host, without consulting a registry.
  - The lock file is YAML, sorted by ref, with a fixed key order and no timestamps, so that it diffs well in review.
    Commit it next to your playbooks.
  - B(No silent upgrades.) A spec whose locked version still satisfies it is kept as it is, even when a registry now
    has a newer matching version, and no registry is consulted for it. If nothing needs resolving, no registry is
    contacted at all (not even configured).
  - A spec that is new, or that changed so that the locked version no longer satisfies it, is resolved. When a spec
    changed but the locked version still satisfies it (V(slack@^2) to V(slack@^2.1) with V(2.1.0) locked), the pin
    is kept and the entry records the new spec.
  - O(update) re-resolves packs on purpose, which may upgrade them.
  - B(Git sources are locked at a commit.) When a registry entry's git source names a branch or tag, the lock records
    the commit it points to when the lock runs (C(git ls-remote) with the same isolated git configuration, https-only
    and TLS rules as an install), after checking that commit out in a temporary directory and verifying the entry's
    checksum against it (unless C(verify_checksums) is false). Hosts installing from the lock fetch that commit even
    after the branch moved, and verify the same checksum again. A branch whose current commit does not match the
    registry's checksum fails the lock, naming the branch and the commit. Requires git on the controller.
  - The lock mirrors the list. Entries whose ref is no longer in O(name) are removed from the lock file.
  - Resolution follows the same rules as M(attune.packs.attune_pack_info). It is fail-closed, and the first registry
    in priority order that holds the ref wins.
  - Usually runs once, on the controller, where the registries are reachable and the lock file lives. Use
    C(delegate_to) V(localhost) and C(run_once) V(true), as in the examples.
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.registry
  - attune.packs.registry.resolve
  - attune.packs.attributes
options:
  path:
    description:
      - The lock file. It is created when missing. Its directory must exist.
      - Use an absolute path, for example C({{ playbook_dir }}/packs.lock.yml).
      - The file is replaced atomically. A temporary file is written and synced in the same directory, then renamed.
        An existing file keeps its mode. A new file gets the default mode (C(0666) minus the umask). The lock
        holds no secrets. Registry URLs are recorded without credentials or query strings.
    type: path
    required: true
  name:
    description:
      - The pack specs to lock, one string or a list (V(slack@^2.1), V(aws@1.2.0), V(github)). A single string is
        never split on commas.
      - Each ref may appear only once.
      - An empty list empties the lock file.
    type: raw
    required: true
    aliases: [spec]
  update:
    description:
      - Refs to re-resolve even though their locked version still satisfies the spec, so that they move to the best
        version that now matches. Each ref must also be in O(name).
      - V(all) re-resolves every pack. To update a pack whose ref is C(all), give a list, V([all]).
    type: raw
  prefer_source:
    description:
      - Source type recorded as C(source) when an entry has several. With V(git), the entry's first archive is
        recorded as C(fallback_source).
      - It applies to the packs resolved in this run. Kept entries keep the source they were locked with; list them in
        O(update) to lock them with another source type.
  on_registry_error:
    description:
      - What resolution does when a registry that comes before the one holding the pack cannot be fetched or validated.
      - V(fail) (default) stops, because a lower-priority registry could carry a different pack with the same ref
        (dependency confusion). V(skip) skips that registry with a warning and goes on.
attributes:
  check_mode:
    support: full
    details:
      - Resolves what needs resolving and reports what would change. The lock file is not written.
  diff_mode:
    support: full
    details:
      - Shows the lock file text before and after.
  idempotent:
    support: full
    details:
      - Resolution only happens for new or changed specs and for O(update). A second run with the same list and no
        O(update) reports no change, whatever the registries publish in between.
notes:
  - C(changed) is V(true) only when the text of the lock file changes.
  - Registry options (O(registries), O(ca_path), ...) are only used when a spec has to be resolved.
seealso:
  - module: attune.packs.attune_pack_info
  - module: attune.packs.attune_pack
    description: Installs packs, with C(lock_file) exactly as locked.
"""

EXAMPLES = r"""
---
- name: Lock the packs of the fleet on the controller
  attune.packs.attune_pack_lock:
    path: "{{ playbook_dir }}/packs.lock.yml"
    name:
      - slack@^2.1
      - aws@1.2.0
      - github
    registries:
      - name: corp
        url: https://packs.corp.example/index.json
        priority: 10
        headers:
          Authorization: "Bearer {{ corp_registry_token }}"
      - name: public
        url: https://index.stackstorm.org/v1/index.json
        priority: 100
  delegate_to: localhost
  run_once: true
  register: lock

- name: Show what changed
  ansible.builtin.debug:
    msg: "{{ lock.msg }}"
  run_once: true

- name: Upgrade slack on purpose, keep the other pins
  attune.packs.attune_pack_lock:
    path: "{{ playbook_dir }}/packs.lock.yml"
    name: [slack@^2.1, aws@1.2.0, github]
    update: [slack]
  delegate_to: localhost
  run_once: true

- name: Re-resolve everything (for example in a scheduled job that opens a pull request)
  attune.packs.attune_pack_lock:
    path: "{{ playbook_dir }}/packs.lock.yml"
    name: [slack@^2.1, aws@1.2.0, github]
    update: all
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The lock file.
  returned: always
  type: str
  sample: /srv/playbooks/packs.lock.yml
lock:
  description:
    - The entries of the lock file, sorted by ref, as written (or as they would be written in check mode).
  returned: success
  type: list
  elements: dict
  contains:
    ref:
      description: Pack ref.
      type: str
      sample: slack
    spec:
      description: The spec as requested.
      type: str
      sample: slack@^2.1
    version:
      description: The locked version.
      type: str
      sample: 2.1.0
    registry:
      description: Name of the registry the pack was resolved from.
      type: str
      sample: public
    registry_url:
      description: URL of that registry, without credentials or query string.
      type: str
      sample: https://index.stackstorm.org/v1/index.json
    source:
      description: The install source.
      type: dict
      contains:
        type:
          description: V(git) or V(archive).
          type: str
        url:
          description: Source URL.
          type: str
        ref:
          description: Git commit (40 hex), also when the registry entry named a branch or tag. Only for git sources.
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
      description: The source tried if the git source fails (the entry's first archive), else V(null).
      type: dict
      sample:
        type: archive
        url: https://codeload.github.com/attune-packs/slack/tar.gz/0ca87f5d99b7e82c145a3d5c4ef5fb0b8228c5c2
        checksum: "sha256:0d260c8b6c5fea4550bf0ae2ac23f8015502b6e053cb869614b58df29775698a"
added:
  description: Refs that were not in the lock file and were resolved.
  returned: success
  type: list
  elements: str
  sample: [github]
updated:
  description: Refs whose locked version, registry or sources changed (changed spec or O(update)).
  returned: success
  type: list
  elements: str
  sample: [slack]
removed:
  description: Refs dropped from the lock file because they are no longer in O(name).
  returned: success
  type: list
  elements: str
  sample: [jira]
kept:
  description: Requested refs whose pin did not change.
  returned: success
  type: list
  elements: str
  sample: [aws]
respecified:
  description: Kept refs whose spec changed while the locked version still satisfies it. The entry records the new spec.
  returned: success
  type: list
  elements: str
  sample: []
resolved:
  description: Refs that were resolved against the registries in this run. Other refs needed no registry.
  returned: success
  type: list
  elements: str
  sample: [github, slack]
msg:
  description: Summary for people.
  returned: always
  type: str
  sample: "lock file /srv/playbooks/packs.lock.yml: added github 3.0.0; updated slack 2.0.0 -> 2.1.0; kept 1"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._pack import _lock_task
from ansible_collections.attune.packs.plugins.module_utils._base._common import (
    check_libraries,
    fail,
    registry_argument_spec,
    resolve_argument_spec,
)
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError


def main():
    argument_spec = registry_argument_spec()
    argument_spec.update(resolve_argument_spec())
    argument_spec.update(
        path=dict(type="path", required=True),
        name=dict(type="raw", required=True, aliases=["spec"]),
        update=dict(type="raw"),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    check_libraries(module, ["PyYAML"])  # the registry libraries are checked when a spec has to be resolved
    try:
        result = _lock_task.run_lock(module.params, check_mode=module.check_mode, diff=module._diff,  # pylint: disable=protected-access
                                     warn=module.warn, require_libraries=lambda: check_libraries(module))
    except AttuneError as exc:
        fail(module, exc, changed=False, path=module.params["path"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
