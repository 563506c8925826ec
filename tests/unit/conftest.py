import pytest


@pytest.fixture(autouse=True)
def _no_outbound_policy_left_active():
    """_config.load_settings makes its outbound policy the active one for the process (one plugin run per
    process in real use); unit tests share a process, so no test inherits the policy of an earlier one."""
    yield
    from ansible_collections.attune.packs.plugins.module_utils._registry import _outbound

    _outbound.activate(None)
