# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the ``pack_registry`` configuration (may change without notice).

Sources, weakest first (attune-format.md section 2):

1. built-in defaults (Attune's);
2. the Attune config file (``config_path``, else ``$ATTUNE_CONFIG``, else
   ``/etc/attune/config.yaml``), overlaid with ``config.<environment>.yaml``
   from the same directory when it exists (environment: ``environment``
   option, else ``$ATTUNE__ENVIRONMENT`` like Attune, else ``$ATTUNE_ENV``,
   else Attune's default ``development``);
3. ``ATTUNE__PACK_REGISTRY__<KEY>`` environment variables (and
   ``ATTUNE__PACKS_BASE_DIR``), values parsed as YAML scalars like Attune;
4. plugin options (``registries`` replaces ``indices`` as a whole).

``validate_section()`` is the single validator of a ``pack_registry`` mapping;
the ``registry_config`` role uses it too.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
import unicodedata
from urllib.parse import urlsplit, urlunsplit

from ansible_collections.attune.packs.plugins.module_utils._registry import _outbound
from ansible_collections.attune.packs.plugins.module_utils._base._lazy import YAML
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError

DEFAULT_CONFIG_PATH = "/etc/attune/config.yaml"
DEFAULT_PACKS_BASE_DIR = "/opt/attune/packs"
DEFAULT_PRIORITY = 100
CURRENT_PUBLIC_HOSTS = ["github.com", "codeload.github.com", "raw.githubusercontent.com"]

# key -> (type, default); the table of attune-format.md section 2
SECTION_KEYS = {
    "enabled": (bool, True),
    "indices": (list, []),
    "cache_ttl": (int, 3600),
    "cache_enabled": (bool, True),
    "timeout": (int, 120),
    "connect_timeout": (int, 10),
    "index_max_bytes": (int, 10485760),
    "archive_max_bytes": (int, 104857600),
    "verify_checksums": (bool, True),
    "allow_http": (bool, False),
    "allow_unverified_direct_remote_installs": (bool, False),
    "approved_public_hosts": (list, CURRENT_PUBLIC_HOSTS),
    "approved_private_hosts": (list, []),
    "approved_private_cidrs": (list, []),
}
INDEX_KEYS = ("url", "name", "priority", "enabled", "headers", "ca_path")

FORBIDDEN_HEADERS = frozenset(
    (
        "host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
        "proxy-authenticate", "proxy-authorization", "forwarded", "via", "x-real-ip",
    )
)
FORBIDDEN_HEADER_PREFIXES = ("x-forwarded", "proxy-")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)*\.?\Z")
ENV_PREFIX = "ATTUNE__PACK_REGISTRY__"

# Integer ranges of Attune's config model (crates/common/src/config.rs @03eeaa5):
# RegistryIndexConfig.priority is a u32; PackRegistryConfig.cache_ttl, timeout, connect_timeout, index_max_bytes and
# archive_max_bytes are u64.  The config crate reads YAML integers as i64 (yaml-rust's Yaml::Integer), so a u64 above
# i64::MAX would reach Attune as a float, not as the number written: the u64 keys stop at i64::MAX.
U32_MAX = 2 ** 32 - 1
I64_MAX = 2 ** 63 - 1
INT_RANGES = {"priority": U32_MAX}
# timeout/connect_timeout are seconds this collection waits (socket timeouts, deadlines): any u64 is valid for Attune,
# but beyond ~31 years Python's time and socket functions overflow ("timestamp too large"); refuse such values up front.
MAX_TIMEOUT = 10 ** 9
SECONDS_KEYS = ("timeout", "connect_timeout")


_SPACE = re.compile(r"\s")


def check_url(value, schemes=("https",), what="URL"):
    """Validate a URL: scheme, host, no credentials, no query string.  Returns the value."""
    if not isinstance(value, str) or "://" not in value:
        raise ValueError("%s must be an absolute %s URL" % (what, "/".join(schemes)))
    scheme, rest = value.split("://", 1)
    if scheme.lower() not in schemes:
        raise ValueError("%s must use %s, not %s://" % (what, " or ".join(s + "://" for s in schemes), scheme))
    authority = rest.split("/", 1)[0]
    if "@" in authority:
        raise ValueError("%s must not carry credentials (put them in a header)" % what)
    if "?" in rest or "#" in rest:
        raise ValueError("%s must not carry a query string or fragment" % what)
    if scheme.lower() != "file" and not authority:
        raise ValueError("%s has no host" % what)
    if _SPACE.search(value):
        raise ValueError("%s must not contain whitespace" % what)
    return value


def _fail(path, message):
    error = ConfigError("%s: %s" % (path, message))
    error.path = path
    raise error


def _check_type(path, value, kind, maximum=I64_MAX):
    if kind is bool:
        if not isinstance(value, bool):
            _fail(path, "expected a boolean (true/false), got %r" % (value,))
    elif kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            _fail(path, "expected an integer, got %r" % (_short(value),))
        if value < 0:
            _fail(path, "must not be negative")
        if value > maximum:
            if maximum == MAX_TIMEOUT:
                _fail(path, "%s seconds is out of range: at most %d (about 31 years; longer waits overflow the clocks "
                            "this collection waits with)" % (_short(value), maximum))
            _fail(path, "%s is out of range: the largest value Attune reads is %d" % (_short(value), maximum))
    elif kind is list:
        if not isinstance(value, list):
            _fail(path, "expected a list, got %s" % type(value).__name__)
    return value


def _short(value):
    text = str(value)
    return text if len(text) <= 40 else text[:20] + "...(%d digits)" % len(text)


def parse_cidr(raw):
    """Check a CIDR the way Attune's ``IpCidr::parse`` does; return an error text, or None when it is valid.

    crates/common/src/pack_registry/outbound.rs @5e1b952 ``IpCidr::parse``: the value is trimmed, split at the
    first ``/`` ("missing prefix" without one), the address must parse as an IPv4/IPv6 address ("bad address"; no
    zone index), the prefix as a u8 ("bad prefix"; Rust's integer parser takes an optional leading ``+``), no larger
    than 32 or 128 ("prefix too large").  Host bits may be set (``10.0.0.5/8`` is the network 10.0.0.0/8).  An invalid
    CIDR makes ``OutboundUrlPolicy::from_config`` fail, and with it every registry operation of Attune.
    """
    if not isinstance(raw, str):
        return "expected a string like 10.0.0.0/8, got %s" % type(raw).__name__
    address, sep, prefix = raw.strip().partition("/")
    if not sep:
        return "invalid CIDR %r: missing prefix (write it as address/prefix, e.g. %s/32)" % (raw, address or "10.0.0.1")
    if "%" in address:
        return "invalid CIDR %r: bad address" % raw
    try:
        network = ipaddress.ip_address(address)
    except ValueError:
        return "invalid CIDR %r: bad address" % raw
    if not re.match(r"^\+?[0-9]+\Z", prefix) or int(prefix.lstrip("+")) > 255:
        return "invalid CIDR %r: bad prefix" % raw
    if int(prefix.lstrip("+")) > (32 if network.version == 4 else 128):
        return "invalid CIDR %r: prefix too large" % raw
    return None


def check_header(path, name, value):
    """Refuse managed/hop-by-hop headers and malformed names or values."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        _fail(path, "invalid header name %r" % (name,))
    lowered = name.lower()
    if lowered in FORBIDDEN_HEADERS or lowered.startswith(FORBIDDEN_HEADER_PREFIXES):
        _fail(path, "header %r is managed by the HTTP client or a proxy and cannot be set as a registry header" % name)
    if not isinstance(value, str):
        _fail(path, "value of header %r must be a string" % name)
    if "\r" in value or "\n" in value or "\0" in value:
        _fail(path, "value of header %r contains a line break or NUL" % name)
    # reqwest's HeaderValue (client.rs validate_registry_headers) refuses control characters other than tab; the
    # requests/http.client stack of this collection sends header values as latin-1 and fails on anything else.
    # The value itself is secret: never in the message.
    where = "%s.%s" % (path, name)
    if any((ord(char) < 32 and char != "\t") or ord(char) == 127 for char in value):
        _fail(where, "the value contains a control character (only printable characters and tab are allowed)")
    try:
        value.encode("latin-1")
    except UnicodeEncodeError:
        _fail(where, "the value has characters outside latin-1 (ISO-8859-1), which HTTP headers cannot carry; "
                     "encode it (e.g. base64) before putting it in the header")


def check_registry_name(path, name):
    """A registry's display name: a non-empty string without control or invisible formatting characters.

    NUL, CR/LF and other controls (Unicode category Cc), bidirectional overrides such as U+202E and zero-width
    characters (Cf), and line/paragraph separators (Zl, Zp) would make a name show as something else in logs,
    Attune's UI and this collection's messages.
    """
    if not isinstance(name, str) or not name.strip():
        _fail(path, "must be a non-empty string")
    for char in name:
        if unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp"):
            _fail(path, "the name contains the control or invisible formatting character U+%04X (refused: it would "
                        "make the name show as something else)" % ord(char))
    return name


def check_registry_url(path, url, allow_http):
    schemes = ("https", "http", "file") if allow_http else ("https", "file")
    try:
        check_url(url, schemes, "registry URL")
    except ValueError as exc:
        message = str(exc)
        if url.lower().startswith("http://") and not allow_http:
            message = "plain http:// registry URL refused (set allow_http: true to permit it)"
        _fail(path, "%s (%s)" % (message, redact_url(url)))
    return url


def redact_url(url):
    """Drop credentials, query string and fragment from a URL for display."""
    if not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, netloc, parts.path, "***" if parts.query else "", ""))


def validate_section(section, origin="pack_registry"):
    """Validate and normalise a ``pack_registry`` mapping; return a new dict with every key.

    Errors are :class:`ConfigError` whose message starts with the path of the
    bad value (``pack_registry.indices[1].headers``) and whose ``path``
    attribute holds it.
    """
    if section is None:
        section = {}
    if not isinstance(section, dict):
        _fail(origin, "expected a mapping, got %s" % type(section).__name__)
    unknown = sorted(set(section) - set(SECTION_KEYS))
    if unknown:
        _fail("%s.%s" % (origin, unknown[0]), "unknown key (known keys: %s)" % ", ".join(sorted(SECTION_KEYS)))
    result = {}
    for key, (kind, default) in SECTION_KEYS.items():
        value = section.get(key)
        if value is None:
            value = copy.deepcopy(default)
        maximum = MAX_TIMEOUT if key in SECONDS_KEYS else I64_MAX
        result[key] = _check_type("%s.%s" % (origin, key), value, kind, maximum)
    for key in ("timeout", "connect_timeout", "index_max_bytes", "archive_max_bytes"):
        if result[key] == 0:
            _fail("%s.%s" % (origin, key), "must be greater than 0")
    for key in ("approved_public_hosts", "approved_private_hosts"):
        for position, host in enumerate(result[key]):
            if not isinstance(host, str) or not (_HOSTNAME.match(host) or _is_ip(host)):
                _fail("%s.%s[%d]" % (origin, key, position), "invalid host name %r" % (host,))
    for position, cidr in enumerate(result["approved_private_cidrs"]):
        problem = parse_cidr(cidr)  # Attune's IpCidr::parse (outbound.rs @5e1b952)
        if problem:
            _fail("%s.approved_private_cidrs[%d]" % (origin, position), problem)
    names = {}
    indices = []
    for position, entry in enumerate(result["indices"]):
        indices.append(_validate_index_entry("%s.indices[%d]" % (origin, position), entry, result["allow_http"], names))
    result["indices"] = indices
    return result


def _is_ip(value):
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def _validate_index_entry(path, entry, allow_http, names):
    if not isinstance(entry, dict):
        _fail(path, "expected a mapping with at least 'url'")
    label = path + (" (%s)" % entry["name"] if isinstance(entry.get("name"), str) else "")
    unknown = sorted(set(entry) - set(INDEX_KEYS))
    if unknown:
        _fail("%s.%s" % (label, unknown[0]), "unknown key (known keys: %s)" % ", ".join(INDEX_KEYS))
    url = entry.get("url")
    if not isinstance(url, str) or not url:
        _fail(label + ".url", "required: the index URL (https://, file://, or http:// with allow_http)")
    check_registry_url(label + ".url", url, allow_http)
    name = entry.get("name")
    if name is not None:
        check_registry_name(path + ".name", name)  # not label: it would show the refused name
        if name in names:
            _fail(label + ".name", "duplicate registry name %r (also %s)" % (name, names[name]))
        names[name] = path
    priority = entry.get("priority")
    priority = DEFAULT_PRIORITY if priority is None else _check_type(label + ".priority", priority, int, U32_MAX)
    enabled = entry.get("enabled")
    enabled = True if enabled is None else _check_type(label + ".enabled", enabled, bool)
    headers = entry.get("headers") or {}
    if not isinstance(headers, dict):
        _fail(label + ".headers", "expected a mapping of header names to values")
    seen = set()
    for header, value in headers.items():
        check_header(label + ".headers", header, value)
        if header.lower() in seen:
            _fail(label + ".headers", "header %r given twice" % header)
        seen.add(header.lower())
    ca_path = entry.get("ca_path")
    if ca_path is not None and not isinstance(ca_path, str):
        _fail(label + ".ca_path", "expected a path")
    return {"url": url, "name": name, "priority": priority, "enabled": enabled, "headers": dict(headers), "ca_path": ca_path}


def _deep_merge(base, overlay):
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_merge(base[key], value)
        else:
            base[key] = value
    return base


def describe_yaml_error(exc):
    """Where a YAML error is, without any of the file's content (the file may hold tokens).

    PyYAML's messages quote the offending text (a snippet of the line, the token, an alias or tag name); only the
    position is kept, with the kind of error (its class) as the cause.
    """
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    kind = {"ScannerError": "a token cannot be read", "ParserError": "the structure is broken",
            "ComposerError": "an alias or anchor is wrong", "ConstructorError": "a value cannot be constructed",
            "ReaderError": "a character is not allowed"}.get(type(exc).__name__, "syntax error")
    if mark is not None:
        return "%s at line %d, column %d (file content not shown: it may hold secrets)" % (kind, mark.line + 1, mark.column + 1)
    return "%s (file content not shown: it may hold secrets)" % kind


def read_yaml_file(path):
    """Read a YAML mapping; ConfigError naming the file and the cause."""
    yaml = YAML.load()
    if yaml is None:
        raise ConfigError("PyYAML is required to read %s" % path)
    try:
        with open(path, "rb") as handle:
            data = yaml.safe_load(handle)
    except (IOError, OSError) as exc:
        raise ConfigError("cannot read Attune config file %s: %s" % (path, exc.strerror or exc))
    except yaml.YAMLError as exc:
        raise ConfigError("Attune config file %s is not valid YAML: %s" % (path, describe_yaml_error(exc)))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("Attune config file %s must contain a mapping at the top level" % path)
    return data


# Attune's Config::load (crates/common/src/config.rs @03eeaa5): the environment is $ATTUNE__ENVIRONMENT, else
# default_environment() = "development"; the overlay is the file named exactly "config.<environment>.yaml" (whatever
# the base file is called), merged over the base file when it exists, under the ATTUNE__* variables.  Attune opens that
# name relative to its working directory; this collection looks for it in the directory of the base config file (the
# same place for a service started where its config lives; a module's working directory on the host is arbitrary).
DEFAULT_ENVIRONMENT = "development"


def environment_of(option, environ):
    """The overlay's environment: the option, else $ATTUNE__ENVIRONMENT (Attune's), else $ATTUNE_ENV (this
    collection's variable since 0.1.0, kept for compatibility), else Attune's default ``development``."""
    return option or environ.get("ATTUNE__ENVIRONMENT") or environ.get("ATTUNE_ENV") or DEFAULT_ENVIRONMENT


def overlay_path_of(path, environment):
    return os.path.join(os.path.dirname(path), "config.%s.yaml" % environment)


def load_config_file(path, environment=None):
    """The whole config (all sections) with the environment overlay applied."""
    config = read_yaml_file(path)
    if environment:
        overlay_path = overlay_path_of(path, environment)
        if os.path.abspath(overlay_path) != os.path.abspath(path) and os.path.exists(overlay_path):
            _deep_merge(config, read_yaml_file(overlay_path))
    return config


def env_overrides(environ):
    """``ATTUNE__PACK_REGISTRY__*`` -> dict of pack_registry keys (YAML-typed values)."""
    result = {}
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX):
            continue
        key = name[len(ENV_PREFIX):].lower()
        if key not in SECTION_KEYS:
            raise ConfigError("environment variable %s: unknown pack_registry key %r" % (name, key))
        yaml = YAML.load()
        if yaml is not None:
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError:
                raise ConfigError("environment variable %s: value is not a valid YAML scalar or list" % name)
        result[key] = value
    return result


def tls_verify(validate_certs=True, ca_path=None):
    """The ``verify`` argument of requests for every HTTPS connection of this collection (registries, sources,
    Attune's API): False without certificate validation, else the CA bundle ``ca_path``, else the system store."""
    if validate_certs is False:
        return False
    return ca_path or True


class Settings(object):
    """Effective registry settings for one plugin run.

    The ``pack_registry`` keys (``section``, validated: every key present) are plain attributes of the same name;
    ``outbound`` is the outbound policy (:mod:`_outbound`), set by :func:`load_settings`.
    """

    def __init__(self, section, config_path=None, packs_base_dir=DEFAULT_PACKS_BASE_DIR, runtime=None):
        self.section = section
        self.enabled = section.get("enabled", True)
        self.indices = section.get("indices") or []
        self.cache_ttl = section.get("cache_ttl", SECTION_KEYS["cache_ttl"][1])
        self.cache_enabled = section.get("cache_enabled", True)
        self.timeout = section.get("timeout", SECTION_KEYS["timeout"][1])
        self.connect_timeout = section.get("connect_timeout", SECTION_KEYS["connect_timeout"][1])
        self.index_max_bytes = section.get("index_max_bytes", SECTION_KEYS["index_max_bytes"][1])
        self.archive_max_bytes = section.get("archive_max_bytes", SECTION_KEYS["archive_max_bytes"][1])
        self.verify_checksums = section.get("verify_checksums", True)
        self.allow_http = section.get("allow_http", False)
        self.allow_unverified_direct_remote_installs = section.get("allow_unverified_direct_remote_installs", False)
        self.outbound = None
        self.config_path = config_path
        self.packs_base_dir = packs_base_dir
        runtime = runtime or {}
        self.validate_certs = runtime.get("validate_certs", True) is not False
        self.ca_path = runtime.get("ca_path")
        self.cache_dir = runtime.get("cache_dir") or default_cache_dir()
        self.refresh = bool(runtime.get("refresh"))
        self.strict = bool(runtime.get("strict"))
        self.registry = runtime.get("registry")

    def verify_for(self, registry_ca_path=None):
        """The ``verify`` argument for requests (a registry's own ``ca_path`` first)."""
        return tls_verify(self.validate_certs, registry_ca_path or self.ca_path)


def default_cache_dir(environ=None):
    environ = os.environ if environ is None else environ
    base = environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "attune-packs")


def load_settings(options, environ=None, require_registries=True):
    """Build :class:`Settings` from plugin options (None = not set), the config file and the environment.

    With ``require_registries=False`` (installs from a direct source or a
    lock) a missing default config file is not an error.
    """
    environ = os.environ if environ is None else environ
    options = dict(options or {})
    explicit = options.get("config_path") or environ.get("ATTUNE_CONFIG")
    path = explicit or DEFAULT_CONFIG_PATH
    inline_registries = options.get("registries")
    config = {}
    if os.path.exists(path):
        config = load_config_file(path, environment_of(options.get("environment"), environ))
    elif explicit and inline_registries is None:
        raise ConfigError("Attune config file %s not found (set config_path to an existing file, or give registries)" % path)
    elif inline_registries is None and require_registries:
        raise ConfigError(
            "no pack registries configured: %s does not exist; give the registries option, set config_path, "
            "or put a pack_registry section on the host (role attune.packs.registry_config)" % path
        )
    else:
        path = None
    section = config.get("pack_registry") or {}
    if not isinstance(section, dict):
        raise ConfigError("pack_registry in %s must be a mapping" % path)
    section = dict(section)
    section.update(env_overrides(environ))
    if inline_registries is not None:
        section["indices"] = [dict((k, v) for k, v in entry.items() if v is not None) for entry in inline_registries]
    for key in SECTION_KEYS:
        if key != "indices" and options.get(key) is not None:
            section[key] = options[key]
    origin = "registries option" if inline_registries is not None else ("pack_registry in %s" % path)
    try:
        normalised = validate_section(section, origin="pack_registry")
    except ConfigError as exc:
        exc.message = "invalid registry configuration (%s): %s" % (origin, exc.message)
        exc.args = (exc.format(),)
        raise
    packs_base_dir = environ.get("ATTUNE__PACKS_BASE_DIR") or config.get("packs_base_dir") or DEFAULT_PACKS_BASE_DIR
    settings = Settings(normalised, config_path=path, packs_base_dir=packs_base_dir, runtime=options)
    settings.outbound = _outbound.policy_for(normalised, from_config_file="pack_registry" in config, options=options, environ=environ)
    return settings
