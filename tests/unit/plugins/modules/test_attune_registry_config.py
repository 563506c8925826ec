"""attune_registry_config run in-process: permissions before the rename, failures, check mode, symlinks, no_log."""
import errno
import json
import os
import stat

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args

from ansible_collections.attune.packs.plugins.modules import attune_registry_config as module_under_test

TOKEN = "Bearer unit-module-TOKEN-41d9"
EXISTING = "# keep me\ndatabase:\n  url: postgres://db/attune\npack_registry:\n  enabled: true\n"


def section(token=TOKEN):
    return {"indices": [{"name": "corp", "url": "https://packs.example.com/index.json", "priority": 1,
                         "headers": {"Authorization": token}}]}


def run(capsys, check_mode=False, diff=False, **args):
    args.setdefault("pack_registry", section())
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    with patch_module_args(args):
        with pytest.raises(SystemExit) as info:
            module_under_test.main()
    out = capsys.readouterr().out
    assert TOKEN.split()[-1] not in out, "token in module output"
    return info.value.code, json.loads(out)


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(str(path), mode)
    return path.read_bytes()


@pytest.fixture
def renames(monkeypatch):
    """Record the mode and content of every file renamed into place (the module and atomic_move use os.rename)."""
    seen = []
    real_rename = os.rename

    def recording_rename(src, dst):
        with open(src, "rb") as handle:
            seen.append((os.fsdecode(dst), stat.S_IMODE(os.stat(src).st_mode), handle.read()))
        return real_rename(src, dst)

    monkeypatch.setattr(os, "rename", recording_rename)
    return seen


@pytest.fixture
def open_umask():
    """umask 0: a file created with default permissions would be world-readable."""
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.mark.parametrize("existing", [False, True], ids=["create", "replace"])
def test_mode_is_applied_before_the_rename(tmp_path, capsys, renames, open_umask, existing):
    path = tmp_path / "etc" / "attune" / "config.yaml"
    if existing:
        write(path, EXISTING, mode=0o644)
    code, result = run(capsys, path=str(path), mode="0640", backup=True)
    assert code == 0 and result["changed"], result
    assert [(dst, mode) for dst, mode, _content in renames] == [(str(path), 0o640)]
    assert TOKEN.encode() in renames[0][2]
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    if existing:
        backup = result["backup_file"]
        assert stat.S_IMODE(os.stat(backup).st_mode) == 0o640 and open(backup).read() == EXISTING
    else:
        assert "backup_file" not in result
        assert stat.S_IMODE((tmp_path / "etc" / "attune").stat().st_mode) == 0o755


def test_failed_rename_leaves_the_file_and_nothing_else(tmp_path, capsys, monkeypatch):
    path = tmp_path / "config.yaml"
    before = write(path, EXISTING)

    def failing_rename(src, dst):
        raise OSError(errno.EIO, "simulated I/O error")

    monkeypatch.setattr(os, "rename", failing_rename)
    code, result = run(capsys, path=str(path), mode="0600", backup=True)
    assert code == 1 and result["failed"]
    assert "cannot write %s" % path in result["msg"]
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(str(tmp_path))) == ["config.yaml"]  # no temporary file, no backup left behind
    assert "backup_file" not in result
    # the failed result still says what the run would have changed (the file is as it was)
    assert result["changed"] is True and result["content_changed"] is True and result["path"] == str(path)
    assert result["pack_registry"]["indices"][0]["headers"] == {"Authorization": "<redacted>"} and "diff" not in result


def test_failures_before_writing_keep_their_result_fields(tmp_path, capsys):
    # as before the file logic moved into _config_file.update_file: changed=false with the path where the section or
    # the file's YAML is refused, the path alone where the file cannot be used or an owner does not exist
    path = tmp_path / "config.yaml"
    write(path, "- a list\n")
    code, result = run(capsys, path=str(path))
    assert code == 1 and result["changed"] is False and result["error"]["kind"] == "invalid_config"
    assert "must contain a mapping at the top level" in result["msg"]
    write(path, EXISTING)
    code, result = run(capsys, path=str(path), owner="no-such-user-s22")
    assert code == 1 and "changed" not in result and result["path"] == str(path)
    assert result["msg"] == "owner 'no-such-user-s22' does not exist on this host"
    path.unlink()
    path.mkdir()
    code, result = run(capsys, path=str(path))
    assert code == 1 and "changed" not in result and result["msg"] == "%s exists and is not a regular file" % path


def test_check_mode_changes_nothing_and_diff_is_redacted(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    before = write(path, EXISTING)
    code, result = run(capsys, check_mode=True, diff=True, path=str(path), mode="0640", backup=True)
    assert code == 0 and result["changed"] and result["content_changed"]
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert not os.path.exists(result["backup_file"])
    assert sorted(os.listdir(str(tmp_path))) == ["config.yaml"]
    content, attrs = result["diff"]
    assert content["before"] == "pack_registry:\n  enabled: true\n"
    # a header the old section did not have is marked as changed; the value is never shown
    assert "Authorization: <redacted, changed>" in content["after"] and "cache_ttl: 3600" in content["after"]
    assert attrs == {"before": {"mode": "0644"}, "after": {"mode": "0640"}}
    assert result["pack_registry"]["indices"][0]["headers"] == {"Authorization": "<redacted>"}
    # no directory is created in check mode either
    code, result = run(capsys, check_mode=True, path=str(tmp_path / "new" / "config.yaml"))
    assert code == 0 and result["changed"] and result["created"]
    assert not (tmp_path / "new").exists()


def test_second_run_is_unchanged_and_keeps_other_sections(tmp_path, capsys):
    path = tmp_path / "config.yaml"
    write(path, EXISTING)
    assert run(capsys, path=str(path), mode="0640")[1]["changed"]
    written = path.read_bytes()
    assert written.startswith(b"# keep me\ndatabase:\n  url: postgres://db/attune\n")
    assert yaml.safe_load(written)["database"] == {"url": "postgres://db/attune"}
    code, result = run(capsys, path=str(path), mode="0640")
    assert code == 0 and not result["changed"] and "up to date" in result["msg"]
    assert path.read_bytes() == written


def test_without_mode_a_new_file_is_private_and_an_existing_one_keeps_its_mode(tmp_path, capsys, open_umask):
    new = tmp_path / "new.yaml"
    assert run(capsys, path=str(new))[1]["changed"]
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    old = tmp_path / "old.yaml"
    write(old, EXISTING, mode=0o640)
    assert run(capsys, path=str(old))[1]["changed"]
    assert stat.S_IMODE(old.stat().st_mode) == 0o640


def test_symbolic_mode_and_symlinked_path(tmp_path, capsys):
    target = tmp_path / "real" / "config.yaml"
    write(target, EXISTING, mode=0o600)
    link = tmp_path / "config.yaml"
    link.symlink_to(target)
    code, result = run(capsys, path=str(link), mode="u=rw,g=r,o=")
    assert code == 0 and result["path"] == str(target)
    assert link.is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o640
    assert TOKEN.encode() in target.read_bytes()


def test_missing_directory_without_create_dirs(tmp_path, capsys):
    code, result = run(capsys, path=str(tmp_path / "absent" / "config.yaml"), create_dirs=False)
    assert code == 1 and "does not exist (set create_dirs=true" in result["msg"]
    assert not (tmp_path / "absent").exists()


def test_errors_name_the_key_or_the_variable(tmp_path, capsys):
    bad = {"indices": [{"name": "corp", "url": "http://packs.example.com/index.json", "headers": {"Authorization": TOKEN}}]}
    code, result = run(capsys, path=str(tmp_path / "c.yaml"), pack_registry=bad)
    assert code == 1 and result["msg"].startswith("invalid pack_registry configuration: pack_registry.indices[0] (corp).url:")
    assert result["error"]["kind"] == "invalid_config"
    code, result = run(capsys, path=str(tmp_path / "c.yaml"), pack_registry=bad, variable_prefix="registry_config_")
    assert result["msg"].startswith("invalid pack_registry configuration: registry_config_indices[0] (corp).url:")
    assert not (tmp_path / "c.yaml").exists()


def test_header_values_are_masked_in_the_invocation(tmp_path, capsys):
    code, result = run(capsys, path=str(tmp_path / "c.yaml"))
    assert code == 0
    headers = result["invocation"]["module_args"]["pack_registry"]["indices"][0]["headers"]
    assert headers == {"Authorization": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}


def test_argument_spec_defaults_are_the_shared_models():
    from ansible_collections.attune.packs.plugins.module_utils._registry._config import SECTION_KEYS

    spec = module_under_test.section_argument_spec()
    assert set(spec) == set(SECTION_KEYS)
    for key, (_kind, default) in SECTION_KEYS.items():
        assert spec[key]["default"] == default, key
    assert spec["indices"]["options"]["headers"]["no_log"] is True
