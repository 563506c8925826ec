"""Attune's outbound policy (crates/common/src/pack_registry/outbound.rs @5e1b952, installer.rs @5e1b952).

Every table row names the Attune identifier it mirrors.  Name resolution is stubbed with an injected resolver
(a plain function), so no test needs DNS or a network; the functional tests (test_outbound_policy.py) run the
real thing through ansible-playbook against 127.0.0.1.
"""

import ipaddress
import threading

import pytest

from ansible_collections.attune.packs.plugins.module_utils._registry import _outbound
from ansible_collections.attune.packs.plugins.module_utils._registry._config import load_settings, validate_section
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError, OutboundRefused
from ansible_collections.attune.packs.plugins.module_utils._registry._outbound import (
    IpCidr, Policy, git_config_args, is_public_ip, normalize_ip, parse_target, policy_for,
)


@pytest.fixture(autouse=True)
def no_active_policy():
    _outbound.activate(None)
    yield
    _outbound.activate(None)


def resolver_of(table):
    """A stub for getaddrinfo: host -> list of addresses; unknown hosts fail like a DNS miss."""
    calls = []

    def resolve(host, port):
        calls.append((host, port))
        if host not in table:
            raise OSError(-2, "Name or service not known")
        return list(table[host])

    resolve.calls = calls
    return resolve


# outbound.rs is_public_ip (after normalize_ip): every special range of the Rust match, plus public neighbours
SPECIAL = [
    "0.0.0.0", "0.255.1.2", "10.0.0.1", "127.0.0.1", "127.255.255.254", "100.64.0.1", "100.127.255.255", "169.254.169.254",
    "172.16.0.1", "172.31.255.255", "192.0.0.8", "192.0.2.1", "192.88.99.1", "192.168.1.1", "198.18.0.1", "198.19.255.255",
    "198.51.100.7", "203.0.113.9", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "::", "::1", "ff02::1", "fc00::1", "fd12:3456::1", "fe80::1", "febf::1", "fec0::1", "feff::1", "2001:db8::1",
    "2001:2::1", "2001:10::1", "2001:20::1", "2001:2f::1", "2002::1", "64:ff9b::1.2.3.4", "64:ff9b:1::1", "100::1",
    "2001::1", "2001:0:ffff::1",
    "::ffff:10.0.0.1", "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # normalize_ip: IPv4-mapped -> IPv4
]
PUBLIC = [
    "8.8.8.8", "1.1.1.1", "100.63.255.255", "100.128.0.0", "172.15.255.255", "172.32.0.0", "169.253.0.1", "192.0.1.1",
    "192.0.3.1", "192.88.98.1", "192.169.0.1", "198.17.0.1", "198.20.0.1", "198.51.101.1", "203.0.114.1", "223.255.255.255",
    "11.0.0.1", "126.0.0.1", "128.0.0.1",
    "2606:4700:4700::1111", "2a00:1450::1", "2001:4860:4860::8888", "2001:3::1", "2001:30::1", "2001:db9::1",
    "64:ff9b:0:1::1",   # Attune tests only the first four segments of 64:ff9b::/96
    "100:0:0:1::1",     # and of 100::/64
    "::ffff:8.8.8.8",   # mapped public IPv4
    "::127.0.0.1",      # IPv4-compatible (not mapped) is not special for Attune's is_public_ip: public
    "::2",
]


@pytest.mark.parametrize("address", SPECIAL)
def test_special_addresses(address):
    assert not is_public_ip(normalize_ip(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses(address):
    assert is_public_ip(normalize_ip(address))


def test_attunes_own_classification_cases():
    # outbound.rs tests::rejects_special_and_mapped_addresses
    for address in ("127.0.0.1", "100.64.0.1", "198.18.0.1", "::1", "::ffff:10.0.0.1"):
        assert not is_public_ip(normalize_ip(address))
    assert is_public_ip("8.8.8.8") and is_public_ip("2606:4700:4700::1111")


# outbound.rs IpCidr::parse: (input, error reason or None)
CIDR_PARSE = [
    ("10.20.0.0/16", None),
    (" 10.20.0.0/16 ", None),          # trimmed as a whole
    ("10.20.4.5/16", None),            # host bits are not an error
    ("0.0.0.0/0", None),
    ("fd00::/8", None),
    ("::/0", None),
    ("10.0.0.1/+8", None),             # Rust's u8::from_str accepts a leading '+'
    ("10.0.0.1", "missing prefix"),
    ("10.0.0.0 /8", "bad address"),    # only the whole string is trimmed
    ("10.0.0.0/ 8", "bad prefix"),
    ("010.0.0.0/8", "bad address"),    # no leading zeros
    ("fe80::1%eth0/64", "bad address"),
    ("example.com/8", "bad address"),
    ("10.0.0.0/", "bad prefix"),
    ("10.0.0.0/-1", "bad prefix"),
    ("10.0.0.0/256", "bad prefix"),    # not a u8
    ("10.0.0.0/1_0", "bad prefix"),
    ("10.0.0.0/33", "prefix too large"),
    ("::/129", "prefix too large"),
    ("10.0.0.0/8/8", "bad prefix"),    # split_once: the rest is the prefix
]


@pytest.mark.parametrize("raw, reason", CIDR_PARSE)
def test_cidr_parse(raw, reason):
    if reason is None:
        IpCidr.parse(raw)
    else:
        with pytest.raises(ValueError, match=reason):
            IpCidr.parse(raw)


# outbound.rs IpCidr::contains / prefix_matches: (cidr, candidate, contained)
CIDR_CONTAINS = [
    ("10.20.0.0/16", "10.20.4.5", True),      # tests::private_cidr_matches_only_its_network
    ("10.20.0.0/16", "10.21.4.5", False),
    ("10.20.4.5/16", "10.20.200.1", True),
    ("127.0.0.1/32", "127.0.0.1", True),
    ("127.0.0.1/32", "127.0.0.2", False),
    ("0.0.0.0/0", "10.1.2.3", True),
    ("0.0.0.0/0", "fd00::1", False),          # families never match
    ("::/0", "10.1.2.3", False),
    ("fd00::/8", "fd12::1", True),
    ("fd00::/8", "fe80::1", False),
    ("::ffff:10.0.0.0/104", "10.0.0.1", False),  # candidates are normalised to IPv4, the CIDR is not
]


@pytest.mark.parametrize("cidr, candidate, contained", CIDR_CONTAINS)
def test_cidr_contains(cidr, candidate, contained):
    assert IpCidr.parse(cidr).contains(normalize_ip(candidate)) is contained


# outbound.rs validate_remote_pack_url + OutboundUrlPolicy::validate (structure), installer.rs validate_git_source
URLS = [
    # (url, allow_http, git, refused fragment of the message or None)
    ("https://github.com/a/b.git", False, True, None),
    ("https://GitHub.COM./a/b", False, False, None),
    ("https://user@github.com/x", False, False, "credentials"),
    ("https://user:pw@github.com/x", False, False, "credentials"),
    ("https://:@github.com/x", False, False, None),        # empty userinfo: no credentials for the url crate
    ("https://github.com/x#frag", False, False, "fragment"),
    ("https://github.com/x#", False, False, "fragment"),   # an empty fragment is still Some("")
    ("https://github.com/x?token=super-secret", False, False, "query"),
    ("https://github.com/x?", False, False, "query"),      # tests::requires_approved_hosts_and_rejects_fragments_…
    ("file:///tmp/index.json", False, False, "http or https"),
    ("ftp://github.com/x", False, False, "http or https"),
    ("http://github.com/x", False, False, "allow_http"),
    ("http://github.com/x", True, False, None),
    ("http://github.com/x.git", True, True, "git URL"),    # validate_git_source: https only, allow_http or not
    ("git://github.com/x.git", False, True, "https"),
    ("ssh://git@github.com/x.git", False, True, "https"),   # the scheme is checked first
    ("https:///x", False, False, "host"),
    ("https://[fe80::1%25eth0]/x", False, False, "IPv6"),  # no zone identifiers in the url crate
]


@pytest.mark.parametrize("url, allow_http, git, refused", URLS)
def test_url_structure(url, allow_http, git, refused):
    if refused is None:
        parse_target(url, allow_http=allow_http, git=git)
    else:
        with pytest.raises(OutboundRefused, match=refused) as info:
            parse_target(url, allow_http=allow_http, git=git)
        assert "super-secret" not in str(info.value)


def test_host_normalisation_matches_the_url_crate():
    # outbound.rs validate(): host_str lower-cased, trailing dots removed, default port dropped
    target = parse_target("HTTPS://GitHub.COM.:443/a")
    assert (target.host, target.port) == ("github.com", 443)
    assert parse_target("https://127.1/x").host == "127.0.0.1"            # WHATWG IPv4 forms
    assert parse_target("https://0x7f.0.0.1/x").host == "127.0.0.1"
    assert parse_target("https://[::FFFF:7F00:1]/x").host == "[::ffff:7f00:1]"  # host_str keeps the brackets
    with pytest.raises(OutboundRefused):
        parse_target("https://1.2.3.999/x")


# outbound.rs validate_addresses: (policy keys, host, DNS answers, refused key or "mixed" or None)
PUBLIC_HOSTS = {"approved_public_hosts": ["github.com", "mixed.example"]}
DECISIONS = [
    ({}, "github.com", ["140.82.121.3"], None),                               # default approved public hosts
    ({}, "codeload.github.com", ["140.82.121.9"], None),
    ({}, "example.com", ["93.184.216.34"], "approved_public_hosts"),          # requires_approved_hosts_…
    ({}, "github.com", ["10.0.0.5"], "approved_private_hosts"),               # public approval is not private approval
    ({"approved_public_hosts": ["127.0.0.1"]}, "127.0.0.1", [], "approved_private_hosts"),  # private_literal_needs_private_approval
    ({"approved_private_hosts": ["127.0.0.1"]}, "127.0.0.1", [], None),
    ({"approved_private_hosts": ["misconfigured.example"]}, "misconfigured.example", ["8.8.8.8"], "approved_public_hosts"),
    ({"approved_private_cidrs": ["10.20.0.0/16"]}, "internal.example", ["10.20.4.5"], None),  # cidr_can_approve_a_host…
    ({"approved_private_cidrs": ["10.20.0.0/16"]}, "internal.example", ["10.20.4.5", "10.99.0.1"], "approved_private_hosts"),
    ({"approved_private_cidrs": ["10.0.0.0/8"]}, "internal.example", ["::ffff:10.1.1.1"], None),  # mapped -> IPv4 CIDR
    ({"approved_public_hosts": ["mixed.example"], "approved_private_hosts": ["mixed.example"]},
     "mixed.example", ["8.8.8.8", "127.0.0.1"], "mixed"),                     # mixed_dns_answers_are_rejected_even_with_…
    ({"approved_public_hosts": ["mixed.example"]}, "mixed.example", ["8.8.8.8", "127.0.0.1"], "approved_private_hosts"),
    ({"approved_public_hosts": ["GitHub.com.", " github.com "]}, "github.com", ["140.82.121.3"], None),  # from_config normalize
    ({"approved_public_hosts": []}, "github.com", ["140.82.121.3"], "approved_public_hosts"),
    ({"approved_private_hosts": ["localhost"]}, "localhost", ["127.0.0.1", "::1"], None),
]


@pytest.mark.parametrize("keys, host, answers, refused", DECISIONS)
def test_decisions(keys, host, answers, refused):
    resolver = resolver_of({host: answers})
    policy = Policy.from_section(keys, resolver=resolver)
    url = "https://%s/index.json" % host
    if refused is None:
        checked = policy.check(url)
        assert [str(a) for a in checked.addresses] == [str(ipaddress.ip_address(a)) for a in (answers or [host])]
    else:
        with pytest.raises(OutboundRefused, match=refused) as info:
            policy.check(url)
        assert info.value.host == host
        if refused != "mixed":
            assert info.value.key == "pack_registry.%s" % refused
            assert info.value.to_dict()["kind"] == "outbound_refused"


def test_ip_literals_are_not_resolved():
    resolver = resolver_of({})
    policy = Policy.from_section(validate_section({"approved_private_cidrs": ["fd00::/8"]}), resolver=resolver)
    checked = policy.check("https://[fd00::5]:8443/i.json")
    assert str(checked.pinned) == "fd00::5" and checked.target.port == 8443 and not resolver.calls


def test_unresolvable_and_empty_answers_are_refused():
    policy = Policy.from_section(validate_section({"approved_public_hosts": ["nowhere.example", "empty.example"]}),
                                 resolver=resolver_of({"empty.example": []}))
    with pytest.raises(OutboundRefused, match="does not resolve"):
        policy.check("https://nowhere.example/i.json")
    with pytest.raises(OutboundRefused, match="no addresses"):
        policy.check("https://empty.example/i.json")


def test_a_name_nothing_could_approve_is_refused_without_a_dns_query():
    # Attune resolves first and refuses the answer (or fails to resolve); refused either way, we skip the query
    resolver = resolver_of({"packs.example.com": ["93.184.216.34"]})
    with pytest.raises(OutboundRefused, match="approved_public_hosts") as info:
        Policy.from_section({}, resolver=resolver).check("https://packs.example.com/i.json")
    assert info.value.key == "pack_registry.approved_public_hosts" and not resolver.calls
    # with a private CIDR configured any name might be approved by its answers: it is resolved
    with pytest.raises(OutboundRefused, match="approved_public_hosts"):
        Policy.from_section({"approved_private_cidrs": ["10.0.0.0/8"]}, resolver=resolver).check("https://packs.example.com/i.json")
    assert resolver.calls == [("packs.example.com", 443)]


def test_disabled_stops_everything_before_resolving():
    resolver = resolver_of({"github.com": ["140.82.121.3"]})
    policy = Policy.from_section(validate_section({"enabled": False}), resolver=resolver)
    with pytest.raises(OutboundRefused, match="enabled is false") as info:
        policy.check("https://github.com/i.json")
    assert info.value.key == "pack_registry.enabled" and not resolver.calls


def test_cidr_without_prefix_is_a_config_error():
    # IpCidr::parse "missing prefix": RegistryClient::new fails, so does building our policy
    with pytest.raises(ConfigError, match="missing prefix"):
        Policy(approved_private_cidrs=["10.0.0.1"])


def test_git_args_pin_the_checked_address_and_drop_proxies():
    # installer.rs git_clone_arguments: http.curloptResolve=<host>:<port>:<first address>, http.proxy=
    policy = Policy.from_section(validate_section({}), resolver=resolver_of({"github.com": ["140.82.121.3", "140.82.121.4"]}))
    args = git_config_args("https://github.com/a/b.git", policy=policy)
    assert args == ["-c", "http.proxy=", "-c", "http.curloptResolve=github.com:443:140.82.121.3"]
    v6 = Policy.from_section(validate_section({}), resolver=resolver_of({"github.com": ["2606:50c0::1"]}))
    assert git_config_args("https://github.com/a", policy=v6)[-1] == "http.curloptResolve=github.com:443:[2606:50c0::1]"
    with pytest.raises(OutboundRefused, match="https") as info:
        git_config_args("http://github.com/a.git", pack="slack", policy=Policy(allow_http=True))
    assert info.value.pack == "slack"
    assert git_config_args("file:///srv/repo", policy=policy) == []          # local, not traffic
    assert git_config_args("https://github.com/a.git") == []                  # no policy: earlier behaviour


# when the policy applies (_config.load_settings -> policy_for)
def test_policy_applies_to_config_files_and_policy_keys(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("pack_registry:\n  indices:\n    - url: https://127.0.0.1:9/i.json\n")
    settings = load_settings({"config_path": str(config)}, environ={})
    assert isinstance(settings.outbound, Policy) and _outbound._ACTIVE is settings.outbound  # pylint: disable=protected-access
    inline = {"registries": [{"url": "https://127.0.0.1:9/i.json"}], "config_path": None}
    settings = load_settings(inline, environ={"ATTUNE_CONFIG": str(tmp_path / "none.yaml")})
    assert settings.outbound is None and _outbound._ACTIVE is None  # pylint: disable=protected-access
    settings = load_settings(dict(inline, approved_private_hosts=["127.0.0.1"]), environ={"ATTUNE_CONFIG": str(tmp_path / "none.yaml")})
    assert settings.outbound is not None and "127.0.0.1" in settings.outbound.private_hosts
    settings = load_settings(inline, environ={"ATTUNE_CONFIG": str(tmp_path / "none.yaml"),
                                              "ATTUNE__PACK_REGISTRY__ENABLED": "false"})
    assert settings.outbound is not None and not settings.outbound.enabled
    other = tmp_path / "other.yaml"
    other.write_text("database: {url: x}\n")
    settings = load_settings(dict(inline, config_path=str(other)), environ={})
    assert settings.outbound is None                                          # a config file without pack_registry


def test_policy_for_without_keys_deactivates():
    policy_for({}, from_config_file=True)
    assert _outbound._ACTIVE is not None  # pylint: disable=protected-access
    policy_for({}, from_config_file=False, options={"timeout": 5})
    assert _outbound._ACTIVE is None  # pylint: disable=protected-access


def test_fetch_refuses_before_connecting_and_pins():
    pytest.importorskip("requests")
    from ansible_collections.attune.packs.plugins.module_utils._registry import _fetch

    accepted = []

    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def serve():
        conn, _addr = listener.accept()
        data = conn.recv(65536)
        accepted.append(data)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        # "pinned.example" resolves (stub) to 127.0.0.1 and is approved: the request goes to the checked address,
        # with the host name in the Host header, whatever the system resolver would say about the name
        # ::1 first: nothing listens there, the next checked address is tried (reqwest's resolve_to_addrs)
        policy = Policy(approved_private_hosts=["pinned.example"], allow_http=True,
                        resolver=resolver_of({"pinned.example": ["::1", "127.0.0.1"]}))
        _outbound.activate(policy)
        result = _fetch.fetch_index("http://pinned.example:%d/i.json" % port, timeout=10, allow_http=True)
        assert (result.status, result.body) == (200, b"{}")
    finally:
        thread.join(10)
        listener.close()
    assert accepted and b"Host: pinned.example:%d" % port in accepted[0]
    with pytest.raises(OutboundRefused, match="approved_private_hosts"):
        _outbound.activate(Policy(allow_http=True))
        _fetch.fetch_index("http://127.0.0.1:%d/i.json" % port, timeout=10, allow_http=True)
