"""The action plugin of attune_pack_installed: a RegistryActionBase whose two targets build their report with the same
core function (``_drift.installed_report``): a packs_dir through the module, a running Attune here on the controller."""
import json
from types import SimpleNamespace

import pytest

from ansible_collections.attune.packs.plugins.action.attune_pack_installed import ActionModule
from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _attune_packs
from ansible_collections.attune.packs.plugins.module_utils._pack import _archive, _drift, _lockfile
from ansible_collections.attune.packs.plugins.plugin_utils._action import RegistryActionBase
from support.attune_server import AttuneServer
from support.synth import make_pack_tree

GOOD = "sha256:" + "a" * 64
OTHER = "sha256:" + "c" * 64


def lock_text(*entries):
    packs = [{"ref": ref, "spec": ref, "version": version, "registry": "public", "registry_url": "https://registry.example/index.json",
              "source": {"type": "archive", "url": "https://files.example/%s.tgz" % ref, "checksum": checksum}}
             for ref, version, checksum in entries]
    return json.dumps({"version": 1, "packs": packs})  # JSON is YAML


def action(args, executed=None):
    """The action plugin for one task with ``args``; the module run (host path) is recorded in ``executed``."""
    task = SimpleNamespace(args=args, async_val=0, check_mode=False, diff=False, action="attune.packs.attune_pack_installed")
    connection = SimpleNamespace(_shell=SimpleNamespace(tmpdir="/nonexistent-remote-tmp"))
    plugin = ActionModule(task, connection, None, None, None, None)  # shared_loader_obj: required on ansible-core 2.17

    def execute_module(module_name, module_args, task_vars):
        executed.append((module_name, module_args))
        return {"changed": False, "msg": "module ran"}

    plugin._execute_module = execute_module
    return plugin


@pytest.fixture
def attune(tmp_path):
    """A running Attune holding core (standard), slack 1.0.0 and aws 0.9.0 (both uploaded), slack recorded as ours."""
    with AttuneServer() as server:
        server.token = server.add_integration_token("ci")
        server.add_standard_pack("core", "1.0.0")
        api = _api.AttuneApi(server.url(), token=server.token, ca_path=server.ca_path)
        for ref, version in (("slack", "1.0.0"), ("aws", "0.9.0")):
            tree = make_pack_tree(str(tmp_path / "src" / ref), ref, version)
            api.upload_pack(_archive.build_archive(tree)[0], ref=ref, skip_tests=True)
        slack = api.get_pack("slack")
        server.cache = str(tmp_path / "cache")
        _attune_packs.UploadRecords(server.cache, server.url()).update(
            "slack", {"version": slack["version"], "pack_id": slack["id"], "updated": slack["updated"], "checksum": GOOD})
        server.reset_log()
        yield server


def conn(server, **extra):
    args = dict(api_url=server.url(), api_token=server.token, ca_path=server.ca_path, cache_dir=server.cache)
    args.update(extra)
    return args


def test_is_a_registry_action():
    assert issubclass(ActionModule, RegistryActionBase) and ActionModule.MODULE == "attune.packs.attune_pack_installed"


def test_attune_report_with_drift(attune, tmp_path):
    lock_file = tmp_path / "packs.lock.yml"
    lock_file.write_text(lock_text(("slack", "1.0.0", GOOD), ("aws", "1.0.0", OTHER), ("core", "1.0.0", OTHER), ("gone", "1.0.0", GOOD)))
    result = action(conn(attune, lock_file=str(lock_file))).run(task_vars={})
    assert "failed" not in result and result["changed"] is False, result
    assert [item["ref"] for item in result["packs"]] == ["aws", "core", "slack"] and result["missing"] == []
    assert result["api_url"] == attune.url() and result["counts"] == {"installed": 3, "standard": 1, "managed": 1}
    by_ref = dict((item["ref"], item) for item in result["packs"])
    assert by_ref["slack"]["managed"] is True and by_ref["slack"]["checksum"] == GOOD and by_ref["slack"]["label"]
    assert by_ref["core"]["is_standard"] is True and by_ref["core"]["managed"] is False and by_ref["core"]["checksum"] is None
    assert all(item["path"] is None and item["verified"] is None for item in result["packs"])
    drift = result["drift"]
    assert [(pack["ref"], pack["status"]) for pack in drift["packs"]] == [
        ("aws", "other-version"), ("core", "other-source"), ("gone", "missing"), ("slack", "in-sync")]
    assert drift["lock_file"] == str(lock_file) and drift["deviates"] is True
    assert drift["msg"] == "DRIFT: missing gone; other version aws 0.9.0 (locked 1.0.0); other source core"
    assert result["msg"] == ("3 packs in Attune %s (1 standard, 1 installed by attune.packs); %s" % (attune.url(), drift["msg"]))
    assert attune.token not in json.dumps(result)
    assert "warnings" not in result


def test_attune_report_of_named_packs(attune):
    result = action(conn(attune, name=["slack", " nosuch", "slack", ""])).run(task_vars={})
    assert [item["ref"] for item in result["packs"]] == ["slack", "nosuch"] and result["missing"] == ["nosuch"], result
    assert result["packs"][1]["installed"] is False and result["packs"][1]["version"] is None
    assert result["counts"] == {"installed": 1, "standard": 0, "managed": 1}
    assert result["msg"] == "1 pack in Attune %s (0 standard, 1 installed by attune.packs); not installed: nosuch" % attune.url()
    assert "drift" not in result and "modified" not in result and "packs_dir" not in result


def test_the_same_core_builds_the_host_report(tmp_path):
    """On a host the action only reads the lock; the module's report is _drift.on_host over a packs_dir."""
    lock_file = tmp_path / "packs.lock.yml"
    lock_file.write_text(lock_text(("demo", "1.0.0", GOOD)))
    executed = []
    args = dict(packs_dir=str(tmp_path / "packs"), lock_file=str(lock_file), _lock_text="version: 1\npacks: []\n")
    result = action(args, executed).run(task_vars={})
    assert result == {"changed": False, "msg": "module ran"}
    (module, module_args), = executed
    assert module == "attune.packs.attune_pack_installed"
    assert module_args["_lock_text"] == lock_file.read_text()  # read here; the task's own _lock_text was dropped
    params = dict(name=None, verify=False, config_path=None, environment=None, **module_args)
    report = _drift.on_host(params, lambda text: None)
    assert report["drift"]["missing"] == ["demo"] and report["msg"].endswith("DRIFT: missing demo")
    assert report["drift"] == _drift.compare(_lockfile.parse(module_args["_lock_text"], str(lock_file)).entries(), [], {}, str(lock_file))


def test_failures_before_any_request(attune, tmp_path):
    executed = []
    bad = action(dict(packs_dir="/nonexistent", lock_file=str(tmp_path / "no.lock.yml")), executed).run(task_vars={})
    assert bad["failed"] is True and bad["changed"] is False and bad["error"]["kind"] == "lock_file_error", bad
    assert executed == []  # the module never ran
    refused = action(conn(attune, verify=True)).run(task_vars={})
    assert refused == {"failed": True, "changed": False,
                       "msg": "packs_dir and verify do not go with api_url: Attune's API does not expose the pack files"}
    invalid = action(conn(attune, name="slack", verify="maybe")).run(task_vars={})
    assert invalid["failed"] is True and invalid["changed"] is False and "verify" in invalid["msg"], invalid
    empty = action(dict(api_url=" ")).run(task_vars={})
    assert empty["failed"] is True and empty["error"]["kind"] == "invalid_arguments" and "api_url is empty" in empty["msg"]
    secret = "s3cret-pass-1234"
    creds = action(conn(attune, api_url=attune.url().replace("https://", "https://admin:%s@" % secret))).run(task_vars={})
    assert creds["failed"] is True and creds["error"]["kind"] == "invalid_arguments" and secret not in json.dumps(creds)
    assert attune.requests == []


def test_attune_errors_name_the_api_and_keep_secrets_out(attune):
    result = action(conn(attune, api_token="attune_it_wrong-token-5678")).run(task_vars={})
    assert result["failed"] is True and result["changed"] is False and result["api_url"] == attune.url(), result
    assert result["error"]["kind"] == "api_unauthorized", result
    assert "wrong-token-5678" not in json.dumps(result)


def test_an_error_that_quotes_a_secret_is_redacted_in_msg_and_error(attune, monkeypatch):
    """One converter (_common.error_result with the API client's redact): msg and every string of error."""
    def leaky(api, names=None, records=None):
        raise _api.ApiError("Attune echoed the header Authorization: Bearer %s" % attune.token, api_url=api.api_url, pack=attune.token)

    monkeypatch.setattr(_attune_packs, "installed_packs", leaky)
    result = action(conn(attune)).run(task_vars={})
    assert result["failed"] is True and result["changed"] is False and result["api_url"] == attune.url(), result
    assert attune.token not in json.dumps(result), result
    assert result["error"]["kind"] == "api_error" and result["error"]["api_url"] == attune.url()
    assert "Attune echoed the header Authorization: Bearer " in result["msg"] and result["msg"] == result["error"]["message"]
