# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the ``attune_pack_lock`` task (may change without notice).

:func:`run_lock` relocks the lock file (``_lockfile``: the file format, the keep/resolve/re-resolve/drop plan, git
pins) against the registries, resolving only the specs that need it, and writes it.  Separate from ``_lockfile``
because it builds a registry client: ``_lockfile`` is also shipped with ``attune_pack`` and
``attune_pack_installed``, which read locks without resolving (every module_utils file a module can import goes
into its payload).

No Ansible imports.
"""

from __future__ import annotations

from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile
from ansible_collections.attune.packs.plugins.module_utils._base._common import normalise_names, settings_from_params


def run_lock(params, check_mode=False, diff=False, warn=lambda message: None, require_libraries=lambda: None):
    """The ``attune_pack_lock`` task on ``params`` (the module's parameters): its result; raises core errors.

    The registries are configured and contacted only when a spec has to be resolved; ``require_libraries()`` is
    called first then (the module's check of the libraries a registry needs).  A git branch or tag is locked as the
    commit it points to, once its checksum is verified (:func:`_lockfile.pin_git_commits`).  The file is written only
    when its text changes, never in check mode.  On failure nothing is written (the caller's failed result has
    ``changed`` false and ``path``).
    """
    path = params["path"]
    clients = []
    resolved = []

    def resolve(spec):
        if not clients:
            require_libraries()
            from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient  # pylint: disable=import-outside-toplevel

            clients.append(RegistryClient(settings_from_params(params)))
        from ansible_collections.attune.packs.plugins.module_utils._registry._queries import resolve_one  # pylint: disable=import-outside-toplevel

        resolution = resolve_one(clients[0], spec, params, warn)
        resolved.append(resolution["ref"])
        return _lockfile.pin_git_commits(resolution, clients[0].settings)

    current = _lockfile.load(path, missing_ok=True)
    outcome = _lockfile.relock(current, normalise_names(params["name"]), params["update"], resolve)
    if outcome.changed and not check_mode:
        _lockfile.write(path, outcome.text)

    msg = outcome.summary()
    if check_mode and outcome.changed:
        msg = "check mode, not written: " + msg
    result = dict(
        changed=outcome.changed,
        path=path,
        lock=outcome.lock.entries(),
        added=outcome.added,
        updated=outcome.updated,
        removed=outcome.removed,
        kept=outcome.kept,
        respecified=outcome.respecified,
        resolved=sorted(resolved),
        msg=msg,
    )
    if diff:
        result["diff"] = dict(before=current.text or "", after=outcome.text, before_header=path, after_header=path)
    return result
