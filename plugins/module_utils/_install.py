# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: planning and running pack installs (may change without notice).

The ``attune_pack`` module is thin over this file.  For each requested pack a
:class:`Target` says what should be installed (from a registry resolution, a
lock entry, a controller-resolved ``source`` or a direct ``src``); :func:`plan`
compares it with what is installed and decides ``none``/``install``/
``upgrade``/``reinstall``/``remove`` without any download, so check mode and
no-change runs are cheap.  :func:`apply` then runs in two phases: every pack is
fetched, verified, extracted and validated in its own staging area first,
and only when all of them succeeded are they activated (atomic swaps, see
``_packdir``).  A failing pack therefore leaves every pack as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

# _fetch and _git are imported where a download or a clone happens: a converged host never needs them
from ansible_collections.attune.packs.plugins.module_utils import _packdir
from ansible_collections.attune.packs.plugins.module_utils._checksum import framed_dir_checksum, parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._config import redact_url
from ansible_collections.attune.packs.plugins.module_utils._errors import (
    AttuneError, ChecksumError, InvalidPackStructure, SourceError,
)
from ansible_collections.attune.packs.plugins.module_utils._version import PackSpec, try_parse_version

ARCHIVE_SUFFIXES = (".zip", ".tar.gz", ".tgz")


class Options(object):
    """Install settings (from the module options and the host's pack_registry section)."""

    def __init__(self, packs_dir, validate_certs=True, ca_path=None, timeout=120, connect_timeout=10,
                 archive_max_bytes=104857600, verify_checksums=True, allow_unverified=False, allow_http=False,
                 allow_local_git=False, max_entries=None, max_entry_bytes=None, max_total_bytes=None, durable=True):
        """Extraction limits left at None are ``extract_archive``'s own defaults."""
        self.packs_dir = packs_dir
        self.validate_certs = validate_certs
        self.ca_path = ca_path
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.archive_max_bytes = archive_max_bytes
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
        if not self.validate_certs:
            return False
        return self.ca_path or True


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
            from ansible_collections.attune.packs.plugins.module_utils import _fetch  # pylint: disable=import-outside-toplevel

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
        version = _packdir.load_pack_yaml(source["path"], pack=ref).get("version")
    return Target(ref, None if source["type"] == "git" else version, [source], origin="src")


# -- planning ------------------------------------------------------------------------


class Step(object):
    """The decision for one pack."""

    def __init__(self, ref, action, target=None, current=None, reason=""):
        self.ref = ref
        self.action = action  # none | install | upgrade | reinstall | remove
        self.target = target
        self.current = current
        self.reason = reason
        self.result = None

    @property
    def changes(self):
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
        return "%s %s (%s)\n" % (self.ref, self.target.version or "?", _source_text(self.target.primary))


def _source_text(source):
    if not source:
        return "unknown source"
    text = "%s %s" % (source.get("type"), redact_url(source.get("url") or source.get("path") or ""))
    if source.get("ref"):
        text += " @ %s" % source["ref"]
    return text


def current_state(packs_dir, ref):
    return _packdir.installed(packs_dir, ref)


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


def plan_present(packs_dir, spec_text, resolve, state="present", force=False):
    """Plan a registry/lock spec.  ``resolve(spec)`` returns a resolution dict (called only when needed)."""
    spec = PackSpec.parse(spec_text)
    current = current_state(packs_dir, spec.ref)
    if state == "present" and not force and satisfies(current, spec):
        return Step(spec.ref, "none", current=current, reason="installed version %s satisfies %s" % (current["version"], spec.text))
    target = Target.from_resolution(resolve(spec.text))
    return _decide(spec.ref, target, current, force)


def plan_target(packs_dir, target, force=False):
    return _decide(target.ref, target, current_state(packs_dir, target.ref), force)


def _decide(ref, target, current, force):
    if current is None:
        return Step(ref, "install", target, None, "not installed")
    if matches_target(current, target):
        if force:
            return Step(ref, "reinstall", target, current, "force: true")
        return Step(ref, "none", target, current, "already installed: %s" % target.describe())
    if current.get("error") and not current.get("managed"):
        # e.g. a corrupted .attune/metadata.json: nothing proves what is installed, so put the target back
        return Step(ref, "reinstall", target, current, "installed %s, but its provenance is unreadable (%s)"
                    % (current.get("version") or "(unknown version)", current["error"]))
    old = try_parse_version(current.get("version") or "")
    new = try_parse_version(target.version or "")
    if old is not None and new is not None and new < old:
        return Step(ref, "downgrade", target, current, "installed %s, target %s" % (current["version"], target.version))
    return Step(ref, "upgrade" if current.get("version") != target.version else "reinstall", target, current,
                "installed %s, target %s" % (current.get("version"), target.version or "(from source)"))


def plan_absent(packs_dir, ref):
    _packdir.validate_ref(ref)
    current = current_state(packs_dir, ref)
    if current is None:
        return Step(ref, "none", reason="not installed")
    return Step(ref, "remove", current=current, reason="installed %s" % (current.get("version") or "(unknown version)"))


def plan_unlisted(packs_dir, keep, finish_killed_runs=True):
    """Removal steps for the managed packs of ``packs_dir`` whose ref is not in ``keep``.

    Managed = installed with provenance metadata; anything else in ``packs_dir``
    (packs copied by hand or installed by other tools) is never planned for removal.
    ``finish_killed_runs`` first finishes or undoes a killed run's leftovers of those packs (not in check mode).
    """
    unlisted = [item["ref"] for item in _packdir.list_installed(packs_dir) if item["managed"] and item["ref"] not in keep]
    if finish_killed_runs and unlisted:
        recover(packs_dir, unlisted)
    return [plan_absent(packs_dir, ref) for ref in unlisted]


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


def _fetch_archive(stage, source, checksum, options, ref, name="archive", local_ok=False):
    """Download (or copy) an archive into the staging area, hashing it; verify; return its path and digest."""
    path = stage.workdir(name + ".download")
    algorithm = checksum.algorithm if checksum else "sha256"
    hasher = hashlib.new(algorithm)
    # local_copy: the archive the controller fetched and copied here (fetch_on=controller); verified again below
    local = source.get("local_copy") or source.get("path")
    url = ("file://" + local) if local else source["url"]
    from ansible_collections.attune.packs.plugins.module_utils import _fetch  # pylint: disable=import-outside-toplevel

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
                from ansible_collections.attune.packs.plugins.module_utils import _git  # pylint: disable=import-outside-toplevel

                checkout = _git.clone(source["url"], stage.workdir("git%d" % position), version=source.get("ref"),
                                      expected_checksum=checksum, allow_local_git=options.allow_local_git,
                                      allow_http=options.allow_http, validate_certs=options.validate_certs, ca_path=options.ca_path,
                                      timeout=options.timeout, pack=ref)
                tree, commit, verified = checkout.tree, checkout.commit, str(checkout.checksum)
                pack_yaml = _packdir.read_pack_yaml(tree, ref, target.version, pack=ref)
            elif source["type"] == "archive":
                archive, verified = _fetch_archive(stage, source, checksum, options, ref, "archive%d" % position,
                                                   local_ok=target.origin == "src")
                tree, pack_yaml, _stats = _packdir.prepare_archive(
                    archive, stage.workdir("extract%d" % position), ref, target.version, pack=ref, **options.limits)
                os.unlink(archive)
            elif source["type"] == "dir":
                tree = source["path"]
                pack_yaml = _packdir.read_pack_yaml(tree, ref, target.version, pack=ref)
                verified = "sha256:" + framed_dir_checksum(tree)
                if checksum:
                    digest = framed_dir_checksum(tree, checksum.algorithm)
                    checksum.verify(digest, what="directory %s" % tree, pack=ref)
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


def fetch_requests(steps):
    """``[{ref, source}]`` of the archives the controller must copy here before ``apply`` (fetch_on=controller)."""
    requests = []
    for step in steps:
        if step.action in ("none", "remove"):
            continue
        if any(source.get("local_copy") for source in step.target.sources):
            continue
        source = archive_source(step.target)
        if source is None:
            raise SourceError("fetch_on=controller needs an archive source, and %s has none (only %s)"
                              % (step.target.describe(), ", ".join(s.get("type", "?") for s in step.target.sources)), pack=step.ref)
        requests.append({"ref": step.ref, "source": _public(source)})
    return requests


# -- applying -------------------------------------------------------------------------


def recover(packs_dir, refs):
    """Finish or undo what a killed run left for these refs (before planning, so the plan sees the real state)."""
    if not refs or not os.path.isdir(packs_dir):
        return []
    return _packdir.recover(packs_dir, refs=refs)


def apply(steps, options, warn=lambda message: None, checkpoint=None):
    """Run the steps: prepare every install in its staging area, then activate them all, then removals."""
    installs = [step for step in steps if step.action in ("install", "upgrade", "reinstall", "downgrade")]
    with contextlib.ExitStack() as stack:
        prepared = []
        for step in installs:
            stage = stack.enter_context(_packdir.staging(options.packs_dir, step.ref, checkpoint=checkpoint))
            tree, metadata = _prepare(stage, step.target, options, warn)
            prepared.append((step, stage, tree, metadata))
        for step, stage, tree, metadata in prepared:
            try:
                step.result = stage.activate(tree, metadata, durable=options.durable)
            except AttuneError as exc:
                raise _naming_source(exc, step.target.primary or {})
    for step in steps:
        if step.action == "remove":
            step.result = {"previous": _packdir.remove(options.packs_dir, step.ref, checkpoint=checkpoint)}
    return steps


def pack_summary(step):
    """The ``pack`` return value for a step (what is installed after the run, or would be in check mode)."""
    if step.action == "remove":
        return None
    if step.result:
        meta = step.result["metadata"]
        path = step.result["path"]
    elif step.action == "none" and step.current:
        meta = step.current.get("metadata") or {}
        path = step.current.get("path")
    else:
        source = step.target.primary or {}
        return {"ref": step.ref, "version": step.target.version, "path": None, "source": _public(source),
                "checksum": source.get("checksum"), "registry": step.target.registry}
    return {"ref": step.ref, "version": meta.get("version") or (step.current or {}).get("version"), "path": path,
            "source": meta.get("installed_from"), "checksum": meta.get("checksum"), "registry": meta.get("registry")}


def _public(source):
    result = dict((k, v) for k, v in source.items() if k in ("type", "url", "ref", "path", "checksum"))
    if "url" in result:
        result["url"] = redact_url(result["url"])
    return result
