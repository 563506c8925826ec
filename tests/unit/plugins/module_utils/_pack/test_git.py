"""Git checkouts with real repositories: local (file:// with allow_local_git) and over real HTTPS (dumb protocol)."""

from __future__ import annotations

import json
import os
import shutil
import stat
import sys

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack import _git
from ansible_collections.attune.packs.plugins.module_utils._base._errors import (AuthenticationFailed, ChecksumMismatch, ConfigError, SourceError,
                                                                                 UnsafeArchive)
from ansible_collections.attune.packs.plugins.module_utils._pack._git import check_git_url, check_git_version, clone
from support.gitrepo import add_commit, checkout_checksum, make_git_pack_repo, run_git, source_dir
from support.synth import tree_checksum as independent_checksum

TOKEN = "s3cr3t-t0ken-value"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    """A bare repository with two commits on main, a lightweight tag v1 on the first and an annotated tag v2 on the second.

    Shared by the module's tests, which only read it.
    """
    work = tmp_path_factory.mktemp("repos")
    bare, first = make_git_pack_repo(str(work), "demo", "1.0.0", tag="v1")
    first_checksum = checkout_checksum(bare)
    second = add_commit(bare, version="2.0.0", files={"actions/new.txt": "new\n"})
    run_git(["tag", "-a", "-m", "release 2", "v2"], cwd=source_dir(bare))
    run_git(["push", "-q", "--tags", bare], cwd=source_dir(bare))
    run_git(["update-server-info"], cwd=bare)
    run_git(["branch", "feature/x", first], cwd=source_dir(bare))
    run_git(["push", "-q", bare, "feature/x"], cwd=source_dir(bare))
    run_git(["update-server-info"], cwd=bare)
    return {"bare": bare, "url": "file://" + bare, "first": first, "second": second,
            "first_checksum": first_checksum, "second_checksum": checkout_checksum(bare)}


@pytest.fixture
def parent(tmp_path):
    path = tmp_path / "parent"
    path.mkdir()
    return path


def _version_of(tree):
    with open(os.path.join(tree, "pack.yaml")) as handle:
        return [line.split(":", 1)[1].strip() for line in handle if line.startswith("version:")][0]


# ---------------------------------------------------------------------------
# refusals before git runs


@pytest.mark.parametrize("url, message", [
    ("ssh://git@github.com/attune-packs/slack.git", r"must use https://, not ssh://"),
    ("git://github.com/attune-packs/slack.git", r"must use https://, not git://"),
    ("git@github.com:attune-packs/slack.git", r"scp-style ssh address"),
    ("github.com:attune-packs/slack.git", r"scp-style ssh address"),
    ("ext::sh -c touch% /tmp/pwned", r"scp-style ssh address"),
    ("file:///srv/git/slack.git", r"file:// git URL .* refused \(set allow_local_git: true"),
    ("http://example.test/slack.git", r"plain http:// git URL .* refused \(set allow_http: true"),
    ("https://user:" + TOKEN + "@example.test/slack.git", r"must not carry credentials"),
    ("https://" + TOKEN + "@example.test/slack.git", r"must not carry credentials"),
    ("https://example.test/slack.git?token=" + TOKEN, r"must not carry a query string"),
    ("https://example.test/slack.git#frag", r"must not carry a query string or fragment"),
    ("https:///slack.git", r"has no host"),
    ("https://example.test/sl ack.git", r"whitespace"),
    ("-uhttps://example.test/x", r"must use https://, not -uhttps://"),
    ("/srv/git/slack.git", r"not an absolute URL"),
    ("", r"non-empty string"),
])
def test_refused_urls(url, message, parent):
    with pytest.raises(SourceError, match=message) as info:
        clone(url, str(parent / "co"), pack="slack")
    assert TOKEN not in str(info.value)
    assert str(info.value).startswith("pack slack: ")
    assert os.listdir(str(parent)) == []


def test_allowed_url_forms():
    assert check_git_url("https://github.com/a/b.git")
    assert check_git_url("HTTPS://github.com:8443/a/b")
    assert check_git_url("http://h/x", allow_http=True)
    assert check_git_url("file:///srv/x.git", allow_local_git=True)
    with pytest.raises(SourceError, match="absolute local path"):
        check_git_url("file://otherhost/srv/x.git", allow_local_git=True)


@pytest.mark.parametrize("version", ["-uhack", "--upload-pack=touch /tmp/x", "a..b", "x.lock", "a b", "main@{1}", "", "a//b", "feat/",
                                     ".hidden", "a/.b", "x\n", "v1\x00"])
def test_refused_versions(version, repo, parent):
    with pytest.raises(SourceError, match="git version"):
        clone(repo["url"], str(parent / "co"), version=version, allow_local_git=True)
    assert os.listdir(str(parent)) == []


def test_version_normalisation():
    assert check_git_version(None) is None
    assert check_git_version("A" * 40) == "a" * 40
    assert check_git_version("release/1.2_x+y") == "release/1.2_x+y"


def test_refused_header_names_and_missing_ca(repo, parent):
    with pytest.raises(ConfigError, match="managed by the HTTP client"):
        clone(repo["url"], str(parent / "co"), allow_local_git=True, headers={"Host": "evil"})
    with pytest.raises(ConfigError, match="line break"):
        clone(repo["url"], str(parent / "co"), allow_local_git=True, headers={"X-Token": "a\r\nInjected: 1"})
    with pytest.raises(SourceError, match="ca_path .* is not a file"):
        clone(repo["url"], str(parent / "co"), allow_local_git=True, ca_path=str(parent / "nope.pem"))
    assert os.listdir(str(parent)) == []


# ---------------------------------------------------------------------------
# local repositories


@pytest.mark.parametrize("version, which", [
    (None, "second"), ("main", "second"), ("v1", "first"), ("v2", "second"), ("feature/x", "first"), ("FIRST", "first"), ("SECOND", "second"),
])
def test_checkout_versions(repo, parent, version, which):
    if version in ("FIRST", "SECOND"):
        version = repo[which]
    dest = str(parent / "co")
    result = clone(repo["url"], dest, version=version, allow_local_git=True)
    assert result.commit == repo[which]
    assert result.path == dest and result.tree == dest and result.subdir == ""
    assert str(result.checksum) == repo[which + "_checksum"]
    assert independent_checksum(dest) == repo[which + "_checksum"]
    assert _version_of(dest) == ("1.0.0" if which == "first" else "2.0.0")


def test_expected_checksum_is_verified(repo, parent):
    result = clone(repo["url"], str(parent / "ok"), version=repo["first"], expected_checksum=repo["first_checksum"], allow_local_git=True)
    assert str(result.checksum) == repo["first_checksum"]
    with pytest.raises(ChecksumMismatch) as info:
        clone(repo["url"], str(parent / "bad"), version=repo["second"], expected_checksum=repo["first_checksum"], allow_local_git=True,
              pack="demo")
    message = str(info.value)
    assert message.startswith("pack demo: checksum mismatch for git tree of file://")
    assert "expected %s, got %s" % (repo["first_checksum"], repo["second_checksum"]) in message
    assert repo["second"] in message
    assert os.listdir(str(parent)) == ["ok"]


def test_pack_subdirectory(tmp_path, parent):
    bare, commit = make_git_pack_repo(str(tmp_path), "demo", "1.0.0", subdir="pack", repo_files={"README.md": "repo readme\n"})
    pack_checksum = independent_checksum(os.path.join(source_dir(bare), "pack"))
    whole_checksum = checkout_checksum(bare)
    result = clone("file://" + bare, str(parent / "a"), version=commit, expected_checksum=pack_checksum, allow_local_git=True)
    assert result.tree == str(parent / "a" / "pack") and result.subdir == "pack"
    assert str(result.checksum) == pack_checksum
    # a checksum of the whole checkout is refused: Attune's installer.rs verify_git_content_checksum hashes the pack directory only
    with pytest.raises(ChecksumMismatch, match=r"checksum mismatch for git tree of .* \(directory pack/, where pack.yaml is\)"):
        clone("file://" + bare, str(parent / "b"), version=commit, expected_checksum=whole_checksum, allow_local_git=True)
    assert not os.path.exists(str(parent / "b"))


# Attune: installer.rs PackInstaller::find_pack_directory, used for git checkouts too (after removing .git)
@pytest.mark.parametrize("layout, expected", [
    ({"pack.yaml": "root", "pack/pack.yaml": "sub"}, ""),  # root first, even when pack/ has one (0.1.0 took pack/)
    ({"pack/pack.yaml": "sub", "aaa/pack.yaml": "a"}, "pack"),
    ({"packs/demo/pack.yaml": "deep", "src/pack.yaml": "s", "lib/pack.yaml": "l"}, "lib"),  # first subdirectory, byte order
])
def test_git_pack_root_follows_attunes_order(tmp_path, parent, layout, expected):
    files = dict((rel, "ref: demo\nversion: 1.0.0\nname: %s\n" % text) for rel, text in layout.items())
    bare, commit = make_git_pack_repo(str(tmp_path), "demo", "1.0.0", subdir="unused", repo_files=files)
    tree_dir = os.path.join(source_dir(bare), expected) if expected else source_dir(bare)
    shutil.rmtree(os.path.join(source_dir(bare), "unused"))
    commit = add_commit(bare, message="drop unused")
    result = clone("file://" + bare, str(parent / "co"), version=commit, expected_checksum=independent_checksum(tree_dir), allow_local_git=True)
    assert result.subdir == expected and result.tree == os.path.join(str(parent / "co"), expected).rstrip("/")


def test_unknown_branch_and_commit(repo, parent):
    with pytest.raises(SourceError, match=r"branch or tag 'nope' not found in file://"):
        clone(repo["url"], str(parent / "co"), version="nope", allow_local_git=True)
    missing = "0123456789abcdef0123456789abcdef01234567"
    with pytest.raises(SourceError, match=r"commit %s not found in file://" % missing):
        clone(repo["url"], str(parent / "co"), version=missing, allow_local_git=True)
    with pytest.raises(SourceError, match=r"git fetch of file:///nonexistent/repo.git failed"):
        clone("file:///nonexistent/repo.git", str(parent / "co"), allow_local_git=True)
    assert os.listdir(str(parent)) == []


def test_symlink_in_repository_is_refused(tmp_path, parent):
    bare, commit = make_git_pack_repo(str(tmp_path), "demo", "1.0.0")
    src = source_dir(bare)
    os.symlink("/etc/passwd", os.path.join(src, "actions", "passwd"))
    new = add_commit(bare, message="add symlink")
    assert new != commit
    with pytest.raises(UnsafeArchive, match=r"contains a symlink: actions/passwd"):
        clone("file://" + bare, str(parent / "co"), allow_local_git=True)
    assert os.listdir(str(parent)) == []


def test_existing_destination_is_refused(repo, parent):
    (parent / "co").mkdir()
    with pytest.raises(Exception, match="cannot create checkout directory"):
        clone(repo["url"], str(parent / "co"), allow_local_git=True)
    assert os.listdir(str(parent / "co")) == []


def test_user_and_environment_git_config_are_ignored(repo, parent, tmp_path, monkeypatch):
    """A hostile ~/.gitconfig, GIT_CONFIG_GLOBAL or GIT_DIR in the caller's environment changes nothing."""
    home = tmp_path / "home"
    home.mkdir()
    hostile = "[url \"file:///nonexistent/\"]\n\tinsteadOf = file://\n[core]\n\thooksPath = %s\n" % tmp_path
    (home / ".gitconfig").write_text(hostile)
    (tmp_path / "global.cfg").write_text(hostile)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global.cfg"))
    monkeypatch.setenv("GIT_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("GIT_CONFIG_PARAMETERS", "'protocol.allow'='always'")
    result = clone(repo["url"], str(parent / "co"), version="main", allow_local_git=True)
    assert result.commit == repo["second"]


def _recording_git(tmp_path):
    """A git wrapper that logs its argv and environment (as JSON lines) and then runs the real git."""
    log = tmp_path / "git-calls.jsonl"
    wrapper = tmp_path / "git-wrapper"
    wrapper.write_text(
        "#!%s\nimport json, os, sys, shutil\n"
        "with open(%r, 'a') as f:\n    f.write(json.dumps({'argv': sys.argv[1:], 'env': dict(os.environ)}) + '\\n')\n"
        "os.execv(%r, ['git'] + sys.argv[1:])\n" % (sys.executable, str(log), _git.find_git())
    )
    wrapper.chmod(0o755)
    return str(wrapper), log


def _calls(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def test_command_lines_and_environment(repo, parent, tmp_path):
    wrapper, log = _recording_git(tmp_path)
    clone(repo["url"], str(parent / "co"), version="v1", allow_local_git=True, headers={"Authorization": "Bearer " + TOKEN},
          validate_certs=False, git_executable=wrapper)
    calls = [call for call in _calls(log) if call["argv"] != ["--version"]]
    assert calls
    for call in calls:
        argv = call["argv"]
        assert not any(TOKEN in arg for arg in argv), argv
        joined = " ".join(argv)
        for setting in ("protocol.allow=never", "protocol.file.allow=always", "http.followRedirects=false", "credential.helper=",
                        "http.sslVerify=false", "core.hooksPath=/dev/null", "transfer.fsckObjects=true"):
            assert "-c " + setting in joined
        assert "protocol.https.allow" not in joined
        env = call["env"]
        assert env["GIT_CONFIG_NOSYSTEM"] == "1" and env["GIT_CONFIG_GLOBAL"] == os.devnull and env["GIT_TERMINAL_PROMPT"] == "0"
        assert env["HOME"] == os.devnull
        assert env["GIT_CONFIG_COUNT"] == "1" and env["GIT_CONFIG_KEY_0"] == "http.extraHeader"
        assert env["GIT_CONFIG_VALUE_0"] == "Authorization: Bearer " + TOKEN
        assert not [name for name in env if name.startswith("GIT_") and name not in (
            "GIT_CONFIG_NOSYSTEM", "GIT_CONFIG_GLOBAL", "GIT_TERMINAL_PROMPT", "GIT_ASKPASS", "GIT_SSH_COMMAND", "GIT_CONFIG_COUNT",
            "GIT_CONFIG_KEY_0", "GIT_CONFIG_VALUE_0")]
    fetches = [call["argv"] for call in calls if "fetch" in call["argv"]]
    for argv in fetches:
        tail = argv[argv.index("fetch"):]
        assert tail[tail.index("--") + 1:] == [repo["url"], "v1"]
    init = [call["argv"] for call in calls if "init" in call["argv"]][0]
    assert init[-2:] == ["--", str(parent / "co")]


# ---------------------------------------------------------------------------
# real HTTPS server (git's dumb HTTP protocol from static files)


@pytest.fixture
def https_repo(repo):
    from support.registry_server import RegistryServer

    server = RegistryServer()
    server.add_directory("/git/demo.git", repo["bare"])
    server.add_directory("/private/demo.git", repo["bare"], required_headers={"Authorization": "Bearer " + TOKEN})
    with server:
        server.add_redirect("/moved/demo.git/info/refs", "/git/demo.git/info/refs")
        yield server, repo


def test_https_clone_with_ca_path(https_repo, parent):
    server, repo = https_repo
    result = clone(server.url("git/demo.git"), str(parent / "co"), version=repo["first"], expected_checksum=repo["first_checksum"],
                   ca_path=server.ca_path)
    assert result.commit == repo["first"]
    result = clone(server.url("git/demo.git"), str(parent / "co2"), version="main", ca_path=server.ca_path)
    assert result.commit == repo["second"]


def test_https_untrusted_certificate(https_repo, parent):
    server, repo = https_repo
    with pytest.raises(SourceError, match=r"git fetch of https://127\.0\.0\.1:\d+/git/demo\.git failed: .*(certificate|SSL)") as info:
        clone(server.url("git/demo.git"), str(parent / "co"), version="main")
    assert not isinstance(info.value, AuthenticationFailed)
    assert os.listdir(str(parent)) == []
    result = clone(server.url("git/demo.git"), str(parent / "co"), version="main", validate_certs=False)
    assert result.commit == repo["second"]


def test_https_headers_are_sent_and_required(https_repo, parent):
    server, repo = https_repo
    with pytest.raises(AuthenticationFailed) as info:
        clone(server.url("private/demo.git"), str(parent / "co"), version="main", ca_path=server.ca_path, pack="demo")
    assert info.value.status == 401 and info.value.kind == "authentication_failed"
    assert "private/demo.git" in str(info.value)
    with pytest.raises(AuthenticationFailed) as info:
        clone(server.url("private/demo.git"), str(parent / "co"), version="main", ca_path=server.ca_path,
              headers={"Authorization": "Bearer wrong-" + TOKEN})
    assert info.value.status == 403
    assert TOKEN not in str(info.value)
    server.reset_log()
    result = clone(server.url("private/demo.git"), str(parent / "co"), version="main", ca_path=server.ca_path,
                   headers={"Authorization": "Bearer " + TOKEN})
    assert result.commit == repo["second"]
    requests = [r for r in server.requests if r.path.startswith("/private/")]
    assert requests and all(r.headers.get("Authorization") == "Bearer " + TOKEN for r in requests)


def test_https_redirects_are_not_followed(https_repo, parent):
    server, _repo = https_repo
    expected = r"answered https://127\.0\.0\.1:\d+/moved/demo\.git with a redirect \(HTTP 302\); redirects are not followed"
    with pytest.raises(SourceError, match=expected) as info:
        clone(server.url("moved/demo.git"), str(parent / "co"), version="main", ca_path=server.ca_path)
    assert not isinstance(info.value, AuthenticationFailed)
    assert server.count("/git/demo.git/info/refs") == 0
    assert os.listdir(str(parent)) == []


def test_checkout_files_are_regular(repo, parent):
    result = clone(repo["url"], str(parent / "co"), allow_local_git=True)
    for dirpath, _dirs, files in os.walk(result.tree):
        if ".git" in dirpath.split(os.sep):
            continue
        for name in files:
            assert stat.S_ISREG(os.lstat(os.path.join(dirpath, name)).st_mode)


def test_ls_remote_resolves_branches_tags_and_head(tmp_path):
    bare, first = make_git_pack_repo(str(tmp_path), "demo", "1.0.0", tag="v1")
    second = add_commit(bare, version="1.1.0")
    run_git(["tag", "-a", "-m", "annotated", "v2", second], cwd=bare)  # an annotated tag is peeled to its commit
    url = "file://" + bare
    assert _git.ls_remote(url, "main", allow_local_git=True) == second
    assert _git.ls_remote(url, None, allow_local_git=True) == second
    assert _git.ls_remote(url, "v1", allow_local_git=True) == first
    assert _git.ls_remote(url, "v2", allow_local_git=True) == second
    assert _git.ls_remote(url, first.upper(), allow_local_git=True) == first  # a commit is returned as is
    with pytest.raises(SourceError, match=r"branch or tag 'nope' not found in file://"):
        _git.ls_remote(url, "nope", allow_local_git=True)
    with pytest.raises(SourceError, match="file:// git URL .* refused"):
        _git.ls_remote(url, "main")
    with pytest.raises(SourceError, match="starts with '-'"):
        _git.ls_remote(url, "--upload-pack=touch /tmp/x", allow_local_git=True)
