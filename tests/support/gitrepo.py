"""Real git repositories holding a pack, ready to be served over "dumb HTTP".

``make_git_pack_repo(workdir, 'slack', '2.1.0')`` writes the pack into
``workdir/slack.src`` (a normal repository), commits it with a fixed author
and date (so the commit SHA is reproducible), clones it bare into
``workdir/slack.git`` and runs ``git update-server-info`` there.  Serve the
bare directory with ``RegistryServer.add_directory('/git/slack.git', bare)``
and clone it with ``GIT_SSL_CAINFO=server.ca_path``.

Every git command runs with ``git_env()``: the user's global and system
configuration are ignored (``GIT_CONFIG_GLOBAL=/dev/null``,
``GIT_CONFIG_NOSYSTEM=1``) and prompts are disabled.
"""

from __future__ import annotations

import os
import subprocess

import yaml

from .synth import make_pack_tree, tree_checksum

FIXED_DATE = "2024-01-01T00:00:00+00:00"
AUTHOR = ("attune.packs tests", "tests@example.invalid")


def git_env(extra=None, date=FIXED_DATE):
    """Environment for git: no user/system config, no prompts, fixed identity and dates."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update({
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_AUTHOR_NAME": AUTHOR[0],
        "GIT_AUTHOR_EMAIL": AUTHOR[1],
        "GIT_AUTHOR_DATE": date,
        "GIT_COMMITTER_NAME": AUTHOR[0],
        "GIT_COMMITTER_EMAIL": AUTHOR[1],
        "GIT_COMMITTER_DATE": date,
        "LC_ALL": "C",
    })
    env.update(extra or {})
    return env


def run_git(args, cwd=None, env=None, date=FIXED_DATE):
    """Run ``git *args`` and return its stdout; a failure raises with git's stderr in the message."""
    proc = subprocess.run(["git"] + list(args), cwd=cwd, env=env or git_env(date=date), stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        stderr = proc.stderr.decode("utf-8", "replace").strip()
        raise RuntimeError("git %s failed (%d): %s" % (" ".join(args), proc.returncode, stderr))
    return proc.stdout.decode("utf-8", "replace")


def _publish(src, bare, branch, date):
    run_git(["push", "-q", "--tags", bare, "HEAD:refs/heads/%s" % branch], cwd=src, date=date)
    run_git(["repack", "-a", "-d", "-q"], cwd=bare, date=date)
    run_git(["update-server-info"], cwd=bare, date=date)


def make_git_pack_repo(workdir, ref, version, subdir=None, files=None, repo_files=None, name=None, branch="main",
                       tag=None, pack_yaml_extra=None, date=FIXED_DATE):
    """Create a git repository with a pack; return ``(bare_dir, commit_sha)``.

    - ``subdir=None``: ``pack.yaml`` at the repository root; ``subdir='pack'``:
      the pack lives under ``pack/`` (Attune's other accepted layout).
    - ``files`` / ``pack_yaml_extra``: passed to ``synth.make_pack_tree`` (paths
      relative to the pack directory); ``repo_files``: extra files relative to
      the repository root.
    - ``name``: directory stem (default ``ref``): ``<name>.src`` and ``<name>.git``.
    - ``tag``: also create this (lightweight) tag on the commit.

    The bare repository is repacked and has ``git update-server-info`` run, so
    it can be cloned from a static HTTP server.  The working repository stays
    at ``<name>.src`` for ``add_commit`` and ``checkout_checksum``.
    """
    name = name or ref
    src = os.path.join(workdir, name + ".src")
    bare = os.path.join(workdir, name + ".git")
    if os.path.exists(src) or os.path.exists(bare):
        raise FileExistsError("git pack repository %s already exists in %s" % (name, workdir))
    make_pack_tree(os.path.join(src, subdir) if subdir else src, ref, version, files=files,
                   pack_yaml_extra=pack_yaml_extra)
    _write_files(src, repo_files)
    run_git(["init", "-q", "-b", branch, src], date=date)
    run_git(["add", "-A"], cwd=src, date=date)
    run_git(["commit", "-q", "-m", "%s %s" % (ref, version)], cwd=src, date=date)
    if tag:
        run_git(["tag", tag], cwd=src, date=date)
    run_git(["init", "-q", "--bare", "-b", branch, bare], date=date)
    _publish(src, bare, branch, date)
    return bare, head_commit(src)


def _write_files(root, files):
    for rel, data in sorted((files or {}).items()):
        path = os.path.join(root, *rel.split("/"))
        if data is None:
            if os.path.lexists(path):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.encode("utf-8") if isinstance(data, str) else data)


def source_dir(bare_dir):
    """The working repository that belongs to a bare repository made by ``make_git_pack_repo``."""
    stem = bare_dir[:-4] if bare_dir.endswith(".git") else bare_dir
    return stem + ".src"


def head_commit(repo_dir, rev="HEAD"):
    """40-hex SHA of ``rev`` in ``repo_dir`` (bare or not)."""
    return run_git(["rev-parse", "%s^{commit}" % rev], cwd=repo_dir).strip()


def checkout_checksum(bare_dir):
    """Framed directory checksum (``sha256:...``) of the current commit's tree, as a clone would see it."""
    return tree_checksum(source_dir(bare_dir))


def add_commit(bare_dir, files=None, version=None, subdir=None, tag=None, message=None,
               date="2024-01-02T00:00:00+00:00", branch="main"):
    """Commit changes to a repository from ``make_git_pack_repo`` and publish them; return the new SHA.

    ``files`` maps paths relative to the pack directory (``subdir``) to new
    content (``None`` deletes); ``version`` rewrites ``pack.yaml``'s version.
    """
    src = source_dir(bare_dir)
    pack_dir = os.path.join(src, subdir) if subdir else src
    _write_files(pack_dir, files)
    if version is not None:
        meta_path = os.path.join(pack_dir, "pack.yaml")
        with open(meta_path, encoding="utf-8") as f:
            meta = yaml.safe_load(f)
        meta["version"] = version
        with open(meta_path, "w", encoding="utf-8") as f:
            yaml.safe_dump(meta, f, sort_keys=False, default_flow_style=False)
    run_git(["add", "-A"], cwd=src, date=date)
    run_git(["commit", "-q", "--allow-empty", "-m", message or "update to %s" % (version or "new content")], cwd=src,
            date=date)
    if tag:
        run_git(["tag", tag], cwd=src, date=date)
    _publish(src, bare_dir, branch, date)
    return head_commit(src)


def clone(url, dest, ca_path=None, rev=None, extra_env=None):
    """``git clone`` (and optionally check out ``rev``) with the isolated environment; returns ``dest``."""
    env = git_env(extra_env)
    if ca_path:
        env["GIT_SSL_CAINFO"] = ca_path
    run_git(["clone", "-q", url, dest], env=env)
    if rev:
        run_git(["checkout", "-q", "--detach", rev], cwd=dest, env=env)
    return dest
