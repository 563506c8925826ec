"""One converter of core errors into failed results (issue 17): ``_common.error_result``, used by ``_common.fail``
(modules), ``_action.TaskFailed.from_error`` and ``RegistryActionBase.run`` (action plugins); it redacts secrets."""
import pytest

from ansible_collections.attune.packs.plugins.module_utils._base import _common
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, InvalidArguments
from ansible_collections.attune.packs.plugins.plugin_utils._action import TaskFailed

SECRET = "attune_it_S3CRET-token-42"


class LeakyError(AttuneError):
    """A core error whose fields hold a secret somewhere inside (message, pack, nested values)."""

    kind = "api_error"

    def to_dict(self):
        out = super(LeakyError, self).to_dict()
        out.update(details={"sent": ["Bearer " + SECRET, 3], "header": ("x", SECRET)}, status=401, retry=None)
        return out


def redact(text):
    return text.replace(SECRET, "***")


def test_error_result_names_the_error_over_the_extra_fields():
    exc = InvalidArguments("name must be a pack spec", registry="corp", pack="slack")
    result = _common.error_result(exc, changed=False, packs_dir="/srv/packs")
    assert result == {"failed": True, "changed": False, "packs_dir": "/srv/packs", "msg": str(exc),
                      "error": {"kind": "invalid_arguments", "registry": "corp", "pack": "slack", "message": str(exc)}}
    assert "registry corp" in result["msg"] and "name must be a pack spec" in result["msg"]
    # the error wins over an extra field of the same name; msg can be worded by the caller
    worded = _common.error_result(exc, msg="Attune https://a.example: %s" % exc, failed=False, error="x")
    assert worded["failed"] is True and worded["error"]["kind"] == "invalid_arguments"
    assert worded["msg"] == "Attune https://a.example: %s" % exc


def test_error_result_redacts_every_string_of_msg_and_error():
    exc = LeakyError("login refused for token %s" % SECRET, pack=SECRET)
    plain = _common.error_result(exc, changed=False)
    assert SECRET in plain["msg"] and SECRET in plain["error"]["message"]  # nothing to redact with: as it was
    result = _common.error_result(exc, redact=redact, msg="Attune x: %s" % exc, changed=True, api_url="https://a.example")
    assert SECRET not in repr(result), result
    assert result["msg"] == "Attune x: pack ***: login refused for token ***"
    assert result["error"] == {"kind": "api_error", "registry": None, "pack": "***", "status": 401, "retry": None,
                               "message": "pack ***: login refused for token ***",
                               "details": {"sent": ["Bearer ***", 3], "header": ["x", "***"]}}
    assert (result["changed"], result["api_url"], result["failed"]) == (True, "https://a.example", True)


def test_task_failed_from_error_is_that_result():
    exc = LeakyError("token %s refused" % SECRET)
    failed = TaskFailed.from_error(exc, redact=redact, changed=False, api_url="https://a.example")
    assert failed.result == _common.error_result(exc, redact=redact, changed=False, api_url="https://a.example")
    assert str(failed) == failed.result["msg"] == "token *** refused"
    assert TaskFailed("plain", changed=False).result == {"failed": True, "changed": False, "msg": "plain"}


def test_fail_gives_fail_json_the_same_result():
    class Module(object):
        def fail_json(self, msg, **kwargs):
            kwargs.update(failed=True, msg=msg)
            raise SystemExit(kwargs)

    exc = InvalidArguments("bad", pack="slack")
    with pytest.raises(SystemExit) as info:
        _common.fail(Module(), exc, changed=False, packs_dir="/p")
    assert info.value.args[0] == _common.error_result(exc, changed=False, packs_dir="/p")
