"""Would Attune load this config file?  A test-side re-reading of Attune's config model.

Follows attune-system/attune ``crates/common/src/config.rs`` @03eeaa5 (``Config`` and the structs below it, loaded by
``Config::load`` / ``Config::load_from_file`` through the ``config`` crate) and, for ``pack_registry``, what Attune
does with the section before any registry traffic: ``OutboundUrlPolicy::from_config`` (``IpCidr::parse``,
crates/common/src/pack_registry/outbound.rs @5e1b952) and ``validate_registry_headers``
(crates/common/src/pack_registry/client.rs).  Written independently of the collection's own validator
(plugins/module_utils/_registry/_config.py) so that a mistake there is not repeated here.

Deliberately stricter than Attune where the ``config`` crate coerces (a string "10" for a u64, a float for an
integer): a file that passes here loads in Attune without relying on coercion.  Not covered: ``ATTUNE__*``
environment overrides, and sections this collection never writes (worker, sensor, retention, ...) beyond "is a
mapping when present".

Usage::

    from support.attune_config_validator import problems, assert_loads
    assert_loads("/etc/attune/config.yaml")          # AssertionError listing every problem
    problems(yaml_text)                               # [] when Attune would load it
"""

import ipaddress
import os
import re

import yaml

U16 = 2 ** 16 - 1
U32 = 2 ** 32 - 1
U64 = 2 ** 64 - 1
I64 = 2 ** 63 - 1
USIZE = U64  # 64-bit targets


class Yaml12Loader(yaml.SafeLoader):
    """YAML 1.2 core-schema scalars, as yaml-rust (the ``config`` crate's YAML parser) reads them.

    PyYAML is YAML 1.1: ``yes``/``on``/``no``/``off`` are booleans there and strings for Attune; ``0755`` is octal there
    and decimal (or a string) for Attune; ``1_000`` and ``1:30`` are numbers there and strings for Attune.
    """


Yaml12Loader.yaml_implicit_resolvers = {}
for _tag, _pattern, _first in (
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
     list("-+.0123456789")),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
):
    Yaml12Loader.add_implicit_resolver(_tag, re.compile(_pattern), _first)


def _construct_int(loader, node):
    text = loader.construct_scalar(node)
    if text.startswith("0o"):
        return int(text[2:], 8)
    if text.startswith("0x"):
        return int(text[2:], 16)
    return int(text, 10)


Yaml12Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _Check(object):
    def __init__(self):
        self.problems = []

    def fail(self, path, message):
        self.problems.append("%s: %s" % (path, message))

    # serde types ------------------------------------------------------------------------------------------------
    def string(self, path, value, optional=False):
        if value is None and optional:
            return
        if not isinstance(value, str):
            self.fail(path, "expected a string (serde String), got %r" % (value,))

    def boolean(self, path, value):
        if not isinstance(value, bool):
            self.fail(path, "expected a boolean (serde bool), got %r" % (value,))

    def integer(self, path, value, maximum, name, optional=False):
        if value is None and optional:
            return
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, "expected an integer (serde %s), got %r" % (name, value))
        elif value < 0 or value > maximum:
            self.fail(path, "%d is out of range for %s (0..%d)" % (value, name, maximum))
        elif value > I64:
            # yaml-rust holds integers as i64 (Yaml::Integer); a larger literal is read as a float (Yaml::Real)
            self.fail(path, "%d does not fit yaml-rust's i64 integers: Attune would read a float" % value)

    def strings(self, path, value):
        if not isinstance(value, list):
            self.fail(path, "expected a list of strings (serde Vec<String>), got %r" % (type(value).__name__,))
            return
        for position, item in enumerate(value):
            self.string("%s[%d]" % (path, position), item)

    def mapping(self, path, value, optional=True):
        if value is None and optional:
            return False
        if not isinstance(value, dict):
            self.fail(path, "expected a mapping, got %s" % type(value).__name__)
            return False
        return True


def _pack_registry(check, section):
    # config.rs PackRegistryConfig (no deny_unknown_fields: unknown keys are ignored)
    path = "pack_registry"
    if not check.mapping(path, section, optional=False):
        return
    bools = ("enabled", "cache_enabled", "verify_checksums", "allow_unverified_direct_remote_installs", "allow_http")
    for key in bools:
        if key in section:
            check.boolean("%s.%s" % (path, key), section[key])
    for key in ("cache_ttl", "timeout", "connect_timeout", "index_max_bytes", "archive_max_bytes"):
        if key in section:
            check.integer("%s.%s" % (path, key), section[key], U64, "u64")
    for key in ("approved_public_hosts", "approved_private_hosts", "approved_private_cidrs"):
        if key in section:
            check.strings("%s.%s" % (path, key), section[key])
    # outbound.rs OutboundUrlPolicy::from_config parses every CIDR with IpCidr::parse; one bad CIDR fails it
    for position, cidr in enumerate(section.get("approved_private_cidrs") or []):
        if isinstance(cidr, str):
            problem = _ip_cidr_parse(cidr)
            if problem:
                check.fail("%s.approved_private_cidrs[%d]" % (path, position), problem)
    if "indices" in section:
        indices = section["indices"]
        if not isinstance(indices, list):
            check.fail(path + ".indices", "expected a list (serde Vec<RegistryIndexConfig>)")
            return
        for position, entry in enumerate(indices):
            _registry_index(check, "%s.indices[%d]" % (path, position), entry)


def _registry_index(check, path, entry):
    # config.rs RegistryIndexConfig: url String (required), priority u32, enabled bool, name Option<String>,
    # headers HashMap<String, String> (#[serde(default)]: may be missing, not null)
    if not check.mapping(path, entry, optional=False):
        return
    if "url" not in entry:
        check.fail(path + ".url", "missing field `url`")
    else:
        check.string(path + ".url", entry["url"])
    if "priority" in entry:
        check.integer(path + ".priority", entry["priority"], U32, "u32")
    if "enabled" in entry:
        check.boolean(path + ".enabled", entry["enabled"])
    if "name" in entry:
        check.string(path + ".name", entry["name"], optional=True)
    if "headers" in entry:
        headers = entry["headers"]
        if not isinstance(headers, dict):
            check.fail(path + ".headers", "expected a mapping of strings (serde HashMap<String, String>)")
            return
        for name, value in headers.items():
            where = "%s.headers.%s" % (path, name)
            check.string(where, value)
            problem = _registry_header(name, value)
            if problem:
                check.fail(where, problem)


_MANAGED_HEADERS = ("host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade",
                    "proxy-authenticate", "proxy-authorization", "forwarded", "via", "x-forwarded", "x-real-ip")
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")


def _registry_header(name, value):
    """client.rs validate_registry_headers: managed names, reqwest HeaderName / HeaderValue rules."""
    if not isinstance(name, str) or not _TOKEN.match(name):
        return "invalid header name (reqwest HeaderName::from_bytes)"
    lowered = name.lower()
    if lowered in _MANAGED_HEADERS or lowered.startswith("proxy-") or lowered.startswith("x-forwarded-"):
        return "header managed by the HTTP client (validate_registry_headers)"
    if isinstance(value, str):
        for char in value:
            if (ord(char) < 32 and char != "\t") or ord(char) == 127:
                return "control character in the value (reqwest HeaderValue::from_str)"
    return None


def _ip_cidr_parse(raw):
    """outbound.rs @5e1b952 IpCidr::parse, step by step (independent of the collection's parse_cidr)."""
    trimmed = raw.strip()
    if "/" not in trimmed:
        return "Invalid private CIDR %r: missing prefix" % raw
    address, prefix = trimmed.split("/", 1)
    try:
        if "%" in address:
            raise ValueError("zone index")  # Rust's IpAddr parser has no zone index
        network = ipaddress.ip_address(address)
    except ValueError:
        return "Invalid private CIDR %r: bad address" % raw
    digits = prefix[1:] if prefix.startswith("+") else prefix  # Rust's u8::from_str takes one optional '+'
    if not digits.isdigit() or not digits.isascii() or int(digits) > 255:
        return "Invalid private CIDR %r: bad prefix" % raw
    if int(digits) > (32 if network.version == 4 else 128):
        return "Invalid private CIDR %r: prefix too large" % raw
    return None


def _top_level(check, config):
    # config.rs Config: the scalar fields and the sections this collection's tests write around pack_registry
    for key in ("service_name", "environment", "packs_base_dir", "runtime_envs_dir", "artifacts_dir"):
        if key in config:
            check.string(key, config[key])
    if "default_execution_timeout_seconds" in config:
        check.integer("default_execution_timeout_seconds", config["default_execution_timeout_seconds"], U64, "u64")
    database = config.get("database")
    if check.mapping("database", database):  # DatabaseConfig
        if "url" in database:
            check.string("database.url", database["url"])
        for key in ("max_connections", "min_connections"):
            if key in database:
                check.integer("database." + key, database[key], U32, "u32")
        for key in ("connect_timeout", "idle_timeout"):
            if key in database:
                check.integer("database." + key, database[key], U64, "u64")
        if "log_statements" in database:
            check.boolean("database.log_statements", database["log_statements"])
        if "schema" in database:
            check.string("database.schema", database["schema"], optional=True)
    log = config.get("log")
    if check.mapping("log", log):  # LogConfig
        for key in ("level", "format"):
            if key in log:
                check.string("log." + key, log[key])
        if "console" in log:
            check.boolean("log.console", log["console"])
    security = config.get("security")
    if check.mapping("security", security):  # SecurityConfig
        for key in ("jwt_secret", "encryption_key"):
            if key in security:
                check.string("security." + key, security[key], optional=True)
        for key in ("jwt_access_expiration", "jwt_refresh_expiration"):
            if key in security:
                check.integer("security." + key, security[key], U64, "u64")
        for key in ("enable_auth", "allow_self_registration"):
            if key in security:
                check.boolean("security." + key, security[key])
    server = config.get("server")
    if check.mapping("server", server):  # ServerConfig
        if "host" in server:
            check.string("server.host", server["host"])
        if "port" in server:
            check.integer("server.port", server["port"], U16, "u16")
        if "request_timeout" in server:
            check.integer("server.request_timeout", server["request_timeout"], U64, "u64")
        for key in ("max_body_size", "max_bulk_enqueue_items"):
            if key in server:
                check.integer("server." + key, server[key], USIZE, "usize")
    for key in ("message_queue", "worker", "sensor", "notifier", "executor", "agent", "packs", "artifacts", "storage",
                "pack_upload", "retention", "maintenance", "cache_retention", "cache_admission"):
        check.mapping(key, config.get(key))


def problems_of_data(config):
    """Problems of an already parsed config (a dict), [] when Attune would load it."""
    check = _Check()
    if config is None:
        return []
    if not isinstance(config, dict):
        return ["(top level): expected a mapping (serde struct Config), got %s" % type(config).__name__]
    _top_level(check, config)
    if "pack_registry" in config:
        _pack_registry(check, config["pack_registry"])
    return check.problems


def problems(text):
    """Problems of a config file's text (YAML read the way yaml-rust reads it)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        config = yaml.load(text, Loader=Yaml12Loader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return ["(file): not YAML: %s" % " ".join(str(exc).split())]
    return problems_of_data(config)


def load(path, environ=None, cwd=None):
    """Config::load: the base file ($ATTUNE_CONFIG, else config.yaml), then config.<$ATTUNE__ENVIRONMENT or
    development>.yaml, both relative to the working directory ``cwd``; returns the merged data (config crate merge:
    mappings merged key by key, everything else replaced)."""
    environ = os.environ if environ is None else environ
    cwd = cwd or os.getcwd()
    merged = {}
    for name in (environ.get("ATTUNE_CONFIG", "config.yaml"), "config.%s.yaml" % environ.get("ATTUNE__ENVIRONMENT", "development")):
        full = os.path.join(cwd, name)
        if os.path.exists(full):
            with open(full, encoding="utf-8-sig") as handle:
                _merge(merged, yaml.load(handle.read(), Loader=Yaml12Loader) or {})  # noqa: S506
    return merged


def _merge(base, overlay):
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value


def assert_loads(path):
    """Config::load_from_file(path): AssertionError naming every problem."""
    with open(path, "rb") as handle:
        text = handle.read().decode("utf-8")
    found = problems(text)
    assert not found, "Attune would not load %s:\n  %s" % (path, "\n  ".join(found))
