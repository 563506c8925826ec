# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: third-party libraries imported on first use (may change without notice).

``requests`` and ``voluptuous`` cost ~0.1 s per process and most runs need
neither (a warm-cache search, a ``file://`` registry, a converged install);
PyYAML is needed only to read a YAML file (an Attune config file, pack.yaml).
``LazyLibrary('requests')`` tells whether the library can be imported without
importing it (for ``missing_required_lib``), and imports it when asked.
"""

from __future__ import annotations

import importlib
import importlib.util
import traceback


class LazyLibrary(object):
    """One importable top-level library, loaded by :meth:`load`."""

    def __init__(self, name):
        self.name = name
        self.module = None
        self.load_error = None  # traceback of a failed import

    def load(self):
        """The module, imported now if needed; None when it cannot be imported."""
        if self.module is None and self.load_error is None:
            try:
                self.module = importlib.import_module(self.name)
            except ImportError:
                self.load_error = traceback.format_exc()
        return self.module

    def import_error(self):
        """None when the library is importable, else why not; looks it up without importing it."""
        if self.module is not None:
            return None
        if self.load_error is not None:
            return self.load_error
        try:
            found = importlib.util.find_spec(self.name) is not None
        except (ImportError, ValueError):
            found = False
        return None if found else "ModuleNotFoundError: No module named %r" % self.name


# One instance per library, shared by the code that loads it and the library check of the modules (_common).
REQUESTS = LazyLibrary("requests")
VOLUPTUOUS = LazyLibrary("voluptuous")
YAML = LazyLibrary("yaml")  # PyYAML: Attune config files, pack.yaml; a converged install reads neither


def yaml_or_raise(error_class, what):
    """PyYAML, imported now if needed; ``error_class`` naming ``what`` needs it when it cannot be imported."""
    module = YAML.load()
    if module is None:
        raise error_class("the PyYAML Python library is required to %s" % what)
    return module


_BLOCK_DUMPER = []


def dump_block_yaml(data):
    """YAML text of ``data`` as this collection writes files (lock files, Attune config blocks): block style, keys in
    the given order, block sequences indented under their key (``indices:\n  - url: ...``), no line wrapping."""
    yaml = YAML.load()
    if not _BLOCK_DUMPER:
        class BlockDumper(yaml.SafeDumper):  # pylint: disable=too-many-ancestors
            def increase_indent(self, flow=False, indentless=False):
                return super(BlockDumper, self).increase_indent(flow, False)
        _BLOCK_DUMPER.append(BlockDumper)
    return yaml.dump(data, Dumper=_BLOCK_DUMPER[0], default_flow_style=False, sort_keys=False, allow_unicode=True, width=4096)
