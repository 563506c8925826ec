"""The attune_pack_lock task's core (_lock_task.run_lock) over file:// registries, without Ansible."""
import os

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.attune.packs.plugins.module_utils._base._common import registry_argument_spec, resolve_argument_spec
from ansible_collections.attune.packs.plugins.module_utils._base._errors import PackNotFound
from ansible_collections.attune.packs.plugins.module_utils._pack import _lock_task
from testdata import make_entry, write_index


def lock_params(path, **args):
    spec = registry_argument_spec()
    spec.update(resolve_argument_spec())
    spec.update(path=dict(type="path", required=True), name=dict(type="raw", required=True), update=dict(type="raw"))
    result = ArgumentSpecValidator(spec).validate(dict(path=path, cache_enabled=False, **args))
    assert not result.error_messages, result.error_messages
    return result.validated_parameters


class Libraries(object):
    def __init__(self):
        self.calls = 0

    def __call__(self):
        self.calls += 1


@pytest.fixture
def registry(tmp_path):
    return [{"name": "public", "url": write_index(tmp_path, "public", [make_entry("slack", "2.1.0", "2"), make_entry("aws", "1.2.0", "3")])}]


def test_run_lock_resolves_writes_and_reports(tmp_path, registry):
    path = str(tmp_path / "packs.lock.yml")
    libraries = Libraries()
    check = _lock_task.run_lock(lock_params(path, name=["slack@^2", "aws"], registries=registry), check_mode=True, diff=True,
                                require_libraries=libraries)
    assert check["changed"] is True and check["msg"].startswith("check mode, not written: lock file %s: added aws 1.2.0, slack 2.1.0" % path)
    assert not os.path.exists(path) and check["diff"]["before"] == "" and check["diff"]["after_header"] == path
    assert libraries.calls == 1 and check["resolved"] == ["aws", "slack"]
    real = _lock_task.run_lock(lock_params(path, name=["slack@^2", "aws"], registries=registry))
    assert real["changed"] is True and "diff" not in real and real["added"] == ["aws", "slack"] and real["path"] == path
    with open(path) as handle:
        assert yaml.safe_load(handle)["packs"] == real["lock"] == check["lock"]


def test_run_lock_needs_no_registry_for_kept_entries_and_fails_cleanly(tmp_path, registry):
    path = str(tmp_path / "packs.lock.yml")
    _lock_task.run_lock(lock_params(path, name=["slack@^2", "aws"], registries=registry))
    with open(path, "rb") as handle:
        before = handle.read()
    libraries = Libraries()
    kept = _lock_task.run_lock(lock_params(path, name=["aws", "slack@^2.1"], config_path=str(tmp_path / "none.yaml")),
                               require_libraries=libraries)  # no registry configured: none is needed
    assert libraries.calls == 0 and kept["resolved"] == [] and kept["kept"] == ["aws", "slack"] and kept["respecified"] == ["slack"]
    assert kept["changed"] is True  # the new spec is recorded
    with pytest.raises(PackNotFound):
        _lock_task.run_lock(lock_params(path, name=["slack@^2", "nope"], registries=registry))
    assert libraries.calls == 0
    with open(path, "rb") as handle:
        assert handle.read() != before  # the respecified run wrote; the failed one did not
    unchanged = _lock_task.run_lock(lock_params(path, name=["aws", "slack@^2.1"], registries=registry))
    assert unchanged["changed"] is False and "is up to date" in unchanged["msg"]
