# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: Attune's outbound policy for registry traffic (may change without notice).

Mirrors ``OutboundUrlPolicy`` of Attune (crates/common/src/pack_registry/outbound.rs @5e1b952) and the git
checks of ``PackInstaller`` (installer.rs @5e1b952).  Before any index, archive or git fetch leaves the
machine, :meth:`Policy.check` decides, in Attune's order:

1. ``pack_registry.enabled: false`` stops every remote fetch (``file://`` and local trees are not remote);
2. the URL is ``http``/``https`` with a host, without credentials, query string or fragment
   (``validate_remote_pack_url``), ``https`` unless ``allow_http`` (``OutboundUrlPolicy::validate``) and, for
   git, ``https`` only (``validate_git_source``);
3. the host (lower-cased, trailing dots removed) is resolved: every DNS answer, or the IP literal;
4. every address is classified with Attune's ``is_public_ip`` after ``normalize_ip`` (IPv4-mapped IPv6 counts as
   IPv4).  A public address needs the host in ``approved_public_hosts``; a private/special one needs the host in
   ``approved_private_hosts`` or the address in one of ``approved_private_cidrs``; a host with both kinds of
   answers is refused even when both are approved (``validate_addresses``).

The refusal is :class:`OutboundRefused` naming the host and the key that would allow it.  The connection is then
made to the address that was checked (DNS rebinding): requests through ``_fetch``'s one-use sessions
(:func:`checked_for`, :func:`prepare_session`, :func:`pinned_connection_class`: no proxies from the environment, the
TCP connection pinned to the checked address, TLS still verified for the host name), git through
:func:`git_config_args` (``http.curloptResolve`` pinning, ``http.proxy=`` empty), as Attune does.

When it applies (see :func:`policy_for`): when the ``pack_registry`` section comes from the host's Attune config
file, or a policy key is given as an ``ATTUNE__PACK_REGISTRY__*`` variable or a plugin option.  Registries given
only as the ``registries`` option keep the earlier behaviour (no host approval).  ``file://`` index URLs stay
allowed: a deliberate difference from Attune, whose client fetches only http(s).

Pure Python, no Ansible imports; ``requests`` is imported lazily by the caller.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import urlsplit

from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError, OutboundRefused

# Policy keys: giving one of them (env or option) turns the policy on even for `registries:` given as options.
POLICY_KEYS = ("enabled", "approved_public_hosts", "approved_private_hosts", "approved_private_cidrs")
# config.rs @03eeaa5 default_pack_registry_approved_public_hosts
DEFAULT_PUBLIC_HOSTS = ("raw.githubusercontent.com", "github.com", "codeload.github.com")
DEFAULT_PORTS = {"http": 80, "https": 443}

_PREFIX = re.compile(r"^\+?[0-9]+\Z")  # Rust's u8::from_str: optional '+', ASCII digits
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)\Z")

_ACTIVE = None  # the policy of the current plugin run (set by _config.load_settings through policy_for)


# -- address classification (outbound.rs: normalize_ip, is_public_ip) -----------------------------------------


def normalize_ip(ip):
    """outbound.rs ``normalize_ip``: an IPv4-mapped IPv6 address (``::ffff:a.b.c.d``) becomes the IPv4 address."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if ip.version == 6 and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_public_ip(ip):
    """outbound.rs ``is_public_ip``, range for range (no normalisation here: call :func:`normalize_ip` first)."""
    if isinstance(ip, str):
        ip = ipaddress.ip_address(ip)
    if ip.version == 4:
        a, b, c, d = ip.packed
        special = (
            a == 0                                  # 0.0.0.0/8 "this network"
            or a == 10                              # 10/8 private
            or a == 127                             # loopback
            or (a == 100 and 64 <= b <= 127)        # 100.64/10 shared address space (CGNAT)
            or (a == 169 and b == 254)              # link-local
            or (a == 172 and 16 <= b <= 31)         # 172.16/12 private
            or (a == 192 and b == 0 and c == 0)     # 192.0.0/24 IETF protocol assignments
            or (a == 192 and b == 0 and c == 2)     # TEST-NET-1
            or (a == 192 and b == 88 and c == 99)   # 6to4 relay anycast
            or (a == 192 and b == 168)              # 192.168/16 private
            or (a == 198 and b in (18, 19))         # 198.18/15 benchmarking
            or (a == 198 and b == 51 and c == 100)  # TEST-NET-2
            or (a == 203 and b == 0 and c == 113)   # TEST-NET-3
            or a >= 224                             # multicast, reserved (240/4) and broadcast
            or (a, b, c, d) == (255, 255, 255, 255)
        )
        return not special
    s = [int.from_bytes(ip.packed[i:i + 2], "big") for i in range(0, 16, 2)]
    value = int(ip)
    special = (
        value == 0                                      # Ipv6Addr::is_unspecified
        or value == 1                                   # Ipv6Addr::is_loopback (::1 only)
        or (s[0] & 0xff00) == 0xff00                    # is_multicast ff00::/8
        or (s[0] & 0xfe00) == 0xfc00                    # is_unique_local fc00::/7
        or (s[0] & 0xffc0) == 0xfe80                    # is_unicast_link_local fe80::/10
        or (s[0] & 0xffc0) == 0xfec0                    # site-local fec0::/10
        or (s[0] == 0x2001 and s[1] == 0x0db8)          # documentation 2001:db8::/32
        or (s[0] == 0x2001 and s[1] == 0x0002)          # benchmarking 2001:2::/32 (as Attune tests it)
        or (s[0] == 0x2001 and s[1] == 0x0010)          # ORCHID 2001:10::/32
        or (s[0] == 0x2001 and (s[1] & 0xfff0) == 0x0020)  # ORCHIDv2 2001:20::/28
        or s[0] == 0x2002                               # 6to4 2002::/16
        or (s[0] == 0x0064 and s[1] == 0xff9b and s[2] == 0 and s[3] == 0)  # NAT64 64:ff9b::/64 (as tested)
        or (s[0] == 0x0064 and s[1] == 0xff9b and s[2] == 0x0001)            # local NAT64 64:ff9b:1::/48
        or (s[0] == 0x0100 and s[1] == 0 and s[2] == 0 and s[3] == 0)        # discard-only 100::/64
        or (s[0] == 0x2001 and s[1] == 0)               # Teredo 2001::/32
    )
    return not special


class IpCidr(object):
    """outbound.rs ``IpCidr``: ``address/prefix``; the address is not masked, families never match each other."""

    __slots__ = ("network", "prefix", "text")

    def __init__(self, network, prefix, text):
        self.network = network
        self.prefix = prefix
        self.text = text

    @classmethod
    def parse(cls, raw):
        """outbound.rs ``IpCidr::parse``: trim, split at the first ``/``; ValueError with Attune's reasons."""
        text = raw.strip()
        if "/" not in text:
            raise ValueError("invalid private CIDR %r: missing prefix" % raw)
        address, prefix = text.split("/", 1)
        try:
            # Rust's IpAddr::from_str: no surrounding spaces, no zone index, no leading zeros
            if address != address.strip() or "%" in address:
                raise ValueError(address)
            network = ipaddress.ip_address(address)
        except ValueError:
            raise ValueError("invalid private CIDR %r: bad address" % raw)
        if not _PREFIX.match(prefix) or int(prefix) > 255:
            raise ValueError("invalid private CIDR %r: bad prefix" % raw)
        prefix = int(prefix)
        if prefix > (32 if network.version == 4 else 128):
            raise ValueError("invalid private CIDR %r: prefix too large" % raw)
        return cls(network, prefix, text)

    def contains(self, candidate):
        """outbound.rs ``IpCidr::contains`` / ``prefix_matches``."""
        if candidate.version != self.network.version:
            return False
        width = 32 if candidate.version == 4 else 128
        if self.prefix == 0:
            return True
        mask = ((1 << width) - 1) ^ ((1 << (width - self.prefix)) - 1)
        return (int(self.network) & mask) == (int(candidate) & mask)


def normalize_host_name(host):
    """outbound.rs ``from_config`` ``normalize``: trim, drop trailing dots, ASCII lower-case."""
    return host.strip().rstrip(".").lower() if isinstance(host, str) else ""


# -- URL checks (outbound.rs validate_remote_pack_url, OutboundUrlPolicy::validate) ---------------------------


class Target(object):
    """A URL that passed the structural checks: scheme, host key (as Attune compares it), port, IP literal or None."""

    __slots__ = ("url", "scheme", "host", "connect_host", "port", "literal")

    def __init__(self, url, scheme, host, connect_host, port, literal):
        self.url = url
        self.scheme = scheme
        self.host = host
        self.connect_host = connect_host
        self.port = port
        self.literal = literal


def ipv6_text(address):
    """RFC 5952 text of an IPv6 address as the ``url`` crate serialises it: eight hex groups, the longest run (two
    or more) of zero groups as ``::``, never a dotted IPv4 tail (Python 3.13's ``compressed`` writes
    ``::ffff:127.0.0.1`` where 3.12 and older, and the url crate, write ``::ffff:7f00:1``)."""
    groups = [int.from_bytes(address.packed[i:i + 2], "big") for i in range(0, 16, 2)]
    best_start, best_len, start = -1, 0, None
    for index, group in enumerate(groups + [1]):
        if group == 0 and index < 8:
            start = index if start is None else start
            continue
        if start is not None and index - start > best_len:
            best_start, best_len = start, index - start
        start = None
    text = ["%x" % group for group in groups]
    if best_len >= 2:
        return ":".join(text[:best_start]) + "::" + ":".join(text[best_start + best_len:])
    return ":".join(text)


def _host_of(parts, shown):
    """The host as the ``url`` crate's ``host_str`` gives it after Attune's normalisation."""
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if netloc.startswith("["):
        inside = netloc[1:].split("]", 1)[0]
        try:
            if "%" in inside:  # the url crate has no zone identifiers
                raise ValueError(inside)
            literal = ipaddress.IPv6Address(inside)
        except ValueError:
            raise OutboundRefused("outbound URL %s has an invalid IPv6 host" % shown, host=inside)
        text = ipv6_text(literal)
        return "[%s]" % text, text, literal
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise OutboundRefused("outbound URL %s is missing a host" % shown)
    try:
        host = host.encode("ascii").decode("ascii")
    except UnicodeError:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise OutboundRefused("outbound URL %s has an invalid host" % shown)
    host = host.lower()
    if _NUMERIC_LABEL.match(host.split(".")[-1]):
        # the url crate (WHATWG) parses a host ending in a number as IPv4 (127.1, 0x7f.0.0.1 …)
        try:
            literal = ipaddress.IPv4Address(socket.inet_aton(host))
        except (OSError, ValueError):
            raise OutboundRefused("outbound URL %s has an invalid IPv4 host" % shown, host=host)
        return str(literal), str(literal), literal
    return host, host, None


def parse_target(url, allow_http=False, git=False):
    """Structural checks of a remote URL, in Attune's order; :class:`OutboundRefused` or a :class:`Target`."""
    from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url  # pylint: disable=import-outside-toplevel

    shown = redact_url(url)
    if not isinstance(url, str):
        raise OutboundRefused("outbound URL must be a string")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise OutboundRefused("invalid outbound URL %s" % shown)
    scheme = parts.scheme.lower()
    # validate_remote_pack_url
    if scheme not in ("http", "https"):
        raise OutboundRefused("outbound URL %s must use http or https%s" % (shown, " (git sources: https only)" if git else ""))
    if not parts.netloc.rsplit("@", 1)[-1]:
        raise OutboundRefused("outbound URL %s is missing a host" % shown)
    if parts.username or parts.password:
        raise OutboundRefused("outbound URL %s must not contain credentials; put them in a header" % shown)
    if "#" in url:
        raise OutboundRefused("outbound URL %s must not contain a fragment" % shown)
    if "?" in url:
        raise OutboundRefused("outbound URL %s must not contain query parameters; put credentials in a header" % shown)
    # OutboundUrlPolicy::validate
    if scheme != "https" and not (allow_http and scheme == "http" and not git):
        if git:
            # installer.rs validate_git_source: "Git pack URLs must use HTTPS" (allow_http does not apply)
            raise OutboundRefused("git URL %s must use https (git over http is never allowed by the outbound policy)" % shown)
        raise OutboundRefused("outbound URL %s must use https; set pack_registry.allow_http: true to permit http" % shown,
                              key="pack_registry.allow_http")
    host, connect_host, literal = _host_of(parts, shown)
    return Target(url, scheme, host, connect_host, port or DEFAULT_PORTS[scheme], literal)


def system_resolver(host, port):
    """Every address ``host`` resolves to (tokio's ``lookup_host`` = getaddrinfo), as strings."""
    answers = socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    seen = []
    for _family, _type, _proto, _name, sockaddr in answers:
        address = sockaddr[0].split("%", 1)[0]
        if address not in seen:
            seen.append(address)
    return seen


class Checked(object):
    """The outcome of :meth:`Policy.check`: the target and the addresses it may be connected to."""

    __slots__ = ("target", "addresses")

    def __init__(self, target, addresses):
        self.target = target
        self.addresses = addresses

    @property
    def pinned(self):
        """The address connections go to (Attune's git pins the first validated address too)."""
        return self.addresses[0]


class Policy(object):
    """``OutboundUrlPolicy`` built from a validated ``pack_registry`` section (``_config.validate_section``)."""

    def __init__(self, enabled=True, approved_public_hosts=DEFAULT_PUBLIC_HOSTS, approved_private_hosts=(),
                 approved_private_cidrs=(), allow_http=False, resolver=None, origin="pack_registry"):
        self.enabled = enabled
        self.public_hosts = frozenset(h for h in (normalize_host_name(h) for h in approved_public_hosts) if h)
        self.private_hosts = frozenset(h for h in (normalize_host_name(h) for h in approved_private_hosts) if h)
        cidrs = []
        for position, raw in enumerate(approved_private_cidrs):
            try:
                cidrs.append(IpCidr.parse(raw))
            except (ValueError, AttributeError) as exc:
                # RegistryClient::new fails on such a CIDR (a configuration error in Attune)
                raise ConfigError("%s.approved_private_cidrs[%d]: %s" % (origin, position, exc))
        self.private_cidrs = cidrs
        self.allow_http = allow_http
        self.resolver = resolver or system_resolver
        self.origin = origin

    @classmethod
    def from_section(cls, section, resolver=None, origin="pack_registry"):
        return cls(
            enabled=section.get("enabled", True) is not False,
            approved_public_hosts=section.get("approved_public_hosts") if section.get("approved_public_hosts") is not None
            else DEFAULT_PUBLIC_HOSTS,
            approved_private_hosts=section.get("approved_private_hosts") or (),
            approved_private_cidrs=section.get("approved_private_cidrs") or (),
            allow_http=bool(section.get("allow_http")),
            resolver=resolver,
            origin=origin,
        )

    def key(self, name):
        return "%s.%s" % (self.origin, name)

    def check(self, url, git=False):
        """Decide before connecting; :class:`OutboundRefused` or a :class:`Checked` with the addresses to use."""
        if not self.enabled:
            raise OutboundRefused("%s is false: no remote registry, archive or git traffic (refused %s)"
                                  % (self.key("enabled"), _shown(url)), key=self.key("enabled"))
        target = parse_target(url, allow_http=self.allow_http, git=git)
        if (target.literal is None and target.host not in self.public_hosts and target.host not in self.private_hosts
                and not self.private_cidrs):
            # A name no answer of which could be approved: refused without a DNS query (Attune resolves first and then refuses the
            # public or private answer, or fails to resolve: refused either way, only the message differs).
            raise OutboundRefused(
                "outbound host %r is not approved: add it to %s (public host) or to %s / a range in %s (private network)"
                % (target.host, self.key("approved_public_hosts"), self.key("approved_private_hosts"), self.key("approved_private_cidrs")),
                host=target.host, key=self.key("approved_public_hosts"))
        if target.literal is not None:
            addresses = [target.literal]
        else:
            try:
                answers = self.resolver(target.connect_host, target.port)
            except (OSError, UnicodeError) as exc:
                err = OutboundRefused("outbound host %r does not resolve (%s)" % (target.host, getattr(exc, "strerror", None) or exc),
                                      host=target.host)
                err.unresolved = True  # a DNS failure, not a refusal: _fetch reports it as the source's/registry's error
                raise err
            addresses = [ipaddress.ip_address(a) if isinstance(a, str) else a for a in answers]
        if not addresses:
            err = OutboundRefused("outbound host %r resolved to no addresses" % target.host, host=target.host)
            err.unresolved = True
            raise err
        self.check_addresses(target.host, addresses)
        return Checked(target, addresses)

    def check_addresses(self, host, addresses):
        """outbound.rs ``validate_addresses``: first unapproved answer wins; then mixed answers are refused."""
        public_approved = host in self.public_hosts
        private_host_approved = host in self.private_hosts
        saw_public = saw_special = False
        for address in addresses:
            ip = normalize_ip(address)
            if is_public_ip(ip):
                saw_public = True
                if not public_approved:
                    raise OutboundRefused(
                        "public outbound host %r (%s) is not approved: add it to %s to allow it"
                        % (host, ip, self.key("approved_public_hosts")), host=host, key=self.key("approved_public_hosts"))
            else:
                saw_special = True
                if not private_host_approved and not any(cidr.contains(ip) for cidr in self.private_cidrs):
                    raise OutboundRefused(
                        "outbound host %r resolved to private/special address %s without private-network approval: add the host "
                        "to %s or a range containing %s to %s" % (
                            host, ip, self.key("approved_private_hosts"), ip, self.key("approved_private_cidrs")),
                        host=host, key=self.key("approved_private_hosts"))
        if saw_public and saw_special:
            raise OutboundRefused("outbound host %r has mixed public and private/special DNS answers; refused whatever is approved"
                                  % host, host=host)


def _shown(url):
    from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url  # pylint: disable=import-outside-toplevel

    return redact_url(url)


# -- when the policy applies, and the active policy of this run ----------------------------------------------


def policy_for(section, from_config_file=False, options=None, environ=None, resolver=None):
    """The :class:`Policy` of a run, or None (earlier behaviour); also makes it the active policy.

    It applies when the ``pack_registry`` section came from the Attune config file, or when a policy key
    (:data:`POLICY_KEYS`) is given as an ``ATTUNE__PACK_REGISTRY__<KEY>`` variable or a plugin option.
    """
    options = options or {}
    environ = environ or {}
    explicit = any(options.get(key) is not None for key in POLICY_KEYS) or any(
        ("ATTUNE__PACK_REGISTRY__" + key.upper()) in environ for key in POLICY_KEYS)
    policy = Policy.from_section(section, resolver=resolver) if (from_config_file or explicit) else None
    activate(policy)
    return policy


def activate(policy):
    """Make ``policy`` (or None) the one :func:`checked_for` and :func:`git_config_args` apply."""
    global _ACTIVE  # pylint: disable=global-statement
    _ACTIVE = policy


def is_remote(url):
    return isinstance(url, str) and not url.strip().lower().startswith("file:")


# -- the hooks: requests and git -------------------------------------------------------------------------------


def checked_for(url, policy=None):
    """The checked URL (``CheckedUrl``) for ``url`` under ``policy`` (default: the active one), or None when no
    policy applies or the URL is not remote traffic.  OutboundRefused before any connection when refused."""
    policy = policy or _ACTIVE
    if policy is None or not is_remote(url):
        return None
    return policy.check(url)


def prepare_session(session, checked):
    """Make a one-use requests ``session`` fit for ``checked``: proxy variables ignored (``trust_env=False``,
    reqwest's ``no_proxy()``) and, for a host name, a Host header naming it (the TCP connection goes to the
    checked address through :func:`pinned_connection_class`)."""
    session.trust_env = False
    session.proxies = {}
    target = checked.target
    if target.literal is None:
        default_port = target.port == DEFAULT_PORTS[target.scheme]
        session.headers["Host"] = target.connect_host if default_port else "%s:%d" % (target.connect_host, target.port)
    return session


def pinned_connection_class(checked, connection_class):
    """``connection_class`` (a urllib3 HTTP(S)Connection) whose TCP connections go to the checked addresses, in
    DNS order like reqwest's ``resolve_to_addrs``; TLS SNI and certificate verification still use the host name."""
    from urllib3.exceptions import ConnectTimeoutError, NewConnectionError  # pylint: disable=import-outside-toplevel

    addresses = [str(address) for address in checked.addresses]
    host = checked.target.connect_host

    class Pinned(connection_class):
        # urllib3 (1.26 and 2.x) opens the TCP connection in _new_conn() to ``_dns_host``; TLS uses
        # ``server_hostname`` for SNI and the certificate check; the Host header is set on the session.
        def _new_conn(self):
            if self.host.rstrip(".").lower() != host and self.host not in addresses:
                raise OutboundRefused("connection to %r was not checked by the outbound policy" % self.host, host=self.host)
            if getattr(self, "server_hostname", "") is None:
                self.server_hostname = host
            error = None
            for address in addresses:
                self._dns_host = address  # pylint: disable=attribute-defined-outside-init
                try:
                    return super(Pinned, self)._new_conn()
                except (NewConnectionError, ConnectTimeoutError) as exc:
                    error = exc
            raise error

    return Pinned


def git_config_args(url, pack=None, policy=None):
    """``-c`` arguments for git (hook of ``_git.clone``); [] without a policy.

    With one: ``file://`` is left to ``allow_local_git`` (not remote traffic); any other URL must be https
    (installer.rs ``validate_git_source``) and pass :meth:`Policy.check`; git then gets
    ``http.curloptResolve=<host>:<port>:<checked address>`` (installer.rs ``git_clone_arguments``, git >= 2.37;
    older git ignores it) and ``http.proxy=`` (empty: no proxy, whatever the environment says).
    """
    policy = policy or _ACTIVE
    if policy is None:
        return []
    if not is_remote(url):
        return []  # file:// (allow_local_git): a local repository, no traffic
    try:
        checked = policy.check(url, git=True)
    except OutboundRefused as exc:
        exc.pack = exc.pack or pack
        exc.args = (exc.format(),)
        raise
    args = ["-c", "http.proxy="]
    if checked.target.literal is None:
        address = checked.pinned
        shown = "[%s]" % address if address.version == 6 else str(address)
        args += ["-c", "http.curloptResolve=%s:%d:%s" % (checked.target.connect_host, checked.target.port, shown)]
    return args
