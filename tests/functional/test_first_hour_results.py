"""Issue 18 item 5: what a new user sees in results — the diff of a src install and the skipped registries.

Real parts: an HTTPS registry on 127.0.0.1 with a real archive, a failing registry (HTTP 503), a local pack
directory, all run through ansible-playbook.
"""
import os

from functional.test_pack_install import MODULE, install, site  # noqa: F401 pylint: disable=unused-import
from support import synth
from support.play import run_tasks


def test_src_install_diff_names_the_version_not_a_question_mark(tmp_path):
    # a src archive: its version is known only once it is extracted (a src directory has it before: pack.yaml)
    archive, _checksum = synth.make_pack_archive(str(tmp_path / "src"), "deploy_tools", "1.4.0")
    args = {"name": "deploy_tools", "src": archive, "packs_dir": str(tmp_path / "packs"), "allow_unverified": True}

    _play, planned = install(tmp_path, args, check=True, diff=True)
    assert not planned.get("failed"), planned
    assert planned["diff"]["before"] == "deploy_tools: not installed\n"
    assert planned["diff"]["after"].startswith("deploy_tools (version of the source) ("), planned["diff"]
    assert " ? " not in planned["diff"]["after"]
    assert not os.path.exists(str(tmp_path / "packs" / "deploy_tools"))

    _play, done = install(tmp_path, args, diff=True)
    assert not done.get("failed") and done["changed"], done
    assert done["diff"]["after"].startswith("deploy_tools 1.4.0 ("), done["diff"]
    assert done["pack"]["version"] == "1.4.0"
    assert os.path.isfile(str(tmp_path / "packs" / "deploy_tools" / "pack.yaml"))


def test_skipped_registries_at_the_top_level(site, tmp_path):  # noqa: F811
    site.publish("slack", "2.1.0")
    site.publish("aws", "1.3.0")
    site.server.add_status("/broken.json", 503, b"maintenance")
    registries = [{"name": "broken", "url": site.server.url("broken.json"), "priority": 5},
                  {"name": "public", "url": site.server.url("index.json"), "priority": 10}]
    common = {"registries": registries, "ca_path": site.server.ca_path, "cache_dir": str(tmp_path / "cache")}
    packs_dir = str(tmp_path / "packs")
    play = run_tasks(tmp_path, [
        {"attune.packs.attune_pack_info": dict(common, name=["slack", "aws"], on_registry_error="skip")},
        {MODULE: dict(common, name=["slack", "aws"], on_registry_error="skip", packs_dir=packs_dir)},
        {MODULE: dict(common, name=["slack", "aws"], packs_dir=packs_dir, state="latest")},
        {"attune.packs.attune_pack_info": dict(common, name="slack")},
    ])
    info, installed, fail_closed, info_closed = play.host()
    assert not info.get("failed"), info
    assert [item["name"] for item in info["skipped_registries"]] == ["broken"], info  # once, not once per pack
    assert "503" in info["skipped_registries"][0]["error"]
    assert [p["registry"] for p in info["packs"]] == ["public", "public"]
    assert not installed.get("failed") and installed["changed"], installed
    assert [item["name"] for item in installed["skipped_registries"]] == ["broken"], installed
    assert sorted(os.listdir(packs_dir)) == [".attune", "aws", "slack"]
    # without on_registry_error=skip resolution is fail-closed: nothing is skipped, the task fails
    assert fail_closed.get("failed") and "fail-closed" in fail_closed["msg"], fail_closed
    assert info_closed.get("failed") and "fail-closed" in info_closed["msg"], info_closed


def test_nothing_skipped_is_an_empty_list(site, tmp_path):  # noqa: F811
    site.publish("slack", "2.1.0")
    common = {"registries": [{"name": "public", "url": site.server.url("index.json"), "priority": 10}],
              "ca_path": site.server.ca_path, "cache_dir": str(tmp_path / "cache")}
    play = run_tasks(tmp_path, [
        {"attune.packs.attune_pack_info": dict(common, name="slack")},
        {MODULE: dict(common, name="slack", packs_dir=str(tmp_path / "packs"))},
    ])
    info, installed = play.host()
    assert not info.get("failed") and info["skipped_registries"] == [] and info["packs"][0]["version"] == "2.1.0", info
    assert not installed.get("failed") and installed["skipped_registries"] == [], installed
    assert installed["pack"]["version"] == "2.1.0"
