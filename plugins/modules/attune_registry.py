#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: attune_registry
short_description: Manage one pack registry in a running Attune (its pack indices)
version_added: 0.2.0
description:
  - Adds, changes or removes one pack registry (pack index) in the database of a running Attune, through its API
    (C(/api/v1/pack-indices)). These are the registries Attune itself searches and installs from.
  - Once the database holds any registry besides the seeded standard index, the C(pack_registry.indices) of
    Attune's config file have no effect any more (Attune's C(effective_pack_registry)). Use this module, or the
    C(registry_config) role's API target, to manage the registries of a running Attune.
  - The registry is identified by O(id) (Attune's id) when given, else by O(url) (compared as Attune does, host case
    and default port ignored), else by O(name).
  - Only the options a task sets change a registry that exists; O(name), O(position), O(enabled) and O(headers)
    left out keep their stored values (a token rotation does not re-enable a disabled registry). A new registry
    gets Attune's defaults for them (no name, appended after the last one, enabled, no headers).
  - Every option is checked before any request, with the rules of M(attune.packs.attune_registry_config) and of
    Attune's outbound policy; a bad value fails with error kind C(invalid_arguments) and nothing is sent.
  - The module talks to the API only; run it where the API is reachable (usually C(delegate_to=localhost) or a
    play on C(localhost)).
author:
  - attune.packs contributors (@attune-system)
requirements:
  - requests >= 2.25
extends_documentation_fragment:
  - attune.packs.attune_api
  - attune.packs.attributes
options:
  id:
    description:
      - Attune's id of the registry (RV(registry.id), or C(id) in the list of M(attune.packs.attune_pack_registries)).
      - When given, it identifies the registry, and O(url) and O(name) are values to set. It cannot create a
        registry; with O(state=present) a missing id fails with C(api_not_found), with O(state=absent) it is
        already absent.
      - Use it to remove a registry whose URL the list shows redacted (a query string or credentials Attune
        accepted from elsewhere).
    type: int
    version_added: 0.3.0
  url:
    description:
      - URL of the registry's index file (V(https://…)). It must pass the checks of attune_registry_config (the
        file target) and of Attune's outbound policy for a managed index. So it uses https (V(http://) only with
        O(allow_http=true)), and has no credentials, no query string, no fragment and no whitespace. V(file://) is
        refused.
      - Credentials or a query string given in the URL by mistake are masked in the task's output.
      - Required to create a registry. When given without O(id), it identifies the registry; when omitted, O(name)
        does.
    type: str
  name:
    description:
      - Display name of the registry in Attune. A non-empty string without control characters (NUL, CR/LF …) or
        invisible formatting characters (bidirectional overrides such as U+202E, zero-width characters).
      - Identifies the registry when neither O(id) nor O(url) is given (the name must then be unique in Attune's
        list).
      - When omitted, an existing registry keeps its name and a new one has none.
    type: str
  allow_http:
    description:
      - Accept a plain V(http://) O(url). Attune then fetches the index, and sends O(headers), in cleartext; Attune
        itself also needs C(pack_registry.allow_http) for it.
      - Without it an V(http://) URL fails before any request (so no header value is ever handed to Attune for an
        http registry by mistake).
    type: bool
    default: false
    version_added: 0.3.0
  state:
    description:
      - V(present) creates the registry or updates the properties given; V(absent) deletes it.
      - Attune refuses (HTTP 409) to delete the last registry besides the standard index while the config file
        lists enabled registries, because they would come back into force; the module then fails and changes
        nothing.
    type: str
    choices: [present, absent]
    default: present
  position:
    description:
      - Position in Attune's search order; lower positions are searched first. The standard index is seeded at 0.
      - From 0 to 2147483647 (Attune stores an i32).
      - When omitted, a new registry is appended after the last one and an existing registry keeps its position.
    type: int
  enabled:
    description:
      - Disabled registries stay in the list but Attune neither searches nor installs from them.
      - When omitted, an existing registry keeps its state (a disabled registry stays disabled) and a new one is
        enabled (Attune's default).
    type: bool
  headers:
    description:
      - HTTP headers Attune sends to this registry, typically C(Authorization). Attune stores them encrypted and
        never returns their values.
      - Checked as attune_registry_config checks them. Names are HTTP tokens, each given once, and not headers the
        HTTP client or a proxy manages (C(Host), C(Proxy-*), C(X-Forwarded*) …). Values are latin-1 strings without
        CR, LF, NUL or other control characters (tab allowed).
      - When omitted, the stored headers are kept.
      - Values are secret; they never appear in results, diffs, errors or logs.
      - Because Attune cannot show the values back, whether they changed cannot be known; see O(update_headers).
    type: dict
  update_headers:
    description:
      - V(on_create) sends O(headers) when the registry is created, or when the header names differ from the
        names stored in Attune; values of headers with the same names are left as they are. This is idempotent.
      - V(always) sends O(headers) on every run, replacing the stored values, and always reports a change (like
        the C(update_password=always) option of modules that cannot read a secret back). Use it to rotate a token.
    type: str
    choices: [always, on_create]
    default: on_create
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - Header values are shown as V([REDACTED]).
  idempotent:
    support: partial
    details:
      - Idempotent except with O(update_headers=always), which reports a change on every run.
notes:
  - Managing pack indices needs an Access token whose identity has an unconstrained C(Packs) grant (C(Read) to
    list, C(Configure) to change); a scoped grant is refused with HTTP 403.
seealso:
  - module: attune.packs.attune_registry_config
  - module: attune.packs.attune_pack_registries
"""

EXAMPLES = r"""
- name: Add the company registry after the standard index
  attune.packs.attune_registry:
    api_url: https://attune.example.com
    api_token: "{{ vault_attune_token }}"
    url: https://packs.example.com/index.json
    name: company
    position: 1
    headers:
      Authorization: "Bearer {{ vault_registry_token }}"
  delegate_to: localhost

- name: Rotate the registry token (always sends the headers; name, position and enabled stay as they are)
  attune.packs.attune_registry:
    api_url: https://attune.example.com
    api_token: "{{ vault_attune_token }}"
    url: https://packs.example.com/index.json
    headers:
      Authorization: "Bearer {{ vault_new_registry_token }}"
    update_headers: always
  delegate_to: localhost

- name: Disable a registry by name, with a username and password
  attune.packs.attune_registry:
    api_url: https://attune.example.com
    api_username: deploy
    api_password: "{{ vault_attune_password }}"
    name: community
    enabled: false
  delegate_to: localhost

- name: Remove a registry (ATTUNE_API_URL and ATTUNE_API_TOKEN from the environment)
  attune.packs.attune_registry:
    url: https://old-packs.example.com/index.json
    state: absent
  delegate_to: localhost

- name: Remove a registry by Attune's id (its URL shows redacted in attune_pack_registries)
  attune.packs.attune_registry:
    api_url: https://attune.example.com
    api_token: "{{ vault_attune_token }}"
    id: 7
    state: absent
  delegate_to: localhost
"""

RETURN = r"""
registry:
  description:
    - The registry as it is after the task (as it would be, in check mode), or null when absent.
    - C(id) is null for a registry that check mode would create.
  returned: always
  type: dict
  contains:
    id:
      description: Attune's id of the pack index.
      type: int
    name:
      description: Display name.
      type: str
    url:
      description: Index URL.
      type: str
    position:
      description: Position in Attune's search order.
      type: int
    enabled:
      description: Whether Attune searches this registry.
      type: bool
    headers:
      description: Names of the stored headers; every value is V([REDACTED]).
      type: dict
  sample:
    id: 2
    name: company
    url: https://packs.example.com/index.json
    position: 1
    enabled: true
    headers:
      Authorization: "[REDACTED]"
action:
  description: What was done (or would be, in check mode).
  returned: always
  type: str
  choices: [none, create, update, delete]
  sample: update
changed_fields:
  description: The properties sent in an update.
  returned: when O(state=present) and the registry was updated
  type: list
  elements: str
  sample: [position]
api_url:
  description: The Attune API that was managed.
  returned: always
  type: str
  sample: https://attune.example.com
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.attune.packs.plugins.module_utils._attune import _api, _attune_registries
from ansible_collections.attune.packs.plugins.module_utils._base._common import api_argument_spec, check_libraries
from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError
from ansible_collections.attune.packs.plugins.module_utils._registry._config import redact_url


def argument_spec():
    spec = api_argument_spec(env_fallback)
    spec.update(
        id=dict(type="int"),
        url=dict(type="str"),
        name=dict(type="str"),
        allow_http=dict(type="bool", default=False),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        position=dict(type="int"),
        enabled=dict(type="bool"),
        headers=dict(type="dict", no_log=True),
        update_headers=dict(type="str", choices=["always", "on_create"], default="on_create"),
    )
    return spec


def _url_secrets(url):
    """The parts of ``url`` that may be credentials: userinfo, query string, fragment."""
    from urllib.parse import urlsplit

    if not isinstance(url, str):
        return []
    try:
        parts = urlsplit(url)
        secrets = [parts.username, parts.password, parts.query, parts.fragment]
    except ValueError:
        return []
    return [part for part in secrets if part]


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        supports_check_mode=True,
        required_one_of=[("id", "url", "name")],
        required_together=[("api_username", "api_password")],
    )
    check_libraries(module, ["requests"])
    params = module.params
    for part in _url_secrets(params["url"]) + _api.url_secrets(params.get("api_url")):
        module.no_log_values.add(part)  # a token put in the URL by mistake: refused below, and masked in the output
    result = dict(changed=False, api_url=redact_url(params.get("api_url")))  # never credentials of a refused URL
    index = dict(url=params["url"], name=params["name"], state=params["state"], position=params["position"],
                 enabled=params["enabled"], headers=params["headers"], index_id=params["id"],
                 allow_http=params["allow_http"])
    try:
        _attune_registries.check_index_options(**index)  # invalid arguments first, before any connection
        api = _api.client_from_params(params)
        result["api_url"] = api.api_url
        outcome = _attune_registries.ensure_index(api, update_headers=params["update_headers"], check_mode=module.check_mode, **index)
    except AttuneError as exc:
        result["error"] = exc.to_dict()
        module.fail_json(msg=str(exc), **result)
    result.update(changed=outcome["changed"], registry=outcome["after"], action=outcome["action"])
    if "changed_fields" in outcome:
        result["changed_fields"] = outcome["changed_fields"]
    if module._diff:  # pylint: disable=protected-access
        label = ("id %d" % params["id"]) if params["id"] is not None else (params["url"] or params["name"])
        result["diff"] = dict(before=outcome["before"] or {}, after=outcome["after"] or {},
                              before_header="Attune pack index %s" % label, after_header="Attune pack index %s" % label)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
