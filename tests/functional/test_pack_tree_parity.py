"""Same input, same verdict as Attune: pack.yaml, pack root, archive formats, installed tree (issue 9 items 1-3, 9).

Every case is a real source (archive or git repository over HTTPS on 127.0.0.1) published in a registry index and
installed by the real ``attune.packs.attune_pack`` module in one playbook (one task, one ``packs_dir`` per case).
The expected verdict of each case is Attune's, read in its source (attune-system/attune):

* pack.yaml -- crates/api/src/routes/packs.rs ``register_pack_internal`` / ``install_pack`` (``ref`` and ``version``
  must be strings, ``ref`` must pass schema.rs ``RefValidator::validate_pack_ref``; ``name``, ``description`` and the
  rest are optional and never fail registration) and ``validate_registry_manifest_identity`` (a registry install's
  pack.yaml ref and version equal the entry's);
* pack root -- crates/common/src/pack_registry/installer.rs ``PackInstaller::find_pack_directory`` (root, ``pack/``,
  then the first subdirectory with a pack.yaml), for archives and git checkouts alike;
* archive formats -- installer.rs ``archive_filename_from_url`` + archive.rs ``extract_archive`` (.zip, .tar.gz,
  .tgz, .gz, .tar; ``.../tar.gz/<commit>`` URLs without an extension);
* installed tree -- storage.rs ``calculate_directory_checksum``: the framed checksum of ``<packs_dir>/<ref>`` after a
  git install is the registry's checksum (installer.rs ``verify_git_content_checksum`` checks that directory).
"""
import os
import re

import pytest

from support import gitrepo, synth
from support.hostile_archives import member, tar_bytes, tar_gz, zip_file
from support.play import run_tasks
from support.registry_server import RegistryServer
from testdata import make_index

MODULE = "attune.packs.attune_pack"
COMMIT_PATH = "0123456789abcdef0123456789abcdef01234567"


def _yaml(text):
    return text.encode()


def _pack(top, pack_yaml, extra=()):
    """Members of an archive: ``top`` directory (or the root when empty) with pack.yaml, a README and an action."""
    prefix = top + "/" if top else ""
    members = [member(top, "dir")] if top else []
    members += [member(prefix + "pack.yaml", data=pack_yaml), member(prefix + "README.md", data=b"readme\n"),
                member(prefix + "actions/run.sh", data=b"#!/bin/sh\necho run\n", mode=0o755)]
    return members + list(extra)


class Case(object):
    def __init__(self, case_id, ref, version, accept, root=None, words=(), src=False):
        self.id = case_id
        self.ref = ref
        self.version = version
        self.accept = accept  # Attune's verdict
        self.root = root  # files the installed tree must hold exactly: {relative path: bytes}
        self.words = list(words)  # regexes the refusal must match
        self.src = src  # a direct source (src + checksum), not a registry entry
        self.args = None
        self.git_checksum = None


def _expected(members, top):
    """{relative path: bytes} of the regular files under ``top`` among ``members``."""
    prefix = top + "/" if top else ""
    return dict((item["name"][len(prefix):], item["data"]) for item in members
                if item["kind"] == "file" and item["name"].startswith(prefix))


class Site(object):
    def __init__(self, server, root):
        self.server = server
        self.files = os.path.join(root, "files")
        os.makedirs(self.files)
        server.add_directory("/files", self.files)
        self.root = root
        self.entries = []
        self.cases = []

    def registry_args(self, case_id):
        return {"registries": [{"name": "public", "url": self.server.url("index.json"), "priority": 10}], "ca_path": self.server.ca_path,
                "cache_dir": os.path.join(self.root, "cache"), "packs_dir": os.path.join(self.root, "cases", case_id, "packs")}

    def write(self, rel, data):
        path = os.path.join(self.files, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        return self.server.url("files/" + rel), synth.sha256_file(path)

    def archive_case(self, case, members, rel=None, fmt="tar.gz", top="demo"):
        """Publish ``members`` as an archive at ``files/<rel>`` and an entry (or a direct source) for ``case``."""
        rel = rel or "%s.%s" % (case.id, fmt)
        scratch = os.path.join(self.root, "scratch-" + case.id)
        if fmt == "zip":
            zip_file(scratch, members)
        elif fmt == "tar":
            with open(scratch, "wb") as handle:
                handle.write(tar_bytes(members))
        else:
            tar_gz(scratch, members)
        with open(scratch, "rb") as handle:
            url, checksum = self.write(rel, handle.read())
        os.unlink(scratch)
        if case.root is None and case.accept:
            case.root = _expected(members, top)
        if case.src:
            case.args = dict(self.registry_args(case.id), name=case.ref, src=url, checksum=checksum)
        else:
            self.entries.append(synth.make_entry(case.ref, case.version, archive_url=url, archive_checksum=checksum))
            case.args = dict(self.registry_args(case.id), name="%s@%s" % (case.ref, case.version))
        self.cases.append(case)

    def git_case(self, case, subdir=None, repo_files=None, pack_dir=None):
        """Publish a git repository (pack in ``subdir``) whose registry checksum covers ``pack_dir`` (Attune's pack root)."""
        bare, commit = gitrepo.make_git_pack_repo(self.files, case.ref, case.version, subdir=subdir, repo_files=repo_files, name=case.id)
        source = gitrepo.source_dir(bare)
        tree = os.path.join(source, pack_dir) if pack_dir else source
        case.git_checksum = synth.tree_checksum(tree)
        case.root = {}
        for base, dirs, names in os.walk(tree):
            dirs[:] = [name for name in dirs if name != ".git"]
            for name in names:
                with open(os.path.join(base, name), "rb") as handle:
                    case.root[os.path.relpath(os.path.join(base, name), tree)] = handle.read()
        url = self.server.url("files/" + os.path.basename(bare))
        self.entries.append(synth.make_entry(case.ref, case.version, git_url=url, git_commit=commit, git_checksum=case.git_checksum))
        case.args = dict(self.registry_args(case.id), name="%s@%s" % (case.ref, case.version))
        self.cases.append(case)


def build(site):
    # -- 9.1 pack.yaml: only ref and version are required, both strings (packs.rs register_pack_internal)
    site.archive_case(Case("yaml-minimal", "y-minimal", "1.0.0", True), _pack("demo", _yaml("ref: y-minimal\nversion: 1.0.0\n")))
    site.archive_case(Case("yaml-name-only", "y-name", "1.0.0", True), _pack("demo", _yaml("ref: y-name\nname: Nice Name\nversion: 1.0.0\n")))
    site.archive_case(Case("yaml-odd-optionals", "y-odd", "1.0.0", True),  # non-string optionals are ignored by Attune
                      _pack("demo", _yaml("ref: y-odd\nversion: 1.0.0\nlabel: 5\ndescription: [a, b]\nkeywords: 7\nname: {x: 1}\n")))
    site.archive_case(Case("yaml-empty-description", "y-empty", "1.0.0", True),
                      _pack("demo", _yaml("ref: y-empty\nversion: 1.0.0\nlabel: ''\ndescription: ''\n")))
    site.archive_case(Case("yaml-calver-src", "y-calver", None, True, src=True),  # any string version, for a direct source
                      _pack("demo", _yaml("ref: y-calver\nversion: '2024.1'\n")))
    site.archive_case(Case("yaml-no-version", "y-nover", "1.0.0", False, words=[r"pack\.yaml is missing required field 'version'"]),
                      _pack("demo", _yaml("ref: y-nover\nname: x\n")))
    site.archive_case(Case("yaml-float-version", "y-float", "1.0.0", False,
                           words=[r"pack\.yaml field 'version' must be a string, got float 1\.0 \(quote it in YAML\)"]),
                      _pack("demo", _yaml("ref: y-float\nversion: 1.0\n")))
    site.archive_case(Case("yaml-bad-ref", "y-badref", "1.0.0", False, words=[r"pack\.yaml ref 'Y_BadRef' is invalid"]),
                      _pack("demo", _yaml("ref: Y_BadRef\nversion: 1.0.0\n")))
    site.archive_case(Case("yaml-duplicate-ref", "y-dup", "1.0.0", False, words=[r"pack\.yaml is not valid YAML.*duplicate key 'ref'"]),
                      _pack("demo", _yaml("ref: y-dup\nversion: 1.0.0\nref: y-dup\n")))
    # identity (packs.rs validate_registry_manifest_identity): ref and version equal the registry entry's
    site.archive_case(Case("yaml-other-version", "y-otherver", "1.0.0", False,
                           words=[r"pack\.yaml version '1\.0\.1' does not match the resolved entry version '1\.0\.0'"]),
                      _pack("demo", _yaml("ref: y-otherver\nversion: 1.0.1\n")))

    # -- 9.2 pack root (installer.rs find_pack_directory): root, then pack/, then the first subdirectory with pack.yaml
    both = _pack("", _yaml("ref: r-root\nversion: 1.0.0\n")) + _pack("pack", _yaml("ref: r-root\nversion: 9.9.9\n"))
    site.archive_case(Case("root-before-pack-dir", "r-root", "1.0.0", True, root=_expected(both, "")), both, top="")
    sub = _pack("pack", _yaml("ref: r-sub\nversion: 1.0.0\n")) + _pack("aaa", _yaml("ref: r-sub\nversion: 9.9.9\n"))
    site.archive_case(Case("pack-dir-before-others", "r-sub", "1.0.0", True, root=_expected(sub, "pack")), sub, top="pack")
    docs = [member("docs", "dir"), member("docs/index.md", data=b"docs\n")] + _pack("src-pack", _yaml("ref: r-first\nversion: 1.0.0\n"))
    site.archive_case(Case("first-subdir-with-pack-yaml", "r-first", "1.0.0", True, root=_expected(docs, "src-pack")), docs, top="src-pack")
    deep = [member("a", "dir"), member("a/b", "dir"), member("a/b/pack.yaml", data=b"ref: r-deep\nversion: 1.0.0\n")]
    site.archive_case(Case("two-levels-down-is-not-looked-at", "r-deep", "1.0.0", False, words=[r"no pack\.yaml in the archive"]), deep)
    site.git_case(Case("git-root-before-pack-dir", "g-root", "1.0.0", True),
                  repo_files={"pack/pack.yaml": "ref: g-root\nversion: 9.9.9\n", "pack/other.txt": "x\n"})
    site.git_case(Case("git-pack-dir", "g-sub", "1.0.0", True), subdir="pack", repo_files={"README.md": "repo\n"}, pack_dir="pack")
    site.git_case(Case("git-first-subdir", "g-first", "1.0.0", True), subdir="g-first", repo_files={"docs/x.md": "x\n"},
                  pack_dir="g-first")

    # -- 9.3 archive formats named by the URL (archive.rs extract_archive, installer.rs archive_filename_from_url)
    plain = _pack("demo", _yaml("ref: f-tar\nversion: 1.0.0\n"))
    site.archive_case(Case("plain-tar", "f-tar", "1.0.0", True), plain, fmt="tar")
    site.archive_case(Case("dot-gz", "f-gz", "1.0.0", True), _pack("demo", _yaml("ref: f-gz\nversion: 1.0.0\n")), rel="dot-gz.gz")
    site.archive_case(Case("dot-tgz", "f-tgz", "1.0.0", True), _pack("demo", _yaml("ref: f-tgz\nversion: 1.0.0\n")), rel="f-tgz.tgz")
    site.archive_case(Case("zip", "f-zip", "1.0.0", True), _pack("demo", _yaml("ref: f-zip\nversion: 1.0.0\n")), fmt="zip")
    site.archive_case(Case("codeload-no-extension", "f-codeload", "1.0.0", True),
                      _pack("f-codeload-" + COMMIT_PATH, _yaml("ref: f-codeload\nversion: 1.0.0\n")),
                      rel="codeload/owner/f-codeload/tar.gz/" + COMMIT_PATH, top="f-codeload-" + COMMIT_PATH)
    return site.cases


@pytest.fixture(scope="module")
def outcome(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("parity"))
    with RegistryServer() as server:
        site = Site(server, root)
        cases = build(site)
        server.add_json("/index.json", make_index("public", site.entries))
        play = run_tasks(os.path.join(root, "play"), [{MODULE: case.args} for case in cases])
        results = play.host()
        assert len(results) == len(cases), play
        return dict((case.id, (case, result)) for case, result in zip(cases, results))


def _files(tree):
    found = {}
    for base, dirs, names in os.walk(tree):
        for name in names:
            with open(os.path.join(base, name), "rb") as handle:
                found[os.path.relpath(os.path.join(base, name), tree)] = handle.read()
    return found


ACCEPTED = ["yaml-minimal", "yaml-name-only", "yaml-odd-optionals", "yaml-empty-description", "yaml-calver-src",
            "root-before-pack-dir", "pack-dir-before-others", "first-subdir-with-pack-yaml",
            "git-root-before-pack-dir", "git-pack-dir", "git-first-subdir",
            "plain-tar", "dot-gz", "dot-tgz", "zip", "codeload-no-extension"]
REFUSED = ["yaml-no-version", "yaml-float-version", "yaml-bad-ref", "yaml-duplicate-ref", "yaml-other-version",
           "two-levels-down-is-not-looked-at"]


def test_every_case_ran(outcome):
    assert sorted(outcome) == sorted(ACCEPTED + REFUSED)


@pytest.mark.parametrize("case_id", ACCEPTED)
def test_what_attune_accepts_is_installed_with_exactly_the_pack_root(outcome, case_id):
    case, result = outcome[case_id]
    assert not result.get("failed") and result.get("changed") is True, result
    tree = os.path.join(case.args["packs_dir"], case.ref)
    # the installed tree is Attune's pack root, nothing more, nothing less (no provenance inside it)
    assert _files(tree) == case.root, sorted(_files(tree))
    assert sorted(os.listdir(case.args["packs_dir"])) == [".attune", case.ref]
    assert synth.read_provenance(case.args["packs_dir"], case.ref)["tree_checksum"] == synth.tree_checksum(tree)


@pytest.mark.parametrize("case_id", REFUSED)
def test_what_attune_refuses_is_refused_with_the_cause(outcome, case_id):
    case, result = outcome[case_id]
    assert result.get("failed") is True and not result.get("changed"), result
    assert result["msg"].startswith("pack %s: " % case.ref), result["msg"]
    for word in case.words:
        assert re.search(word, result["msg"]), (word, result["msg"])
    assert not os.path.exists(os.path.join(case.args["packs_dir"], case.ref))


@pytest.mark.parametrize("case_id", ["git-root-before-pack-dir", "git-pack-dir", "git-first-subdir"])
def test_installed_git_pack_has_the_registrys_framed_checksum(outcome, case_id):
    """Issue 9 item 9: what Attune computes when it registers the pack from disk (storage.rs calculate_directory_checksum)
    equals the registry's git checksum, because provenance is kept outside <packs_dir>/<ref>."""
    case, result = outcome[case_id]
    assert not result.get("failed"), result
    tree = os.path.join(case.args["packs_dir"], case.ref)
    assert synth.tree_checksum(tree) == case.git_checksum
    assert result["pack"]["checksum"] == case.git_checksum


def test_pack_yaml_is_read_with_yaml_1_2_scalars(tmp_path):
    """serde_yaml_ng (Attune) keeps ``on``/``yes`` and dates as strings where PyYAML's YAML 1.1 makes bools and dates."""
    from ansible_collections.attune.packs.plugins.module_utils._pack._pack_yaml import load_pack_yaml

    (tmp_path / "pack.yaml").write_text("ref: on\nversion: 2024-01-01\nname: yes\ndescription: 12\n")
    content = load_pack_yaml(str(tmp_path))
    assert (content["ref"], content["version"]) == ("on", "2024-01-01")
    assert (content["name"], content["description"]) == ("yes", 12)
