"""A plain-HTTP front of the test Attune API, for the ``api_allow_http`` opt-in (issue 16 item 4).

:func:`plain_http_front` starts a :class:`support.registry_server.RegistryServer` with ``tls=False`` whose every
request (any path, any method) is logged (``front.requests``, bodies included: what a plain-HTTP listener received)
and forwarded over HTTPS to a started :class:`support.attune_server.AttuneServer`.  So a client given
``front.base_url`` talks to a real (simulated) Attune, in clear text.
"""
import contextlib

import requests

from support.registry_server import RegistryServer

FORWARDED_HEADERS = ("authorization", "content-type", "accept")


@contextlib.contextmanager
def plain_http_front(attune):
    def forward(handler):
        headers = dict((k, v) for k, v in handler.headers.items() if k.lower() in FORWARDED_HEADERS)
        body = handler.record.body if handler.record is not None else b""
        answer = requests.request(handler.command, attune.base_url + handler.path, data=body or None, headers=headers,
                                  verify=attune.ca_path, allow_redirects=False, timeout=120)
        handler.send_simple(answer.status_code, answer.content,
                            {"Content-Type": answer.headers.get("Content-Type", "application/json")})

    with RegistryServer(tls=False) as front:
        front.add_handler("/", forward)
        route = front.route_for("/")
        front.route_for = lambda path: route  # every path goes to Attune
        yield front
