"""Issue 16 item 4 in the registry_config role: an ``http://`` registry_config_api_url is refused before anything is
sent unless ``registry_config_api_allow_http: true`` (passed to the modules as ``api_allow_http``).

The Attune is the test Attune API of test_role_registry_api.py (fixture ``site``), reached through a plain-HTTP
front (tests/support/plain_http_front.py) that logs what it receives.
"""
from functional.test_role_registry_api import PUT_TASK, role_vars, secrets_of, site, write_play  # noqa: F401 pylint: disable=unused-import
from support.fleet import run_playbook
from support.plain_http_front import plain_http_front


def test_http_api_url_needs_registry_config_api_allow_http(tmp_path, site):  # pylint: disable=redefined-outer-name
    playbook, inventory = write_play(tmp_path, hosts=("w1",))
    with plain_http_front(site) as front:
        assert front.base_url.startswith("http://")
        values = role_vars(site, registry_config_write_file=False, registry_config_api_url=front.base_url,
                           registry_config_api_exclusive=True)
        values.pop("registry_config_api_ca_path")
        # without the opt-in: the API tasks fail before any request, the listener receives nothing
        refused = run_playbook(tmp_path, playbook, inventory, extra_vars=values, verbosity=3)
        assert refused.returncode != 0, refused.output[-4000:]
        failed = [e for e in refused.results() if e["status"] == "failed"]
        assert failed and failed[0]["task"].endswith("Read the registries in Attune's database"), failed
        result = failed[0]["result"]
        assert result["error"]["kind"] == "invalid_arguments" and "api_allow_http" in result["msg"], result
        assert front.requests == [], [(r.method, r.path) for r in front.requests]
        for secret in secrets_of(site):
            assert secret not in refused.output
        assert [r["name"] for r in site.indices] == ["Attune Standard"]

        # with it: the same play puts the registries into Attune, through the plain-HTTP listener
        values["registry_config_api_allow_http"] = True
        accepted = run_playbook(tmp_path, playbook, inventory, extra_vars=values, verbosity=1)
        assert accepted.returncode == 0, accepted.output[-6000:]
        assert [r["name"] for r in site.indices] == ["Attune Standard", "corp", "public", "paused"]
        assert any(r.path == "/auth/token-login" for r in front.requests)
        assert any(r.method == "POST" and r.path == "/api/v1/pack-indices" for r in front.requests)
        puts = [e for e in accepted.results(task=PUT_TASK) if e["status"] != "skipped"]
        assert len(puts) == 1 and all(r["changed"] for r in puts[0]["result"]["results"]), puts
