"""Shared helpers for the attune.packs test suite (not part of the collection).

- ``registry_server``: a real threaded HTTP(S) server on 127.0.0.1 with trustme
  certificates, static files, programmable routes and a request log; also
  runnable as a separate process (``python tests/support/registry_server.py``).
- ``synth``: deterministic synthetic indices, pack trees and archives.
- ``gitrepo``: real git repositories holding a pack, served as "dumb HTTP".

Import them as ``from support.registry_server import RegistryServer`` (pytest
puts ``tests/`` on ``sys.path`` through ``tests/conftest.py``) or as
``tests.support.registry_server`` when the repository root is on the path.
"""
