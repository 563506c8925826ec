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
