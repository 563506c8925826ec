"""Unit tests of plugins/module_utils/_registry/_config_file.py (splicing the pack_registry block into a config file)."""
import errno
import io
import json
import os
import stat

import pytest
import yaml
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.attune.packs.plugins.module_utils._registry._config import SECTION_KEYS, validate_section
from ansible_collections.attune.packs.plugins.module_utils._registry._config_file import (
    MANAGED_COMMENT, REDACTED, REDACTED_CHANGED, UpdateFailed, block_spans, diff_text, file_form, plan_update, redact_section,
    render_block, splice, update_file,
)
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError

TOKEN = "Bearer unit-TOKEN-5b1f0c"

EXISTING = """\
# Attune configuration (hand-written)
database:
  url: postgres://attune@db/attune   # primary
  pool_size: 5

# registries: managed elsewhere
pack_registry:
  # an old comment inside the block
  enabled: true
  indices:
    - url: https://old.example.com/index.json
# about security
security:
  jwt_secret: "keep-me"
  # trailing comment inside security
packs_base_dir: /opt/attune/packs
"""


def desired(**overrides):
    section = {"indices": [{"name": "corp", "url": "https://packs.example.com/index.json", "priority": 1,
                            "headers": {"Authorization": TOKEN}}]}
    section.update(overrides)
    return file_form(validate_section(section))


def test_file_form_is_explicit_and_ordered():
    form = desired()
    assert list(form) == list(SECTION_KEYS)
    entry = form["indices"][0]
    assert list(entry) == ["url", "name", "priority", "enabled", "headers"]  # no null name/ca_path written
    assert entry["enabled"] is True and entry["headers"] == {"Authorization": TOKEN}
    unnamed = file_form(validate_section({"indices": [{"url": "file:///srv/index.json"}]}))["indices"][0]
    assert unnamed == {"url": "file:///srv/index.json", "priority": 100, "enabled": True, "headers": {}}
    # what is written validates to the same normalised section (Attune and the modules read the same)
    assert file_form(validate_section(form)) == form


def test_render_block_round_trips():
    block = render_block(desired())
    assert block.startswith("pack_registry:\n  " + MANAGED_COMMENT + "\n")
    assert yaml.safe_load(block) == {"pack_registry": desired()}
    assert "\n    - url: https://packs.example.com/index.json\n" in block  # lists indented under their key


def test_new_file():
    plan = plan_update(None, desired())
    assert plan.changed and plan.created and plan.before is None
    assert yaml.safe_load(plan.text) == {"pack_registry": desired()}


def test_splice_keeps_everything_outside_the_block():
    plan = plan_update(EXISTING, desired())
    assert plan.changed and plan.comments_preserved and not plan.created
    assert plan.before == {"enabled": True, "indices": [{"url": "https://old.example.com/index.json"}]}
    new = yaml.safe_load(plan.text)
    old = yaml.safe_load(EXISTING)
    assert new["pack_registry"] == desired()
    assert {k: v for k, v in new.items() if k != "pack_registry"} == {k: v for k, v in old.items() if k != "pack_registry"}
    # text before and after the block is byte-identical; the comment inside the block is gone
    head = EXISTING.split("pack_registry:", maxsplit=1)[0]
    tail = EXISTING[EXISTING.index("# about security"):]
    assert plan.text.startswith(head) and plan.text.endswith(tail)
    assert "an old comment inside the block" not in plan.text
    assert list(new) == ["database", "pack_registry", "security", "packs_base_dir"]  # position kept


def test_unchanged_section_is_not_rewritten_even_if_formatted_differently():
    text = "database: {url: x}\npack_registry:   # mine\n" + "\n".join(
        "  " + line for line in yaml.safe_dump(desired(), default_flow_style=True).splitlines()) + "\n"
    plan = plan_update(text, desired())
    assert not plan.changed and plan.text == text


def test_second_plan_is_idempotent():
    first = plan_update(EXISTING, desired())
    second = plan_update(first.text, desired())
    assert not second.changed and second.text == first.text


def test_section_written_with_implicit_defaults_is_made_explicit_once():
    text = "pack_registry:\n  indices: []\n"
    plan = plan_update(text, file_form(validate_section({})))
    assert plan.changed
    assert yaml.safe_load(plan.text)["pack_registry"]["cache_ttl"] == 3600


def test_append_when_absent():
    text = "database:\n  url: x\n# last comment"
    plan = plan_update(text, desired())
    assert plan.text.startswith("database:\n  url: x\n# last comment\n\npack_registry:\n")
    assert yaml.safe_load(plan.text) == {"database": {"url": "x"}, "pack_registry": desired()}
    assert plan_update("", desired()).text == render_block(desired())
    assert plan_update("# only a comment\n", desired()).text.startswith("# only a comment\n\npack_registry:")


def test_block_at_end_without_newline_and_quoted_key():
    text = "a: 1\n'pack_registry':\n  enabled: false"
    plan = plan_update(text, desired())
    assert plan.comments_preserved
    assert plan.text.startswith("a: 1\npack_registry:\n")
    assert yaml.safe_load(plan.text) == {"a": 1, "pack_registry": desired()}


def test_column_zero_comment_inside_block_does_not_end_it():
    text = "pack_registry:\n  enabled: true\n# note at column 0\n  cache_ttl: 5\nother: 1\n"
    assert block_spans(text) == [(0, len("".join(text.splitlines(True)[:4])))]
    plan = plan_update(text, desired())
    assert yaml.safe_load(plan.text) == {"pack_registry": desired(), "other": 1}
    assert plan.comments_preserved


def test_comments_and_blank_lines_before_next_key_stay_outside():
    text = "pack_registry:\n  enabled: true\n\n# next section\nsecurity: {}\n"
    assert block_spans(text) == [(0, len("pack_registry:\n  enabled: true\n"))]


def test_duplicate_top_level_blocks_are_merged_into_one():
    text = "pack_registry:\n  enabled: true\nx: 1\npack_registry:\n  enabled: false\ny: 2\n"
    plan = plan_update(text, desired())
    assert plan.text.count("pack_registry:") == 1
    assert yaml.safe_load(plan.text) == {"pack_registry": desired(), "x": 1, "y": 2}


def test_nested_pack_registry_keys_are_not_touched():
    text = "other:\n  pack_registry:\n    keep: true\n"
    plan = plan_update(text, desired())
    assert yaml.safe_load(plan.text) == {"other": {"pack_registry": {"keep": True}}, "pack_registry": desired()}


def test_crlf_files_stay_crlf():
    text = "database:\r\n  url: x\r\npack_registry:\r\n  enabled: true\r\nz: 1\r\n"
    plan = plan_update(text, desired())
    assert "\n" not in plan.text.replace("\r\n", "")
    assert yaml.safe_load(plan.text) == {"database": {"url": "x"}, "pack_registry": desired(), "z": 1}


def test_fallback_to_full_dump_when_splicing_would_change_another_section():
    # an anchor defined in the block and used elsewhere: replacing the block would break 'mirror'
    text = "# comment\npack_registry: &reg\n  enabled: true\nmirror: *reg\n"
    plan = plan_update(text, desired())
    assert plan.changed and not plan.comments_preserved
    new = yaml.safe_load(plan.text)
    assert new["mirror"] == {"enabled": True} and new["pack_registry"] == desired()
    # a flow-style top-level mapping cannot be spliced either
    flow = "{database: {url: x}, pack_registry: {enabled: true}}\n"
    plan = plan_update(flow, desired())
    assert not plan.comments_preserved
    assert yaml.safe_load(plan.text) == {"database": {"url": "x"}, "pack_registry": desired()}


@pytest.mark.parametrize("text, cause", [
    ("database: [unclosed\n", "not valid YAML"),
    ("- a\n- b\n", "must contain a mapping"),
    ("a: 1\n---\nb: 2\n", "not valid YAML"),
])
def test_unusable_file_is_refused(text, cause):
    with pytest.raises(ConfigError) as info:
        plan_update(text, desired(), path="/etc/attune/config.yaml")
    assert cause in str(info.value) and "/etc/attune/config.yaml" in str(info.value)


def test_splice_without_block_on_empty_text():
    assert splice("", "pack_registry: {}\n") == "pack_registry: {}\n"


def test_redaction():
    after = desired()
    view = redact_section(after)
    assert view["indices"][0]["headers"] == {"Authorization": REDACTED}
    assert TOKEN not in diff_text(view)
    assert after["indices"][0]["headers"]["Authorization"] == TOKEN  # the original is not modified
    # a token rotation is visible without showing either token
    before = desired()
    before["indices"][0]["headers"]["Authorization"] = "Bearer old"
    rotated = redact_section(after, previous=before)
    assert rotated["indices"][0]["headers"] == {"Authorization": REDACTED_CHANGED}
    same = redact_section(after, previous=desired())
    assert same["indices"][0]["headers"] == {"Authorization": REDACTED}


def test_redaction_of_a_hand_written_section():
    old = {"indices": [{"url": "https://user:pw@old.example.com/i.json?token=abc", "headers": "Bearer raw",
                        "token": "x"}, "junk"], "password": "p", "cache_ttl": 5}
    view = redact_section(old)
    text = diff_text(view)
    for secret in ("pw", "token=abc", "Bearer raw", "junk"):
        assert secret not in text
    assert view["password"] == REDACTED and view["cache_ttl"] == 5
    assert view["indices"][0]["url"] == "https://***@old.example.com/i.json?***"
    assert redact_section(None) is None and diff_text(None) == ""
    assert redact_section("a string") == "<not a mapping: str>"


# -- issue 8 item 4: the old block is replaced, never duplicated --------------------------------------------------------
OLD_TOKEN = "Bearer OLD-token-93a1"
KEYS = {
    "plain": "pack_registry:",
    "double_quoted": '"pack_registry":',
    "single_quoted": "'pack_registry' :",
    "escaped": '"pack\\x5Fregistry":',
    "explicit": "? pack_registry\n:",
    "explicit_quoted": '? "pack_registry"\n:',
    "tagged": "!!str pack_registry:",
}


def _top_level_keys(text):
    return [key.value for key, _unused in yaml.compose(text).value]


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("key", sorted(KEYS))
def test_old_block_is_replaced_whatever_its_key_form_line_endings_or_bom(key, bom, newline):
    text = (
        "# Attune configuration (hand-written)\n"
        "database:\n  url: postgres://attune@db/attune   # primary\n\n"
        "# registries\n"
        + KEYS[key] + "\n  indices:\n    - url: https://old.example.com/index.json\n"
        "      headers: {Authorization: '" + OLD_TOKEN + "'}\n"
        "# about security\nsecurity:\n  jwt_secret: keep-me\n"
    ).replace("\n", newline)
    if bom:
        text = "\ufeff" + text
    plan = plan_update(text, desired())
    new = plan.text
    assert plan.changed and plan.comments_preserved
    assert _top_level_keys(new) == ["database", "pack_registry", "security"]  # exactly one pack_registry, in place
    assert OLD_TOKEN.split()[-1] not in new and "old.example.com" not in new
    assert yaml.safe_load(new) == {"database": {"url": "postgres://attune@db/attune"}, "pack_registry": desired(),
                                   "security": {"jwt_secret": "keep-me"}}
    for comment in ("# Attune configuration (hand-written)", "# primary", "# registries", "# about security"):
        assert comment in new
    assert new.startswith("\ufeff") == bom and new.count("\ufeff") == (1 if bom else 0)
    if newline == "\r\n":
        assert "\n" not in new.replace("\r\n", "")
    else:
        assert "\r" not in new
    again = plan_update(new, desired())
    assert not again.changed and again.text == new


@pytest.mark.parametrize("bom", [False, True])
def test_full_dump_fallback_keeps_line_endings_and_bom(bom):
    text = ("\ufeff" if bom else "") + "# c\r\npack_registry: &reg\r\n  enabled: true\r\nmirror: *reg\r\n"
    plan = plan_update(text, desired())
    assert not plan.comments_preserved
    assert "\n" not in plan.text.replace("\r\n", "") and plan.text.startswith("\ufeff") == bom
    assert _top_level_keys(plan.text.lstrip("\ufeff")) == ["pack_registry", "mirror"]


# -- issue 8 item 5: an error about a malformed config quotes no file content -------------------------------------------
@pytest.mark.parametrize("text", [
    'pack_registry:\n  indices:\n    - url: https://a.example/i.json\n      headers: {Authorization: "Bearer SECRET-abc\n',
    "pack_registry:\n  indices:\n    - url: https://a.example/i.json\n      headers: {Authorization: Bearer SECRET-abc}}\n",
    "pack_registry:\n  headers:\n    Authorization: Bearer SECRET-abc\n   bad: *SECRET-alias\n",
    "pack_registry: !SECRET-tag {Authorization: Bearer SECRET-abc}\n",
    "pack_registry:\n\tAuthorization: Bearer SECRET-abc\n",
])
def test_yaml_errors_give_line_and_column_only(text):
    with pytest.raises(ConfigError) as info:
        plan_update(text, desired(), path="/etc/attune/config.yaml")
    message = str(info.value)
    assert "SECRET" not in message and "Bearer" not in message and "Authorization" not in message, message
    assert "/etc/attune/config.yaml" in message and "line " in message and "column " in message


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_block_on_the_first_line_after_a_bom(newline):
    text = ("\ufeffpack_registry:\n  indices:\n    - url: https://old.example.com/index.json\nz: 1\n").replace("\n", newline)
    plan = plan_update(text, desired())
    assert plan.text.startswith("\ufeffpack_registry:" + newline) and plan.comments_preserved
    assert _top_level_keys(plan.text) == ["pack_registry", "z"] and "old.example.com" not in plan.text


def test_a_duplicate_whose_last_copy_is_already_right_is_still_removed():
    current = render_block(desired())
    text = "pack_registry:\n  indices:\n    - url: https://old.example.com/index.json\n      headers: {Authorization: '%s'}\n%s" % (
        OLD_TOKEN, current)
    plan = plan_update(text, desired())
    assert plan.changed and _top_level_keys(plan.text) == ["pack_registry"] and "OLD-token" not in plan.text


# -- update_file: the whole run of attune_registry_config, on real files ------------------------------------------------
SECTION = {"indices": [{"name": "corp", "url": "https://packs.example.com/index.json", "priority": 1,
                        "headers": {"Authorization": TOKEN}}]}
FILE = "# keep me\ndatabase:\n  url: postgres://db/attune\npack_registry:\n  enabled: true\n"


def ansible_module(check_mode=False, diff=False, **file_args):
    """A real AnsibleModule with the file arguments (mode, owner, ...) given, as attune_registry_config runs it."""
    args = dict(file_args)
    if check_mode:
        args["_ansible_check_mode"] = True
    if diff:
        args["_ansible_diff"] = True
    # ansible.module_utils.testing exists since ansible-core 2.19: these tests are skipped on 2.17 (.ci/matrix)
    patch_module_args = pytest.importorskip("ansible.module_utils.testing").patch_module_args
    with patch_module_args(args):
        return AnsibleModule(argument_spec={}, supports_check_mode=True, add_file_common_args=True)


def existing(path, text=FILE, mode=0o644):
    path.write_text(text)
    os.chmod(str(path), mode)
    return path.read_bytes()


class FullDisk(io.FileIO):
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")


def no_secret_in(result):
    shown = json.dumps(result)
    assert TOKEN.split()[-1] not in shown and OLD_TOKEN.split()[-1] not in shown, shown


def test_update_file_creates_a_private_file_with_its_directory(tmp_path):
    path = tmp_path / "etc" / "attune" / "config.yaml"
    result = update_file(ansible_module(), str(path), SECTION)
    no_secret_in(result)
    assert result["changed"] and result["created"] and result["content_changed"] and result["comments_preserved"]
    assert result["msg"] == "pack_registry written to %s (1 registry)" % path
    assert yaml.safe_load(path.read_text()) == {"pack_registry": desired()}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o755
    assert result["pack_registry"]["indices"][0]["headers"] == {"Authorization": REDACTED}
    assert "diff" not in result and "backup_file" not in result


def test_update_file_in_check_mode_writes_nothing(tmp_path):
    path = tmp_path / "config.yaml"
    before = existing(path)
    result = update_file(ansible_module(check_mode=True, diff=True, mode="0640"), str(path), SECTION, backup=True)
    no_secret_in(result)
    assert result["changed"] and result["content_changed"]
    assert result["msg"] == "pack_registry would be written to %s (1 registry)" % path
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(str(tmp_path))) == ["config.yaml"] and not os.path.exists(result["backup_file"])
    assert result["diff"][1] == {"before": {"mode": "0644"}, "after": {"mode": "0640"}}
    # a new file: neither the file nor its directory is created
    result = update_file(ansible_module(check_mode=True), str(tmp_path / "new" / "config.yaml"), SECTION)
    assert result["changed"] and result["created"] and not (tmp_path / "new").exists()


def test_update_file_with_unchanged_content_writes_nothing(tmp_path):
    path = tmp_path / "config.yaml"
    existing(path, mode=0o600)
    assert update_file(ansible_module(), str(path), SECTION)["changed"]
    written = path.read_bytes()
    os.utime(str(path), ns=(1000000000, 1000000000))
    inode = path.stat().st_ino
    result = update_file(ansible_module(diff=True), str(path), SECTION)
    assert not result["changed"] and not result["content_changed"]
    assert result["msg"] == "pack_registry in %s is up to date (1 registry)" % path
    assert path.read_bytes() == written and path.stat().st_mtime_ns == 1000000000 and path.stat().st_ino == inode
    assert len(result["diff"]) == 1 and result["diff"][0]["before"] == result["diff"][0]["after"]  # the section only
    assert sorted(os.listdir(str(tmp_path))) == ["config.yaml"]
    # only the mode differs: corrected in place, the content is not rewritten
    result = update_file(ansible_module(diff=True, mode="0640"), str(path), SECTION)
    assert result["changed"] and not result["content_changed"] and result["msg"].endswith("; owner, group or mode changed")
    assert path.read_bytes() == written and path.stat().st_mtime_ns == 1000000000 and path.stat().st_ino == inode
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("step", ["write", "fsync", "rename"])
def test_update_file_failing_mid_write_leaves_the_old_file(tmp_path, monkeypatch, step):
    path = tmp_path / "config.yaml"
    before = existing(path)
    module = ansible_module(mode="0600")

    def failing(*_args, **_kwargs):
        raise OSError(errno.EIO, "simulated I/O error")

    if step == "write":  # the disk fills up while the temporary file is written
        monkeypatch.setattr(os, "fdopen", lambda fd, *_args, **_kwargs: FullDisk(fd, "wb"))
    else:
        monkeypatch.setattr(os, step, failing)
    with pytest.raises(UpdateFailed) as info:
        update_file(module, str(path), SECTION, backup=True)
    failure = info.value
    no_secret_in(failure.result)
    assert TOKEN.split()[-1] not in failure.msg and failure.msg.startswith("cannot write %s: " % path)
    if step == "write":
        assert failure.msg.endswith("No space left on device")
    assert failure.result["changed"] is True and failure.result["content_changed"] is True
    assert "backup_file" not in failure.result and "msg" not in failure.result
    assert path.read_bytes() == before and stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(os.listdir(str(tmp_path))) == ["config.yaml"]  # no temporary file, no backup left behind


def test_update_file_diff_never_shows_header_values(tmp_path):
    path = tmp_path / "config.yaml"
    existing(path, "pack_registry:\n  indices:\n    - name: corp\n      url: https://packs.example.com/index.json\n"
                   "      headers: {Authorization: '%s', X-Other: same}\n" % OLD_TOKEN, mode=0o600)
    section = {"indices": [dict(SECTION["indices"][0], headers={"Authorization": TOKEN, "X-Other": "same"})]}
    result = update_file(ansible_module(diff=True), str(path), section)
    no_secret_in(result)
    content = result["diff"][0]
    assert "Authorization: <redacted>" in content["before"] and "X-Other: <redacted>" in content["before"]
    assert "Authorization: <redacted, changed>" in content["after"] and "X-Other: <redacted>" in content["after"]
    assert TOKEN in path.read_text()


def test_update_file_tightens_a_file_readable_by_others(tmp_path):
    path = tmp_path / "config.yaml"
    existing(path, mode=0o644)
    result = update_file(ansible_module(), str(path), SECTION)
    assert result["mode_tightened"] and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert result["msg"].endswith("; mode tightened from 0644 to 0600 (the file holds header values)")
    # without header values the mode is kept
    existing(path, mode=0o644)
    result = update_file(ansible_module(), str(path), {"indices": [{"url": "https://packs.example.com/index.json"}]})
    assert not result["mode_tightened"] and stat.S_IMODE(path.stat().st_mode) == 0o644


def test_update_file_failures_carry_the_result_fields(tmp_path):
    path = tmp_path / "config.yaml"
    bad = {"indices": [{"name": "corp", "url": "http://packs.example.com/index.json", "headers": {"Authorization": TOKEN}}]}
    with pytest.raises(UpdateFailed) as info:
        update_file(ansible_module(), str(path), bad, variable_prefix="registry_config_")
    assert info.value.msg.startswith("invalid pack_registry configuration: registry_config_indices[0] (corp).url:")
    assert set(info.value.result) == {"error", "changed", "path"} and info.value.result["changed"] is False
    assert info.value.result["error"]["kind"] == "invalid_config"
    path.mkdir()
    with pytest.raises(UpdateFailed) as info:
        update_file(ansible_module(), str(path), SECTION)
    assert info.value.msg == "%s exists and is not a regular file" % path and info.value.result == {"path": str(path)}
    with pytest.raises(UpdateFailed) as info:
        update_file(ansible_module(), str(tmp_path / "absent" / "c.yaml"), SECTION, create_dirs=False)
    assert "does not exist (set create_dirs=true" in info.value.msg and info.value.result["changed"] is False
    assert not (tmp_path / "absent").exists()
