#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_pack
short_description: Install, upgrade and remove Attune packs, verified and atomic
version_added: 0.1.0
description:
  - Puts Attune packs on a host from a registry spec (V(slack), V(slack@2.1.0), V(slack@^2.1), V(slack@latest)), from
    a resolution made elsewhere (O(source), e.g. by M(attune.packs.attune_pack_info) or the
    P(attune.packs.attune_pack#lookup) lookup on the controller), or from a direct O(src) (git URL, archive URL, local
    directory or local archive).
  - Archives are streamed to a temporary file with O(archive_max_bytes) enforced and their C(sha256)/C(sha512) checksum
    verified before anything is extracted. Extraction is in-process and refuses absolute paths, C(..), links, devices,
    FIFOs and paths under symlinks, with limits on entries and sizes. Git sources are cloned with the system and
    global git configuration ignored, https only, no redirects, and verified with Attune's framed directory
    checksum. If a registry entry's git source fails, its first archive source is tried with its own checksum.
  - The tree must contain a valid C(pack.yaml) whose C(ref) (and C(version), for registry installs) equal the
    requested pack's.
  - The new version is staged inside O(packs_dir) and swapped in atomically; the previous version stays complete until
    the swap succeeded, even if the process is killed, and the next run cleans up. With a list in O(name), every pack
    is fetched and verified before any is activated, so one failing pack fails the task and changes none.
  - Provenance is recorded outside the pack tree, in C(<packs_dir>/.attune/<ref>.json) (C(pack_ref), C(version),
    C(installed_at), C(installed_from), C(checksum), C(registry), C(registry_url), C(spec), C(tree_checksum)).
  - With O(api_url), the packs go into that running Attune through its API instead, from the controller (nothing
    runs on the inventory host). By default (O(fetch_on=controller)) each pack is resolved, downloaded and verified on
    the controller by the same code and checksums as for hosts (the same lock gives the same bytes), then its verified
    tree is archived (deterministically) and uploaded (C(POST /api/v1/packs/upload)), and Attune runs the pack's
    tests before it answers. A list is verified completely before the first upload. The state is read with
    C(GET /api/v1/packs/{ref}); an installed version equal to the wanted one is kept, another one is replaced (with
    Attune's C(force)). O(state=absent) is C(DELETE /api/v1/packs/{ref}). With O(fetch_on=attune), Attune installs
    from its own registries (C(POST /api/v1/packs/install) with C(ref_spec)).
  - With O(api_url), the controller records each upload in C(<cache_dir>/attune-api/) (provenance and Attune's id and
    update time of the pack record), whatever O(cache_enabled) says. An upload whose test run outlasts O(api_timeout)
    fails the task with C(api_install_pending) and its install id, and is recorded so that the next run finishes or
    reports it. O(remove_unlisted) removes only packs that record proves this collection
    installed and Attune still holds unchanged, and never a standard pack (C(is_standard)).
requirements:
  - git (for git sources)
extends_documentation_fragment:
  - attune.packs.common
  - attune.packs.attune_api.target
  - attune.packs.registry
  - attune.packs.attune_api
  - attune.packs.registry.resolve
  - attune.packs.registry.controller
  - attune.packs.attributes
options:
  name:
    description:
      - Pack spec, or a list of specs installed in one run (like M(ansible.builtin.package)). A string is never split
        on commas.
      - With O(src) or O(state=absent), the ref of the pack.
      - Not needed with O(source), which names its ref.
    type: raw
    aliases: [pack]
  state:
    description:
      - V(present) installs a missing pack and keeps an installed version that satisfies the spec, without consulting
        any registry.
      - V(latest) resolves the spec and upgrades this pack to the newest version the registries offer. Other packs are
        never touched.
      - V(absent) removes the pack.
    type: str
    choices: [present, latest, absent]
    default: present
  src:
    description:
      - Install from this source instead of a registry. A C(https://) git URL (O(version) is the branch, tag or commit),
        an archive URL ending in C(.zip), C(.tar.gz) or C(.tgz), a local directory, or a local archive.
      - Remote sources need O(checksum) unless O(allow_unverified=true).
    type: str
  version:
    description:
      - With a git O(src), the branch, tag or commit to check out. Refs starting with C(-) are refused.
      - With an archive O(src), the version its C(pack.yaml) must have.
    type: str
  checksum:
    description:
      - C(sha256:<hex>) or C(sha512:<hex>) of O(src). For archives, of the archive bytes; for git and directories,
        Attune's framed directory checksum of the tree.
    type: str
  source:
    description:
      - A resolution made elsewhere, as returned in RV(attune.packs.attune_pack_info#module:packs) or by the lookup
        (needs C(ref), C(version) and C(source); C(fallback_source), C(registry), C(registry_url) and C(spec) are used
        when present), or a list of them. Exactly that version and source is installed; no registry is consulted on the
        host.
    type: raw
  lock_file:
    description:
      - Install exactly what this lock file (written by M(attune.packs.attune_pack_lock)) pins for each pack of
        O(name). A pack missing from the lock, or pinned at a version that does not satisfy its spec, fails the task.
        No registry is consulted.
      - The file is read on the controller by the action plugin (on the host when the module runs without it).
      - Cannot be combined with O(state=latest); update the lock with M(attune.packs.attune_pack_lock) instead.
    type: path
  fetch_on:
    description:
      - Default V(host), or V(controller) with O(api_url).
      - V(host) downloads archives and clones git sources on each host.
      - V(controller) downloads each archive once on the controller, into a content-addressed cache under
        O(cache_dir) (keyed by checksum and re-verified on every reuse), and copies it to the hosts that need it; the
        host verifies the checksum again before installing. For workers that cannot reach the registries or the
        sources. Implies that specs are resolved on the controller (O(resolve_on=controller)) unless O(lock_file) or
        O(source) is given. Needs an archive source with a checksum (a git-only entry fails). A host that already has
        the pack receives nothing. With O(cache_enabled=false) the archives go to a temporary directory removed after
        the task instead of the cache.
      - V(attune) (only with O(api_url)) asks Attune to install the pack from its own registries (C(POST
        /api/v1/packs/install) with C(ref_spec)), for users who trust Attune's resolution. Attune installs only the
        version its index lists first for a ref, so a spec or lock pinning another version fails. With O(lock_file),
        Attune's indexed entry must come from the locked registry with a locked checksum before anything is
        installed, and the provenance Attune returns is checked after each install (error kind
        C(api_provenance_mismatch)).
    type: str
    choices: [host, controller, attune]
  force:
    description:
      - Reinstall even when the wanted version is already installed.
      - Also replaces a pack installed by other means (no provenance record) or, with O(api_url), uploaded by someone
        else, when it already has the wanted version.
    type: bool
    default: false
  verify:
    description:
      - Converge on the installed content, not only the installed version. A pack that is otherwise already as
        wanted is reinstalled when its files no longer match the framed checksum recorded in its provenance
        (C(tree_checksum) in C(<packs_dir>/.attune/<ref>.json)) when it was installed, which
        M(attune.packs.attune_pack_installed) reports as V(modified).
      - The check compares the tree with that record on the host. Nothing is downloaded and no registry is consulted
        unless the pack must be reinstalled, but every file of each named pack is read on every run.
      - With O(state=present) and a spec, a modified pack is reinstalled from what the spec resolves to (which may be
        a newer version that satisfies it); with O(lock_file), O(source) or O(src), from exactly that.
      - Packs without a provenance record (copied by hand, installed by other tools) have nothing to compare with and
        are not judged; they are replaced only when the wanted version or checksum differs, or with O(force=true).
      - Not with O(api_url), which fails the task with an explanation. Attune's pack record
        (C(GET /api/v1/packs/{ref})) carries no checksum of the files it installed.
    type: bool
    default: false
  remove_unlisted:
    description:
      - Make the task exclusive, like a package list that must be the whole truth. After the named packs are in place,
        every other pack in O(packs_dir) that attune.packs installed (it has provenance metadata) is removed, in the same
        run. Removals come last, so nothing is removed unless every named pack was installed. Packs without provenance
        metadata (copied by hand, installed by other tools) are never removed.
      - With O(lock_file) or a list in O(source), the packs listed there are the ones kept; an empty O(source) list
        removes every managed pack.
      - Not with O(state=absent).
    type: bool
    default: false
  skip_tests:
    description:
      - With O(api_url), ask Attune not to run the pack's tests before it registers the pack.
      - Without it, a failed test run fails the task with Attune's message and counts, and Attune keeps (or restores)
        the previous version.
    type: bool
    default: false
  skip_deps:
    description:
      - With O(api_url) and O(fetch_on=attune), ask Attune to skip its dependency validation.
    type: bool
    default: false
  packs_dir:
    description:
      - Where packs are installed. Not with O(api_url). Defaults to C(packs_base_dir) of the host's Attune config file, else
        C(/opt/attune/packs).
    type: path
  allow_unverified:
    description:
      - Permit a remote O(src) without O(checksum). Defaults to C(pack_registry.allow_unverified_direct_remote_installs),
        else V(false).
    type: bool
  verify_checksums:
    description:
      - Verify checksums. Defaults to C(pack_registry.verify_checksums), else V(true). V(false) is honoured only when
        set explicitly (here or in the config file) and produces a warning.
    type: bool
  allow_local_git:
    description:
      - Permit C(file://) git URLs, for development.
    type: bool
    default: false
  archive_max_bytes:
    description:
      - Larger archives are refused while downloading. Defaults to C(pack_registry.archive_max_bytes), else V(104857600).
    type: int
  max_entries:
    description: Most entries an archive may have. Defaults to V(10000), Attune's limit.
    type: int
  max_entry_bytes:
    description: Largest size of one extracted file, counted on the bytes actually written. Defaults to V(52428800) (50 MiB), Attune's limit.
    type: int
  max_total_bytes:
    description:
      - Largest total extracted size, counted on the bytes actually written.
      - Defaults to the archive size limit (O(archive_max_bytes)), as in Attune.
    type: int
  _resolved:
    description:
      - Private, set by this module's action plugin (like C(_original_basename) of M(ansible.builtin.copy)) to hand
        the controller's resolutions to the host. Do not set it in a task.
    type: raw
  _local_copies:
    description:
      - Private, set by this module's action plugin with O(fetch_on=controller) (the archives it copied to the host,
        by ref); the host verifies each checksum again. Do not set it in a task.
    type: dict
attributes:
  check_mode:
    support: full
    details:
      - Resolves (a registry is consulted only when needed) and reports what would be installed, upgraded or removed,
        without downloading or writing anything.
  diff_mode:
    support: full
    details:
      - Shows the installed and the target version and source of each pack.
  idempotent:
    support: full
    details:
      - When the installed version and its verified checksum already match, nothing is downloaded.
      - With O(verify=true), also when the installed files still match the checksum recorded at install time.
notes:
  - Registry headers are never sent to install sources.
seealso:
  - module: attune.packs.attune_pack_info
  - module: attune.packs.attune_pack_installed
  - plugin: attune.packs.attune_pack
    plugin_type: lookup
"""

EXAMPLES = r"""
---
- name: Install the Slack pack from the registries configured on the host
  attune.packs.attune_pack:
    name: slack@^2.1

- name: Install several packs in one run (none is changed if one fails)
  attune.packs.attune_pack:
    name:
      - slack@>=2.0,<3
      - aws@1.2.0
      - monitoring

- name: Keep a pack at the newest version
  attune.packs.attune_pack:
    name: github
    state: latest

- name: Resolve once on the controller, install the same source on every host
  attune.packs.attune_pack:
    source: "{{ lookup('attune.packs.attune_pack', 'slack@^2.1') }}"

- name: Install from an archive URL, verified
  attune.packs.attune_pack:
    name: mypack
    src: https://files.example.com/mypack-1.0.0.tar.gz
    checksum: sha256:9f2c0d1e5a7b3c4d6e8f00112233445566778899aabbccddeeff001122334455

- name: Install from a git tag
  attune.packs.attune_pack:
    name: mypack
    src: https://git.example.com/packs/mypack.git
    version: v1.0.0
    checksum: sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9

- name: Install from a lock file and reinstall the packs whose files were modified since
  attune.packs.attune_pack:
    name: [slack@^2.1, aws]
    lock_file: "{{ playbook_dir }}/packs.lock.yml"
    verify: true

- name: Remove a pack
  attune.packs.attune_pack:
    name: slack
    state: absent

- name: Pin packs in a running Attune through its API (run on the controller; the host names the deployment)
  attune.packs.attune_pack:
    name: [slack@^2.1, aws]
    lock_file: "{{ playbook_dir }}/packs.lock.yml"
    api_url: https://attune.example.com
    api_token: "{{ vault_attune_token }}"

- name: Let Attune install a pack from its own registries
  attune.packs.attune_pack:
    name: github
    fetch_on: attune
    api_url: https://attune.example.com
    api_token: "{{ vault_attune_token }}"
"""

RETURN = r"""
pack:
  description: The pack after the run (or, in check mode, what it would be). Only when O(name) named one pack.
  returned: success and O(state) is not V(absent)
  type: dict
  contains:
    ref:
      description: Pack ref.
      type: str
      sample: slack
    version:
      description: Installed version.
      type: str
      sample: 2.1.0
    path:
      description: Directory of the pack. V(null) in check mode for a pack not yet installed, and with O(api_url).
      type: str
      sample: /opt/attune/packs/slack
    source:
      description: Where it was installed from (C(type), C(url), C(ref) and C(commit) for git, C(path) for local).
      type: dict
      sample: {type: git, url: "https://github.com/attune-packs/slack.git", ref: 64db444b0926e56b996af66084e7e8ab6f4d3d81}
    checksum:
      description: The checksum that was verified.
      type: str
      sample: "sha256:36dc2af6af0bc0ed97ce413e5eee35c06d8bdd1bb65900eda14616aca7b28a58"
    registry:
      description: Registry it was resolved from, V(null) for direct sources.
      type: str
      sample: public
previous:
  description: What was replaced or removed (same keys as RV(pack)), V(null) when nothing was installed before.
  returned: success and O(name) named one pack
  type: dict
  sample: {ref: slack, version: 2.0.0, path: /opt/attune/packs/slack}
packs:
  description: One item per requested pack.
  returned: success
  type: list
  elements: dict
  contains:
    ref:
      description: Pack ref.
      type: str
    action:
      description: V(none), V(install), V(upgrade), V(downgrade), V(reinstall) or V(remove).
      type: str
    reason:
      description: Why.
      type: str
    pack:
      description: As RV(pack).
      type: dict
    previous:
      description: As RV(previous).
      type: dict
  sample: [{ref: slack, action: upgrade, reason: "installed 2.0.0, target 2.1.0"}]
skipped_registries:
  description:
    - The registries skipped because of O(on_registry_error=skip) while resolving the specs (here or on the controller),
      each once, with the error. Empty when none was skipped or nothing was resolved (O(lock_file), O(source), O(src),
      or installed versions that already satisfy the specs).
  returned: success
  type: list
  elements: dict
  sample: [{name: corp, url: "https://packs.corp.example/index.json", error: "registry corp is unreachable: ..."}]
packs_dir:
  description: The packs directory used.
  returned: success and O(api_url) is not given
  type: str
  sample: /opt/attune/packs
api_url:
  description: The Attune API the packs were managed in.
  returned: when O(api_url) is given
  type: str
  sample: https://attune.example.com
uploaded:
  description: Refs whose upload Attune accepted in this run, in order (empty in check mode and when nothing changed),
    also in a failed result.
  returned: when O(api_url) is given
  type: list
  elements: str
  sample: [slack]
deleted:
  description: Refs deleted from Attune by this run (O(state=absent), O(remove_unlisted), or a new pack deleted again
    after a later upload of the list failed), also in a failed result.
  returned: when O(api_url) is given
  type: list
  elements: str
  sample: []
pending:
  description: "Accepted uploads whose test run had not ended at the O(api_timeout) deadline, as C({ref: install id})."
  returned: when O(api_url) is given
  type: dict
  sample: {}
msg:
  description: What was done, for people.
  returned: always
  type: str
  sample: "slack: upgrade 2.0.0 -> 2.1.0"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._base._common import check_libraries, fail, settings_from_params
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.module_utils._pack._pack_spec import PACK_CONSTRAINTS, pack_argument_spec


def main():
    module = AnsibleModule(argument_spec=pack_argument_spec(), supports_check_mode=True, **PACK_CONSTRAINTS)
    params = module.params
    # imported here, before the library check (which asks _install what it needs): these modules import no third-party
    # library at import time; the lock file and registry code are imported by _install only when used
    from ansible_collections.attune.packs.plugins.module_utils._pack import _install

    # Installing a resolution made elsewhere (source, lock_file, the controller's), a direct src, or removing needs
    # only PyYAML here; downloads need requests and fail with a clear message without it.  Resolving here needs all three.
    if params.get("api_url"):
        module.fail_json(msg="api_url is handled on the controller by the attune.packs.attune_pack action plugin; "
                             "run the task through it (not with the module alone)")
    check_libraries(module, names=None if _install.needs_registry(params) else ("PyYAML",))
    try:
        outcome = _install.run(params, lambda required: settings_from_params(params, require_registries=required),
                               check_mode=module.check_mode, warn=module.warn)
    except AttuneError as exc:
        fail(module, exc, changed=False, packs_dir=getattr(exc, "location", params["packs_dir"]))
    module.exit_json(**outcome.result(module.check_mode, module._diff))


if __name__ == "__main__":
    main()
