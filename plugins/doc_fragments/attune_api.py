# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):
    """Connection options of every plugin that talks to a running Attune's API.

    Keep in sync with ``api_argument_spec()`` in ``plugins/module_utils/_base/_common.py``;
    ``tests/functional/test_attune_registry.py::test_doc_fragment_matches_argument_spec`` checks that they agree.
    """

    DOCUMENTATION = r"""
options:
  api_url:
    description:
      - Base URL of the Attune API, for example V(https://attune.example.com). A trailing V(/api/v1) is ignored.
      - When omitted, the E(ATTUNE_API_URL) environment variable is used (the variable Attune's own workers use).
      - Must be C(https://) (C(http://) only with O(api_allow_http)). A URL with credentials (V(https://user:pass@...)),
        a query string or a fragment is refused, before any request, with an C(invalid_arguments) error that shows
        the URL redacted.
    type: str
  api_token:
    description:
      - Attune integration token (V(attune_it_…)), exchanged once per task for a short-lived access token through
        C(POST /auth/token-login).
      - When omitted, the E(ATTUNE_API_TOKEN) environment variable is used.
      - Give either O(api_token) or O(api_username) and O(api_password). When O(api_username) is given, a token
        that comes only from E(ATTUNE_API_TOKEN) is ignored. Keep the token in Ansible Vault.
      - The token and the access/refresh tokens Attune returns are kept in memory only by the collection. They never
        appear in results, diffs, errors or logs and are never passed on a command line. A module that runs on a host
        (M(attune.packs.attune_registry)) receives the token like every module argument, in the AnsiballZ file Ansible
        writes to the host's temporary directory for the run (removed afterwards, kept with
        C(ANSIBLE_KEEP_REMOTE_FILES=1)); run such tasks with C(delegate_to=localhost) to keep the token on the
        controller. M(attune.packs.attune_pack) with O(api_url) runs on the controller and sends nothing to the host.
    type: str
  api_username:
    description:
      - Attune login used with O(api_password) (C(POST /auth/login)) when no O(api_token) is given.
    type: str
  api_password:
    description:
      - Password of O(api_username).
    type: str
  validate_certs:
    description:
      - Verify the TLS certificate of the Attune API. Turn off only for throw-away test deployments.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) used to verify the Attune API's certificate instead of the system trust store.
    type: path
  api_timeout:
    description:
      - The total time, in seconds, of each request to the Attune API, from connecting (bounded to 30 seconds on its
        own) to the last byte of the answer; an Attune that trickles its answer is cut off when it is up. From 1 to
        86400; other values are refused before any request.
      - Installs and uploads block while Attune runs the pack's tests on a worker before it answers, so the default
        is long (600 seconds, enough for typical pack test suites). Raise it for packs with long tests; a request
        that exceeds it fails with an C(api_timeout) error naming the API and the pack.
      - The same bound applies to the wait for a pack's test run that Attune tracks after an upload
        (C(GET /api/v1/packs/install/{id}) until it succeeds or is rolled back), and to a whole paged listing of
        Attune's packs.
      - An answer of Attune larger than 32 MiB (64 KiB for an error answer) is not read further; the error names the
        limit.
    type: int
    default: 600
  api_allow_http:
    description:
      - Allow a plain C(http://) O(api_url). The integration token or the password, and the access tokens Attune
        returns, then cross the network in clear text; use it only on a trusted network or for a test deployment.
      - Without it an C(http://) O(api_url) is refused before any request (nothing is sent).
    type: bool
    default: false
notes:
  - Attune accepts only Access tokens on pack and pack-index routes (an execution or sensor token is refused with
    HTTP 403). Installing needs the C(Packs:Install) permission, replacing an installed pack C(Packs:Configure);
    managing pack indices needs an unconstrained C(Packs) grant.
  - The plugin logs in at most once per task and per Attune API. When Attune answers 401 after the login (an
    expired access token), the access token is refreshed once; a second 401 fails the task, naming the API.
"""

    # The read-only query plugins (attune_pack_registries, attune_pack_search, attune_pack_info, the attune_pack
    # lookup): list it BEFORE attune.packs.registry and attune.packs.attune_api, so that these descriptions win.
    QUERY = r"""
options:
  api_url:
    description:
      - Base URL of a running Attune's API, for example V(https://attune.example.com). When given, the answer comes
        from the registries Attune itself uses (the pack indices in its database, C(/api/v1/pack-indices), and the
        config file's indices only while the database holds nothing but the standard index), through Attune's API,
        instead of from O(registries) or a config file. O(registries), O(config_path) and O(environment) cannot be
        combined with it.
      - Unlike M(attune.packs.attune_registry), this option is never taken from E(ATTUNE_API_URL), so a variable
        exported for other tasks does not change where the answer comes from. O(api_token) still defaults to
        E(ATTUNE_API_TOKEN).
      - The API is called from where the plugin runs (the host, or the controller with C(resolve_on=controller); the
        lookup always runs on the controller).
    type: str
  validate_certs:
    description:
      - Verify TLS certificates. With O(api_url), those of the Attune API; otherwise those of the registries.
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) used instead of the system trust store. With O(api_url), it verifies the Attune API;
        otherwise the registries (unless a registry has its own O(registries[].ca_path)).
    type: path
notes:
  - With O(api_url), Attune answers as it does for its own users and installs (C(routes/packs.rs)
    C(effective_pack_registry)). Registry options that describe file registries (O(timeout), O(cache_ttl),
    O(strict) ...) do not apply; Attune uses its own settings. Attune skips a registry it cannot fetch when it
    lists or searches packs, and does not say so.
"""

    # attune_pack and attune_pack_installed: api_url switches the install target from the host to a running Attune.
    # List it BEFORE attune.packs.registry / attune.packs.attune_api so that these descriptions win.
    TARGET = r"""
options:
  api_url:
    description:
      - Base URL of a running Attune's API, for example V(https://attune.example.com). When given, the packs are those
        of that Attune, managed through its API (C(/api/v1/packs)) from the controller by the action plugin; nothing
        runs on the inventory host, which is only the name of the deployment.
      - Never taken from E(ATTUNE_API_URL) here (Attune's own workers export it; a variable must not turn a task on
        a host into a task on an Attune). O(api_token) still defaults to E(ATTUNE_API_TOKEN).
    type: str
  validate_certs:
    description:
      - Verify TLS certificates (of the Attune API with O(api_url), and of the registries and downloads).
    type: bool
    default: true
  ca_path:
    description:
      - CA bundle (PEM) used instead of the system trust store. With O(api_url), it verifies the Attune API and the
        registries and downloads (give a bundle with both CAs when they differ).
    type: path
"""
