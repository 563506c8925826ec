# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Test-only callback: append one JSON line per task result to ``$ATTUNE_TEST_EVENTS``.

Enabled by tests/support/fleet.py with ``ANSIBLE_CALLBACK_PLUGINS`` and
``ANSIBLE_CALLBACKS_ENABLED=attune_test_events``; it runs next to the default
stdout callback, so tests get machine-readable per-host results and the
human output (for secret-leak checks) from the same run.  ansible-core has no
JSON stdout callback of its own.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: attune_test_events
type: aggregate
short_description: Record task results as JSON lines (tests only)
description:
  - Appends one JSON object per host and task result to the file named by E(ATTUNE_TEST_EVENTS).
requirements:
  - enabled in callbacks_enabled
"""

import json
import os

from ansible.plugins.callback import CallbackBase


def _public(result, name):
    """``result.<name>`` (ansible-core >= 2.19), else ``result._<name>`` (2.17/2.18 have no public attributes)."""
    value = getattr(result, name, None)
    return value if value is not None else getattr(result, "_" + name)


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "attune_test_events"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._path = os.environ.get("ATTUNE_TEST_EVENTS")
        self._handler = False

    def _write(self, record):
        if not self._path:
            return
        with open(self._path, "a") as handle:
            handle.write(json.dumps(record, default=str, sort_keys=True) + "\n")

    def _record(self, result, status):
        task = _public(result, "task")
        data = dict(_public(result, "result"))
        role = getattr(task, "_role", None)
        self._write({
            "event": "result",
            "host": _public(result, "host").get_name(),
            "task": task.get_name(),
            "action": task.action,
            "role": role.get_name() if role else None,
            "handler": self._handler,
            "status": status,
            "changed": bool(data.get("changed")),
            "result": data,
        })

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._handler = False

    def v2_playbook_on_handler_task_start(self, task):
        self._handler = True

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if _public(result, "result").get("changed") else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        for host in sorted(stats.processed):
            self._write({"event": "stats", "host": host, "stats": stats.summarize(host)})
