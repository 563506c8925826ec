# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: an offline mirror of pack registries (may change without notice).

A mirror is a directory served as static files (``https://`` base_url, for Attune and this collection) or read
as ``file://`` (``file:///dir`` base_url: every URL of its index is a file:// URL, so only this collection, on
the controller, can read it; Attune refuses non-https sources)::

    <dest>/index.json                                   the mirror's index (format 1.0, written by _publish)
    <dest>/packs/<ref>/<sha256>.<tar.gz|zip|tar>        an upstream archive, byte-identical, named by its sha256
    <dest>/packs/<ref>/git-<commit>-<tree16>.tar.gz     a git source turned into an archive (_archive.build_archive:
                                                        deterministic), named by commit and framed tree checksum

Every pack is verified against its upstream checksum before it enters the mirror: archives are hashed while they
download (``_fetch.download``) and git checkouts are verified by ``_git.clone`` (framed checksum of the pack root).
A mirrored entry is the upstream entry with its install sources replaced, in the same order, by archives under
``base_url``: the same bytes and checksum for an archive source; for a git source an archive whose pack tree has
the upstream framed checksum, with the archive's own sha256.

Incremental: an archive already in the mirror is re-hashed and kept when it matches (no download); a git-built
archive is kept when the current mirror index lists it with the checksum the file still has.  Archives are
published (written, synced, renamed) before the index that names them; ``prune`` drops the refs no longer asked
for from the index, then deletes the files the new index no longer names.

:func:`run_mirror` is the ``attune_pack_mirror`` task: the packs wanted (specs resolved, or a lock), each mirrored,
the index updated and written, files pruned, and the task's result.

No Ansible imports.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import tempfile
from urllib.parse import urlsplit

from ansible_collections.attune.packs.plugins.module_utils._publishing import _publish
from ansible_collections.attune.packs.plugins.module_utils._base._common import normalise_names, settings_from_params
from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile
from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import file_digest, parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._registry._version import PackSpec
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, InvalidArguments, SourceError
from ansible_collections.attune.packs.plugins.module_utils._base._fs import atomic_write, fsync_dir, remove_tree

PACKS_DIR = "packs"
INDEX_FILE = "index.json"
DEFAULT_NAME = "Attune pack mirror"
EXTENSIONS = {"tar.gz": ".tar.gz", "zip": ".zip", "tar": ".tar"}


def index_path_of(dest):
    """The mirror's index file in ``dest``."""
    return os.path.join(dest, INDEX_FILE)


def is_file_url(url):
    return isinstance(url, str) and url[:7].lower() == "file://"


def check_base_url(base_url):
    """The URL the mirror is served from, returned without a trailing slash: https (no credentials/query) for a
    mirror read by Attune, or ``file:///absolute/dir`` for a mirror read by this collection on the controller only
    (Attune refuses non-https sources)."""
    local = is_file_url(base_url)
    _publish.check_source_url(base_url, "base_url", allow_file=local)
    url = base_url.rstrip("/")
    if local and not url[len("file://"):].strip("/"):
        raise InvalidArguments("base_url %s names the root directory; give the mirror's directory "
                               "(file:///path/to/dest)" % base_url)
    return url


class MirrorOptions(object):
    """How sources are fetched: TLS, deadlines, size cap, http and file:// permissions."""

    def __init__(self, verify=True, validate_certs=True, ca_path=None, timeout=120, connect_timeout=10,
                 archive_max_bytes=104857600, allow_http=False, allow_local_git=False):
        self.verify = verify
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.archive_max_bytes = archive_max_bytes
        self.allow_http = allow_http
        self.allow_local_git = allow_local_git


class Wanted(object):
    """One pack to mirror: the upstream entry and the sources to mirror (all of the entry's, or a lock's)."""

    def __init__(self, entry, sources, origin):
        self.entry = entry
        self.ref = entry["ref"]
        self.version = entry["version"]
        self.sources = sources
        self.origin = origin


def wanted_from_resolution(resolution):
    return Wanted(resolution["entry"], list(resolution["entry"]["install_sources"]), resolution.get("registry"))


def wanted_from_lock(lock_entry, resolution):
    """A lock entry: the sources the lock pins (commit and checksums as locked), the entry's other fields."""
    if resolution["version"] != lock_entry["version"]:
        raise InvalidArguments("the registry resolved %s to %s, not the locked %s"
                               % (lock_entry["ref"], resolution["version"], lock_entry["version"]), pack=lock_entry["ref"])
    sources = [lock_entry["source"]] + ([lock_entry["fallback_source"]] if lock_entry.get("fallback_source") else [])
    return Wanted(resolution["entry"], [dict(source) for source in sources], resolution.get("registry"))


def _archive_name(source, path=None):
    from ansible_collections.attune.packs.plugins.module_utils._pack._extract import (  # pylint: disable=import-outside-toplevel
        archive_format_from_url, detect_format)

    fmt = archive_format_from_url(source["url"])
    if fmt is None and path is not None:
        fmt = detect_format(path)
    return parse_checksum(source["checksum"], allowed=("sha256",)).hexdigest + EXTENSIONS.get(fmt or "tar.gz", ".tar.gz")


def _git_name(commit, tree_checksum):
    return "git-%s-%s.tar.gz" % (commit, parse_checksum(tree_checksum).hexdigest[:16])


class Mirror(object):
    """One run over ``dest``."""

    def __init__(self, dest, base_url, options, registry_name=None, check_mode=False, warn=lambda message: None):
        if not os.path.isdir(dest):
            raise InvalidArguments("dest %s is not a directory (create it first)" % dest)
        self.dest = dest
        self.base_url = check_base_url(base_url)
        self.local = is_file_url(self.base_url)  # file://: read by this collection only, never by Attune
        self.options = options
        self.check_mode = check_mode
        self.warn = warn
        self.index_path = index_path_of(dest)
        self.current, _text = _publish.read_index_file(self.index_path, missing_ok=True)
        current_urls = {}
        if self.current is not None:
            # what this module wrote, with either kind of base_url (the new index is checked for this one)
            _publish.validate_publishable(self.current, label=self.index_path, allow_file=True)
            for pack in self.current["packs"]:
                for source in pack["install_sources"]:
                    current_urls[source["url"]] = source["checksum"]
        self.current_urls = current_urls
        self.registry_name = registry_name
        self.fetched = []
        self.kept = []
        self.written_files = []

    # -- one source ---------------------------------------------------------------------------------------------
    def url_of(self, ref, name):
        return "%s/%s/%s/%s" % (self.base_url, PACKS_DIR, ref, name)

    def _dir_of(self, ref):
        directory = os.path.join(self.dest, PACKS_DIR, ref)
        if not self.check_mode:
            os.makedirs(directory, exist_ok=True)
        return directory

    def _mirror_archive(self, ref, source, scratch):
        expected = parse_checksum(source["checksum"], allowed=("sha256",))
        name = _archive_name(source)
        path = os.path.join(self._dir_of(ref), name)
        if os.path.isfile(path) and not os.path.islink(path) and file_digest(path) == expected.hexdigest:
            self.kept.append(path)
            return {"type": "archive", "url": self.url_of(ref, name), "checksum": source["checksum"]}
        if self.check_mode:
            self.fetched.append(redact_url(source["url"]))
            return None
        from ansible_collections.attune.packs.plugins.module_utils._registry import _fetch  # pylint: disable=import-outside-toplevel

        hasher = hashlib.sha256()
        opts = self.options
        with atomic_write(path, mode=0o644) as handle:  # renamed into place only once the checksum matched
            _fetch.download(source["url"], handle, verify=opts.verify, timeout=opts.timeout, connect_timeout=opts.connect_timeout,
                            max_bytes=opts.archive_max_bytes, hashers=(hasher,), error_class=SourceError, pack=ref,
                            allow_http=opts.allow_http, allow_file=opts.allow_http)
            expected.verify(hasher.hexdigest(), what="archive %s" % redact_url(source["url"]), pack=ref)
        self.fetched.append(redact_url(source["url"]))
        self.written_files.append(path)
        return {"type": "archive", "url": self.url_of(ref, name), "checksum": source["checksum"]}

    def _mirror_git(self, ref, source, scratch):
        from ansible_collections.attune.packs.plugins.module_utils._pack import _git  # pylint: disable=import-outside-toplevel

        commit = source.get("ref")
        if _git.is_commit(commit):
            name = _git_name(commit.lower(), source["checksum"])
            path = os.path.join(self._dir_of(ref), name)
            url = self.url_of(ref, name)
            if os.path.isfile(path) and not os.path.islink(path) and url in self.current_urls \
                    and self.current_urls[url] == "sha256:" + file_digest(path):
                self.kept.append(path)
                return {"type": "archive", "url": url, "checksum": self.current_urls[url]}
        if self.check_mode:
            self.fetched.append(redact_url(source["url"]))
            return None
        opts = self.options
        checkout = _git.clone(source["url"], os.path.join(scratch, "git"), version=commit, expected_checksum=source["checksum"],
                              allow_local_git=opts.allow_local_git, allow_http=opts.allow_http, validate_certs=opts.validate_certs,
                              ca_path=opts.ca_path, timeout=opts.timeout, pack=ref)
        from ansible_collections.attune.packs.plugins.module_utils._pack._archive import build_archive  # pylint: disable=import-outside-toplevel

        data, checksum = build_archive(checkout.tree, excludes=(".attune", ".git"), max_bytes=opts.archive_max_bytes)
        name = _git_name(checkout.commit, source["checksum"])
        path = os.path.join(self._dir_of(ref), name)
        with atomic_write(path, mode=0o644) as handle:
            handle.write(data)
        shutil.rmtree(os.path.join(scratch, "git"), ignore_errors=True)
        self.fetched.append(redact_url(source["url"]))
        self.written_files.append(path)
        return {"type": "archive", "url": self.url_of(ref, name), "checksum": checksum}

    # -- one pack -----------------------------------------------------------------------------------------------
    def mirror_pack(self, wanted):
        """The mirror's entry for ``wanted`` (None in check mode when something would be fetched)."""
        scratch = tempfile.mkdtemp(prefix=".attune-mirror-", dir=self.dest)
        sources = []
        pending = False
        errors = []
        try:
            for position, source in enumerate(wanted.sources):
                try:
                    if source.get("type") == "git":
                        mirrored = self._mirror_git(wanted.ref, source, scratch)
                    elif source.get("type") == "archive":
                        mirrored = self._mirror_archive(wanted.ref, source, scratch)
                    else:
                        raise SourceError("unknown install source type %r" % source.get("type"), pack=wanted.ref)
                except AttuneError as exc:
                    if exc.pack is None:
                        exc.pack = wanted.ref
                        exc.args = (exc.format(),)
                    errors.append(exc)
                    continue
                if mirrored is None:
                    pending = True
                elif mirrored not in sources:
                    sources.append(mirrored)
        finally:
            remove_tree(scratch)
        if errors:
            raise errors[0]  # nothing of this pack is listed unless every source was verified
        if pending:
            return None
        entry = copy.deepcopy(wanted.entry)
        entry["install_sources"] = sources
        return entry


def prune_files(dest, index):
    """Delete the files under ``<dest>/packs`` that ``index`` does not name; returns their paths (relative)."""
    named = set()
    for pack in index["packs"]:
        for source in pack["install_sources"]:
            named.add("/".join(source["url"].split("/")[-3:]))
    removed = []
    root = os.path.join(dest, PACKS_DIR)
    if not os.path.isdir(root):
        return removed
    for ref in sorted(os.listdir(root)):
        directory = os.path.join(root, ref)
        if not os.path.isdir(directory) or os.path.islink(directory):
            continue
        for name in sorted(os.listdir(directory)):
            rel = "%s/%s/%s" % (PACKS_DIR, ref, name)
            if rel not in named:
                remove_tree(os.path.join(directory, name))
                removed.append(rel)
        if not os.listdir(directory):
            os.rmdir(directory)
        fsync_dir(root)
    return removed


# -- the attune_pack_mirror task ---------------------------------------------------------------------------------

def wanted_packs(client, params, warn):
    """The :class:`Wanted` packs of the task: each locked pack of ``lock_file`` (at its locked version), else each
    spec of ``name`` (resolved preferring git sources; a ref listed twice is refused)."""
    from ansible_collections.attune.packs.plugins.module_utils._registry._queries import resolve_one  # pylint: disable=import-outside-toplevel

    params = dict(params, prefer_source="git")
    wanted = []
    if params["lock_file"]:
        for entry in _lockfile.load(params["lock_file"]).entries():
            resolution = resolve_one(client, "%s@%s" % (entry["ref"], entry["version"]), params, warn)
            wanted.append(wanted_from_lock(entry, resolution))
        return wanted
    seen = set()
    for spec in normalise_names(params["name"]):
        ref = PackSpec.parse(spec).ref
        if ref in seen:
            raise InvalidArguments("pack %r is listed twice in name (a mirror holds one version per ref)" % ref, pack=ref)
        seen.add(ref)
        wanted.append(wanted_from_resolution(resolve_one(client, spec, params, warn)))
    return wanted


def run_mirror(params, check_mode=False, diff=False, warn=lambda message: None):
    """The ``attune_pack_mirror`` task on ``params`` (the module's parameters): its result; raises core errors.

    Every wanted pack is mirrored (archives published first); the index is updated, validated and written only when
    no pack is pending (in check mode, a pack that would be fetched), then the files it no longer names are pruned
    (``prune``).  A failure leaves the index as it was; the core error it raises has ``changed`` true when files
    were already written into ``dest`` (archives of the packs mirrored before the failure, which the index does not
    name yet), so the caller's failed result says so (with ``index_path``, :func:`index_path_of`).
    """
    from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient  # pylint: disable=import-outside-toplevel

    dest = params["dest"]
    index_path = index_path_of(dest)
    settings = settings_from_params(params)
    client = RegistryClient(settings)
    options = MirrorOptions(
        verify=settings.verify_for(None), validate_certs=params["validate_certs"], ca_path=params["ca_path"],
        timeout=settings.timeout, connect_timeout=settings.connect_timeout,
        archive_max_bytes=params["archive_max_bytes"] or settings.archive_max_bytes, allow_http=settings.allow_http)
    mirror = Mirror(dest, params["base_url"], options, check_mode=check_mode, warn=warn)
    try:
        return _run_mirror(mirror, client, params, index_path, check_mode, diff, warn)
    except AttuneError as exc:
        exc.changed = bool(mirror.written_files)  # changed is exact in a failed result too
        raise


def _run_mirror(mirror, client, params, index_path, check_mode, diff, warn):
    dest = params["dest"]
    wanted = wanted_packs(client, params, warn)
    entries = [mirror.mirror_pack(item) for item in wanted]
    wanted_refs = set(item.ref for item in wanted)
    current = mirror.current
    remove = []
    if params["prune"] and current is not None:
        remove = sorted(pack["ref"] for pack in current["packs"] if pack["ref"] not in wanted_refs)
    registry_name = params["registry_name"] or (current or {}).get("registry_name") or DEFAULT_NAME
    registry_url = mirror.base_url + "/" + INDEX_FILE
    pending = [item.ref for item, entry in zip(wanted, entries) if entry is None]
    change = None
    files_removed = []
    if not pending:
        change = _publish.update_index(current, registry_name, registry_url, entries=entries, remove=remove,
                                       label=index_path, allow_file=mirror.local)
        if change.changed and not check_mode:
            _publish.write_text(index_path, change.text)  # after every archive it names was published
            mirror.written_files.append(index_path)
        if params["prune"] and not check_mode:
            files_removed = prune_files(dest, change.index)

    current_refs = set(pack["ref"] for pack in (current or {}).get("packs", []))
    if change is not None:
        added, updated, kept, removed = change.added, change.replaced, change.unchanged, change.removed
    else:
        added = sorted(item.ref for item in wanted if item.ref not in current_refs)
        updated = sorted(ref for ref in pending if ref in current_refs)
        kept = sorted(wanted_refs - set(added) - set(updated))
        removed = remove
    changed = bool(mirror.written_files or files_removed or pending or removed or (change is not None and change.changed))
    parts = []
    for label, refs in (("added", added), ("updated", updated), ("removed", removed)):
        if refs:
            parts.append("%s %s" % (label, ", ".join(refs)))
    if kept:
        parts.append("kept %d" % len(kept))
    parts.append("%s %d sources" % ("would fetch" if check_mode else "fetched", len(mirror.fetched)))
    msg = "mirror %s: %s" % (dest, "; ".join(parts))
    if check_mode and changed:
        msg = "check mode, nothing written: " + msg
    result = dict(changed=changed, index_path=index_path, added=added, updated=updated, kept=kept, removed=removed,
                  fetched=mirror.fetched, files_removed=files_removed,
                  approved_host=None if mirror.local else urlsplit(mirror.base_url).hostname, msg=msg)
    if change is not None:
        result["index"] = change.index
        if diff:
            result["diff"] = dict(before=change.old_text or "", after=change.text, before_header=index_path, after_header=index_path)
    return result
