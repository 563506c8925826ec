# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: glue between Ansible plugins and the registry core (may change without notice).

Imports nothing from Ansible at module level (only where a module is failed), so the core can use it too.

One argument-spec builder for the options every registry plugin shares (the
doc fragment ``attune.packs.registry`` documents the same options; a unit test
keeps them equal), the library check, and the one conversion of core errors into
failed results (:func:`error_result`, used by ``fail_json`` here and by the action
plugins), which redacts secrets when given the redactor.
"""

from __future__ import annotations

from ansible_collections.attune.packs.plugins.module_utils._base import _lazy
from ansible_collections.attune.packs.plugins.module_utils._registry import _config
from ansible_collections.attune.packs.plugins.module_utils._base._errors import InvalidArguments

REQUIRED_LIBRARIES = (
    # (distribution name, import error, minimum version); requests and voluptuous are looked up, not imported
    ("requests", _lazy.REQUESTS.import_error, "2.25"),
    ("PyYAML", _lazy.YAML.import_error, "5.1"),
    ("voluptuous", _lazy.VOLUPTUOUS.import_error, "0.12"),
)

REGISTRY_OPTION_NAMES = (
    "registries", "config_path", "environment", "registry", "allow_http", "validate_certs", "ca_path", "timeout",
    "connect_timeout", "index_max_bytes", "cache_enabled", "cache_ttl", "cache_dir", "refresh", "strict",
    "approved_public_hosts", "approved_private_hosts", "approved_private_cidrs",
)


def registry_argument_spec():
    """Argument spec of the options documented in the ``attune.packs.registry`` doc fragment."""
    return dict(
        registries=dict(
            type="list",
            elements="dict",
            options=dict(
                url=dict(type="str", required=True),
                name=dict(type="str"),
                priority=dict(type="int", default=100),
                enabled=dict(type="bool", default=True),
                headers=dict(type="dict", no_log=True),
                ca_path=dict(type="path"),
            ),
        ),
        config_path=dict(type="path"),
        environment=dict(type="str"),
        registry=dict(type="str"),
        allow_http=dict(type="bool"),
        validate_certs=dict(type="bool", default=True),
        ca_path=dict(type="path"),
        timeout=dict(type="int"),
        connect_timeout=dict(type="int"),
        index_max_bytes=dict(type="int"),
        cache_enabled=dict(type="bool"),
        cache_ttl=dict(type="int"),
        cache_dir=dict(type="path"),
        refresh=dict(type="bool", default=False),
        strict=dict(type="bool", default=False),
        approved_public_hosts=dict(type="list", elements="str"),
        approved_private_hosts=dict(type="list", elements="str"),
        approved_private_cidrs=dict(type="list", elements="str"),
    )


DEFAULT_API_TIMEOUT = 600  # seconds: installs block while Attune runs the pack's tests (doc fragment attune_api)
MAX_API_TIMEOUT = 86400    # a day; more is refused (1e20 would overflow the socket timeout)


def api_argument_spec(env_fallback=None, url_from_env=True, tls=True):
    """Argument spec of the options of the ``attune.packs.attune_api`` doc fragment (a running Attune's API).

    Here, not in ``_api``, so that a module whose API options are handled by its action plugin on the controller
    (``attune_pack``, ``attune_pack_installed``, the query modules) does not carry the API client in its payload.
    ``env_fallback`` is Ansible's ``ansible.module_utils.basic.env_fallback`` (passed in: this file imports nothing
    from Ansible); with it, ``api_token`` defaults to ``ATTUNE_API_TOKEN`` and, with ``url_from_env``, ``api_url``
    to ``ATTUNE_API_URL``.  Plugins for which ``api_url`` switches the target (a host or an Attune) pass
    ``url_from_env=False``: Attune's own workers export ``ATTUNE_API_URL``, and a variable must not silently turn
    a task on a host into a task in an Attune.  ``tls=False`` leaves out ``validate_certs`` and ``ca_path`` for
    plugins that share the registry options of the same names and types.
    """
    def fallback(name):
        return dict(fallback=(env_fallback, [name])) if env_fallback is not None else {}

    spec = dict(
        api_url=dict(type="str", **(fallback("ATTUNE_API_URL") if url_from_env else {})),
        api_token=dict(type="str", no_log=True, **fallback("ATTUNE_API_TOKEN")),
        api_username=dict(type="str"),
        api_password=dict(type="str", no_log=True),
        api_timeout=dict(type="int", default=DEFAULT_API_TIMEOUT),
        api_allow_http=dict(type="bool", default=False),
    )
    if tls:
        spec.update(validate_certs=dict(type="bool", default=True), ca_path=dict(type="path"))
    return spec


def check_target_options(params):
    """Refuse an ``api_url`` that is given but empty (issue 16 item 1).

    ``api_url`` switches the target from a host (or ``packs_dir``) to a running Attune.  An empty value (a variable
    that was misspelt or not set for one host: ``api_url: "{{ packs_api_url }}"``) must not silently mean "the host's
    files": files in ``packs_dir`` are not read by Attune v0.6, so the task would report success while the
    deployment holds nothing.  Omit the option (``default(omit)``) to mean "no Attune".
    """
    value = params.get("api_url")
    if value is not None and not str(value).strip():
        raise InvalidArguments(
            "api_url is empty: give the URL of the Attune API (for example https://attune.example.com), or leave the "
            "option out (default(omit)) to work on the host's files; an empty api_url is refused so that a host whose "
            "URL variable is missing or misspelt is not silently managed as files Attune does not read")


def resolve_argument_spec():
    """Options documented in ``attune.packs.registry.resolve``."""
    return dict(
        prefer_source=dict(type="str", choices=["git", "archive"], default="git"),
        on_registry_error=dict(type="str", choices=["fail", "skip"], default="fail"),
    )


def controller_argument_spec():
    """Options documented in ``attune.packs.registry.controller`` (handled by the action plugins)."""
    return dict(resolve_on=dict(type="str", choices=["host", "controller"], default="host"))


def missing_libraries(names=None):
    """``[(name, minimum, traceback)]`` of the libraries (all, or those in ``names``) that cannot be imported."""
    missing = []
    for name, error, minimum in REQUIRED_LIBRARIES:
        if names is None or name in names:
            message = error()
            if message:
                missing.append((name, minimum, message))
    return missing


def check_libraries(module, names=None):
    missing = missing_libraries(names)
    if missing:
        from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel

        names = ", ".join("%s>=%s" % (name, minimum) for name, minimum, _tb in missing)
        module.fail_json(msg=missing_required_lib(names), exception=missing[0][2])


def registry_options(params):
    return dict((name, params.get(name)) for name in REGISTRY_OPTION_NAMES)


def settings_from_params(params, require_registries=True):
    """The registry :class:`_config.Settings` of a plugin's parameters (the registry options, then the config file)."""
    return _config.load_settings(registry_options(params), require_registries=require_registries)


def redact_strings(value, redact):
    """``value`` with every string in it (in dicts, lists and tuples too) passed through ``redact``."""
    if isinstance(value, dict):
        return dict((key, redact_strings(item, redact)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [redact_strings(item, redact) for item in value]
    if isinstance(value, str):
        return redact(value)
    return value


def error_result(exc, redact=None, msg=None, **extra):
    """The failed result of a core error: the one converter of modules (:func:`fail`) and action plugins.

    ``extra`` (``changed``, ``packs_dir``, ``api_url``, ...), then ``failed``, ``msg`` (``str(exc)`` unless given)
    and ``error`` (``exc.to_dict()``: kind, registry, pack, ...).  With ``redact`` (text -> text, such as the API
    client's ``redact``, which knows the task's secrets) every string of ``msg`` and ``error`` goes through it.
    """
    result = dict(extra)
    result.update(failed=True, msg=str(exc) if msg is None else msg, error=exc.to_dict())
    if redact is not None:
        result.update(msg=redact(result["msg"]), error=redact_strings(result["error"], redact))
    return result


def fail(module, exc, **result):
    """fail_json with the message of a core error and its kind/registry/pack (:func:`error_result`)."""
    module.fail_json(**error_result(exc, **result))


def normalise_names(value):
    """``name`` accepts one spec or a list; a string is never split on commas (ranges contain commas).

    Anything else (``name: 5``, a mapping, a list holding one) is an ``invalid_arguments`` error (issue 16, item 9).
    """
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(item, str) for item in value):
        shown = type(value).__name__ if not isinstance(value, (list, tuple)) else "a list holding %s" % ", ".join(
            sorted(set(type(item).__name__ for item in value if not isinstance(item, str))))
        raise InvalidArguments("name must be a pack spec (a string such as slack@^2.1) or a list of them, got %s" % shown)
    return list(value)
