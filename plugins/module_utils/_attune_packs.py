# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: packs in a running Attune, through its API (may change without notice).

``attune_pack`` with ``api_url`` runs on the controller (its action plugin) with the same install core as on hosts
(``_install.run``), over :class:`AttuneApiBackend` instead of ``_install.PacksDirBackend``:

* installed(ref)   = ``GET /api/v1/packs/{ref}`` (once per ref and task);
* staging/activate = the tree verified by the core (downloaded, checksummed, extracted, pack.yaml checked) is
  archived with ``_api.build_archive`` (deterministic: the same tree gives the same bytes in every deployment) and
  uploaded with ``POST /api/v1/packs/upload`` (``force`` only when Attune already has the ref: it answers 409
  otherwise; routes/packs.rs register_pack_internal), waiting for the test run Attune tracks;
* remove           = ``DELETE /api/v1/packs/{ref}``.

``fetch_on: attune`` asks Attune to install from its own registries (``POST /api/v1/packs/install`` with
``ref_spec``), see :func:`run_on_attune`.

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

from ansible_collections.attune.packs.plugins.module_utils import _api
from ansible_collections.attune.packs.plugins.module_utils._errors import InvalidArguments, PackNotFound
from ansible_collections.attune.packs.plugins.module_utils._version import PackSpec, try_parse_version

RECORD_VERSION = 1


class UploadRecords(object):
    """The controller's record of the packs this collection uploaded into one Attune (see the module docstring)."""

    def __init__(self, cache_dir, api_url):
        self.cache_dir = cache_dir
        self.name = hashlib.sha256(api_url.encode("utf-8")).hexdigest() + ".json"
        self.api_url = api_url
        self._data = None

    def _dir(self):
        from ansible_collections.attune.packs.plugins.module_utils._cache import PrivateDir  # pylint: disable=import-outside-toplevel

        PrivateDir(self.cache_dir, what="cache directory").close()
        return PrivateDir(os.path.join(self.cache_dir, "attune-api"), what="cache directory")

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


class AttuneApiBackend(object):
    """Install target: the packs of one running Attune (see ``_install.PacksDirBackend`` for the interface).

    ``same_version_installed``: an installed version equal to the wanted one is kept (the issue's rule for Attune:
    replace with force only when the wanted version differs), whoever installed it.
    """

    same_version_installed = True

    def __init__(self, api, records=None, skip_tests=False, force=False):
        self.api = api
        self.location = api.api_url
        self.records = records
        self.skip_tests = skip_tests
        self.force = force
        self._seen = {}
        self.uploads = []

    def recover(self, refs):
        return []  # Attune's upload is one request: nothing is left half-done on our side

    def pack(self, ref):
        if ref not in self._seen:
            self._seen[ref] = self.api.get_pack(ref)
        return self._seen[ref]

    def installed(self, ref):
        pack = self.pack(ref)
        if pack is None:
            return None
        record = (self.records.packs() if self.records else {}).get(ref)
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
        current = self.installed(ref)
        if current and current.get("is_standard"):
            raise InvalidArguments("%s is a standard pack shipped with Attune %s; attune.packs does not remove it"
                                   % (ref, self.location), pack=ref)
        self.api.delete_pack(ref)
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
        archive, digest = _api.build_archive(tree)
        # Attune answers 409 to an upload of a ref it has unless force is set (register_pack_internal); replacing
        # also needs Packs:Configure (authorize_existing_pack_replacement)
        try:
            data = api.upload_pack(archive, ref=self.ref, force=previous is not None or backend.force,
                                   skip_tests=backend.skip_tests)
        except _api.ApiConflict as exc:
            # the plan saw no such pack (GET answered 404) and Attune has one now: installed meanwhile, or not
            # visible to this identity (get_pack hides packs it may not Read)
            raise _api.ApiConflict("%s; Attune has %s now although it had none when this task looked (installed "
                                   "meanwhile, or the token's identity lacks Packs:Read on it): run the task again"
                                   % (exc.message, self.ref), api_url=api.api_url, pack=self.ref, status=409,
                                   attune_message=exc.attune_message)
        pack = data.get("pack") or {}
        self.previous = previous
        backend.uploads.append(self.ref)
        if pack.get("ref") not in (None, self.ref) or (metadata.get("version") and pack.get("version") not in (None, metadata["version"])):
            raise _api.ApiError("Attune registered %s %s for the upload of %s %s" % (
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
            return True
        raise _api.ApiError("Attune keeps the uploaded version (the API cannot restore %s %s)"
                            % (self.ref, self.previous.get("version")), api_url=self.backend.location, pack=self.ref)


# ---------------------------------------------------------------------------
# fetch_on: attune


def attune_target(api, spec_text, version=None):
    """What Attune would install for ``spec_text`` (GET /api/v1/pack-indices/packs/{ref}, routes/packs.rs
    get_indexed_pack: the first entry of the ref in its first registry holding it)."""
    from ansible_collections.attune.packs.plugins.module_utils._install import Target  # pylint: disable=import-outside-toplevel

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
    source = {"type": "attune-registry", "url": registry.get("url")}
    return Target(spec.ref, wanted, [source], spec=spec.text, registry=registry.get("name"), registry_url=registry.get("url"),
                  origin="attune")


def run_on_attune(params, backend, check_mode=False):
    """``fetch_on: attune``: plan with the core's rules, install through ``POST /api/v1/packs/install``."""
    from ansible_collections.attune.packs.plugins.module_utils import _install  # pylint: disable=import-outside-toplevel
    from ansible_collections.attune.packs.plugins.module_utils._common import normalise_names  # pylint: disable=import-outside-toplevel

    _install.check_params(params)
    if params["src"] or params["source"] is not None:
        raise InvalidArguments("fetch_on=attune installs from Attune's registries: give name (specs) or lock_file, not src or source")
    api = backend.api
    names = normalise_names(params["name"])
    state = params["state"]
    steps = []
    if state == "absent":
        steps = [_install.plan_absent(backend, PackSpec.parse(name).ref) for name in names]
    else:
        pinned = {}
        if params["lock_file"]:
            from ansible_collections.attune.packs.plugins.module_utils import _lockfile  # pylint: disable=import-outside-toplevel

            lock = _lockfile.load(params["lock_file"])
            for name in names:
                entry = _lockfile.entry_for(lock, name)
                pinned[entry["ref"]] = entry["version"]
        for name in names:
            spec = PackSpec.parse(name)
            current = backend.installed(spec.ref)
            if spec.ref not in pinned and state == "present" and not params["force"] and _install.satisfies(current, spec):
                steps.append(_install.Step(spec.ref, "none", current=current,
                                           reason="installed version %s satisfies %s" % (current["version"], spec.text)))
                continue
            target = attune_target(api, name if spec.ref not in pinned else spec.ref, pinned.get(spec.ref))
            steps.append(_install.decide(backend, target, current, params["force"]))
    if params["remove_unlisted"]:
        steps.extend(_install.plan_unlisted(backend, set(step.ref for step in steps), finish_killed_runs=False))
    if not check_mode:
        for step in steps:
            if step.action in _install.INSTALL_ACTIONS:
                data = api.install_pack(step.ref, ref_spec=step.target.version, force=step.current is not None or params["force"],
                                        skip_tests=params["skip_tests"], skip_deps=params["skip_deps"], pack=step.ref) or {}
                pack = data.get("pack") or {}
                provenance = data.get("provenance") or {}
                metadata = {"pack_ref": step.ref, "version": pack.get("version") or step.target.version,
                            "installed_from": {"type": "attune-registry", "url": provenance.get("artifact_url") or step.target.registry_url},
                            "checksum": provenance.get("checksum"), "registry": step.target.registry,
                            "registry_url": provenance.get("registry_url") or step.target.registry_url, "spec": step.target.spec}
                backend.remember(step.ref, metadata, pack)
                step.result = {"path": None, "metadata": metadata, "previous": step.current}
        for step in steps:
            if step.action == "remove":
                step.result = {"previous": backend.remove(step.ref)}
    return _install.Outcome(steps, backend.location)


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
