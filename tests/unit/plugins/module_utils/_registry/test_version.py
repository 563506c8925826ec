import pytest

from ansible_collections.attune.packs.plugins.module_utils._base._errors import SpecError
from ansible_collections.attune.packs.plugins.module_utils._registry._version import Constraint, PackSpec, Version, try_parse_version

HISTORY = ["1.4.2", "2.0.0", "2.1.0", "2.1.5", "2.2.0-rc.1", "3.0.0-beta.1", "0.2.3", "0.2.9", "0.3.0", "2.1.0+build.7"]


def pick(constraint, versions=None):
    if versions is None:
        versions = HISTORY
    chosen = Constraint(constraint).select([(Version.parse(v), v) for v in versions])
    return chosen[1] if chosen else None


@pytest.mark.parametrize(
    "constraint,expected",
    [
        ("", "2.1.5"),
        ("latest", "2.1.5"),
        ("2.1.0", "2.1.0"),
        ("=2.0.0", "2.0.0"),
        ("2.1.0+build.7", "2.1.0+build.7"),
        ("^2.1", "2.1.5"),
        ("^2.1.0", "2.1.5"),
        ("~2.1.0", "2.1.5"),
        ("~2.0", "2.0.0"),
        (">=2.0,<3", "2.1.5"),
        (">= 2.0 , < 3", "2.1.5"),
        ("^0.2", "0.2.9"),
        ("^0.2.3", "0.2.9"),
        ("2.x", "2.1.5"),
        ("2.1.*", "2.1.5"),
        ("<2", "1.4.2"),
        (">2.1", None),
        ("<=2.1", "2.1.5"),
        ("!=2.1.5,^2", "2.1.0"),
        ("^3.0.0-beta.0", "3.0.0-beta.1"),
        ("^4", None),
    ],
)
def test_constraints_pick_the_highest_match(constraint, expected):
    assert pick(constraint) == expected


def test_prereleases_only_when_nothing_else_for_latest():
    assert pick("latest", ["1.0.0-rc.1", "1.0.0-rc.2"]) == "1.0.0-rc.2"
    assert pick("latest", ["1.0.0-rc.1", "0.9.0"]) == "0.9.0"


def test_semver_precedence():
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    parsed = [Version.parse(v) for v in ordered]
    assert sorted(reversed(parsed)) == parsed
    assert Version.parse("1.0.0+a") == Version.parse("1.0.0+b")


@pytest.mark.parametrize("spec,ref,constraint", [("slack", "slack", "latest"), ("slack@latest", "slack", "latest"),
                                                 ("my_pack-2@^1.2", "my_pack-2", "^1.2"), (" aws@1.2.0 ", "aws", "1.2.0")])
def test_spec_parse(spec, ref, constraint):
    parsed = PackSpec.parse(spec)
    assert parsed.ref == ref
    assert str(parsed.constraint) == constraint


@pytest.mark.parametrize("spec,fragment", [("Slack", "must match"), ("sl.ack", "must match"), ("slack@", "nothing after"),
                                           ("slack@^", "operator without a version"), ("slack@>=2.0,,<3", "empty item"),
                                           ("slack@foo", "invalid version constraint"), ("", "invalid pack spec"),
                                           ("../etc@1.0.0", "must match"), ("-rf", "must match")])
def test_spec_errors(spec, fragment):
    with pytest.raises(SpecError) as info:
        PackSpec.parse(spec)
    assert fragment in str(info.value)


def test_patterns_do_not_accept_a_trailing_newline():
    from ansible_collections.attune.packs.plugins.module_utils._registry._version import INDEX_VERSION_PATTERN, REF_PATTERN
    assert REF_PATTERN.match("demo") and not REF_PATTERN.match("demo\n")
    assert INDEX_VERSION_PATTERN.match("1.0.0") and not INDEX_VERSION_PATTERN.match("1.0.0\n")
    with pytest.raises(SpecError):
        Version.parse("1.0.0\n\n1")


def test_huge_numbers_are_spec_errors_not_value_errors():
    # issue 8 item 3: a 5,000-digit major used to raise Python's bare "Exceeds the limit (4300 digits)" ValueError
    for text in ("9" * 5000 + ".0.0", "18446744073709551616.0.0"):
        assert try_parse_version(text) is None
        with pytest.raises(SpecError):
            PackSpec.parse("demo@" + text)
    assert try_parse_version("18446744073709551615.0.0").major == 2 ** 64 - 1  # u64::MAX is still a version
    big = try_parse_version("1.0.0-" + "7" * 5000)
    assert big > try_parse_version("1.0.0-" + "7" * 4999) and big < try_parse_version("1.0.0")
