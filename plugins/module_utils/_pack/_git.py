# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: safe checkout of a git install source (may change without notice).

``clone(url, dest, version)`` creates ``dest`` (which must not exist), fetches
one branch, tag or 40-hex commit into it and checks it out detached; it
returns a :class:`GitCheckout` with the tree to install, the resolved commit
and the framed directory checksum of that tree, verified against
``expected_checksum`` when one is given.

The tree to install is found in Attune's order (installer.rs
``PackInstaller::find_pack_directory``, see ``_extract.find_pack_root``): the
checkout root when it has ``pack.yaml``, else ``pack/`` when it has one, else
the first subdirectory (byte order of names) that has one.  The checksum
covers exactly that directory, as Attune's ``verify_git_content_checksum``
does (a checksum of the whole checkout is refused when the pack is in a
subdirectory).

``ls_remote(url, version)`` resolves a branch or tag to its commit without a
checkout, with the same URL rules, isolation and TLS options (used to lock
the commit that was verified rather than a moving branch).

Safety (attune-format.md section 5):

* URLs: ``https://`` only; ``http://`` with ``allow_http``; ``file://`` with
  ``allow_local_git`` (development).  ssh, ``git://``, scp-like ``host:path``,
  ``ext::`` and other transports, URLs with credentials, query strings or
  fragments are refused before git runs, and git itself is configured with
  ``protocol.allow=never`` plus an explicit allow for the permitted scheme.
* git runs with a minimal environment: system and global config ignored
  (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL=/dev/null``, ``HOME`` and
  ``XDG_CONFIG_HOME`` pointing at ``/dev/null`` for older gits), no prompts
  (``GIT_TERMINAL_PROMPT=0``, askpass helpers that fail), no credential
  helpers, no hooks, no redirects (``http.followRedirects=false``), object
  checking on fetch, submodules not fetched.
* versions starting with ``-`` or not shaped like a git ref are refused, and
  every positional argument follows ``--``.
* TLS: ``validate_certs=False`` sets ``http.sslVerify=false``; ``ca_path`` sets
  ``http.sslCAInfo`` (both with ``-c``, they are not secret).  Headers
  (e.g. an ``Authorization`` token) are passed as ``http.extraHeader`` through
  ``GIT_CONFIG_COUNT``/``GIT_CONFIG_KEY_n``/``GIT_CONFIG_VALUE_n`` environment
  variables, never on the command line, and are redacted from error output.
* the checked-out tree may contain only regular files and directories.

Fetch strategy: ``fetch --depth 1`` of the wanted ref or commit; when the
server cannot do that (git's dumb HTTP protocol, servers that refuse
unadvertised commits) a full fetch of the ref, and for a commit a fetch of
every branch and tag, after which the commit must be present.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import time

from ansible_collections.attune.packs.plugins.module_utils._registry import _outbound
from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import Checksum, framed_dir_checksum, parse_checksum
from ansible_collections.attune.packs.plugins.module_utils._registry._config import check_header, check_url, redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, AuthenticationFailed, SourceError, UnsafeArchive

DEFAULT_TIMEOUT = 600
PACK_SUBDIR = "pack"
MIN_GIT_FOR_HEADERS = (2, 31)

_COMMIT = re.compile(r"^[0-9a-fA-F]{40}$")
_REF_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._/+-]*$")
_GIT_VERSION = re.compile(r"git version (\d+)\.(\d+)")
_HTTP_STATUS = re.compile(r"returned error: (\d{3})")
_PASSTHROUGH_ENV = ("PATH", "TMPDIR", "http_proxy", "https_proxy", "no_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY")
# stderr fragments of errors that a different fetch strategy cannot fix
_FATAL_MARKERS = (
    "could not resolve host", "failed to connect", "connection refused", "connection timed out", "operation timed out",
    "ssl certificate problem", "certificate verify", "server certificate verification failed", "ssl_connect", "gnutls",
    "unable to access", "redirect", "not allowed", "repository not found", "does not appear to be a git repository",
)
_AUTH_MARKERS = ("authentication failed", "could not read username", "could not read password", "terminal prompts disabled")


class GitCheckout(object):
    """Result of :func:`clone`."""

    __slots__ = ("path", "tree", "commit", "checksum", "subdir")

    def __init__(self, path, tree, commit, checksum, subdir):
        self.path = path
        self.tree = tree
        self.commit = commit
        self.checksum = checksum
        self.subdir = subdir

    def to_dict(self):
        return {"path": self.path, "tree": self.tree, "commit": self.commit, "checksum": str(self.checksum), "subdir": self.subdir}

    def __repr__(self):
        return "GitCheckout(%r)" % (self.to_dict(),)


def is_commit(version):
    return isinstance(version, str) and bool(_COMMIT.fullmatch(version))


def check_git_url(url, allow_local_git=False, allow_http=False, pack=None):
    """Return ``url`` if it is an allowed git URL; raise :class:`SourceError` otherwise."""
    schemes = ["https"]
    if allow_http:
        schemes.append("http")
    if allow_local_git:
        schemes.append("file")
    if not isinstance(url, str) or not url:
        raise SourceError("git URL must be a non-empty string", pack=pack)
    shown = redact_url(url)
    if "://" not in url:
        if re.match(r"^[^/]+:", url) and not url.startswith("/"):
            raise SourceError("git URL %s looks like an scp-style ssh address (host:path); only https:// URLs are allowed" % shown, pack=pack)
        raise SourceError("git URL %s is not an absolute URL; only https:// URLs are allowed" % shown, pack=pack)
    scheme = url.split("://", 1)[0].lower()
    if scheme == "file" and not allow_local_git:
        raise SourceError("file:// git URL %s refused (set allow_local_git: true to permit it for development)" % shown, pack=pack)
    if scheme == "http" and not allow_http:
        raise SourceError("plain http:// git URL %s refused (set allow_http: true to permit it)" % shown, pack=pack)
    try:
        check_url(url, tuple(schemes), "git URL")
    except ValueError as exc:
        raise SourceError("%s (%s)" % (exc, shown), pack=pack)
    if scheme == "file":
        rest = url.split("://", 1)[1]
        if not rest.startswith("/") and not rest.lower().startswith("localhost/"):
            raise SourceError("file:// git URL %s must name an absolute local path (file:///path)" % shown, pack=pack)
    return url


def check_git_version(version, pack=None):
    """Return the version (lowercased if it is a commit) or None; refuse option-like or malformed refs."""
    if version is None:
        return None
    if not isinstance(version, str) or not version:
        raise SourceError("git version must be a non-empty branch, tag or commit", pack=pack)
    if version.startswith("-"):
        raise SourceError("git version %r refused: it starts with '-'" % version, pack=pack)
    if _COMMIT.fullmatch(version):
        return version.lower()
    if (not _REF_NAME.fullmatch(version) or ".." in version or "//" in version or "@{" in version or version.endswith((".lock", "/", "."))
            or "/." in version):
        raise SourceError("git version %r is not a valid branch, tag or 40-hex commit" % version, pack=pack)
    return version


def find_git(git_executable=None):
    path = shutil.which(git_executable or "git")
    if path is None:
        raise SourceError("git is required to install from a git source but %r was not found in PATH" % (git_executable or "git"))
    return path


def git_version(git):
    """Version tuple of a git executable, e.g. (2, 39)."""
    # Not AnsibleModule.run_command: this code has no module object (_install calls clone() without one).
    out = subprocess.run([git, "--version"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                         env={"PATH": os.environ.get("PATH", os.defpath), "LC_ALL": "C"}, check=False, timeout=60)
    match = _GIT_VERSION.search(out.stdout.decode("utf-8", "replace"))
    if not match:
        raise SourceError("cannot determine the version of %s" % git)
    return int(match.group(1)), int(match.group(2))


def _failing_helper():
    for candidate in ("/bin/false", "/usr/bin/false"):
        if os.access(candidate, os.X_OK):
            return candidate
    return "false"


def _environment(headers):
    env = dict((name, os.environ[name]) for name in _PASSTHROUGH_ENV if name in os.environ)
    env.setdefault("PATH", os.defpath)
    helper = _failing_helper()
    env.update({
        "LC_ALL": "C",
        "LANG": "C",
        "HOME": os.devnull,
        "XDG_CONFIG_HOME": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": helper,
        "SSH_ASKPASS": helper,
        "GIT_SSH_COMMAND": helper,
    })
    items = sorted((headers or {}).items())
    if items:
        env["GIT_CONFIG_COUNT"] = str(len(items))
        for index, (name, value) in enumerate(items):
            env["GIT_CONFIG_KEY_%d" % index] = "http.extraHeader"
            env["GIT_CONFIG_VALUE_%d" % index] = "%s: %s" % (name, value)
    return env


def _config_args(scheme, validate_certs, ca_path):
    settings = [
        "protocol.allow=never",
        "protocol.%s.allow=always" % scheme,
        "http.followRedirects=false",
        "credential.helper=",
        "core.hooksPath=%s" % os.devnull,
        "core.fsmonitor=false",
        "core.askPass=%s" % _failing_helper(),
        "transfer.fsckObjects=true",
        "submodule.recurse=false",
        "fetch.recurseSubmodules=false",
        "advice.detachedHead=false",
        "init.defaultBranch=attune",
        "gc.auto=0",
        "maintenance.auto=false",
    ]
    if not validate_certs:
        settings.append("http.sslVerify=false")
    if ca_path:
        settings.append("http.sslCAInfo=%s" % ca_path)
    args = []
    for setting in settings:
        args.extend(["-c", setting])
    return args


class _Runner(object):
    def __init__(self, git, config_args, env, deadline, secrets, url, pack):
        self.git = git
        self.config_args = config_args
        self.env = env
        self.deadline = deadline
        self.secrets = [value for value in secrets if value]
        self.url = url
        self.pack = pack

    def redact(self, text):
        for value in self.secrets:
            text = text.replace(value, "***")
        return text

    def run(self, args, cwd=None):
        """Run git; return (returncode, stdout, stderr) with stderr redacted."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise SourceError("git timed out fetching %s" % redact_url(self.url), pack=self.pack)
        command = [self.git] + self.config_args + list(args)
        # Not AnsibleModule.run_command: this code has no module object, and git runs in its own session so that
        # the whole process group is killed at the deadline.
        process = subprocess.Popen(command, cwd=cwd, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # pylint: disable=ansible-bad-function
                                   stderr=subprocess.PIPE, start_new_session=True)
        try:
            out, err = process.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            process.communicate()
            raise SourceError("git timed out fetching %s" % redact_url(self.url), pack=self.pack)
        except BaseException:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except OSError:
                pass
            process.wait()
            raise
        return process.returncode, out.decode("utf-8", "replace"), self.redact(err.decode("utf-8", "replace"))

    def check(self, args, cwd=None, what="git"):
        code, out, err = self.run(args, cwd=cwd)
        if code != 0:
            raise SourceError("%s failed for %s: %s" % (what, redact_url(self.url), _last_lines(err)), pack=self.pack)
        return out


def _last_lines(text, count=3):
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " / ".join(lines[-count:]) or "no error output"


def _fetch_error(err, url, version, pack):
    lowered = err.lower()
    shown = redact_url(url)
    status = _HTTP_STATUS.search(err)
    if status and status.group(1).startswith("3"):
        return SourceError("git server answered %s with a redirect (HTTP %s); redirects are not followed, use the final URL"
                           % (shown, status.group(1)), pack=pack)
    if status and status.group(1) in ("401", "403"):
        return AuthenticationFailed("git server refused access to %s (HTTP %s)" % (shown, status.group(1)), status=int(status.group(1)), pack=pack)
    if any(marker in lowered for marker in _AUTH_MARKERS):
        return AuthenticationFailed("git server requires authentication for %s (HTTP 401): %s" % (shown, _last_lines(err)), status=401, pack=pack)
    if "couldn't find remote ref" in lowered:
        return SourceError("branch or tag %r not found in %s" % (version, shown), pack=pack)
    return SourceError("git fetch of %s failed: %s" % (shown, _last_lines(err)), pack=pack)


def _retryable(err):
    lowered = err.lower()
    if any(marker in lowered for marker in _AUTH_MARKERS) or "couldn't find remote ref" in lowered:
        return False
    return not any(marker in lowered for marker in _FATAL_MARKERS)


def _scan_tree(root, url, pack, rel=""):
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name == ".git":
                continue
            mode = entry.stat(follow_symlinks=False).st_mode
            if stat.S_ISDIR(mode):
                _scan_tree(entry.path, url, pack, rel + entry.name + "/")
            elif not stat.S_ISREG(mode):
                kind = "a symlink" if stat.S_ISLNK(mode) else "a special file"
                raise UnsafeArchive(
                    "the git tree of %s contains %s: %s%s (only regular files and directories are allowed)" % (redact_url(url), kind, rel, entry.name),
                    pack=pack,
                )


def _verify(tree, expected, url, commit, subdir, pack):
    """Framed checksum of the pack directory only (Attune: installer.rs ``verify_git_content_checksum(installed.path)``)."""
    if expected is None:
        return Checksum("sha256", framed_dir_checksum(tree, "sha256"))
    if not isinstance(expected, Checksum):
        expected = parse_checksum(expected)
    actual = framed_dir_checksum(tree, expected.algorithm)
    where = "git tree of %s at %s" % (redact_url(url), commit)
    if subdir:
        where += " (directory %s/, where pack.yaml is)" % subdir
    expected.verify(actual, what=where, pack=pack)
    return Checksum(expected.algorithm, actual)


def _runner(url, headers, validate_certs, ca_path, timeout, git_executable, pack):
    """The isolated git runner for one remote operation (clone or ls-remote): header values checked, ca_path a
    file, git new enough for headers; the outbound policy (when it applies) refuses the URL before git runs, else
    pins the checked address and disables proxies."""
    headers = dict(headers or {})
    for name, value in headers.items():
        check_header("headers", name, value)
    if ca_path and not os.path.isfile(ca_path):
        raise SourceError("ca_path %s is not a file" % ca_path, pack=pack)
    git = find_git(git_executable)
    if headers and git_version(git) < MIN_GIT_FOR_HEADERS:
        raise SourceError("sending headers to a git server needs git >= %d.%d (GIT_CONFIG_COUNT)" % MIN_GIT_FOR_HEADERS, pack=pack)
    scheme = url.split("://", 1)[0].lower()
    return _Runner(git, _config_args(scheme, validate_certs, ca_path) + _outbound.git_config_args(url, pack=pack), _environment(headers),
                   time.monotonic() + timeout, list(headers.values()), url, pack)


def clone(url, dest, version=None, expected_checksum=None, allow_local_git=False, allow_http=False, validate_certs=True, ca_path=None,
          headers=None, timeout=DEFAULT_TIMEOUT, pack=None, git_executable=None):
    """Fetch ``url`` at ``version`` (branch, tag, 40-hex commit, or None for the default branch) into the new directory ``dest``.

    Returns a :class:`GitCheckout`.  On failure ``dest`` is removed and one of
    :class:`SourceError`, :class:`AuthenticationFailed`,
    :class:`ChecksumMismatch` or :class:`UnsafeArchive` is raised.
    """
    check_git_url(url, allow_local_git=allow_local_git, allow_http=allow_http, pack=pack)
    version = check_git_version(version, pack=pack)
    if expected_checksum is not None and not isinstance(expected_checksum, Checksum):
        expected_checksum = parse_checksum(expected_checksum)
    runner = _runner(url, headers, validate_certs, ca_path, timeout, git_executable, pack)
    try:
        os.mkdir(dest, 0o700)
    except OSError as exc:
        raise AttuneError("cannot create checkout directory %s: %s" % (dest, exc.strerror or exc), pack=pack, cause=exc)
    try:
        return _clone(runner, url, dest, version, expected_checksum, pack)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def _clone(runner, url, dest, version, expected, pack):
    runner.check(["init", "-q", "--template=", "--", dest], what="git init")
    want = version or "HEAD"
    attempts = [
        ["fetch", "-q", "--depth", "1", "--no-tags", "--", url, want],
        ["fetch", "-q", "--no-tags", "--", url, want],
    ]
    if is_commit(version):
        attempts.append(["fetch", "-q", "--no-tags", "--", url, "+refs/heads/*:refs/remotes/origin/*", "+refs/tags/*:refs/tags/*"])
    target = version if is_commit(version) else "FETCH_HEAD"
    err = ""
    fetched = False
    for args in attempts:
        code, _out, err = runner.run(args, cwd=dest)
        if code == 0:
            fetched = True
            break
        if not _retryable(err):
            break
    if not fetched:
        if is_commit(version) and _retryable(err):
            raise SourceError("commit %s not found in %s (%s)" % (version, redact_url(url), _last_lines(err)), pack=pack)
        raise _fetch_error(err, url, version or "HEAD", pack)
    code, _out, _err = runner.run(["cat-file", "-e", target + "^{commit}"], cwd=dest)
    if code != 0:
        raise SourceError("commit %s not found in %s" % (version or want, redact_url(url)), pack=pack)
    runner.check(["checkout", "-q", "--detach", target], cwd=dest, what="git checkout")
    commit = runner.check(["rev-parse", "--verify", "HEAD^{commit}"], cwd=dest, what="git rev-parse").strip()
    if is_commit(version) and commit != version:
        raise SourceError("checked out commit %s instead of %s from %s" % (commit, version, redact_url(url)), pack=pack)
    # imported here: the extractor module is only needed once something is installed
    from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import find_pack_root  # pylint: disable=import-outside-toplevel

    tree = find_pack_root(dest, pack=pack, what="the git checkout of %s at %s" % (redact_url(url), commit))
    subdir = os.path.relpath(tree, dest) if tree != dest else ""
    _scan_tree(tree, url, pack)
    checksum = _verify(tree, expected, url, commit, subdir, pack)
    return GitCheckout(dest, tree, commit, checksum, subdir)


def ls_remote(url, version=None, allow_local_git=False, allow_http=False, validate_certs=True, ca_path=None, headers=None,
              timeout=DEFAULT_TIMEOUT, pack=None, git_executable=None):
    """Commit (40 lowercase hex) that branch or tag ``version`` (None: the default branch) points to at ``url``.

    A 40-hex ``version`` is returned as is.  Same URL checks, isolated git
    configuration, TLS options, header handling and deadline as :func:`clone`.
    A tag is peeled to its commit.  Raises :class:`SourceError` (or
    :class:`AuthenticationFailed`) when it cannot be resolved.
    """
    check_git_url(url, allow_local_git=allow_local_git, allow_http=allow_http, pack=pack)
    version = check_git_version(version, pack=pack)
    if is_commit(version):
        return version
    runner = _runner(url, headers, validate_certs, ca_path, timeout, git_executable, pack)
    if version is None:
        patterns = ["HEAD"]
    else:
        patterns = ["refs/heads/" + version, "refs/tags/" + version, "refs/tags/" + version + "^{}"]
    code, out, err = runner.run(["ls-remote", "--", url] + patterns)
    if code != 0:
        raise _fetch_error(err, url, version or "HEAD", pack)
    refs = {}
    for line in out.splitlines():
        parts = line.split("\t", 1)
        if len(parts) == 2 and _COMMIT.fullmatch(parts[0].strip()):
            refs[parts[1].strip()] = parts[0].strip().lower()
    if version is None:
        commit = refs.get("HEAD")
    else:
        commit = (refs.get("refs/heads/" + version) or refs.get("refs/tags/" + version + "^{}") or refs.get("refs/tags/" + version))
    if not commit:
        raise SourceError("branch or tag %r not found in %s" % (version or "HEAD", redact_url(url)), pack=pack)
    return commit
