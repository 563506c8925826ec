# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: packs in a running Attune, through its API (may change without notice).

``attune_pack`` with ``api_url`` runs on the controller (its action plugin) with the same install core as on hosts
(``_install.run``), over :class:`AttuneApiBackend` instead of ``_install.PacksDirBackend``:

* installed(ref)   = Attune's pack summaries of one paged ``GET /api/v1/packs`` (once per task: id, ref, version,
  updated, is_standard and label are all the converged decision needs) when the task names more than one pack or
  removes unlisted packs (``list_all``), else ``GET /api/v1/packs/{ref}`` (once per ref and task) (issue 17);
* staging/activate = the tree verified by the core (downloaded, checksummed, extracted, pack.yaml checked) is
  archived with ``_archive.build_archive`` (deterministic: the same tree gives the same bytes in every deployment) and
  uploaded with ``POST /api/v1/packs/upload`` (``force`` only when Attune already has the ref: it answers 409
  otherwise; routes/packs.rs register_pack_internal), waiting for the test run Attune tracks;
* remove           = ``DELETE /api/v1/packs/{ref}``.

``fetch_on: attune`` is the same orchestrator over :class:`AttuneInstallBackend` (``fetches`` False): specs and lock
entries are planned against Attune's indexed entries, and activate asks Attune to install from its own registries
(``POST /api/v1/packs/install`` with ``ref_spec``), then checks the provenance it returns.

What the collection installed (``remove_unlisted``, drift): Attune's pack record has no field the collection can
set at upload (``meta`` is pack.yaml's ``metadata``, routes/packs.rs CreatePackInput), and changing the pack's
``pack.yaml`` would change the pack.  So the controller keeps a record per Attune API
(:class:`UploadRecords`, ``<cache_dir>/attune-api/<sha256 of the API URL>.json``, 0600 in a private directory)
of each upload: the provenance (version, verified checksum, source, registry) plus Attune's own ``id`` and
``updated`` of the pack record it answered.  A pack counts as installed by the collection only while Attune still
shows that same record (same id, version and ``updated``): a pack uploaded or replaced by anyone else afterwards is
not ours any more and is never removed.  ``is_standard`` packs are never removed by ``remove_unlisted``.

No Ansible imports here.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile

from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _api_errors
from ansible_collections.attune.packs.plugins.module_utils._pack import _archive, _install
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidArguments, PackNotFound
from ansible_collections.attune.packs.plugins.module_utils._registry._version import PackSpec, try_parse_version

RECORD_VERSION = 1
PENDING = ("pending", "running", "activating")


class ApiProvenanceMismatch(_api_errors.ApiError):
    """``fetch_on: attune``: what Attune would install, or says it installed, is not what the lock (or its own
    index) names: another registry or another checksum."""

    kind = "api_provenance_mismatch"


class ApiInstallPending(_api_errors.ApiError):
    """An accepted upload whose test run Attune had not finished at the deadline (``install_ids``: {ref: id})."""

    kind = "api_install_pending"

    def __init__(self, message, install_ids=None, **kwargs):
        self.install_ids = dict(install_ids or {})
        super(ApiInstallPending, self).__init__(message, **kwargs)

    def to_dict(self):
        out = super(ApiInstallPending, self).to_dict()
        out["install_ids"] = dict(self.install_ids)
        return out


class UploadRecords(object):
    """The controller's record of the packs this collection uploaded into one Attune (see the module docstring)."""

    def __init__(self, cache_dir, api_url):
        self.cache_dir = cache_dir
        self.name = hashlib.sha256(api_url.encode("utf-8")).hexdigest() + ".json"
        self.api_url = api_url
        self._data = None

    def _dir(self):
        from ansible_collections.attune.packs.plugins.module_utils._registry._cache import PrivateDir  # pylint: disable=import-outside-toplevel
        from ansible_collections.attune.packs.plugins.module_utils._base._errors import CacheUnsafe  # pylint: disable=import-outside-toplevel

        try:
            PrivateDir(self.cache_dir, what="cache directory").close()
            return PrivateDir(os.path.join(self.cache_dir, "attune-api"), what="cache directory")
        except CacheUnsafe as exc:
            # the record of uploads is state, not a cache: cache_enabled: false does not turn it off (issue 16 item 12)
            exc.message = exc.message.replace("or disable the cache", "the record of the packs uploaded to Attune is "
                                              "kept there whatever cache_enabled says")
            exc.args = (exc.format(),)
            raise

    def _read(self, directory):
        fd = directory.open_trusted(self.name, os.O_RDONLY)
        if fd is None:
            return {}
        with os.fdopen(fd, "rb") as handle:
            try:
                doc = json.loads(handle.read().decode("utf-8"))
            except ValueError:
                return {}
        if not isinstance(doc, dict) or doc.get("api_url") != self.api_url or not isinstance(doc.get("packs"), dict):
            return {}
        return doc["packs"]

    def packs(self):
        if self._data is None:
            if not self.cache_dir:
                return {}
            with self._dir() as directory:
                self._data = self._read(directory)
        return self._data

    def update(self, ref, record):
        """Set (``record``) or forget (None) one ref, read-modify-write under a lock (parallel forks)."""
        with self._dir() as directory:
            with directory.lock(self.name + ".lock"):
                packs = self._read(directory)
                if record is None:
                    packs.pop(ref, None)
                else:
                    packs[ref] = record
                with directory.atomic_write(self.name) as handle:  # 0600, relative to the trusted directory
                    handle.write(json.dumps({"version": RECORD_VERSION, "api_url": self.api_url, "packs": packs},
                                            sort_keys=True, indent=1).encode("utf-8"))
                self._data = packs


def _ours(record, pack):
    """Is Attune's pack record still the one our upload created?"""
    return bool(record) and record.get("pack_id") == pack.get("id") and record.get("updated") == pack.get("updated") \
        and record.get("version") == pack.get("version")


class AttuneApiBackend(_install.Backend):
    """Install target: the packs of one running Attune (the contract: ``_install.Backend``).

    ``same_version_installed``: an installed version equal to the wanted one is kept (the issue's rule for Attune:
    replace with force only when the wanted version differs), whoever installed it.
    """

    same_version_installed = True

    def __init__(self, api, records=None, skip_tests=False, force=False, list_all=False):
        self.api = api
        self.list_all = list_all  # read every pack with one paged listing, not one GET per pack
        self._listed = False
        self.location = api.api_url
        self.records = records
        self.skip_tests = skip_tests
        self.force = force
        self._seen = {}
        self._status = {}
        self.uploads = []      # uploads Attune accepted
        self.installs = []     # installs Attune did from its registries (fetch_on: attune)
        self.deletions = []    # packs deleted
        self.pending = {}      # {ref: install id} of accepted uploads still tested at the deadline
        self.notes = []        # warnings for the task (an earlier run's pending install that failed)

    @property
    def changed_attune(self):
        """Did this task change Attune (an accepted upload or install, a deletion), whatever happened next?"""
        return bool(self.uploads or self.installs or self.deletions or self.pending)

    def _pending_status(self, ref, record):
        """The status of the install an earlier run left pending (asked once per task)."""
        if ref not in self._status:
            self._status[ref] = self.api.install_status(record.get("install_id"), ref)
        return self._status[ref]

    def _pending_error(self, ref, record, status):
        return ApiInstallPending(
            "the upload of %s %s by an earlier run is still being installed by Attune (install %s is %s); run the "
            "task again once Attune's test run has ended"
            % (ref, record.get("version"), record.get("install_id"), status.get("status") or "pending"),
            install_ids={ref: record.get("install_id")}, api_url=self.location, pack=ref)

    def recover(self, refs):
        """Finish what an earlier run left pending: an upload whose test run outlasted ``api_timeout``."""
        records = self.records.packs() if self.records else {}
        for ref in refs:
            record = records.get(ref)
            if not record or record.get("install_status") not in PENDING:
                continue
            status = self._pending_status(ref, record)
            state = status.get("status")
            if state in PENDING or state is None:
                raise self._pending_error(ref, record, status)
            if state in _api.TERMINAL_OK:
                pack = self.pack(ref)
                if pack is not None and pack.get("version") == record.get("version"):
                    done = dict(record, pack_id=pack.get("id"), updated=pack.get("updated"))
                    done.pop("install_status", None)
                    self.records.update(ref, done)
                    continue
            self.notes.append("pack %s: the install %s of %s that an earlier run left pending ended %s%s"
                              % (ref, record.get("install_id"), record.get("version"), state,
                                 (": %s" % self.api.redact(status["error_message"])) if status.get("error_message") else ""))
            self.records.update(ref, None)
        return []

    def pack(self, ref):
        """Attune's record of ``ref`` (a PackSummary when listed, else a PackResponse) or None."""
        if ref not in self._seen and self.list_all and not self._listed:
            self._listed = True
            for row in self.api.list_packs():
                if isinstance(row, dict) and isinstance(row.get("ref"), str):
                    # what this task changed already (remember, remove) is newer than the listing
                    self._seen.setdefault(row["ref"], row)
        if ref not in self._seen:
            self._seen[ref] = None if self._listed else self.api.get_pack(ref)
        return self._seen[ref]

    def installed(self, ref, pending_check=True):
        pack = self.pack(ref)
        if pack is None:
            return None
        record = (self.records.packs() if self.records else {}).get(ref)
        if record and record.get("install_status") in PENDING and not pending_check:
            record = None
        elif record and record.get("install_status") in PENDING:
            status = self._pending_status(ref, record)
            if status.get("status") in PENDING or status.get("status") is None:
                raise self._pending_error(ref, record, status)
            if status.get("status") not in _api.TERMINAL_OK:
                record = None
        managed = _ours(record, pack)
        metadata = dict(record) if managed else {"version": pack.get("version")}
        return {"ref": ref, "version": pack.get("version"), "managed": managed, "error": None, "path": None,
                "metadata": metadata, "is_standard": bool(pack.get("is_standard")), "label": pack.get("label")}

    def managed_refs(self):
        records = self.records.packs() if self.records else {}
        out = []
        for ref in sorted(records):
            current = self.installed(ref)
            if current and current["managed"] and not current["is_standard"]:
                out.append(ref)
        return out

    @contextlib.contextmanager
    def staging(self, ref, checkpoint=None):
        stage = ApiStage(self, ref)
        try:
            yield stage
        finally:
            stage.close()

    def remove(self, ref, checkpoint=None):
        current = self.installed(ref, pending_check=False)
        if current and current.get("is_standard"):
            raise InvalidArguments("%s is a standard pack shipped with Attune %s; attune.packs does not remove it"
                                   % (ref, self.location), pack=ref)
        self.api.delete_pack(ref)
        self.deletions.append(ref)
        self._seen[ref] = None
        if self.records:
            self.records.update(ref, None)
        return current

    def remember(self, ref, metadata, pack):
        self._seen[ref] = pack
        if self.records:
            record = dict(metadata, pack_id=pack.get("id"), updated=pack.get("updated"), version=pack.get("version"))
            self.records.update(ref, record)


class ApiStage(object):
    """A work area on the controller for one pack; ``activate`` uploads the verified tree."""

    def __init__(self, backend, ref):
        self.backend = backend
        self.ref = ref
        self.checkpoint = lambda name: None
        self.path = tempfile.mkdtemp(prefix="attune-upload-%s-" % ref)
        self.previous = False  # False: nothing uploaded yet

    def workdir(self, name="work"):
        return os.path.join(self.path, name)

    def close(self):
        shutil.rmtree(self.path, ignore_errors=True)

    def activate(self, tree, metadata, durable=True):
        backend = self.backend
        api = backend.api
        previous = backend.installed(self.ref)
        try:
            archive, digest = _archive.build_archive(tree)
        except _archive.InvalidArchive as exc:
            raise _api_errors.ApiInvalidArchive(exc.message)  # the upload's error (kind api_invalid_archive), as before
        # Attune answers 409 to an upload of a ref it has unless force is set (register_pack_internal); replacing
        # also needs Packs:Configure (authorize_existing_pack_replacement)
        try:
            data = api.upload_pack(archive, ref=self.ref, force=previous is not None or backend.force,
                                   skip_tests=backend.skip_tests)
        except _api_errors.ApiTimeout as exc:
            if getattr(exc, "install_id", None) is None or getattr(exc, "accepted", None) is None:
                raise
            # accepted, tests still running at the deadline: recorded as pending (the next run finishes or reports
            # it), reported by the task with its install id; the other packs of the list go on
            self.previous = previous
            backend.uploads.append(self.ref)
            backend.pending[self.ref] = exc.install_id
            pack = (getattr(exc, "accepted", None) or {}).get("pack") or {}
            metadata = dict(metadata, archive_checksum=digest, install_id=exc.install_id, install_status="pending")
            backend.remember(self.ref, metadata, pack)
            return {"path": None, "metadata": metadata, "previous": previous, "tests_skipped": False, "test_result": None,
                    "install_status": exc.install_status or "pending", "install_id": exc.install_id}
        except _api_errors.ApiTestsFailed:
            raise  # Attune rolled the upload back (the previous version, or none, is active again)
        except _api_errors.ApiError as exc:
            if getattr(exc, "accepted", None) is not None:
                # accepted, then the wait failed (a malformed answer, ...): Attune was changed
                self.previous = previous
                backend.uploads.append(self.ref)
            if not isinstance(exc, _api_errors.ApiConflict):
                raise
            # the plan saw no such pack (GET answered 404, or the listing had none) and Attune has one now: installed
            # meanwhile, or not visible to this identity (get_pack hides packs it may not Read)
            raise _api_errors.ApiConflict("%s; Attune has %s now although it had none when this task looked (installed "
                                          "meanwhile, or the token's identity lacks Packs:Read on it): run the task again"
                                          % (exc.message, self.ref), api_url=api.api_url, pack=self.ref, status=409,
                                          attune_message=exc.attune_message)
        pack = data.get("pack") or {}
        self.previous = previous
        backend.uploads.append(self.ref)
        if pack.get("ref") not in (None, self.ref) or (metadata.get("version") and pack.get("version") not in (None, metadata["version"])):
            raise _api_errors.ApiError("Attune registered %s %s for the upload of %s %s" % (
                pack.get("ref"), pack.get("version"), self.ref, metadata.get("version")), api_url=api.api_url, pack=self.ref)
        metadata = dict(metadata, archive_checksum=digest)
        backend.remember(self.ref, metadata, pack)
        return {"path": None, "metadata": metadata, "previous": previous, "tests_skipped": data.get("tests_skipped"),
                "test_result": data.get("test_result"), "install_status": data.get("install_status")}

    def rollback(self):
        """Undo this upload: a pack new to Attune is deleted; a replaced version cannot be put back through the API."""
        if self.previous is False:
            return True
        if self.previous is None:
            self.backend.remove(self.ref)
            self.backend.pending.pop(self.ref, None)
            return True
        raise _api_errors.ApiError("Attune keeps the uploaded version (the API cannot restore %s %s)"
                                   % (self.ref, self.previous.get("version")), api_url=self.backend.location, pack=self.ref)


# ---------------------------------------------------------------------------
# fetch_on: attune


def refuse_standard_removals(backend, params):
    """``state: absent`` of a standard pack is refused before anything changes, in check mode too (issue 16 item 8)."""
    from ansible_collections.attune.packs.plugins.module_utils._base._common import normalise_names  # pylint: disable=import-outside-toplevel

    if params.get("state") != "absent":
        return
    for name in normalise_names(params["name"]):
        ref = PackSpec.parse(name).ref
        pack = backend.pack(ref)
        if pack is not None and pack.get("is_standard"):
            raise InvalidArguments("%s is a standard pack shipped with Attune %s; attune.packs does not remove it (nothing "
                                   "was removed)" % (ref, backend.location), pack=ref)


def _checksums(sources):
    return set(str(source.get("checksum")).lower() for source in sources if isinstance(source, dict) and source.get("checksum"))


def _same_registry(one, other):
    return bool(one) and bool(other) and _api.registry_url_key(one) == _api.registry_url_key(other)


def attune_target(api, spec_text, version=None, lock_entry=None):
    """What Attune would install for ``spec_text`` (GET /api/v1/pack-indices/packs/{ref}, routes/packs.rs
    get_indexed_pack: the first entry of the ref in its first registry holding it).

    With ``lock_entry`` the indexed entry must be the locked one: same registry (Attune's URL identity) and every
    install source Attune may pick carries a checksum the lock pins; else :class:`ApiProvenanceMismatch`, before
    anything changes.
    """

    spec = PackSpec.parse(spec_text)
    found = api.get_indexed_pack(spec.ref)
    if not found:
        raise PackNotFound("Attune %s: no registry of Attune holds %s" % (api.api_url, spec.ref), pack=spec.ref)
    entry = found.get("pack") or {}
    registry = found.get("registry") or {}
    offered = entry.get("version")
    wanted = version or offered
    if version and offered != version:
        # resolve_registry_request(): Attune installs "latest" or exactly the entry's version
        raise PackNotFound("Attune %s: its registries offer %s %s, not the locked %s (Attune installs only the version "
                           "its index lists; use fetch_on=controller)" % (api.api_url, spec.ref, offered, version), pack=spec.ref)
    parsed = try_parse_version(wanted or "")
    if not version and (parsed is None or not spec.constraint.matches(parsed)):
        raise PackNotFound("Attune %s: its registries offer %s %s, which does not satisfy %s (Attune installs only the "
                           "version its index lists; use fetch_on=controller)" % (api.api_url, spec.ref, offered, spec.text),
                           pack=spec.ref)
    offered_sums = _checksums(entry.get("install_sources") or [])
    if lock_entry is not None:
        locked_sums = _checksums([lock_entry.get("source"), lock_entry.get("fallback_source")])
        problems = []
        if not _same_registry(registry.get("url"), lock_entry.get("registry_url")):
            problems.append("registry %s (%s), the lock names %s (%s)" % (
                registry.get("name"), redact_url(registry.get("url") or "?"), lock_entry.get("registry"),
                redact_url(lock_entry.get("registry_url") or "?")))
        if not offered_sums or not offered_sums <= locked_sums:
            problems.append("checksums %s, the lock pins %s" % (", ".join(sorted(offered_sums)) or "none",
                                                                ", ".join(sorted(locked_sums)) or "none"))
        if problems:
            raise ApiProvenanceMismatch(
                "Attune would install %s %s from another source than the lock file: %s; nothing was installed (make "
                "Attune's registries hold the locked entry, re-run attune_pack_lock, or use fetch_on=controller)"
                % (spec.ref, offered, "; ".join(problems)), api_url=api.api_url, pack=spec.ref)
    source = {"type": "attune-registry", "url": registry.get("url")}
    target = _install.Target(spec.ref, wanted, [source], spec=(lock_entry or {}).get("spec") or spec.text,
                             registry=registry.get("name"), registry_url=registry.get("url"), origin="attune")
    if lock_entry is not None:
        target.expected = {"registry_url": lock_entry.get("registry_url"), "checksums": locked_sums,
                           "registry": lock_entry.get("registry")}
    else:
        target.expected = {"registry_url": registry.get("url"), "checksums": offered_sums, "registry": registry.get("name")}
    return target


def _is_locked(current, lock_entry):
    """Is the installed pack provably the locked one (our record, same version, a locked checksum, same registry)?"""
    if not current or not current.get("managed"):
        return False
    meta = current.get("metadata") or {}
    locked = _checksums([lock_entry.get("source"), lock_entry.get("fallback_source")])
    return (meta.get("version") == lock_entry.get("version") and str(meta.get("checksum") or "").lower() in locked
            and _same_registry(meta.get("registry_url"), lock_entry.get("registry_url")))


def _check_provenance(api, ref, target, provenance):
    """After ``POST /packs/install``: Attune's provenance must be the source the plan checked (issue 16 item 7)."""
    expected = getattr(target, "expected", None) or {}
    problems = []
    if not isinstance(provenance, dict):
        problems.append("Attune returned no provenance")
    else:
        checksum = str(provenance.get("checksum") or "").lower()
        if expected.get("checksums") and checksum not in expected["checksums"]:
            problems.append("checksum %s, expected %s" % (provenance.get("checksum"), ", ".join(sorted(expected["checksums"]))))
        if expected.get("registry_url") and not _same_registry(provenance.get("registry_url"), expected["registry_url"]):
            problems.append("registry %s, expected %s" % (redact_url(provenance.get("registry_url") or "?"),
                                                          redact_url(expected["registry_url"])))
        resolved = provenance.get("resolved_pack")
        if resolved and target.version and resolved != "%s@%s" % (ref, target.version):
            problems.append("resolved %s, expected %s@%s" % (resolved, ref, target.version))
    if problems:
        raise ApiProvenanceMismatch(
            "Attune installed %s from another source than the one checked before the install: %s; Attune was changed "
            "and keeps that pack, which this collection does not count as the locked one"
            % (ref, "; ".join(problems)), api_url=api.api_url, pack=ref)


class AttuneInstallBackend(AttuneApiBackend):
    """``fetch_on: attune``: the running Attune installs each pack from its own registries (``POST /api/v1/packs/install``),
    planned by the core's rules (``_install.run``) against what Attune's registries offer.

    * a spec becomes Attune's indexed entry (:func:`attune_target`);
    * a lock entry must be that entry (same registry and checksums, checked before anything changes,
      :meth:`plan_locked`); after each install the provenance Attune returns is checked and recorded as Attune gives it;
    * an install Attune did is not undone by this collection when a later pack of the list fails (Attune has no
      undo for it); the task's ``installs`` and the error say what was changed.
    """

    fetches = False

    def __init__(self, api, records=None, skip_tests=False, force=False, list_all=False, skip_deps=False):
        super(AttuneInstallBackend, self).__init__(api, records, skip_tests=skip_tests, force=force, list_all=list_all)
        self.skip_deps = skip_deps
        # the planned target of each pack, for InstallStage: every install step of this backend gets its target from
        # target_for or plan_locked (check_params refuses src and source with fetch_on=attune)
        self.targets = {}

    def target_for(self, spec_text, resolve):
        target = attune_target(self.api, spec_text)
        self.targets[target.ref] = target
        return target

    def plan_locked(self, entry, force):
        ref = entry["ref"]
        current = self.installed(ref)
        if not force and _is_locked(current, entry):
            return _install.Step(ref, "none", current=current, reason="installed %s is the locked one" % entry["version"])
        target = attune_target(self.api, ref, entry["version"], lock_entry=entry)
        self.targets[ref] = target
        step = _install.decide(self, target, current, force)
        if step.action == "none":
            # the version is the locked one, but nothing proves its source: put the locked pack back
            step = _install.Step(ref, "reinstall", target, current,
                                 "installed %s is not provably the locked one (another source, or not installed by this "
                                 "collection)" % current.get("version"))
        return step

    @contextlib.contextmanager
    def staging(self, ref, checkpoint=None):
        yield InstallStage(self, ref)


class InstallStage(object):
    """One pack that Attune installs from its own registries (nothing is staged on the controller)."""

    def __init__(self, backend, ref):
        self.backend = backend
        self.ref = ref
        self.changed = False  # did Attune install it (whatever the provenance check says next)?

    def activate(self, tree, metadata, durable=True):
        backend = self.backend
        api = backend.api
        step_target = backend.targets[self.ref]  # planned by target_for / plan_locked
        current = backend.installed(self.ref, pending_check=False)
        data = api.install_pack(self.ref, ref_spec=step_target.version, force=current is not None or backend.force,
                                skip_tests=backend.skip_tests, skip_deps=backend.skip_deps, pack=self.ref) or {}
        backend.installs.append(self.ref)
        self.changed = True
        pack = data.get("pack") or {}
        provenance = data.get("provenance") if isinstance(data.get("provenance"), dict) else {}
        # recorded as Attune says it installed it: a later run compares this with the lock
        metadata = {"pack_ref": self.ref, "version": pack.get("version") or step_target.version,
                    "installed_from": {"type": "attune-registry", "url": redact_url(provenance.get("artifact_url") or "") or None},
                    "checksum": provenance.get("checksum"), "registry": step_target.registry,
                    "registry_url": provenance.get("registry_url"), "spec": step_target.spec}
        backend.remember(self.ref, metadata, pack)
        _check_provenance(api, self.ref, step_target, data.get("provenance"))
        return {"path": None, "metadata": metadata, "previous": current}

    def rollback(self):
        if not self.changed:
            return True
        raise _api.ApiError("Attune installed it from its registries; this collection does not undo Attune's installs",
                            api_url=self.backend.location, pack=self.ref)


# ---------------------------------------------------------------------------
# attune_pack_installed with api_url


def installed_packs(api, names=None, records=None):
    """The packs of one Attune as ``attune_pack_installed`` items (plus ``label``, ``is_standard``)."""
    rows = dict((row.get("ref"), row) for row in api.list_packs())
    known = records.packs() if records else {}
    refs = list(names) if names else sorted(rows)
    items = []
    for ref in refs:
        row = rows.get(ref)
        if row is None:
            items.append({"ref": ref, "installed": False, "path": None, "managed": False, "version": None, "label": None,
                          "is_standard": None, "installed_at": None, "installed_from": None, "checksum": None, "registry": None,
                          "registry_url": None, "spec": None, "tree_checksum": None, "current_tree_checksum": None,
                          "verified": None, "verify_reason": None, "error": None})
            continue
        record = known.get(ref)
        managed = _ours(record, row)
        record = record if managed else {}
        items.append({"ref": ref, "installed": True, "path": None, "managed": managed, "version": row.get("version"),
                      "label": row.get("label"), "is_standard": bool(row.get("is_standard")),
                      "installed_at": record.get("installed_at"), "installed_from": record.get("installed_from"),
                      "checksum": record.get("checksum"), "registry": record.get("registry"),
                      "registry_url": record.get("registry_url"), "spec": record.get("spec"),
                      "tree_checksum": record.get("tree_checksum"), "current_tree_checksum": None, "verified": None,
                      "verify_reason": None, "error": None})
    return items
