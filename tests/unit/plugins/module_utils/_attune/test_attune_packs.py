"""Unit tests of module_utils/_attune/_attune_packs.py: the controller's upload record and what counts as ours."""
import os
import stat

from ansible_collections.attune.packs.plugins.module_utils._attune import _attune_packs


def test_records_round_trip_private_and_per_api(tmp_path):
    cache = str(tmp_path / "cache")
    one = _attune_packs.UploadRecords(cache, "https://a.example")
    one.update("slack", {"version": "2.1.0", "pack_id": 7, "updated": "t1", "checksum": "sha256:" + "a" * 64})
    again = _attune_packs.UploadRecords(cache, "https://a.example")
    assert again.packs()["slack"]["pack_id"] == 7
    assert _attune_packs.UploadRecords(cache, "https://b.example").packs() == {}
    path = os.path.join(cache, "attune-api", one.name)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again.update("slack", None)
    assert _attune_packs.UploadRecords(cache, "https://a.example").packs() == {}


def test_a_record_is_ours_only_while_attune_shows_the_same_pack_record():
    record = {"pack_id": 7, "updated": "t1", "version": "2.1.0"}
    assert _attune_packs._ours(record, {"id": 7, "updated": "t1", "version": "2.1.0"})
    assert not _attune_packs._ours(record, {"id": 7, "updated": "t2", "version": "2.1.0"})  # replaced since
    assert not _attune_packs._ours(record, {"id": 8, "updated": "t1", "version": "2.1.0"})  # deleted and re-created
    assert not _attune_packs._ours(None, {"id": 7, "updated": "t1", "version": "2.1.0"})


def test_a_corrupt_record_file_counts_as_empty(tmp_path):
    cache = str(tmp_path / "cache")
    records = _attune_packs.UploadRecords(cache, "https://a.example")
    records.update("aws", {"pack_id": 1})
    with open(os.path.join(cache, "attune-api", records.name), "w") as handle:
        handle.write("{not json")
    assert _attune_packs.UploadRecords(cache, "https://a.example").packs() == {}


def test_one_listing_gives_what_one_get_per_pack_gives(tmp_path):
    """list_all (issue 17): the pack summaries of one paged GET /api/v1/packs decide as one GET per pack does."""
    from support.attune_server import AttuneServer  # pylint: disable=import-outside-toplevel
    from ansible_collections.attune.packs.plugins.module_utils._attune import _api  # pylint: disable=import-outside-toplevel

    with AttuneServer() as server:
        token = server.add_integration_token("ci")
        for number in range(120):  # two pages
            server.add_standard_pack("std%03d" % number, version="1.%d.0" % number)
        api = _api.AttuneApi(server.url(), token=token, ca_path=server.ca_path)
        std = api.get_pack("std007")
        records = _attune_packs.UploadRecords(str(tmp_path / "cache"), server.url())
        records.update("std007", {"version": std["version"], "pack_id": std["id"], "updated": std["updated"]})
        records.update("std008", {"version": "1.8.0", "pack_id": std["id"], "updated": std["updated"]})  # another record
        refs = ["std007", "std008", "std119", "missing"]
        per_pack = _attune_packs.AttuneApiBackend(api, records)
        expected = [per_pack.installed(ref) for ref in refs]
        server.reset_log()
        listed = _attune_packs.AttuneApiBackend(api, records, list_all=True)
        assert [listed.installed(ref) for ref in refs] == expected
        assert [x["managed"] for x in expected[:3]] == [True, False, False] and expected[3] is None
        assert expected[0]["is_standard"] and expected[2]["version"] == "1.119.0"
        assert [(r.method, r.path) for r in server.requests] == [("GET", "/api/v1/packs")] * 2
        assert listed.managed_refs() == [] and len(server.requests) == 2  # standard packs are never removed


def test_both_backends_implement_the_declared_contract():
    """Issue 17: the orchestrator's backend contract is an abstract base class; a backend missing a method cannot be
    made, and both real backends are instances of it."""
    import pytest
    from ansible_collections.attune.packs.plugins.module_utils._pack import _install

    assert issubclass(_install.PacksDirBackend, _install.Backend)
    assert issubclass(_attune_packs.AttuneApiBackend, _install.Backend)
    assert _attune_packs.AttuneApiBackend.same_version_installed is True
    assert _install.PacksDirBackend("/nonexistent").same_version_installed is False

    class Incomplete(_install.Backend):
        def installed(self, ref):
            return None

    with pytest.raises(TypeError) as info:
        Incomplete()  # pylint: disable=abstract-class-instantiated
    for method in ("recover", "managed_refs", "staging", "remove"):
        assert method in str(info.value), info.value


def test_a_tree_that_cannot_be_archived_fails_the_upload_as_api_invalid_archive(tmp_path):
    """_pack._archive refuses the tree (InvalidArchive); the upload reports it as the API error it always was."""
    import pytest
    from support.synth import make_pack_tree
    from ansible_collections.attune.packs.plugins.module_utils._attune import _api_errors

    class NoAttune(object):
        api = None  # nothing may be sent: the archive is refused first

        def installed(self, ref):
            return None

    tree = make_pack_tree(str(tmp_path / "demo"), "demo", "1.0.0")
    os.symlink("/etc/passwd", os.path.join(tree, "passwd"))
    stage = _attune_packs.ApiStage(NoAttune(), "demo")
    try:
        with pytest.raises(_api_errors.ApiInvalidArchive) as err:
            stage.activate(tree, {"version": "1.0.0"})
    finally:
        stage.close()
    message = "passwd is a symbolic link; Attune refuses links in pack archives"
    assert str(err.value) == message and stage.previous is False
    assert err.value.to_dict() == {"kind": "api_invalid_archive", "registry": None, "pack": None, "message": message,
                                   "api_url": None, "status": None}
