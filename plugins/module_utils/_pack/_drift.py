# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: drift of installed packs from a lock file (may change without notice).

``attune_pack_installed`` with ``lock_file`` returns :func:`compare`'s result;
``playbooks/drift_report.yml`` only prints it.
"""

from __future__ import annotations

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
