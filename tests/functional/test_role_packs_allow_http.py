"""Issue 16 item 4 in the packs role: an ``http://`` packs_api_url is refused before anything is sent unless
``packs_api_allow_http: true`` (passed to attune_pack as ``api_allow_http``).

The registries are those of test_role_packs.py (fixture ``site``); the Attune is the test Attune API, reached
through a plain-HTTP front (tests/support/plain_http_front.py) that logs what it receives.
"""
from functional.test_role_packs import INSTALL_TASK, LOCK_TASK, TOKEN, make_fleet, read_lock, role_vars, site  # noqa: F401 pylint: disable=unused-import
from support.attune_server import AttuneServer
from support.fleet import run_playbook
from support.pack_site import EXPECTED
from support.plain_http_front import plain_http_front


def test_http_api_url_needs_packs_api_allow_http(tmp_path, site):  # pylint: disable=redefined-outer-name
    with AttuneServer() as attune, plain_http_front(attune) as front:
        api_token = attune.add_integration_token("ci")
        assert front.base_url.startswith("http://")
        fleet = make_fleet(tmp_path, 1, **role_vars(site, tmp_path))
        host_vars = {"worker01": {"packs_api_url": front.base_url, "packs_api_token": api_token}}
        secrets = (api_token, TOKEN.split()[-1])

        # without the opt-in: the install task fails before any request, the listener receives nothing
        refused = run_playbook(tmp_path, "pin_fleet.yml", fleet.write_inventory(host_vars=host_vars), verbosity=3)
        assert refused.returncode != 0, refused
        failed = [e for e in refused.results() if e["status"] == "failed"]
        assert [e["task"].split(" : ")[-1] for e in failed] == [INSTALL_TASK], failed
        result = failed[0]["result"]
        assert result["error"]["kind"] == "invalid_arguments" and "api_allow_http" in result["msg"], result
        assert front.requests == [], [(r.method, r.path) for r in front.requests]
        assert attune.packs == {}
        for secret in secrets:
            assert secret not in refused.output

        # with it: the locked packs are uploaded into Attune through the plain-HTTP listener, the locked bytes
        host_vars["worker01"]["packs_api_allow_http"] = True
        accepted = run_playbook(tmp_path, "pin_fleet.yml", fleet.write_inventory(host_vars=host_vars), verbosity=1)
        assert accepted.returncode == 0, accepted
        assert [e["status"] for e in accepted.results(task=LOCK_TASK)] == ["ok"]
        installs = accepted.results(task=INSTALL_TASK)
        assert len(installs) == 1 and installs[0]["changed"], installs
        assert sorted(installs[0]["result"]["uploaded"]) == sorted(EXPECTED), installs
        assert any(r.path == "/auth/token-login" for r in front.requests)
        pins = read_lock(str(tmp_path / "packs.lock.yml"))
        assert dict((ref, rec["version"]) for ref, rec in attune.packs.items() if ref in EXPECTED) == \
            dict((ref, pins[ref]["version"]) for ref in EXPECTED) == dict((ref, v) for ref, (_r, v) in EXPECTED.items())
        for secret in secrets:
            assert secret not in accepted.output

        # drift_report.yml reads that Attune through the same opt-in: in sync, nothing leaked
        report = run_playbook(tmp_path, "drift_report.yml", fleet.write_inventory(host_vars=host_vars), verbosity=1)
        assert report.returncode == 0, report
        drifts = report.by_host("attune.packs.attune_pack_installed")
        drift = drifts["worker01"]["result"]["drift"]
        assert drift["deviates"] is False and drift["missing"] == [], drift
        assert any(r.path.startswith("/api/v1/packs") and r.method == "GET" for r in front.requests)
        for secret in secrets:
            assert secret not in report.output
