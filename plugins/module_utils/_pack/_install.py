# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the whole ``attune_pack`` task (may change without notice).

The module and its action plugin are thin over this file:

* :func:`check_params` refuses option combinations that make no sense (the
  action plugin calls it before its controller-side work, the module in :func:`run`);
* :func:`run` is the one orchestrator of every install target: it builds
  :class:`Options`, plans a :class:`Step` per pack and applies them through a
  :class:`Backend`, and returns an :class:`Outcome` whose :meth:`Outcome.result`
  is the module result (on the host, and on the controller for a running Attune);
* :func:`controller_handoff` is the controller side (``lock_file``,
  ``resolve_on``/``fetch_on: controller``): it turns the task into module
  arguments for the host, using the private arguments ``_resolved`` and ``_local_copies``.

Planning compares what each pack should be (a :class:`Target`: registry
resolution, lock entry, ``source`` or direct ``src``) with the *installed state*
a backend reports, without any download, so check mode and no-change runs are
cheap.  Applying runs in two phases: every pack is fetched, verified, extracted
and validated in its own staging area first; only when all of them succeeded
are they activated, and a failing activation rolls back the packs this run
already activated.  Removals (``state: absent``, ``remove_unlisted``) come last.

The backend is the seam for the install targets (:class:`Backend` declares the
contract): :class:`PacksDirBackend` is the packs directory on this host;
``_attune._attune_packs.AttuneApiBackend`` uploads the verified trees to a running
Attune and ``AttuneInstallBackend`` asks that Attune to install from its own
registries (``fetch_on: attune``: nothing is fetched here, ``fetches`` is False).
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import os

# _fetch, _git and _extract are imported where a download, a clone or an extraction happens: a converged host never
# needs them
from ansible_collections.attune.packs.plugins.module_utils._pack import _pack_yaml, _packdir
from ansible_collections.attune.packs.plugins.module_utils._base._common import normalise_names
from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import framed_dir_checksum, parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import SECTION_KEYS, redact_url, tls_verify
from ansible_collections.attune.packs.plugins.module_utils._base._errors import (
    AttuneError, ChecksumError, InvalidArguments, InvalidPackStructure, SourceError,
)
from ansible_collections.attune.packs.plugins.module_utils._registry._version import PackSpec, try_parse_version

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")
INSTALL_ACTIONS = ("install", "upgrade", "downgrade", "reinstall")


def default_of(key, value=None):
    """``value``, or Attune's default for the ``pack_registry`` key (the one table of defaults, in ``_config``)."""
    return SECTION_KEYS[key][1] if value is None else value


class Options(object):
    """Install settings (from the module options and the host's pack_registry section)."""

    def __init__(self, location, validate_certs=True, ca_path=None, timeout=None, connect_timeout=None,
                 archive_max_bytes=None, verify_checksums=True, allow_unverified=False, allow_http=False,
                 allow_local_git=False, max_entries=None, max_entry_bytes=None, max_total_bytes=None, durable=True):
        """``location``: where the packs go, the backend's (a packs_dir, or the API URL of a running Attune); it is the
        packs_dir of the :class:`PacksDirBackend` that :func:`apply` uses when it is given no backend.  Values left at
        None are the defaults: ``pack_registry``'s (``_config.SECTION_KEYS``) for the network, ``extract_archive``'s
        own for the extraction limits."""
        self.location = location
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = default_of("timeout", timeout)
        self.connect_timeout = default_of("connect_timeout", connect_timeout)
        self.archive_max_bytes = default_of("archive_max_bytes", archive_max_bytes)
        self.verify_checksums = verify_checksums
        self.allow_unverified = allow_unverified
        self.allow_http = allow_http
        self.allow_local_git = allow_local_git
        # Attune (installer.rs PackInstaller::extract_archive): the total extracted size is bounded by archive_max_bytes
        limits = {"max_entries": max_entries, "max_entry_bytes": max_entry_bytes,
                  "max_total_bytes": archive_max_bytes if max_total_bytes is None else max_total_bytes}
        self.limits = dict((name, value) for name, value in limits.items() if value is not None)
        self.durable = durable

    @property
    def verify(self):
        return tls_verify(self.validate_certs, self.ca_path)


class Target(object):
    """What one pack should be: ref, expected version, sources to try in order."""

    def __init__(self, ref, version=None, sources=(), spec=None, registry=None, registry_url=None, origin="registry"):
        self.ref = ref
        self.version = version
        self.sources = [dict(s) for s in sources if s]
        self.spec = spec
        self.registry = registry
        self.registry_url = registry_url
        self.origin = origin  # registry | lock | source | src
        self.local_copy = None  # path of the archive the controller copied to this host (fetch_on=controller)

    @classmethod
    def from_resolution(cls, resolution, origin="registry"):
        """From an ``attune_pack_info``/lookup result, a lock entry or a ``source`` dict given by the user."""
        sources = [resolution.get("source"), resolution.get("fallback_source")]
        return cls(resolution["ref"], resolution.get("version"), sources, resolution.get("spec"), resolution.get("registry"),
                   resolution.get("registry_url"), origin)

    @property
    def primary(self):
        return self.sources[0] if self.sources else None

    def describe(self):
        source = self.primary or {}
        where = source.get("url") or source.get("path") or "?"
        text = "%s %s from %s %s" % (self.ref, self.version or "(version of the source)", source.get("type", "?"), redact_url(where))
        if source.get("ref"):
            text += " @ " + source["ref"]
        return text


def src_target(ref, src, version=None, checksum=None, options=None):
    """A target for a direct source: git URL, archive URL, local directory or local archive."""
    source = {"checksum": checksum} if checksum else {}
    if os.path.isabs(src) or src.startswith("./") or src.startswith("../") or not ("://" in src or src.startswith("git@")):
        path = os.path.abspath(os.path.expanduser(src))
        if os.path.isdir(path):
            source.update(type="dir", path=path)
        elif os.path.isfile(path):
            source.update(type="archive", path=path)
        else:
            raise SourceError("src %s: no such directory or archive" % src, pack=ref)
    else:
        lowered = src.lower().split("?")[0]
        is_archive = lowered.endswith(ARCHIVE_SUFFIXES) or "/tar.gz/" in lowered or "/zip/" in lowered
        if is_archive:
            from ansible_collections.attune.packs.plugins.module_utils._registry import _fetch  # pylint: disable=import-outside-toplevel

            # SourceError naming the pack, never the credential or query (issue 8 item 10); file:// is a local path given here
            _fetch.check_archive_url(src, allow_http=bool(options and options.allow_http), allow_file=True, pack=ref)
            source.update(type="archive", url=src)
        else:
            source.update(type="git", url=src)
            if version:
                source["ref"] = version
    if checksum:
        try:
            parse_checksum(checksum)
        except ChecksumError as exc:
            raise ChecksumError(exc.message, pack=ref)
    if source["type"] == "dir" and not version:
        # a local tree tells its version up front, so the plan can say install/upgrade/reinstall
        version = _pack_yaml.load_pack_yaml(source["path"], pack=ref).get("version")
    return Target(ref, None if source["type"] == "git" else version, [source], origin="src")


# -- the install target backend -------------------------------------------------------


class Backend(abc.ABC):
    """The install target contract of the orchestrator (:func:`plan` … :func:`apply`).

    Implemented by :class:`PacksDirBackend` (a packs directory on this host),
    ``_attune._attune_packs.AttuneApiBackend`` (a running Attune: verified trees uploaded through its API) and
    ``_attune._attune_packs.AttuneInstallBackend`` (a running Attune installing from its own registries).

    * ``location``: where the packs go, for messages and the ``packs_dir``/``api_url`` result;
    * ``same_version_installed``: True when an installed pack of the wanted version is kept whoever installed it
      (Attune: replaced only with ``force`` or another version); False when provenance must match too;
    * ``fetches``: True when the core fetches, verifies and extracts each source into the staging area and hands the
      tree to ``activate``; False when the target installs from its own registries (``activate(None, None)``), and
      then specs and lock entries are planned against what the target offers (:meth:`target_for`, :meth:`plan_locked`).
    """

    location = None
    same_version_installed = False
    fetches = True

    @abc.abstractmethod
    def recover(self, refs):
        """Finish or undo what a killed run left for these refs (before planning, never in check mode); returns notes."""

    @abc.abstractmethod
    def installed(self, ref):
        """The installed state of one pack: None when it is not installed, else ``{ref, version, managed, error, path,
        metadata}``: ``managed`` when provenance is recorded, ``metadata`` that record (``version``, ``checksum``,
        ``installed_from``, ``tree_checksum``, ``registry``), ``error`` why provenance or version could not be read."""

    @abc.abstractmethod
    def managed_refs(self):
        """Refs of every pack this collection manages there (``remove_unlisted``)."""

    @abc.abstractmethod
    def staging(self, ref, checkpoint=None):
        """A context manager yielding a work area with ``workdir(name)`` (a path for downloads and extraction),
        ``activate(tree, metadata, durable)`` → ``{path, metadata, previous}`` and ``rollback()`` (undo ``activate``
        while the area is open; False when it cannot)."""

    @abc.abstractmethod
    def remove(self, ref, checkpoint=None):
        """Remove one pack; return its state before (or None)."""

    def modified(self, ref):
        """``verify``: why the files of a managed pack differ from its record, else None (None: cannot tell)."""
        return None

    def target_for(self, spec_text, resolve):
        """The :class:`Target` of a spec that is not satisfied by what is installed: by default the registry resolution
        ``resolve(spec_text)`` (on this host, or the controller's ``_resolved``)."""
        return Target.from_resolution(resolve(spec_text))

    def plan_locked(self, entry, force):
        """The step of one lock entry for a backend that does not fetch (``fetches`` False); the others never get
        one: the core turns each entry into the exact source it pins (``source``)."""
        raise NotImplementedError("%s fetches its sources: lock entries are planned as sources" % type(self).__name__)


class PacksDirBackend(Backend):
    """Install target: a packs directory on this host (``_packdir``); see :class:`Backend`."""

    def __init__(self, packs_dir):
        self.location = packs_dir

    def recover(self, refs):
        if not refs or not os.path.isdir(self.location):
            return []
        return _packdir.recover(self.location, refs=refs)

    def installed(self, ref):
        return _packdir.installed(self.location, ref)

    def managed_refs(self):
        return [item["ref"] for item in _packdir.list_installed(self.location) if item["managed"]]

    def modified(self, ref):
        """``verify``: why the files of a managed pack differ from its record's ``tree_checksum``, else None."""
        return _packdir.modified(self.location, ref)

    def staging(self, ref, checkpoint=None):
        return _packdir.staging(self.location, ref, checkpoint=checkpoint)

    def remove(self, ref, checkpoint=None):
        return _packdir.remove(self.location, ref, checkpoint=checkpoint)


def backend_of(where):
    """A backend, or the packs directory path of one."""
    return PacksDirBackend(where) if isinstance(where, str) else where


# -- planning ------------------------------------------------------------------------


class Step(object):
    """The decision for one pack."""

    def __init__(self, ref, action, target=None, current=None, reason=""):
        self.ref = ref
        self.action = action  # none | install | upgrade | downgrade | reinstall | remove
        self.target = target
        self.current = current
        self.reason = reason
        self.result = None

    @property
    def changed(self):
        """Does this step change the pack (anything but ``none``)?"""
        return self.action != "none"

    def current_summary(self):
        if not self.current:
            return None
        meta = self.current.get("metadata") or {}
        return {
            "ref": self.ref,
            "version": self.current.get("version"),
            "path": self.current.get("path"),
            "source": meta.get("installed_from"),
            "checksum": meta.get("checksum"),
            "registry": meta.get("registry"),
        }

    def diff_text(self, which):
        if which == "before":
            summary = self.current_summary()
            if not summary:
                return "%s: not installed\n" % self.ref
            return "%s %s (%s)\n" % (self.ref, summary["version"], _source_text(summary["source"]))
        if self.action == "remove":
            return "%s: not installed\n" % self.ref
        if self.action == "none":
            return self.diff_text("before")
        # a src install learns its version from the pack's pack.yaml: after the run, the installed one
        version = self.target.version or ((self.result or {}).get("metadata") or {}).get("version") or "(version of the source)"
        return "%s %s (%s)\n" % (self.ref, version, _source_text(self.target.primary))


def _source_text(source):
    if not source:
        return "unknown source"
    text = "%s %s" % (source.get("type"), redact_url(source.get("url") or source.get("path") or ""))
    if source.get("ref"):
        text += " @ %s" % source["ref"]
    return text


def satisfies(current, spec):
    """Does the installed pack satisfy ``spec`` (a :class:`PackSpec`) without asking a registry?"""
    if not current or current.get("error") and not current.get("version"):
        return False
    version = try_parse_version(current.get("version") or "")
    return version is not None and spec.constraint.matches(version)


def matches_target(current, target):
    """Is exactly ``target`` installed (same version and same verified checksum / source)?"""
    if not current or not current.get("managed"):
        return False
    meta = current["metadata"] or {}
    if target.version and meta.get("version") != target.version:
        return False
    installed_from = meta.get("installed_from") or {}
    for source in target.sources:
        checksum = source.get("checksum")
        if checksum and meta.get("checksum") == checksum:
            return True
    primary = target.primary or {}
    if primary.get("type") == "dir":
        # a local directory without checksum: compare the trees themselves
        try:
            return "sha256:" + framed_dir_checksum(primary["path"]) == meta.get("tree_checksum")
        except AttuneError:
            return False
    if not primary.get("checksum") and installed_from.get("url") and installed_from.get("url") == redact_url(primary.get("url")):
        same_ref = primary.get("ref") is None or primary.get("ref") in (installed_from.get("ref"), installed_from.get("commit"))
        return bool(same_ref)
    return False


def plan_present(where, spec_text, resolve, state="present", force=False, verify=False):
    """Plan a registry spec.  ``resolve(spec_text)`` returns a resolution dict (called only when needed).

    ``where`` is a backend or a packs directory.  ``verify``: an installed version that satisfies the spec is kept
    only while its files match its record; a modified one is reinstalled from what the spec resolves to.
    """
    spec = PackSpec.parse(spec_text)
    backend = backend_of(where)
    current = backend.installed(spec.ref)
    if state == "present" and not force and satisfies(current, spec) and not (verify and _modified(backend, current)):
        return Step(spec.ref, "none", current=current, reason="installed version %s satisfies %s" % (current["version"], spec.text))
    return decide(backend, backend.target_for(spec.text, resolve), current, force, verify)


def plan_target(where, target, force=False, verify=False):
    """Plan an exact target (lock entry, ``source``, direct ``src``)."""
    backend = backend_of(where)
    return decide(backend, target, backend.installed(target.ref), force, verify)


def _modified(backend, current):
    """Why a managed pack's files differ from its record (``verify``), None when they match or nothing is recorded.

    Unmanaged packs have no record to compare with: they are ``other-source``, replaced only when asked (the lock pins
    another checksum, or ``force``).  Computed once per pack and run (the tree is read in full).
    """
    if not current or not current.get("managed") or not hasattr(backend, "modified"):
        return None
    if "modified" not in current:
        current["modified"] = backend.modified(current["ref"])
    return current["modified"]


def decide(backend, target, current, force, verify=False):
    """The step for ``target`` given the ``current`` state the backend reported.

    ``verify`` (issue 18): a pack that is otherwise converged is reinstalled when its files no longer match the
    ``tree_checksum`` recorded at install time (drift ``modified``); nothing is downloaded to find out.
    """
    if (backend.same_version_installed and current is not None and not force and target.version
            and current.get("version") == target.version):
        # a running Attune (issue 11): the installed version is kept when it is the wanted one; force replaces it
        return Step(target.ref, "none", target, current, "installed version %s is the target version" % target.version)
    step = _step_from_record(target, current, force)
    if verify and step.action == "none":
        reason = _modified(backend, current)
        if reason:
            return Step(target.ref, "reinstall", target, current, "modified files: %s" % reason)
    return step


def _step_from_record(target, current, force):
    """The step from comparing ``target`` with the ``current`` record alone (what :func:`decide` adds: a running
    Attune's same-version rule and ``verify``)."""
    ref = target.ref
    if current is None:
        return Step(ref, "install", target, None, "not installed")
    if matches_target(current, target):
        if force:
            return Step(ref, "reinstall", target, current, "force: true")
        return Step(ref, "none", target, current, "already installed: %s" % target.describe())
    if current.get("error") and not current.get("managed"):
        # e.g. a corrupted provenance record: nothing proves what is installed, so put the target back
        return Step(ref, "reinstall", target, current, "installed %s, but its provenance is unreadable (%s)"
                    % (current.get("version") or "(unknown version)", current["error"]))
    old = try_parse_version(current.get("version") or "")
    new = try_parse_version(target.version or "")
    if old is not None and new is not None and new < old:
        return Step(ref, "downgrade", target, current, "installed %s, target %s" % (current["version"], target.version))
    return Step(ref, "upgrade" if current.get("version") != target.version else "reinstall", target, current,
                "installed %s, target %s" % (current.get("version"), target.version or "(from source)"))


def plan_absent(where, ref):
    _pack_yaml.validate_ref(ref)
    current = backend_of(where).installed(ref)
    if current is None:
        return Step(ref, "none", reason="not installed")
    return Step(ref, "remove", current=current, reason="installed %s" % (current.get("version") or "(unknown version)"))


def plan_unlisted(where, keep, finish_killed_runs=True):
    """Removal steps for the managed packs whose ref is not in ``keep``.

    Managed = installed with provenance metadata; anything else in ``packs_dir``
    (packs copied by hand or installed by other tools) is never planned for removal.
    ``finish_killed_runs`` first finishes or undoes a killed run's leftovers of those packs (not in check mode).
    """
    backend = backend_of(where)
    unlisted = [ref for ref in backend.managed_refs() if ref not in keep]
    if finish_killed_runs and unlisted:
        backend.recover(unlisted)
    return [plan_absent(backend, ref) for ref in unlisted]


# -- fetching -----------------------------------------------------------------------


def _checksum_for(source, options, ref, warn):
    text = source.get("checksum")
    if not text:
        return None
    checksum = parse_checksum(text)
    if not options.verify_checksums:
        warn("pack %s: verify_checksums is false, the checksum of %s is computed but NOT verified" % (ref, _source_text(source)))
        return None
    return checksum


def _require_checksum(source, options, ref, target):
    if source.get("checksum") or not options.verify_checksums:
        return
    if source["type"] == "dir" or source.get("path"):
        return  # local sources are trusted like the files of the playbook
    if target.origin == "src" and options.allow_unverified:
        return
    raise ChecksumError(
        "refusing to install %s from %s without a checksum: give checksum (sha256:… or sha512:…) or set allow_unverified: true"
        % (ref, _source_text(source)), pack=ref,
    )


def _fetch_archive(stage, source, checksum, options, ref, name="archive", local_ok=False, local_copy=None):
    """Download (or copy) an archive into the staging area, hashing it; verify; return its path and digest.

    ``local_ok``: a local path is acceptable (a direct ``src``); ``local_copy``: the archive the controller fetched
    and copied to this host (fetch_on=controller); verified here too.
    """
    path = stage.workdir(name + ".download")
    algorithm = checksum.algorithm if checksum else "sha256"
    hasher = hashlib.new(algorithm)
    local = local_copy or source.get("path")
    url = ("file://" + local) if local else source["url"]
    from ansible_collections.attune.packs.plugins.module_utils._registry import _fetch  # pylint: disable=import-outside-toplevel

    with open(path, "wb") as handle:
        # issue 8 item 8: the scheme rule applies whatever option the URL came through; file:// only for local copies
        # and src (a lock file or source needs allow_http for http:// and file://)
        _fetch.download(url, handle, verify=options.verify, timeout=options.timeout, connect_timeout=options.connect_timeout,
                        max_bytes=options.archive_max_bytes, hashers=(hasher,), error_class=SourceError, pack=ref,
                        allow_http=options.allow_http, allow_file=bool(local) or local_ok or options.allow_http)
    digest = hasher.hexdigest()
    if checksum:
        checksum.verify(digest, what="archive %s" % redact_url(url), pack=ref)
    return path, "%s:%s" % (algorithm, digest)


def _naming_source(exc, source):
    """Make sure the message of ``exc`` names the source it is about (extraction and pack.yaml errors do not)."""
    where = redact_url(source.get("url") or source.get("path") or "")
    if where and where not in exc.message:
        exc.message = "%s: %s" % (_source_text(source), exc.message)
        exc.args = (exc.format(),)
    return exc


def _prepare(stage, target, options, warn):
    """Fetch, verify, extract and validate one target inside its staging area; return (tree, metadata)."""
    ref = target.ref
    errors = []
    for position, source in enumerate(target.sources):
        try:
            _require_checksum(source, options, ref, target)
            checksum = _checksum_for(source, options, ref, warn)
            commit = None
            if source["type"] == "git":
                from ansible_collections.attune.packs.plugins.module_utils._pack import _git  # pylint: disable=import-outside-toplevel

                checkout = _git.clone(source["url"], stage.workdir("git%d" % position), version=source.get("ref"),
                                      expected_checksum=checksum, allow_local_git=options.allow_local_git,
                                      allow_http=options.allow_http, validate_certs=options.validate_certs, ca_path=options.ca_path,
                                      timeout=options.timeout, pack=ref)
                tree, commit, verified = checkout.tree, checkout.commit, str(checkout.checksum)
                pack_yaml = _pack_yaml.read_pack_yaml(tree, ref, target.version, pack=ref)
            elif source["type"] == "archive":
                archive, verified = _fetch_archive(stage, source, checksum, options, ref, "archive%d" % position,
                                                   local_ok=target.origin == "src" or from_local_registry(target),
                                                   local_copy=target.local_copy if source is target.primary else None)
                from ansible_collections.attune.packs.plugins.module_utils._pack import _extract  # pylint: disable=import-outside-toplevel

                tree, pack_yaml, _stats = _extract.prepare_archive(
                    archive, stage.workdir("extract%d" % position), ref, target.version, pack=ref, **options.limits)
                os.unlink(archive)
            elif source["type"] == "dir":
                # copy first, then read and checksum the copy: what is verified is what gets activated
                tree = stage.workdir("copy%d" % position)
                _packdir.copy_tree(source["path"], tree, checkpoint=stage.checkpoint, pack=ref)
                pack_yaml = _pack_yaml.read_pack_yaml(tree, ref, target.version, pack=ref)
                verified = "sha256:" + framed_dir_checksum(tree)
                if checksum:
                    digest = framed_dir_checksum(tree, checksum.algorithm)
                    checksum.verify(digest, what="directory %s" % source["path"], pack=ref)
                    verified = str(checksum)
            else:
                raise SourceError("unknown source type %r" % source.get("type"), pack=ref)
            if position:
                warn("pack %s: installed from the fallback source %s after: %s" % (ref, _source_text(source), "; ".join(errors)))
            metadata = _packdir.build_metadata(
                ref, pack_yaml.get("version"), source, checksum=verified if options.verify_checksums else source.get("checksum") or verified,
                registry=target.registry, registry_url=target.registry_url, spec=target.spec, commit=commit,
            )
            return tree, metadata
        except InvalidPackStructure as exc:
            # the entry itself is wrong: another source of it would not help
            raise _naming_source(exc, source)
        except AttuneError as exc:
            _naming_source(exc, source)
            errors.append(exc.message)
            if source["type"] != "git" or position + 1 >= len(target.sources):
                if len(errors) > 1:
                    exc.message = "; then ".join(errors)
                    exc.args = (exc.format(),)
                raise
    raise SourceError("no install source to try", pack=ref)


def archive_source(target):
    """The source a controller can fetch for this target: the primary when it is an archive, else the fallback archive."""
    for source in target.sources:
        if source.get("type") == "archive" and source.get("url"):
            return source
    return None


def from_local_registry(target):
    """True when ``target`` was resolved from a file:// registry, whose index may name archives beside it as file://
    URLs (the index reader checked them: archive sources under the index's directory only, see _index.validate_index)."""
    url = target.registry_url
    return target.origin == "registry" and isinstance(url, str) and url[:8].lower() == "file:///"


def fetch_requests(steps):
    """``[{ref, source}]`` of the archives the controller must copy here before ``apply`` (fetch_on=controller)."""
    wanted = []
    for step in steps:
        if step.action not in INSTALL_ACTIONS or step.target.local_copy:
            continue
        if (step.target.primary or {}).get("path"):
            continue  # a local archive or directory (src): already where the install runs, nothing to fetch
        source = archive_source(step.target)
        if source is None:
            raise SourceError("fetch_on=controller needs an archive source, and %s has none (only %s)"
                              % (step.target.describe(), ", ".join(s.get("type", "?") for s in step.target.sources)), pack=step.ref)
        request = {"ref": step.ref, "source": source_for_result(source)}
        if from_local_registry(step.target):
            request["registry_url"] = step.target.registry_url  # the controller reads file:// only for its own registries
        wanted.append(request)
    return wanted


def use_local_copies(steps, local_copies):
    """fetch_on=controller, second module run: install these archives (``{ref: path on this host}``) instead of downloading."""
    for step in steps:
        path = (local_copies or {}).get(step.ref)
        if path and step.action in INSTALL_ACTIONS:
            source = archive_source(step.target)
            if source is None:
                raise SourceError("the controller copied an archive for %s, which has no archive source" % step.target.describe(), pack=step.ref)
            step.target.sources = [source]  # the copy is of this source: no fallback to a download on this host
            step.target.local_copy = path


# -- applying -------------------------------------------------------------------------


def apply(steps, options, warn=lambda message: None, checkpoint=None, backend=None):
    """Run the steps: prepare every install in its staging area, then activate them all, then removals.

    All or nothing for the installs: when an activation fails, the packs this run already activated are put
    back as they were (their previous trees are still in their staging areas) before the error is raised.
    """
    backend = backend or PacksDirBackend(options.location)
    installs = [step for step in steps if step.action in INSTALL_ACTIONS]
    with contextlib.ExitStack() as stack:
        prepared = []
        for step in installs:
            stage = stack.enter_context(backend.staging(step.ref, checkpoint=checkpoint))
            # a target installing from its own registries gets no tree: it fetches (and is checked after) itself
            tree, metadata = _prepare(stage, step.target, options, warn) if backend.fetches else (None, None)
            prepared.append((step, stage, tree, metadata))
        activated = []
        for step, stage, tree, metadata in prepared:
            try:
                step.result = stage.activate(tree, metadata, durable=options.durable)
            except BaseException as exc:
                # this one too: it may have failed after its swap
                _roll_back(activated + [(step, stage)], exc, warn)
                if isinstance(exc, AttuneError):
                    raise _naming_source(exc, step.target.primary or {})
                raise
            activated.append((step, stage))
    for step in steps:
        if step.action == "remove":
            step.result = {"previous": backend.remove(step.ref, checkpoint=checkpoint)}
    return steps


def _roll_back(activated, exc, warn):
    """Undo the activations of this run (newest first); say which could not be undone."""
    kept = []
    for step, stage in reversed(activated):
        try:
            stage.rollback()
        except Exception as failure:  # pylint: disable=broad-except
            kept.append("%s (%s)" % (step.ref, failure))
        step.result = None
    if kept and isinstance(exc, AttuneError):
        exc.message += "; could not roll back the packs already activated in this run: %s" % ", ".join(kept)
        exc.args = (exc.format(),)
    elif kept:
        warn("could not roll back the packs already activated in this run: %s" % ", ".join(kept))


def pack_summary(step):
    """The ``pack`` return value for a step (what is installed after the run, or would be in check mode)."""
    if step.action == "remove" or (step.target is None and not step.result and not step.current):
        return None  # removed, or absent and already not installed
    if step.result:
        meta = step.result["metadata"]
        path = step.result["path"]
    elif step.action == "none" and step.current:
        meta = step.current.get("metadata") or {}
        path = step.current.get("path")
    else:
        source = step.target.primary or {}
        return {"ref": step.ref, "version": step.target.version, "path": None, "source": source_for_result(source),
                "checksum": source.get("checksum"), "registry": step.target.registry}
    return {"ref": step.ref, "version": meta.get("version") or (step.current or {}).get("version"), "path": path,
            "source": meta.get("installed_from"), "checksum": meta.get("checksum"), "registry": meta.get("registry")}


def source_for_result(source):
    """An install source as results show it: its known keys, the URL without credentials or query."""
    result = dict((k, v) for k, v in source.items() if k in ("type", "url", "ref", "path", "checksum"))
    if "url" in result:
        result["url"] = redact_url(result["url"])
    return result


# -- the task -----------------------------------------------------------------------

VERIFY_WITH_API = ("verify does not go with api_url: Attune's pack record (GET /api/v1/packs/{ref}) carries no checksum of "
                   "the files it installed, so there is nothing to compare the lock with. A pack replaced in Attune since "
                   "this collection uploaded it is already reported (other-source) and replaced with force: true")
LATEST_WITH_LOCK = ("state=latest does not go with lock_file: the lock pins the versions; update it with "
                    "attune.packs.attune_pack_lock (update: [refs] or all) and install from it")


def resolutions_of(value):
    """``source`` (or ``_resolved``) is one resolution or a list of them."""
    items = value if isinstance(value, list) else [value]
    for item in items:
        if not isinstance(item, dict) or not item.get("ref") or not isinstance(item.get("source"), dict):
            raise InvalidArguments("source must be a resolution (or a list of them) with at least ref, version and source, "
                                   "as attune_pack_info returns")
    return items


def check_params(params):
    """Refuse option combinations that make no sense; the same checks on the controller and on the host."""
    normalise_names(params["name"])  # name of another type (name: 5): invalid_arguments (issue 16, item 9)
    state = params["state"]
    if params["source"] is not None:
        resolutions_of(params["source"])
    if params.get("fetch_on") == "attune" and not params.get("api_url"):
        raise InvalidArguments("fetch_on=attune needs api_url: it asks that Attune to install from its own registries")
    if params.get("fetch_on") == "attune" and (params["src"] or params["source"] is not None):
        raise InvalidArguments("fetch_on=attune installs from Attune's registries: give name (specs) or lock_file, not src or source")
    if params.get("api_url") and params.get("packs_dir"):
        raise InvalidArguments("packs_dir does not go with api_url: with api_url the packs go into that Attune, through its API")
    if params.get("api_url") and params.get("verify"):
        raise InvalidArguments(VERIFY_WITH_API)
    if state == "absent" and (params["src"] or params["source"] is not None or params["lock_file"]):
        raise InvalidArguments("state=absent takes name only (the refs to remove), not src, source or lock_file")
    if state == "absent" and params["remove_unlisted"]:
        raise InvalidArguments("remove_unlisted goes with state=present or latest: it removes the managed packs the task does not name")
    if state == "latest" and params["lock_file"]:
        raise InvalidArguments(LATEST_WITH_LOCK)
    if params["src"] and len(normalise_names(params["name"])) != 1:
        raise InvalidArguments("src needs exactly one name: the ref the pack must have")


def needs_registry(params):
    """Must this host consult the registries (its pack_registry section is then required)?  Not with ``fetch_on:
    attune``: that Attune resolves against its own registries."""
    return not (params["src"] or params["source"] is not None or params["lock_file"] or params.get("_resolved") is not None
                or params["state"] == "absent" or params.get("fetch_on") == "attune")


def options_of(params, settings, location):
    """:class:`Options` from the task parameters, falling back to the host's ``pack_registry`` section."""
    verify_checksums = settings.verify_checksums if params["verify_checksums"] is None else params["verify_checksums"]
    allow_unverified = params["allow_unverified"]
    if allow_unverified is None:
        allow_unverified = settings.allow_unverified_direct_remote_installs
    return Options(
        location, validate_certs=params["validate_certs"], ca_path=params["ca_path"], timeout=settings.timeout,
        connect_timeout=settings.connect_timeout, archive_max_bytes=params["archive_max_bytes"] or settings.archive_max_bytes,
        verify_checksums=verify_checksums, allow_unverified=allow_unverified, allow_http=settings.allow_http,
        allow_local_git=params["allow_local_git"], max_entries=params["max_entries"], max_entry_bytes=params["max_entry_bytes"],
        max_total_bytes=params["max_total_bytes"],
    )


class Outcome(object):
    """What :func:`run` did (or would do): the steps, and the archives to fetch on the controller first."""

    def __init__(self, steps, location, fetch=None, skipped_registries=None, resolutions=None):
        self.steps = steps
        self.location = location
        self.fetch_requests = fetch
        self.skipped_registries = skipped_registries or []
        # the registry resolutions this run made: the run after the controller's fetch plans with them (_resolved)
        # instead of resolving again, so each pack is resolved once per task (issue 17)
        self.resolutions = resolutions or []

    def result(self, check_mode=False, diff=False):
        """The module result (``changed``, ``packs``, ``pack``/``previous`` for one pack, ``msg``, ``diff``)."""
        if self.fetch_requests:
            return {"changed": False, "fetch_requests": self.fetch_requests, "packs_dir": self.location,
                    "resolutions": self.resolutions,
                    "msg": "archives to be copied from the controller: %s" % ", ".join(r["ref"] for r in self.fetch_requests)}
        steps = self.steps
        items = []
        for step in steps:
            previous = step.current_summary() if step.changed else None
            items.append({"ref": step.ref, "action": step.action, "reason": step.reason, "pack": pack_summary(step), "previous": previous})
        changed = any(step.changed for step in steps)
        result = {"changed": changed, "packs": items, "packs_dir": self.location, "skipped_registries": self.skipped_registries}
        if len(items) == 1:
            result["pack"] = items[0]["pack"]
            result["previous"] = items[0]["previous"]
        prefix = "would " if check_mode else ""
        result["msg"] = "; ".join(_describe(step, item, prefix) for step, item in zip(steps, items)) or "nothing to do"
        if diff and changed:
            result["diff"] = {
                "before": "".join(step.diff_text("before") for step in steps),
                "after": "".join(step.diff_text("after") for step in steps),
                "before_header": self.location,
                "after_header": self.location,
            }
        return result


def _describe(step, item, prefix):
    """One line per pack: 'slack: upgrade 2.0.0 -> 2.1.0', 'slack: would install 2.1.0', 'slack: ok (...)'."""
    if not step.changed:
        return "%s: ok (%s)" % (step.ref, step.reason)
    before = (item["previous"] or {}).get("version")
    after = (item["pack"] or {}).get("version")
    if step.action == "remove":
        versions = before or ""
    elif step.action == "install" or not before:
        versions = after or "(version of the source)"
    elif step.action == "reinstall" and before == after:
        versions = "%s (%s)" % (before, step.reason)  # e.g. 'slack: would reinstall 2.1.0 (modified files: ...)'
    else:
        versions = "%s -> %s" % (before, after or "(version of the source)")
    return "%s: %s%s %s" % (step.ref, prefix, step.action, versions)


def plan(params, backend, options, resolve=None, check_mode=False):
    """The steps of one task (``params``: validated ``attune_pack`` parameters, see :func:`run`)."""
    names = normalise_names(params["name"])
    state = params["state"]
    verify = bool(params.get("verify"))
    resolutions = resolutions_of(params["source"]) if params["source"] is not None else None
    locked = None
    if params["lock_file"]:
        from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile  # pylint: disable=import-outside-toplevel

        lock = _lockfile.load(params["lock_file"])
        entries = [_lockfile.entry_for(lock, name) for name in names]
        if backend.fetches:
            # the exact source each entry pins
            resolutions = [_lockfile.source_of(entry) for entry in entries]
            names = []
        else:
            locked = entries  # checked against what the target itself would install (Backend.plan_locked)
    if not check_mode:
        # a run killed after its swap left staging/old trees behind: clean them before looking at the state
        backend.recover([item["ref"] for item in resolutions] if resolutions is not None else [PackSpec.parse(name).ref for name in names])
    if state == "absent":
        steps = [plan_absent(backend, PackSpec.parse(name).ref) for name in names]
    elif locked is not None:
        steps = [backend.plan_locked(entry, params["force"]) for entry in locked]
    elif resolutions is not None:
        refs = [item["ref"] for item in resolutions]
        if names and sorted(PackSpec.parse(name).ref for name in names) != sorted(refs):
            raise InvalidArguments("name %s does not match the refs of source (%s)" % (", ".join(names), ", ".join(refs)))
        steps = [plan_target(backend, Target.from_resolution(item, origin="source"), params["force"], verify)
                 for item in resolutions]
    elif params["src"]:
        target = src_target(names[0], params["src"], params["version"], params["checksum"], options)
        steps = [plan_target(backend, target, params["force"], verify)]
    else:
        steps = [plan_present(backend, name, resolve, state=state, force=params["force"], verify=verify) for name in names]
    seen = set()
    for step in steps:
        if step.ref in seen:
            raise InvalidArguments("pack %s is requested twice" % step.ref)
        seen.add(step.ref)
    if params["remove_unlisted"]:
        steps.extend(plan_unlisted(backend, seen, finish_killed_runs=not check_mode))
    return steps


def run(params, settings_for, check_mode=False, warn=lambda message: None, backend=None, checkpoint=None, fetch=None):
    """The ``attune_pack`` task, planned once and applied through ``backend``; returns an :class:`Outcome`, raises core
    errors.

    ``params``: the validated parameters of ``attune_pack`` (``_pack_spec.pack_argument_spec``), including the private
    hand-off arguments of the action plugin: ``_resolved`` (the controller's resolutions of the specs in ``name``,
    used instead of asking a registry here) and ``_local_copies`` (``{ref: path}`` of archives the controller copied
    to this host).  ``settings_for(require_registries)`` returns the registry :class:`_config.Settings`.
    ``backend``: the install target (:class:`Backend`), default the packs directory (``packs_dir`` or the config's
    ``packs_base_dir``).  ``fetch``: with ``fetch_on: controller``, a callback ``fetch(fetch_requests)`` →
    ``{ref: local archive path}`` that the run calls between planning and applying (on the controller, where the
    archives are fetched).  Without it (the module on a host), nothing is applied: the outcome carries
    ``fetch_requests`` and ``resolutions`` for the action plugin, which runs the module again with ``_local_copies``.
    """
    check_params(params)
    registry_needed = needs_registry(params)
    settings = settings_for(registry_needed)
    if backend is None:
        backend = PacksDirBackend(params["packs_dir"] or settings.packs_base_dir)
    try:
        return _run(params, settings, registry_needed, check_mode, warn, backend, checkpoint, fetch)
    except AttuneError as exc:
        exc.location = backend.location  # for the failed result (packs_dir)
        raise


def _run(params, settings, registry_needed, check_mode, warn, backend, checkpoint, fetch):
    options = options_of(params, settings, backend.location)
    if not options.verify_checksums and backend.fetches:
        warn("verify_checksums is false: pack checksums are not verified")
    resolve = None
    if params.get("_resolved") is not None:
        resolve = _resolved_on_controller(resolutions_of(params["_resolved"]) if params["_resolved"] else [])
    elif registry_needed:
        from ansible_collections.attune.packs.plugins.module_utils._registry._queries import resolver_for  # pylint: disable=import-outside-toplevel
        from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient  # pylint: disable=import-outside-toplevel

        resolve = resolver_for(RegistryClient(settings), params, warn)
    skipped, resolutions = [], []
    if resolve is not None:
        resolve = _noting_skipped(resolve, skipped, resolutions)
    steps = plan(params, backend, options, resolve, check_mode)
    if check_mode or not any(step.changed for step in steps):
        return Outcome(steps, backend.location, skipped_registries=skipped)
    if params.get("_local_copies"):
        use_local_copies(steps, params["_local_copies"])
    elif params["fetch_on"] == "controller" and backend.fetches:
        wanted = fetch_requests(steps)
        if wanted and fetch is None:
            # the action plugin downloads these once on the controller, copies them here and runs us again
            return Outcome(steps, backend.location, fetch=wanted, resolutions=resolutions)
        if wanted:
            # on the controller: fetched once into the archive cache, verified again by apply()
            use_local_copies(steps, fetch(wanted))
    apply(steps, options, warn=warn, checkpoint=checkpoint, backend=backend)
    return Outcome(steps, backend.location, skipped_registries=skipped)


def _noting_skipped(resolve, skipped, resolutions):
    """``resolve`` that also adds the registries each resolution skipped (on_registry_error=skip) to ``skipped``, once,
    and each resolution to ``resolutions``."""
    def noting(spec_text):
        resolution = resolve(spec_text)
        resolutions.append(resolution)
        for item in resolution.get("skipped_registries") or ():
            if item not in skipped:
                skipped.append(item)
        return resolution
    return noting


def _resolved_on_controller(resolutions):
    by_spec = dict((item.get("spec"), item) for item in resolutions)

    def resolve(spec_text):
        try:
            return by_spec[spec_text]
        except KeyError:
            raise InvalidArguments("_resolved has no resolution of %s (it is set by the action plugin, not by tasks)" % spec_text)
    return resolve


def controller_handoff(params, args, resolve_all):
    """Controller side of ``attune_pack``: the module arguments for the host.

    ``params`` are the validated task arguments, ``args`` the task's own.  ``lock_file`` is read here and becomes
    ``source`` (exactly what it pins); otherwise the specs of ``name`` are resolved here (``resolve_all(specs)``,
    ``resolve_on``/``fetch_on: controller``) and passed in the private ``_resolved``, so that the host plans them as
    it plans its own resolutions (``present`` keeps an installed version that satisfies the spec).  Registry options
    the host no longer needs are left out.
    """
    check_params(params)
    handoff = dict((key, value) for key, value in args.items() if key not in CONTROLLER_ONLY_OPTIONS)
    if params["source"] is not None:
        return handoff
    for key in REGISTRY_ONLY_OPTIONS:
        handoff.pop(key, None)
    names = normalise_names(params["name"])
    if params["lock_file"]:
        from ansible_collections.attune.packs.plugins.module_utils._pack import _lockfile  # pylint: disable=import-outside-toplevel

        lock = _lockfile.load(params["lock_file"])
        handoff["source"] = [_lockfile.source_of(_lockfile.entry_for(lock, name)) for name in names]
        handoff.pop("name", None)
        handoff.pop("pack", None)
    else:
        if not names:
            raise InvalidArguments("name must name at least one pack spec")
        handoff["_resolved"] = resolve_all(names)
    return handoff


# options of the action plugin only, never sent to the host (the private ones are set by the action plugin itself)
CONTROLLER_ONLY_OPTIONS = ("lock_file", "resolve_on", "_resolved", "_local_copies")
# registry options the host does not need once the controller has resolved (ca_path, validate_certs, timeout,
# connect_timeout and allow_http also apply to the host's downloads)
REGISTRY_ONLY_OPTIONS = ("registries", "config_path", "environment", "registry", "index_max_bytes", "cache_enabled", "cache_ttl",
                         "cache_dir", "refresh", "strict")
