# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Options shared by every plugin that reads pack registries.

    Keep in sync with ``registry_argument_spec()`` in
    ``plugins/module_utils/_base/_common.py``; ``tests/unit/plugins/doc_fragments/test_registry.py``
    checks that they agree.
    """

    DOCUMENTATION = r"""
options:
  registries:
    description:
      - The registries to consult, replacing C(pack_registry.indices) of the Attune config file.
      - When omitted, the registries come from the Attune config file on the host that runs the plugin
        (see O(config_path)).
      - Registries are consulted in ascending O(registries[].priority); equal priorities keep list order.
    type: list
    elements: dict
    suboptions:
      url:
        description:
          - URL of the index file. V(https://…), V(file:///path), or V(http://…) when O(allow_http=true).
          - Query strings and credentials in the URL are refused; put credentials in O(registries[].headers).
        type: str
        required: true
      name:
        description:
          - Name of the registry, used in results, errors and O(registry). Defaults to the URL.
        type: str
      priority:
        description:
          - Lower numbers are consulted first.
        type: int
        default: 100
      enabled:
        description:
          - Disabled registries are listed but never consulted.
        type: bool
        default: true
      headers:
        description:
          - HTTP headers sent to this registry, typically C(Authorization). Values are secret; they never appear in
            results, errors, logs or cache files.
          - Headers managed by the HTTP client (C(Host), C(Content-Length), C(Connection), C(Proxy-*), C(X-Forwarded*) …)
            are refused.
        type: dict
      ca_path:
        description:
          - CA bundle (PEM) used to verify this registry's TLS certificate, instead of O(ca_path).
        type: path
  config_path:
    description:
      - Attune config file to read C(pack_registry) and C(packs_base_dir) from.
      - Defaults to E(ATTUNE_CONFIG), else C(/etc/attune/config.yaml). The overlay C(config.<environment>.yaml)
        (always that name, whatever the base file is called) is merged over it when it exists in the same directory,
        and E(ATTUNE__PACK_REGISTRY__<KEY>) environment variables override single keys, as in Attune.
      - Attune (C(Config::load) in C(crates/common/src/config.rs)) opens the overlay relative to its working
        directory; this collection looks for it next to the base file, which is the same place when the service runs
        where its config lives.
      - A missing file is an error when it was named explicitly, or when O(registries) is not given.
      - Options given to the plugin win over the file.
    type: path
  environment:
    description:
      - Attune environment whose C(config.<environment>.yaml) overlay is applied.
      - Defaults to E(ATTUNE__ENVIRONMENT) (Attune's variable), else E(ATTUNE_ENV) (this collection's variable since
        0.1.0, kept for compatibility), else C(development), Attune's default - so C(config.development.yaml) is
        applied when it exists and nothing else is set, as Attune does.
    type: str
  registry:
    description:
      - Consult only the registry with this name (or URL). An unknown name is an error.
    type: str
  allow_http:
    description:
      - Permit plain V(http://) registries. Defaults to C(pack_registry.allow_http), else V(false).
    type: bool
  validate_certs:
    description:
      - Verify TLS certificates. Only set V(false) for testing.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) used to verify registry certificates instead of the system trust store.
      - A registry's own O(registries[].ca_path) takes precedence.
    type: path
  timeout:
    description:
      - Total time allowed for one request, in seconds -- one index fetch or one archive download, from connecting to the
        last byte of the body (TLS handshake and headers included). A server that keeps sending a byte now and then
        cannot extend it; the request is cut and fails with a timeout error. A git clone gets the same total time.
      - Not included are the DNS lookup and C(file://) reads. Defaults to C(pack_registry.timeout), else V(120).
    type: int
  connect_timeout:
    description:
      - Time allowed to establish a connection, in seconds. Defaults to C(pack_registry.connect_timeout), else V(10).
    type: int
  index_max_bytes:
    description:
      - Larger index bodies are refused, whatever C(Content-Length) says. Defaults to
        C(pack_registry.index_max_bytes), else V(10485760).
    type: int
  cache_enabled:
    description:
      - Use the on-disk index cache. Defaults to C(pack_registry.cache_enabled), else V(true).
    type: bool
  cache_ttl:
    description:
      - Seconds a cached index is used without asking the registry. After that it is revalidated with
        C(ETag)/C(If-Modified-Since). An entry dated in the future is revalidated too.
        Defaults to C(pack_registry.cache_ttl), else V(3600).
    type: int
  cache_dir:
    description:
      - Directory of the index cache, shared by runs and parallel processes of the same user.
      - Defaults to C($XDG_CACHE_HOME/attune-packs), else C(~/.cache/attune-packs) of the user running the plugin.
      - Fresh cached indices are used without asking the registry, so the directory must be private. It is created with
        mode C(0700); an existing one that is a symbolic link, owned by another user or writable by group or others
        (for example a shared directory under C(/tmp)) is refused with an C(unsafe_cache) error. Files inside it that
        are symlinks, of another owner or writable by others are ignored and fetched again.
    type: path
  refresh:
    description:
      - Revalidate every consulted index now, even if the cached copy is still fresh.
    type: bool
    default: false
  strict:
    description:
      - Refuse unknown keys in indices (for registry operators checking their index). By default unknown keys are
        tolerated for forward compatibility.
    type: bool
    default: false
  approved_public_hosts:
    description:
      - Public host names that indices, archives and git sources may be fetched from (Attune's outbound policy).
      - Defaults to C(pack_registry.approved_public_hosts), else Attune's V(raw.githubusercontent.com), V(github.com),
        V(codeload.github.com).
      - Giving any C(approved_*) option applies the outbound policy even when O(registries) is given.
    type: list
    elements: str
  approved_private_hosts:
    description:
      - Host names or IP literals that may be fetched from although they resolve to private or special addresses
        (loopback, RFC 1918, link-local, CGNAT, documentation ranges, unique-local IPv6 …).
      - Defaults to C(pack_registry.approved_private_hosts), else none.
    type: list
    elements: str
  approved_private_cidrs:
    description:
      - Private or special address ranges (V(10.20.0.0/16); the prefix is required) that may be fetched from.
      - Defaults to C(pack_registry.approved_private_cidrs), else none.
    type: list
    elements: str
notes:
  - Registry options that are not set are taken from the C(pack_registry) section of the Attune config file, then
    from Attune's defaults.
  - "Outbound policy (Attune's C(OutboundUrlPolicy)): when the C(pack_registry) section comes from the Attune config
    file, or a policy key is given (an O(approved_public_hosts)-style option or an E(ATTUNE__PACK_REGISTRY__<KEY>)
    variable), every index, archive and git fetch is checked before connecting. C(enabled: false) stops all remote
    traffic; URLs with credentials, a query string or a fragment are refused; git only over https; the host is
    resolved and every answer classified as Attune does. A public address needs the host in
    C(approved_public_hosts), a private or special one the host in C(approved_private_hosts) or the address in
    C(approved_private_cidrs); mixed public and private answers are refused. The connection goes to the checked
    address, without proxies. A refusal is an C(outbound_refused) error naming the host and the key that would
    allow it. Registries given only as O(registries) (no config file section, no policy key) are not checked,
    as before. C(file://) index URLs stay allowed, a deliberate difference from Attune."
"""

    RESOLVE = r"""
options:
  prefer_source:
    description:
      - Source type reported as RV(attune.packs.attune_pack_info#module:packs[].source) when an entry has several.
      - The other sources are listed in RV(attune.packs.attune_pack_info#module:packs[].sources).
    type: str
    choices: [git, archive]
    default: git
  on_registry_error:
    description:
      - What resolution does when a registry that comes before the one holding the pack cannot be fetched or validated.
      - V(fail) (default) stops, because a lower-priority registry could carry a different pack with the same ref
        (dependency confusion). V(skip) reports the registry in
        RV(attune.packs.attune_pack_info#module:packs[].skipped_registries) and goes on; the result of
        M(attune.packs.attune_pack_info) and M(attune.packs.attune_pack) also lists them once at its top level
        (RV(attune.packs.attune_pack_info#module:skipped_registries)).
    type: str
    choices: [fail, skip]
    default: fail
"""

    CONTROLLER = r"""
options:
  resolve_on:
    description:
      - Where the registries are read.
      - V(host) runs the module on the target host, which reads its own Attune config and needs network access to the
        registries and the Python libraries requests, PyYAML and voluptuous.
      - V(controller) does the registry work in the action plugin on the controller, once for all hosts of the play
        (every fork shares the on-disk index cache of the controller user, under a lock, so a cold cache costs one
        fetch of each index per play); the hosts need neither registry access nor those libraries.
        O(config_path) and O(ca_path) then name files on the controller.
    type: str
    choices: [host, controller]
    default: host
"""
