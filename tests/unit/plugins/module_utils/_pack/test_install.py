"""_install planning against real pack directories (installed for real from real archives)."""
from __future__ import annotations

import os

import pytest

from ansible_collections.attune.packs.plugins.module_utils._pack import _install, _packdir
from ansible_collections.attune.packs.plugins.module_utils._pack._checksum import framed_dir_checksum
from ansible_collections.attune.packs.plugins.module_utils._base._errors import (
    AttuneError, ChecksumError, ChecksumMismatch, InvalidArguments, SourceError,
)
from support.synth import make_pack_archive, make_pack_tree


def install_archive(tmp_path, ref="cm", version="1.0.0"):
    archive, checksum = make_pack_archive(str(tmp_path / "src"), ref, version)
    packs_dir = str(tmp_path / "packs")
    options = _install.Options(packs_dir, durable=False)
    target = _install.src_target(ref, archive, None, checksum, options)
    _install.apply([_install.plan_target(packs_dir, target)], options)
    return packs_dir, target


def test_converged_pack_plans_nothing(tmp_path):
    packs_dir, target = install_archive(tmp_path)
    step = _install.plan_target(packs_dir, target)
    assert (step.action, step.changed) == ("none", False)


def test_unreadable_provenance_is_reinstalled_and_says_why(tmp_path):
    packs_dir, target = install_archive(tmp_path)
    with open(os.path.join(packs_dir, ".attune", "cm.json"), "w") as handle:  # provenance lives outside the tree (issue 9 item 9)
        handle.write("{not json")
    step = _install.plan_target(packs_dir, target)
    assert step.action == "reinstall" and step.changed
    assert "provenance is unreadable" in step.reason and "cm.json is not valid JSON" in step.reason, step.reason
    options = _install.Options(packs_dir, durable=False)
    _install.apply([step], options)
    assert _install.plan_target(packs_dir, target).action == "none"  # repaired


def test_remove_unlisted_plans_only_managed_packs(tmp_path):
    packs_dir, _target = install_archive(tmp_path, "keepme")
    install_archive(tmp_path / "other", "dropme")  # a second managed pack, in its own packs dir first
    os.rename(str(tmp_path / "other" / "packs" / "dropme"), os.path.join(packs_dir, "dropme"))
    os.rename(str(tmp_path / "other" / "packs" / ".attune" / "dropme.json"), os.path.join(packs_dir, ".attune", "dropme.json"))
    make_pack_tree(os.path.join(packs_dir, "handmade"), "handmade", "1.0.0")
    steps = _install.plan_unlisted(packs_dir, {"keepme"})
    assert [(step.ref, step.action) for step in steps] == [("dropme", "remove")]


# -- decisions --------------------------------------------------------------------------------------------------

def installed_version(packs_dir, ref):
    entry = _packdir.installed(packs_dir, ref)
    return entry and entry["version"]


def archive_target(tmp_path, ref, version, options):
    archive, checksum = make_pack_archive(str(tmp_path / ("src-%s-%s" % (ref, version))), ref, version)
    return _install.src_target(ref, archive, None, checksum, options), archive, checksum


def test_an_older_target_is_a_downgrade_and_a_newer_one_an_upgrade(tmp_path):
    packs_dir, _target = install_archive(tmp_path, "cm", "1.5.0")
    options = _install.Options(packs_dir, durable=False)
    older, _a, _c = archive_target(tmp_path, "cm", "1.0.0", options)
    newer, _a, _c = archive_target(tmp_path, "cm", "2.0.0", options)
    older.version, newer.version = "1.0.0", "2.0.0"
    down = _install.plan_target(packs_dir, older)
    up = _install.plan_target(packs_dir, newer)
    assert (down.action, down.reason) == ("downgrade", "installed 1.5.0, target 1.0.0")
    assert (up.action, up.reason) == ("upgrade", "installed 1.5.0, target 2.0.0")
    _install.apply([down], options)
    assert installed_version(packs_dir, "cm") == "1.0.0"


def test_present_keeps_a_satisfying_version_without_resolving(tmp_path):
    packs_dir, _target = install_archive(tmp_path, "cm", "1.5.0")
    asked = []
    step = _install.plan_present(packs_dir, "cm@^1.0", asked.append)
    assert (step.action, asked) == ("none", [])
    assert step.reason == "installed version 1.5.0 satisfies cm@^1.0"
    installed = _packdir.installed(packs_dir, "cm")["metadata"]
    resolution = {"ref": "cm", "version": "1.5.0", "source": {"type": "archive", "url": "https://x.test/cm.tgz",
                                                              "checksum": installed["checksum"]}}
    step = _install.plan_present(packs_dir, "cm@^1.0", lambda spec: asked.append(spec) or resolution, state="latest")
    assert (step.action, asked) == ("none", ["cm@^1.0"])  # latest always asks; the newest is the installed one


@pytest.mark.parametrize("src, kind, extra", [
    ("https://git.example.test/packs/cm.git", "git", {"ref": "v1"}),
    ("git@git.example.test:packs/cm.git", "git", {"ref": "v1"}),
    ("https://files.example.test/cm-1.0.0.tar.gz", "archive", {}),
    ("https://files.example.test/cm-1.0.0.TGZ", "archive", {}),
    ("https://codeload.example.test/o/cm/tar.gz/v1", "archive", {}),
    ("https://files.example.test/cm.zip", "archive", {}),
])
def test_remote_src_classification(src, kind, extra):
    target = _install.src_target("cm", src, "v1", None, _install.Options("/nonexistent"))
    assert target.primary == dict({"type": kind, "url": src}, **extra)
    assert target.version == (None if kind == "git" else "v1")  # a git version is the ref to check out
    assert target.origin == "src"


def test_local_src_classification(tmp_path):
    tree = make_pack_tree(str(tmp_path / "tree"), "cm", "1.2.3")
    archive, _checksum = make_pack_archive(str(tmp_path / "a"), "cm", "1.0.0")
    target = _install.src_target("cm", tree)
    assert (target.primary, target.version) == ({"type": "dir", "path": tree}, "1.2.3")  # read from pack.yaml up front
    assert _install.src_target("cm", archive).primary == {"type": "archive", "path": archive}
    with pytest.raises(SourceError, match="src ./nothing-here: no such directory or archive"):
        _install.src_target("cm", "./nothing-here")
    with pytest.raises((ValueError, AttuneError), match="plain http:// archive URL .* refused"):  # http only with allow_http
        _install.src_target("cm", "http://files.example.test/cm.tar.gz", options=_install.Options("/x"))
    assert _install.src_target("cm", "http://files.example.test/cm.tar.gz", options=_install.Options("/x", allow_http=True)).primary["url"]
    with pytest.raises(ChecksumError, match="pack cm"):
        _install.src_target("cm", tree, checksum="md5:0123")


def test_a_failing_git_source_falls_back_to_the_archive(tmp_path):
    packs_dir = str(tmp_path / "packs")
    # a file:// archive from a resolution needs allow_http (issue 8 item 8: the same scheme rule for every URL)
    options = _install.Options(packs_dir, durable=False, allow_http=True)
    archive, checksum = make_pack_archive(str(tmp_path / "src"), "cm", "1.0.0")
    resolution = {"ref": "cm", "version": "1.0.0", "spec": "cm", "registry": "public",
                  "source": {"type": "git", "url": "file://" + str(tmp_path / "no.git"), "ref": "v1", "checksum": checksum},
                  "fallback_source": {"type": "archive", "url": "file://" + archive, "checksum": checksum}}
    warnings = []
    step = _install.plan_target(packs_dir, _install.Target.from_resolution(resolution))
    _install.apply([step], options, warn=warnings.append)
    assert step.result["metadata"]["installed_from"] == {"type": "archive", "url": "file://" + archive}
    assert len(warnings) == 1 and warnings[0].startswith("pack cm: installed from the fallback source archive file://"), warnings
    assert "file:// git" in warnings[0] or "allow_local_git" in warnings[0], warnings
    # the installed pack now matches the target through the fallback's checksum
    assert _install.plan_target(packs_dir, _install.Target.from_resolution(resolution)).action == "none"


def test_fetch_requests_name_the_archive_of_each_changing_pack(tmp_path):
    packs_dir, installed = install_archive(tmp_path, "same", "1.0.0")
    git = {"type": "git", "url": "https://git.example.test/x.git", "ref": "v2", "checksum": "sha256:" + "1" * 64}
    archive = {"type": "archive", "url": "https://user:pw@files.example.test/x-2.tgz?t=1", "checksum": "sha256:" + "2" * 64}
    steps = [
        _install.plan_target(packs_dir, installed),  # none
        _install.plan_absent(packs_dir, "same"),  # remove
        _install.plan_target(packs_dir, _install.Target("newpack", "2.0.0", [git, archive])),
    ]
    assert [step.action for step in steps] == ["none", "remove", "install"]
    assert _install.fetch_requests(steps) == [
        {"ref": "newpack", "source": {"type": "archive", "url": "https://***@files.example.test/x-2.tgz?***", "checksum": archive["checksum"]}}]
    steps[2].target.local_copy = "/tmp/copied"
    assert _install.fetch_requests(steps) == []
    git_only = _install.plan_target(packs_dir, _install.Target("gitonly", "1.0.0", [git]))
    with pytest.raises(SourceError, match="fetch_on=controller needs an archive source.*only git"):
        _install.fetch_requests([git_only])


# -- all or nothing: rollback (issue 10.6) ----------------------------------------------------------------------


def fail_at_second(event):
    """A checkpoint that fails the second activation just before its swap."""
    seen = []

    def checkpoint(name):
        seen.append(name)
        if name == event and seen.count(event) == 2:
            raise OSError(28, "No space left on device (injected)")
    return checkpoint


def tree_files(path):
    return sorted(os.path.relpath(os.path.join(base, name), path) for base, _dirs, files in os.walk(path) for name in files)


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "no-exchange"])
def test_failure_at_the_second_activation_rolls_back_the_first(tmp_path, monkeypatch, exchange):
    monkeypatch.setattr(_packdir, "USE_RENAME_EXCHANGE", exchange)
    packs_dir = str(tmp_path / "packs")
    options = _install.Options(packs_dir, durable=False)
    first_v1, _a, _c = archive_target(tmp_path, "first", "1.0.0", options)
    _install.apply([_install.plan_target(packs_dir, first_v1)], options)
    before = tree_files(os.path.join(packs_dir, "first")), _packdir.read_metadata(packs_dir, "first")
    first_v2, _a, _c = archive_target(tmp_path, "first", "2.0.0", options)
    second, _a, _c = archive_target(tmp_path, "second", "1.0.0", options)  # new: not installed before
    third, _a, _c = archive_target(tmp_path, "third", "1.0.0", options)
    steps = [_install.plan_target(packs_dir, t) for t in (first_v2, second, third)]
    assert [step.action for step in steps] == ["upgrade", "install", "install"]
    with pytest.raises(OSError, match="injected"):
        _install.apply(steps, options, checkpoint=fail_at_second("before-swap"))
    assert installed_version(packs_dir, "first") == "1.0.0"  # rolled back
    assert (tree_files(os.path.join(packs_dir, "first")), _packdir.read_metadata(packs_dir, "first")) == before
    assert sorted(os.listdir(packs_dir)) == [".attune", "first"]  # second and third never appeared, no staging left
    assert os.listdir(os.path.join(packs_dir, ".attune")) == ["first.json"]  # and no provenance of theirs


def test_a_new_pack_activated_before_the_failure_is_removed_again(tmp_path):
    packs_dir = str(tmp_path / "packs")
    options = _install.Options(packs_dir, durable=False)
    targets = [archive_target(tmp_path, ref, "1.0.0", options)[0] for ref in ("one", "two")]
    steps = [_install.plan_target(packs_dir, t) for t in targets]
    with pytest.raises(OSError, match="injected"):
        _install.apply(steps, options, checkpoint=fail_at_second("swapped"))
    assert [name for name in os.listdir(packs_dir) if name != ".attune"] == []  # one rolled back, and two, which failed after its swap
    assert os.listdir(os.path.join(packs_dir, ".attune")) == []  # their provenance records are gone too


# -- a local directory is verified on the copy that is installed (issue 8.7) -----------------------------------


def test_a_directory_replaced_during_the_copy_is_refused(tmp_path):
    src = make_pack_tree(str(tmp_path / "src"), "cm", "1.0.0", files={"zz-last.py": "print('good')\n"})
    checksum = "sha256:" + framed_dir_checksum(src)
    packs_dir = str(tmp_path / "packs")
    options = _install.Options(packs_dir, durable=False)
    target = _install.src_target("cm", src, None, checksum, options)
    swapped = []

    def checkpoint(name):
        if name == "copied-file" and not swapped:  # after the first file: replace one that is not copied yet
            replacement = os.path.join(src, "zz-last.py.new")
            with open(replacement, "w") as handle:
                handle.write("print('evil')\n")
            os.rename(replacement, os.path.join(src, "zz-last.py"))
            swapped.append(True)

    with pytest.raises(ChecksumMismatch, match="pack cm"):
        _install.apply([_install.plan_target(packs_dir, target)], options, checkpoint=checkpoint)
    assert swapped and installed_version(packs_dir, "cm") is None


def test_a_directory_is_installed_from_its_verified_copy(tmp_path):
    src = make_pack_tree(str(tmp_path / "src"), "cm", "1.0.0")
    checksum = "sha256:" + framed_dir_checksum(src)
    packs_dir = str(tmp_path / "packs")
    options = _install.Options(packs_dir, durable=False)
    step = _install.plan_target(packs_dir, _install.src_target("cm", src, None, checksum, options))
    _install.apply([step], options)
    assert step.result["metadata"]["checksum"] == checksum
    assert _packdir.verify_installed(packs_dir, "cm")["ok"] is True
    assert os.listdir(src)  # the source is left as it was
    assert tree_files(src) == [name for name in tree_files(os.path.join(packs_dir, "cm")) if not name.startswith(".attune")]


def test_a_directory_that_contains_packs_dir_is_refused(tmp_path):
    src = make_pack_tree(str(tmp_path / "src"), "cm", "1.0.0")
    packs_dir = os.path.join(src, "packs")
    options = _install.Options(packs_dir, durable=False)
    step = _install.plan_target(packs_dir, _install.src_target("cm", src, options=options))
    with pytest.raises(AttuneError, match="pack cm: .*it contains the destination"):
        _install.apply([step], options)


# -- run() and the controller hand-off ---------------------------------------------------------------------------


def params(**given):
    from ansible_collections.attune.packs.plugins.module_utils._pack._pack_spec import pack_argument_spec

    result = dict((name, option.get("default")) for name, option in pack_argument_spec().items())
    result.update(given)
    return result


def no_registry(required):
    from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings

    assert not required, "this task must not need registries"
    return load_settings({}, environ={}, require_registries=False)


@pytest.mark.parametrize("given, message", [
    (dict(name="x", state="absent", src="/tmp/x"), "state=absent takes name only"),
    (dict(name="x", state="absent", remove_unlisted=True), "remove_unlisted goes with state=present or latest"),
    (dict(name="x", state="latest", lock_file="/tmp/lock"), "state=latest does not go with lock_file"),
    (dict(name=["x", "y"], src="/tmp/x"), "src needs exactly one name"),
    (dict(source={"ref": "x"}), "source must be a resolution"),
])
def test_option_combinations_are_refused_with_a_kind(given, message):
    with pytest.raises(InvalidArguments, match=message) as info:
        _install.check_params(params(**given))
    assert info.value.to_dict()["kind"] == "invalid_arguments"


def test_run_installs_a_local_archive_then_converges(tmp_path):
    archive, checksum = make_pack_archive(str(tmp_path / "src"), "cm", "1.0.0")
    task = params(name="cm", src=archive, checksum=checksum, packs_dir=str(tmp_path / "packs"))
    first = _install.run(task, no_registry).result()
    assert first["changed"] is True and first["pack"]["version"] == "1.0.0" and first["msg"] == "cm: install 1.0.0", first
    again = _install.run(task, no_registry, check_mode=True).result(check_mode=True, diff=True)
    assert again["changed"] is False and "diff" not in again and again["msg"].startswith("cm: ok (already installed"), again
    duplicate = {"ref": "cm", "version": "1.0.0", "source": {"type": "archive", "path": archive, "checksum": checksum}}
    with pytest.raises(InvalidArguments, match="pack cm is requested twice"):
        _install.run(dict(task, name=None, src=None, checksum=None, source=[duplicate, duplicate]), no_registry)


def test_controller_resolutions_are_planned_as_the_hosts_own(tmp_path):
    """_resolved: present keeps a satisfying version (no download), latest goes to the controller's resolution."""
    packs_dir, target = install_archive(tmp_path, "cm", "1.0.0")
    newer, _archive, checksum = archive_target(tmp_path, "cm", "1.1.0", _install.Options(packs_dir))
    resolution = {"ref": "cm", "spec": "cm@^1", "version": "1.1.0", "source": dict(newer.primary, checksum=checksum)}
    task = params(name="cm@^1", _resolved=[resolution], packs_dir=packs_dir)
    assert _install.run(task, no_registry).result()["packs"][0]["action"] == "none"
    latest = _install.run(dict(task, state="latest"), no_registry).result()
    assert (latest["packs"][0]["action"], latest["pack"]["version"]) == ("upgrade", "1.1.0"), latest


def test_controller_handoff_uses_private_arguments():
    registry = {"registries": [{"url": "https://r.example/index.json", "headers": {"Authorization": "Bearer x"}}], "cache_dir": "/c"}
    task = dict(registry, name=["a@^1", "b"], resolve_on="controller", fetch_on="controller", ca_path="/ca.pem")
    asked = []
    handoff = _install.controller_handoff(params(**task), task, lambda specs: asked.extend(specs) or [{"ref": "a"}, {"ref": "b"}])
    assert asked == ["a@^1", "b"]
    assert handoff == {"name": ["a@^1", "b"], "fetch_on": "controller", "ca_path": "/ca.pem", "_resolved": [{"ref": "a"}, {"ref": "b"}]}
    with pytest.raises(InvalidArguments, match="name must name at least one pack spec"):
        _install.controller_handoff(params(resolve_on="controller", source=None), {"resolve_on": "controller"}, None)


class CountingBackend(_install.PacksDirBackend):
    """The real packs-directory backend, counting how often the plan asks for a pack's installed state."""

    def __init__(self, packs_dir):
        super(CountingBackend, self).__init__(packs_dir)
        self.asked = []

    def installed(self, ref):
        self.asked.append(ref)
        return super(CountingBackend, self).installed(ref)


def test_fetch_callback_plans_once_and_installs_the_fetched_copy(tmp_path):
    """issue 17: on the controller the fetch step is a callback inside one run (planned once), not a second run."""
    archive, checksum = make_pack_archive(str(tmp_path / "src"), "cm", "1.0.0")
    url = "https://files.invalid/cm-1.0.0.tar.gz"  # never contacted: the callback supplies the archive
    resolution = {"ref": "cm", "version": "1.0.0", "source": {"type": "archive", "url": url, "checksum": checksum}}
    task = params(source=[resolution], fetch_on="controller", packs_dir=str(tmp_path / "packs"))

    # without a callback (the module on a host): nothing applied, the requests go to the action plugin
    host = _install.run(task, no_registry, backend=CountingBackend(str(tmp_path / "packs")))
    assert [r["ref"] for r in host.fetch_requests] == ["cm"] and not os.path.exists(str(tmp_path / "packs" / "cm"))

    fetched = []
    backend = CountingBackend(str(tmp_path / "packs"))
    outcome = _install.run(task, no_registry, backend=backend, fetch=lambda wanted: fetched.append(wanted) or {"cm": archive})
    result = outcome.result()
    assert [[r["source"]["url"] for r in wanted] for wanted in fetched] == [[url]]
    assert backend.asked == ["cm"], backend.asked  # one plan
    assert result["changed"] is True and result["pack"]["version"] == "1.0.0" and not outcome.fetch_requests, result
    assert installed_version(str(tmp_path / "packs"), "cm") == "1.0.0"

    # the fetched copy is verified again: a callback handing over other bytes installs nothing
    other, _sum = make_pack_archive(str(tmp_path / "other"), "cm", "1.0.1")
    task2 = params(source=[dict(resolution, version="1.0.1")], fetch_on="controller", packs_dir=str(tmp_path / "packs"))
    with pytest.raises(ChecksumMismatch):
        _install.run(task2, no_registry, fetch=lambda wanted: {"cm": other})
    assert installed_version(str(tmp_path / "packs"), "cm") == "1.0.0"
