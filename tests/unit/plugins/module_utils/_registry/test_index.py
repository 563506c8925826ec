import pytest

from ansible_collections.attune.packs.plugins.module_utils._base._errors import IndexFormatError
from ansible_collections.attune.packs.plugins.module_utils._registry._index import fallback_source, preferred_source, validate_index

from testdata import make_entry, make_index


def test_the_public_index_is_valid_even_in_strict_mode(standard_index):
    assert validate_index(standard_index, "std", strict=True) is standard_index
    assert len(standard_index["packs"]) == 44


def expect_error(data, fragment, strict=False):
    with pytest.raises(IndexFormatError) as info:
        validate_index(data, registry="corp", strict=strict)
    message = str(info.value)
    assert message.startswith("registry corp: invalid index format")
    assert fragment in message, message
    return message


def test_bad_checksum_names_the_field_path(standard_index):
    standard_index["packs"][3]["install_sources"][0]["checksum"] = "sha256:ABC"
    expect_error(standard_index, "packs[3].install_sources[0].checksum: invalid sha256 checksum")


def test_weak_checksum_is_refused_with_reason(standard_index):
    standard_index["packs"][2]["install_sources"][1]["checksum"] = "md5:" + "a" * 32
    expect_error(standard_index, "packs[2].install_sources[1].checksum: checksum algorithm md5 is too weak")


@pytest.mark.parametrize(
    "mutate,fragment",
    [
        (lambda d: d["packs"][0].pop("label"), "packs[0].label: required key missing"),
        (lambda d: d["packs"][1].update(ref="Bad.Ref"), "packs[1].ref: expected a ref"),
        (lambda d: d["packs"][1].update(version="1.0"), "packs[1].version: expected a semantic version"),
        (lambda d: d["packs"][4].update(keywords=["a", "a"]), "packs[4].keywords[1]: duplicate item"),
        (lambda d: d["packs"][5]["install_sources"][0].update(url="http://github.com/x.git"), "must use https://"),
        (lambda d: d["packs"][5]["install_sources"][1].update(url="https://user:pw@host/x.tgz"), "must not carry credentials"),
        (lambda d: d["packs"][5]["install_sources"][1].update(url="https://host/x.tgz?token=1"), "must not carry a query string"),
        (lambda d: d["packs"][6]["install_sources"][1].update(type="svn"), "unknown install source type 'svn'"),
        (lambda d: d["packs"][6].update(install_sources=[]), "packs[6].install_sources: expected a non-empty list"),
        (lambda d: d["packs"][7]["contents"].pop("rules"), "packs[7].contents.rules: required key missing"),
        (lambda d: d["packs"][7]["contents"]["actions"].append({"name": ""}), "must be a non-empty string"),
        (lambda d: d.update(version="2.0"), "version: unsupported index format version '2.0'"),
        (lambda d: d.update(registry_url="http://x.example/"), "registry_url: URL must use https://"),
        (lambda d: d.update(last_updated="yesterday"), "last_updated: expected an RFC 3339 timestamp"),
        (lambda d: d.pop("registry_name"), "registry_name: required key missing"),
        (lambda d: d["packs"].append("slack"), "packs[44]: expected an object"),
    ],
)
def test_schema_violations(standard_index, mutate, fragment):
    mutate(standard_index)
    expect_error(standard_index, fragment)


def test_error_names_the_pack(standard_index):
    standard_index["packs"][3].pop("license")
    message = expect_error(standard_index, "packs[3].license")
    assert "(pack '%s')" % standard_index["packs"][3]["ref"] in message


def test_unknown_keys_tolerated_unless_strict(standard_index):
    standard_index["packs"][5]["future_field"] = {"x": 1}
    standard_index["signature"] = "abc"
    standard_index["packs"][5]["contents"]["actions"][0]["icon"] = "x.svg"
    assert validate_index(standard_index, "corp") is standard_index
    assert standard_index["packs"][5]["future_field"] == {"x": 1}  # kept as it was, not dropped
    message = expect_error(standard_index, "unknown key (refused in strict mode)", strict=True)
    assert "signature" in message and "packs[5].future_field" in message


def test_not_an_object():
    with pytest.raises(IndexFormatError, match="must be a JSON object"):
        validate_index([1, 2], registry="corp")


def test_several_entries_of_one_ref_are_valid():
    data = make_index("corp", [make_entry("slack", "1.0.0"), make_entry("slack", "2.0.0")])
    assert validate_index(data, "corp") is data


def test_source_preference():
    entry = make_entry("slack", "1.0.0")
    assert preferred_source(entry, "git")["type"] == "git"
    assert preferred_source(entry, "archive")["type"] == "archive"
    assert fallback_source(entry, preferred_source(entry, "git"))["type"] == "archive"
    assert fallback_source(entry, preferred_source(entry, "archive")) is None


# -- issue 9 item 5: the same verdict as Attune's serde model ----------------------------------------------------------
# crates/common/src/pack_registry/mod.rs @126b167: PackIndexEntry's Option<...> fields (use_case, email, homepage,
# repository, dependencies, meta), PackDependencies' Option<String> fields and PackMeta's Option<u64> fields accept null.
NULLABLE_ENTRY_FIELDS = ("use_case", "email", "homepage", "repository", "dependencies", "meta")


@pytest.mark.parametrize("strict", [False, True])
def test_null_is_accepted_where_attune_has_an_option(strict):
    entry = make_entry("demo", "1.0.0", **dict((field, None) for field in NULLABLE_ENTRY_FIELDS))
    other = make_entry("other", "1.0.0", dependencies={"attune_version": None, "python_version": None, "nodejs_version": None},
                       meta={"downloads": None, "stars": None, "anything": None})
    index = make_index("corp", [entry, other])
    assert validate_index(index, "corp", strict=strict) is index
    assert [index["packs"][0][field] for field in NULLABLE_ENTRY_FIELDS] == [None] * len(NULLABLE_ENTRY_FIELDS)


@pytest.mark.parametrize("field, value", [
    ("label", None), ("description", None), ("version", None), ("author", None), ("license", None),
    ("keywords", None), ("runtime_deps", None), ("install_sources", None), ("contents", None),
])
def test_null_is_refused_where_attune_has_no_option(field, value):
    # plain String / Vec<...> / PackContents fields of PackIndexEntry: serde refuses null
    entry = make_entry("demo", "1.0.0")
    entry[field] = value
    expect_error(make_index("corp", [entry]), "packs[0].%s" % field)


@pytest.mark.parametrize("dependencies, meta, fragment", [
    ({"packs": None}, None, "packs[0].dependencies.packs"),  # Vec<String> with #[serde(default)]: missing ok, null not
    (None, {"downloads": -1}, "packs[0].meta.downloads"),  # Option<u64>
    (None, {"stars": "many"}, "packs[0].meta.stars"),
    (None, {"tested_attune_versions": None}, "packs[0].meta.tested_attune_versions"),  # Vec<String>, #[serde(default)]
    (None, {"tested_attune_versions": [1]}, "packs[0].meta.tested_attune_versions"),
])
def test_typed_fields_inside_dependencies_and_meta(dependencies, meta, fragment):
    expect_error(make_index("corp", [make_entry("demo", "1.0.0", dependencies=dependencies, meta=meta)]), fragment)


def test_null_git_ref_is_refused_like_attune():
    # InstallSource::Git uses deserialize_required_git_ref (String::deserialize): null is refused although the field is Option
    entry = make_entry("demo", "1.0.0")
    entry["install_sources"][0]["ref"] = None
    expect_error(make_index("corp", [entry]), "packs[0].install_sources[0].ref")


@pytest.mark.parametrize("where", ["top", "entry", "git", "archive", "contents", "component", "dependencies"])
def test_strict_refuses_unknown_fields_everywhere_but_meta(where):
    # every struct of mod.rs has #[serde(deny_unknown_fields)] except PackMeta (#[serde(flatten)] extra)
    entry = make_entry("demo", "1.0.0", dependencies={"packs": []}, meta={"free": {"form": [1]}, "downloads": 3})
    index = make_index("corp", [entry])
    target = {"top": index, "entry": entry, "git": entry["install_sources"][0], "archive": entry["install_sources"][1],
              "contents": entry["contents"], "component": entry["contents"]["actions"][0],
              "dependencies": entry["dependencies"]}[where]
    assert validate_index(index, "corp", strict=True) is index
    target["surprise"] = 1
    assert validate_index(index, "corp", strict=False) is index  # tolerated outside strict mode (documented leniency)
    assert target["surprise"] == 1
    expect_error(index, "surprise: unknown key (refused in strict mode)", strict=True)


# -- issue 19 item 3: a file:// registry (a mirror read on the controller) may name archives beside it -------------

def local_index(archive_url, git_url="https://git.example/net.git"):
    entry = make_entry("net", "1.0.0")
    entry["install_sources"][0]["url"] = git_url
    entry["install_sources"][1]["url"] = archive_url
    index = make_index("mirror", [entry])
    index["registry_url"] = "file:///srv/mirror/index.json"
    return index


def test_a_local_registry_may_name_archives_under_its_directory():
    index = local_index("file:///srv/mirror/packs/net/net-1.0.0.tar.gz")
    assert validate_index(index, "mirror", strict=True, local_root="/srv/mirror") is index
    # the returned index is the one given, its URLs untouched
    assert index["packs"][0]["install_sources"][1]["url"].startswith("file:///srv/mirror/")


def test_file_urls_are_refused_in_an_index_read_over_the_network():
    # no local_root: the index came from https (or a file:// URL in a remote index would read the host's files)
    expect_error(local_index("file:///srv/mirror/packs/net/net-1.0.0.tar.gz"), "registry_url")
    index = local_index("file:///srv/mirror/packs/net/net-1.0.0.tar.gz")
    index["registry_url"] = "https://mirror.example/index.json"
    expect_error(index, "packs[0].install_sources[1].url")


@pytest.mark.parametrize("archive_url, git_url, fragment", [
    ("file:///etc/shadow", None, "/etc/shadow is outside /srv/mirror"),
    ("file:///srv/mirror/../../etc/shadow", None, "is outside /srv/mirror"),
    ("file:///srv/mirror-evil/x.tar.gz", None, "is outside /srv/mirror"),
    ("file://host/srv/mirror/x.tar.gz", None, "must be file:///absolute/path"),
    ("file:///srv/mirror/x.tar.gz?x=1", None, "must be file:///absolute/path"),
    ("file:///srv/mirror/x.tar.gz", "file:///srv/mirror/net.git", "file:// is only for archive sources"),
])
def test_a_local_registry_cannot_reach_beyond_its_directory(archive_url, git_url, fragment):
    index = local_index(archive_url, git_url or "https://git.example/net.git")
    with pytest.raises(IndexFormatError) as info:
        validate_index(index, registry="mirror", local_root="/srv/mirror")
    assert fragment in str(info.value), str(info.value)
