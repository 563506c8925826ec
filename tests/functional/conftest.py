import json
import os

import pytest

from support.registry_server import RegistryServer
from testdata import STANDARD_INDEX, make_entry, make_index

TOKEN = "Bearer tok-9f8e7d6c5b4a-SECRET"


@pytest.fixture(scope="module")
def registry():
    """A real HTTPS registry on 127.0.0.1 with the routes the plugin tests need."""
    with RegistryServer() as server:
        server.add_json("/corp.json", make_index("corp", [make_entry("slack", "1.4.2", "c"), make_entry("internal", "0.1.0", "d")]),
                        required_headers={"Authorization": TOKEN})
        server.add_json("/public.json", make_index("public", [make_entry("slack", "2.1.0"), make_entry("slack", "2.0.0"),
                                                              make_entry("aws", "1.2.0"), make_entry("github", "3.0.0")]))
        if os.path.exists(STANDARD_INDEX):
            with open(STANDARD_INDEX, "rb") as handle:
                server.add_json("/std.json", handle.read())
        server.add_status("/missing.json", 404)
        server.add_status("/broken.json", 503, b"maintenance")
        server.add_status("/forbidden.json", 403)
        server.add_redirect("/moved.json", "https://elsewhere.example/index.json")
        server.add_json("/malformed.json", b'{"registry_name": "x", "packs": [')
        bad = make_index("bad", [make_entry("slack", "1.0.0")])
        bad["packs"][0]["install_sources"][1]["checksum"] = "sha256:XYZ"
        server.add_json("/invalid.json", bad)
        server.add_bytes("/huge.json", b" " * 5000 + json.dumps(make_index("huge", [])).encode())
        server.add_chunked("/chunked.json", total_bytes=3 * 1024 * 1024)
        yield server
