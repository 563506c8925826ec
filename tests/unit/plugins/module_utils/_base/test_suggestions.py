"""Issue 18 item 4: errors that help — "did you mean" for refs, the accepted forms of a spec, close option names."""
import pytest

from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings
from ansible_collections.attune.packs.plugins.module_utils._base._errors import PackNotFound, SpecError, suggestion
from ansible_collections.attune.packs.plugins.module_utils._registry._resolver import RegistryClient
from ansible_collections.attune.packs.plugins.module_utils._registry._version import SPEC_FORMS, PackSpec
from testdata import make_entry, write_index


def test_suggestion_names_the_closest_candidates():
    refs = ["slack", "aws", "github", "slack-ext", "slacks", "monitoring"]
    assert suggestion("slakc", refs) == "; did you mean slack or slacks?"  # closest first, at most 3
    assert suggestion("gihtub", refs) == "; did you mean github?"
    assert suggestion("zzzz", refs) == ""
    assert suggestion("slack", ["slack"]) == ""  # the word itself is no suggestion
    assert suggestion("", refs) == "" and suggestion(None, refs) == ""
    assert suggestion("nmae", ["name", "state", "src"], what="the option") == "; did you mean the option name?"


@pytest.mark.parametrize("spec, reason", [
    ("slack@>>2", "invalid version constraint '>>2'"),
    ("slack@", "nothing after '@'"),
    ("slack@2.1.0.0", "invalid version constraint '2.1.0.0'"),
    ("slack@^", "operator without a version"),
    ("slack@>=2,,<3", "empty item between commas"),
    ("", "invalid pack spec ''"),
])
def test_a_bad_spec_lists_the_accepted_forms(spec, reason):
    with pytest.raises(SpecError) as info:
        PackSpec.parse(spec)
    message = str(info.value)
    assert reason in message and SPEC_FORMS in message, message
    for form in ("ref@latest", "ref@2.1.0", "ref@^2.1", "ref@~2.1", "ref@>=2.0,<3", "ref@2.x"):
        assert form in message, (form, message)
        # every form the message offers is itself accepted (with a real ref)
        PackSpec.parse(form.replace("ref", "slack", 1))


def test_an_uppercase_ref_suggests_the_lowercase_one():
    with pytest.raises(SpecError) as info:
        PackSpec.parse("Slack@^2")
    assert "did you mean slack?" in str(info.value)
    with pytest.raises(SpecError) as info:
        PackSpec.parse("sl.ack")
    assert "did you mean" not in str(info.value)  # no valid ref is close by case alone


@pytest.fixture
def registries(tmp_path):
    corp = write_index(tmp_path, "corp", [make_entry("internal", "0.1.0", "c")])
    public = write_index(tmp_path, "public", [make_entry("slack", "2.1.0"), make_entry("slacks", "1.0.0"),
                                              make_entry("github", "3.0.0")])
    return {"registries": [{"url": corp, "name": "corp", "priority": 1}, {"url": public, "name": "public", "priority": 10}],
            "cache_dir": str(tmp_path / "cache")}


def test_a_misspelt_ref_suggests_refs_of_the_registries_read(registries):
    client = RegistryClient(load_settings(registries, environ={}))
    with pytest.raises(PackNotFound) as info:
        client.resolve("slakc@^2")
    message = str(info.value)
    assert message.endswith("pack 'slakc' not found in any registry (searched: corp, public); did you mean slack or slacks?"), message
    fetched = client.stats["fetched"] + client.stats["cache_hits"]
    assert fetched == 2  # each registry read once for the resolution itself; the suggestion reads nothing more
    with pytest.raises(PackNotFound) as info:
        client.resolve("internl")
    assert "did you mean internal?" in str(info.value)  # refs of every registry searched
    assert client.stats["fetched"] + client.stats["cache_hits"] == fetched  # memoised views: still no request
    with pytest.raises(PackNotFound) as info:
        client.resolve("kubernetes")
    assert str(info.value).endswith("(searched: corp, public)")  # nothing close: no suggestion


def test_only_the_selected_registry_is_suggested_from(registries):
    client = RegistryClient(load_settings(dict(registries, registry="corp"), environ={}))
    with pytest.raises(PackNotFound) as info:
        client.resolve("slakc")
    assert "did you mean" not in str(info.value), str(info.value)
