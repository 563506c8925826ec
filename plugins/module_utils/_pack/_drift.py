# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the report of ``attune_pack_installed`` and the drift of installed packs from a lock
file (may change without notice).

:func:`installed_report` builds the module's whole result, for the packs of a packs_dir on a host (:func:`on_host`)
and for the packs of a running Attune (the action plugin, on the controller); with ``lock_file`` its ``drift`` is
:func:`compare`'s result, which ``playbooks/drift_report.yml`` only prints.
"""

from __future__ import annotations

import contextlib
import os

from ansible_collections.attune.packs.plugins.module_utils._base._common import error_result
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError

# the status of one locked pack, in the order they are checked
MISSING = "missing"
UNREADABLE_PROVENANCE = "unreadable-provenance"
OTHER_VERSION = "other-version"
OTHER_SOURCE = "other-source"
MODIFIED = "modified"
IN_SYNC = "in-sync"
STATUSES = (IN_SYNC, MISSING, UNREADABLE_PROVENANCE, OTHER_VERSION, OTHER_SOURCE, MODIFIED)


def accepted_checksums(entry):
    """The checksums a lock entry accepts: its source's and its fallback's."""
    return [source["checksum"] for source in (entry.get("source"), entry.get("fallback_source")) if source and source.get("checksum")]


def status_of(entry, item, verified):
    """Status of one locked pack.

    ``entry``: the lock entry (validated by ``_lockfile``); ``item``: its ``attune_pack_installed`` item
    (``installed``, ``managed``, ``version``, ``checksum``, ``error``); ``verified``: the verification of its
    files (True, False, or None when there was nothing to compare with).
    """
    if not item["installed"]:
        return MISSING
    if item["error"] and not item["managed"]:
        return UNREADABLE_PROVENANCE  # e.g. a corrupted metadata record: nothing says what this is
    if item["version"] != entry["version"]:
        return OTHER_VERSION
    if not item["managed"] or item["checksum"] not in accepted_checksums(entry):
        return OTHER_SOURCE  # not installed by attune.packs, or from a source the lock does not name
    if verified is False:
        return MODIFIED
    return IN_SYNC


def compare(entries, items, verified, label):
    """Drift of the installed ``items`` (by ref) from the lock ``entries``.

    ``verified``: ref -> the verification result of the locked packs' files.  Returns ``{deviates, packs, msg,
    <status with _>: [refs], unlisted}``: ``packs`` has one ``{ref, status, locked_version, installed_version}`` per
    lock entry, ``unlisted`` the managed packs the lock does not name (information, not drift).
    """
    by_ref = dict((item["ref"], item) for item in items)
    result = dict((status.replace("-", "_"), []) for status in STATUSES)
    packs = []
    for entry in entries:
        item = by_ref.get(entry["ref"]) or {"installed": False, "managed": False, "version": None, "checksum": None, "error": None}
        status = status_of(entry, item, verified.get(entry["ref"]))
        packs.append({"ref": entry["ref"], "status": status, "locked_version": entry["version"], "installed_version": item["version"]})
        result[status.replace("-", "_")].append(entry["ref"])
    locked = set(entry["ref"] for entry in entries)
    result.update(
        packs=packs, lock_file=label, deviates=len(result["in_sync"]) != len(packs),
        unlisted=sorted(item["ref"] for item in items if item["installed"] and item["managed"] and item["ref"] not in locked),
    )
    result["msg"] = _message(result)
    return result


def _message(result):
    by_status = dict((pack["ref"], pack) for pack in result["packs"])
    parts = []
    if result["missing"]:
        parts.append("missing " + ", ".join(result["missing"]))
    if result["unreadable_provenance"]:
        parts.append("unreadable provenance " + ", ".join(result["unreadable_provenance"]))
    if result["other_version"]:
        parts.append("other version " + ", ".join("%s %s (locked %s)" % (ref, by_status[ref]["installed_version"], by_status[ref]["locked_version"])
                                                  for ref in result["other_version"]))
    if result["other_source"]:
        parts.append("other source " + ", ".join(result["other_source"]))
    if result["modified"]:
        parts.append("modified files " + ", ".join(result["modified"]))
    if parts:
        text = "DRIFT: " + "; ".join(parts)
    else:
        text = "in sync: %d locked packs installed as locked" % len(result["packs"])
    if result["unlisted"]:
        text += "; unlisted packs: " + ", ".join(result["unlisted"])
    return text


# -- the report of attune_pack_installed: one builder (installed_report) over a Listing of the target, a packs_dir
# (PacksDirListing, on the host) or a running Attune (the action plugin's listing, on the controller) -----------------

PROVENANCE_FIELDS = ("installed_at", "installed_from", "checksum", "registry", "registry_url", "spec", "tree_checksum")


def unique_names(names):
    """``name`` without blanks and repeats, stripped, in the order given."""
    result = []
    for name in names or []:
        name = name.strip()
        if name and name not in result:
            result.append(name)
    return result


def pack_item(ref, entry):
    """One item of ``packs`` from a ``_packdir.installed`` entry (None: not installed)."""
    item = {"ref": ref, "installed": entry is not None, "path": None, "managed": False, "version": None}
    item.update((field, None) for field in PROVENANCE_FIELDS)
    item.update(current_tree_checksum=None, verified=None, verify_reason=None, error=None)
    if entry is not None:
        metadata = entry["metadata"] or {}
        item.update(path=entry["path"], managed=entry["managed"], version=entry["version"], error=entry["error"])
        item.update((field, metadata.get(field)) for field in PROVENANCE_FIELDS)
    return item


def read_lock(params):
    """The lock of ``lock_file`` (its text, ``_lock_text``, comes from the controller when the action plugin ran), or None."""
    if not params["lock_file"] and params["_lock_text"] is None:
        return None
    from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile  # pylint: disable=import-outside-toplevel

    if params["_lock_text"] is not None:
        return _lockfile.parse(params["_lock_text"], params["lock_file"])
    return _lockfile.load(params["lock_file"])


class Listing(object):
    """Where ``attune_pack_installed`` reads the installed packs (subclassed per target)."""

    where = None  # named in warnings

    def check_names(self, names):
        """Refuse requested refs this target cannot look up (AttuneError)."""

    def holding(self, reads_trees):
        """Context held while packs are listed, verified and compared (``reads_trees``: files are checksummed)."""
        return contextlib.nullcontext()

    def items(self, names):
        """Items of ``packs``: one per ref of ``names`` in that order, else one per installed pack sorted by ref."""
        raise NotImplementedError

    def item(self, ref):
        return self.items([ref])[0]

    def verify(self, ref):
        """``{ok, reason, actual}`` of an installed pack's files, or None where files cannot be verified."""
        return None

    def headline(self, installed):
        """The first part of ``msg`` (``installed``: the installed items)."""
        raise NotImplementedError

    def fields(self, installed):
        """The target's own result fields."""
        return {}


class PacksDirListing(Listing):
    """The packs of a packs_dir (``_packdir``: one directory per pack, provenance in ``.attune/``)."""

    def __init__(self, packs_dir):
        from ansible_collections.attune.packs.plugins.module_utils._pack import _packdir  # pylint: disable=import-outside-toplevel

        self.store = _packdir  # imported here: the action plugin (controller) imports this file for its Attune listing
        self.where = self.packs_dir = packs_dir
        self.exists = os.path.isdir(packs_dir)

    def check_names(self, names):
        from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import validate_ref  # pylint: disable=import-outside-toplevel

        for ref in names:
            validate_ref(ref)

    def holding(self, reads_trees):
        # verification holds the packs_dir lock, so that no tree is compared while attune_pack replaces it
        if reads_trees and self.exists:
            return self.store.locked(self.packs_dir)
        return contextlib.nullcontext()

    def items(self, names):
        if names:
            return [pack_item(ref, self.store.installed(self.packs_dir, ref)) for ref in names]
        return [pack_item(entry["ref"], entry) for entry in self.store.list_installed(self.packs_dir)]

    def verify(self, ref):
        return self.store.verify_installed(self.packs_dir, ref)

    def headline(self, installed):
        if not self.exists:
            return "no packs: %s does not exist" % self.packs_dir
        return "%d pack%s in %s (%d managed)" % (len(installed), "" if len(installed) == 1 else "s", self.packs_dir,
                                                 sum(1 for item in installed if item["managed"]))

    def fields(self, installed):
        return {"packs_dir": self.packs_dir}


def lock_drift(listing, lock, packs, verify):
    """Drift from ``lock``; the locked packs that are installed are verified here unless ``verify`` already did (it
    verifies the packs the task names: a locked pack it does not name is verified here too)."""
    by_ref = dict((item["ref"], item) for item in packs)
    items = list(packs)
    verified = {}
    for ref in lock.refs():
        item = by_ref.get(ref)
        named = item is not None
        if item is None:
            item = listing.item(ref)
            items.append(item)
        if item["installed"]:
            if verify and named:
                verified[ref] = item["verified"]  # verified with the named packs
            else:
                check = listing.verify(ref)
                verified[ref] = check["ok"] if check is not None else None
    return compare(lock.entries(), items, verified, lock.label)


def installed_report(listing, names, verify, load_lock, warn):
    """The result of ``attune_pack_installed`` on ``listing`` (``load_lock()``: the lock or None).

    Core errors (AttuneError, OSError) propagate: the callers turn them into a failed result.
    """
    names = unique_names(names)
    listing.check_names(names)
    lock = load_lock()
    drift = None
    with listing.holding(verify or lock is not None):
        packs = listing.items(names)
        if verify:
            for item in packs:
                if item["installed"]:
                    check = listing.verify(item["ref"])
                    item.update(verified=check["ok"], verify_reason=check["reason"], current_tree_checksum=check["actual"])
        if lock is not None:
            drift = lock_drift(listing, lock, packs, verify)

    for item in packs:
        if item["error"]:
            warn("pack %s in %s: %s" % (item["ref"], listing.where, item["error"]))
        elif verify and item["managed"] and item["verified"] is None:
            warn("pack %s could not be verified: %s" % (item["ref"], item["verify_reason"]))

    installed = [item for item in packs if item["installed"]]
    missing = [item["ref"] for item in packs if not item["installed"]]
    result = dict(changed=False, packs=packs, missing=missing)
    result.update(listing.fields(installed))
    msg = listing.headline(installed)
    if missing:
        msg += "; not installed: %s" % ", ".join(missing)
    if verify:
        result["modified"] = modified = sorted(item["ref"] for item in packs if item["verified"] is False)
        msg += "; verified: %s" % ("%d modified (%s)" % (len(modified), ", ".join(modified)) if modified else "no modified pack")
    if drift is not None:
        result["drift"] = drift
        msg += "; " + drift["msg"]
    result["msg"] = msg
    return result


def packs_dir_of(params):
    """``packs_dir``, else ``packs_base_dir`` of the host's Attune config file (else Attune's default)."""
    if params["packs_dir"]:
        return params["packs_dir"]
    from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings  # pylint: disable=import-outside-toplevel

    options = {"config_path": params["config_path"], "environment": params["environment"]}
    return load_settings(options, require_registries=False).packs_base_dir


def on_host(params, warn):
    """``attune_pack_installed`` on a host (the packs of a packs_dir): its result, or a failed result."""
    packs_dir = None
    try:
        packs_dir = packs_dir_of(params)
        return installed_report(PacksDirListing(packs_dir), params["name"], params["verify"], lambda: read_lock(params), warn)
    except AttuneError as exc:
        return error_result(exc, changed=False, packs_dir=packs_dir)
    except OSError as exc:
        return dict(failed=True, msg="cannot read packs_dir %s: %s" % (packs_dir, exc.strerror or exc), changed=False,
                    packs_dir=packs_dir)
