# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin of attune.packs.attune_pack (the work is in module_utils._install).

* ``lock_file``: read on the controller; each pack of ``name`` becomes the
  exact resolution the lock pins, passed to the module as ``source``.
* ``resolve_on: controller``: specs are resolved here (shared index cache) and
  passed in the private ``_resolved``; with ``state: present`` the host still
  keeps an installed version that satisfies the spec.
* ``fetch_on: controller``: the module first reports which archives it needs
  (nothing when the host is up to date); they are downloaded once into the
  controller's content-addressed cache, copied to the host, and the module runs
  again with them in the private ``_local_copies`` (and verifies them again).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.plugin_utils._action import RegistryActionBase, TaskFailed

# Imported here, once: ansible's main process loads this class (the strategy looks at BYPASS_HOST_LOOP) and the
# per-host workers it forks inherit these modules instead of importing them again for every host (~40 ms of CPU per
# host on the controller; docs/performance.md).  The methods below still import what they use.
from ansible_collections.attune.packs.plugins.module_utils._pack import _install, _lockfile  # noqa: F401,E402 pylint: disable=unused-import
from ansible_collections.attune.packs.plugins.module_utils._registry import _queries  # noqa: F401,E402 pylint: disable=unused-import


class ActionModule(RegistryActionBase):
    MODULE = "attune.packs.attune_pack"

    def argument_spec(self):
        from ansible_collections.attune.packs.plugins.module_utils._pack._pack_spec import pack_argument_spec

        return pack_argument_spec()

    def validator_kwargs(self):
        from ansible_collections.attune.packs.plugins.module_utils._pack._pack_spec import PACK_CONSTRAINTS

        return PACK_CONSTRAINTS

    def wants_controller(self, args):
        if args.get("api_url"):
            return True  # packs in a running Attune: everything happens here, nothing on the host
        if args.get("state") == "absent" or args.get("src"):
            return False
        return bool(args.get("lock_file")) or args.get("resolve_on") == "controller" or args.get("fetch_on") == "controller"

    def on_controller(self, params, args, task_vars):
        if params.get("api_url"):
            return self.on_attune(params)
        from ansible_collections.attune.packs.plugins.module_utils._pack import _install
        from ansible_collections.attune.packs.plugins.module_utils._registry._queries import resolve_all

        module_args = _install.controller_handoff(params, args, lambda specs: resolve_all(self.client(params), specs, params, self.warn))
        result = self.run_module(module_args, task_vars)
        if result.get("fetch_requests") and not result.get("failed"):
            result = self.fetch_and_rerun(params, module_args, result, task_vars)
        return result

    def fetch_and_rerun(self, params, module_args, first, task_vars):
        """Fetch the archives the module's first run asked for, then run it again with them.

        The second run plans with the first run's resolutions (``_resolved``), so each pack is resolved once per task
        (issue 17); the first run's warnings (a skipped registry) are kept in the result.
        """
        wanted = first["fetch_requests"]
        if first.get("resolutions"):
            module_args = dict(module_args, _resolved=first["resolutions"])
        try:
            local, scratch = self.fetch_archives(params, wanted)
        except AttuneError as exc:
            raise TaskFailed.from_error(exc, changed=False)
        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        try:
            remote = {}
            for ref, path in local.items():
                remote[ref] = self._connection._shell.join_path(tmpdir, "%s-%s" % (ref, os.path.basename(path)))
                self._transfer_file(path, remote[ref])
            self._fixup_perms2([tmpdir] + list(remote.values()))
            result = self.run_module(dict(module_args, _local_copies=remote), task_vars)
            result["fetched_on_controller"] = sorted(remote)
            if first.get("warnings"):
                result["warnings"] = list(first["warnings"]) + [w for w in result.get("warnings") or () if w not in first["warnings"]]
            return result
        finally:
            self._remove_tmp_path(tmpdir)
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)

    # -- packs in a running Attune (api_url) ---------------------------------------------------------------

    def on_attune(self, params):
        """Manage the packs of the Attune at ``api_url`` from the controller (module_utils._attune_packs)."""
        from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _api_errors, _attune_packs
        from ansible_collections.attune.packs.plugins.module_utils._pack import _install
        from ansible_collections.attune.packs.plugins.module_utils._base._common import error_result, normalise_names, settings_from_params

        check_mode = bool(self._task.check_mode)
        diff = bool(self._task.diff)
        try:
            # invalid arguments first, before any connection (packs_dir with api_url, fetch_on with src, ...)
            _install.check_params(params)
        except AttuneError as exc:
            raise TaskFailed.from_error(exc, changed=False)
        api = _api.client_from_params(params)  # one client per task and Attune: at most one login
        backend = None
        try:
            run_params = params if params["fetch_on"] == "attune" else dict(params, fetch_on="controller")
            # the task's settings, read once (config file included) for the records, the run and the fetches
            settings = settings_from_params(params, require_registries=_install.needs_registry(run_params))
            records = _attune_packs.UploadRecords(settings.cache_dir, api.api_url)
            # more than one pack (or remove_unlisted): one paged GET /api/v1/packs, not one GET per pack (issue 17)
            list_all = bool(params["remove_unlisted"]) or len(normalise_names(params["name"])) != 1
            if params["fetch_on"] == "attune":
                # Attune installs from its own registries: nothing is fetched here
                backend = _attune_packs.AttuneInstallBackend(api, records, skip_tests=params["skip_tests"], force=params["force"],
                                                             list_all=list_all, skip_deps=params["skip_deps"])
            else:
                backend = _attune_packs.AttuneApiBackend(api, records, skip_tests=params["skip_tests"], force=params["force"],
                                                         list_all=list_all)
            _attune_packs.refuse_standard_removals(backend, params)
            with self.archive_fetcher(params, settings) as fetch:
                # one run: planned once; the archives it needs are fetched between planning and applying, each once per
                # controller (content-addressed cache shared by the forks) and verified again by the core (issue 17)
                outcome = _install.run(run_params, lambda required: settings,
                                       check_mode=check_mode, warn=self.warn, backend=backend, fetch=fetch)
            result = outcome.result(check_mode, diff)
        except _api_errors.ApiError as exc:
            self._notes(backend)
            raise TaskFailed.from_error(exc, redact=api.redact, changed=bool(backend is not None and backend.changed_attune),
                                        api_url=api.api_url, **self._changes(backend, True))
        except AttuneError as exc:
            self._notes(backend)
            raise TaskFailed.from_error(exc, redact=api.redact, msg="Attune %s: %s" % (api.api_url, exc),
                                        changed=bool(backend is not None and backend.changed_attune), api_url=api.api_url,
                                        **self._changes(backend, True))
        self._notes(backend)
        result.pop("packs_dir", None)
        result["api_url"] = api.api_url
        result.update(self._changes(backend))
        if backend.pending:
            # accepted uploads whose test run outlasted api_timeout: Attune was changed and goes on; recorded as pending
            exc = _attune_packs.ApiInstallPending(
                "Attune accepted the upload of %s, but its test run had not ended after api_timeout=%ss (%s); Attune goes "
                "on with it and the next run finishes or reports it" % (
                    ", ".join(sorted(backend.pending)), api.timeout,
                    ", ".join("%s: install %s" % item for item in sorted(backend.pending.items()))),
                install_ids=backend.pending, api_url=api.api_url)
            result.update(error_result(exc, redact=api.redact, changed=True))
        return result

    def _notes(self, backend):
        for note in (backend.notes if backend is not None else []):
            self.warn(note)

    def _changes(self, backend, failed=False):
        """What this task did in Attune, also in a failed result (which keeps the warnings too)."""
        out = {"uploaded": [], "deleted": [], "pending": {}}
        if backend is not None:
            out = {"uploaded": list(backend.uploads), "deleted": list(backend.deletions), "pending": dict(backend.pending)}
        if failed and self.warnings:
            out["warnings"] = list(self.warnings)
        return out

    @contextlib.contextmanager
    def archive_fetcher(self, params, settings=None):
        """A ``fetch(fetch_requests)`` → ``{ref: local path}`` callback for ``_install.run`` on the controller; the
        private scratch directories it makes (``cache_enabled: false``) are removed on exit."""
        scratches = []

        def fetch(wanted):
            local, scratch = self.fetch_archives(params, wanted, settings)
            if scratch:
                scratches.append(scratch)
            return local

        try:
            yield fetch
        finally:
            for scratch in scratches:
                shutil.rmtree(scratch, ignore_errors=True)

    def fetch_archives(self, params, wanted, settings=None):
        """Download each wanted archive once: ``({ref: local path}, scratch directory or None)``.

        With the cache on, into the controller's content-addressed archive cache (shared by the forks); with
        ``cache_enabled: false``, into a private temporary directory the caller removes (no archive is kept).
        """
        from ansible_collections.attune.packs.plugins.module_utils._base._common import settings_from_params
        from ansible_collections.attune.packs.plugins.module_utils._pack._install import Options
        from ansible_collections.attune.packs.plugins.plugin_utils._archive_cache import ArchiveCache, local_archive

        if settings is None:
            settings = settings_from_params(params, require_registries=False)
        options = Options(None, validate_certs=params["validate_certs"], ca_path=params["ca_path"], timeout=settings.timeout,
                          connect_timeout=settings.connect_timeout,
                          archive_max_bytes=params["archive_max_bytes"] or settings.archive_max_bytes)
        scratch = None if settings.cache_enabled else tempfile.mkdtemp(prefix="attune-archives-")
        cache = ArchiveCache(scratch or settings.cache_dir)
        local = {}
        registry_urls = [index.get("url") for index in settings.indices if isinstance(index, dict)]
        try:
            for request in wanted:
                local[request["ref"]] = cache.get(request["source"], request["ref"], verify=options.verify, timeout=options.timeout,
                                                  connect_timeout=options.connect_timeout, max_bytes=options.archive_max_bytes,
                                                  allow_http=settings.allow_http,
                                                  allow_file=local_archive(request, registry_urls))
        except BaseException:
            if scratch:
                shutil.rmtree(scratch, ignore_errors=True)
            raise
        return local, scratch
