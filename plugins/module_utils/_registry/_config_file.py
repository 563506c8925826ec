# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: rewrite the ``pack_registry`` section of an Attune config file (may change without notice).

Pure text/YAML logic used by the ``attune_registry_config`` module (no Ansible
imports, no file system access):

* :func:`file_form` turns a section normalised by
  :func:`~._config.validate_section` into what is written: every key with an
  explicit value, in the order of attune-format.md section 2.
* :func:`plan_update` computes the new file text from the current one.  It owns
  the top-level ``pack_registry`` key only.  The text of the file outside the
  ``pack_registry`` block (other sections, comments, blank lines, quoting) is
  kept byte for byte by splicing: the block is replaced where it stands, or
  appended.  The result is parsed again and every other top-level section must
  be equal to the original; when it is not (anchors shared with the block,
  flow-style top-level mapping, ...) the whole file is dumped again with
  ``yaml.safe_dump`` instead, which keeps every value but loses comments, and
  the plan says so (``comments_preserved``).
* :func:`redact_section` / :func:`diff_text` make a displayable copy where
  header values are ``<redacted>`` and URLs lose credentials and queries.
"""

from __future__ import annotations

import copy

from ansible_collections.attune.packs.plugins.module_utils._base._lazy import dump_block_yaml, yaml_or_raise
from ansible_collections.attune.packs.plugins.module_utils._registry._config import INDEX_KEYS, SECTION_KEYS, describe_yaml_error, redact_url
from ansible_collections.attune.packs.plugins.module_utils._base._errors import ConfigError

SECTION_NAME = "pack_registry"
REDACTED = "<redacted>"
REDACTED_CHANGED = "<redacted, changed>"
MANAGED_COMMENT = "# Managed by Ansible (attune.packs): this block is replaced as a whole on every change."
# Index keys that are written only when they have a value (``ca_path`` is a collection extension).
OPTIONAL_INDEX_KEYS = ("name", "ca_path")

BOM = "\ufeff"


class UpdatePlan(object):
    """What :func:`plan_update` decided.

    ``changed``: the ``pack_registry`` section differs from the desired one
    (compared as parsed YAML, so formatting and comments alone never count).
    ``text``: the complete new file text (the old text when not changed).
    ``before``/``after``: the parsed old section (``None`` when absent) and
    the desired one.  ``comments_preserved``: the text outside the block was
    kept as it was (false after a full re-dump).
    """

    def __init__(self, text, changed, before, after, comments_preserved, created):
        self.text = text
        self.changed = changed
        self.before = before
        self.after = after
        self.comments_preserved = comments_preserved
        self.created = created


def _yaml():
    """PyYAML (through _lazy, the one loader of it): ConfigError when it is missing."""
    return yaml_or_raise(ConfigError, "read and write the Attune config file")


def _dump(data):
    _yaml()
    return dump_block_yaml(data)


def file_form(normalised):
    """The section as written to the file: every key explicit, in specification order.

    ``normalised`` comes from ``validate_section``; optional index keys without
    a value (``name``, ``ca_path``) are left out rather than written as null.
    """
    result = {}
    for key in SECTION_KEYS:
        value = copy.deepcopy(normalised[key])
        if key == "indices":
            entries = []
            for entry in value:
                item = {}
                for index_key in INDEX_KEYS:
                    if index_key in OPTIONAL_INDEX_KEYS and entry.get(index_key) is None:
                        continue
                    item[index_key] = entry.get(index_key)
                if item.get("headers") is None:
                    item["headers"] = {}
                entries.append(item)
            value = entries
        result[key] = value
    return result


def render_block(section, newline="\n"):
    """The YAML text of the top-level ``pack_registry`` block, ending with a newline."""
    body = _dump({SECTION_NAME: section})
    first, rest = body.split("\n", 1)
    text = first + "\n  " + MANAGED_COMMENT + "\n" + rest
    if newline != "\n":
        text = text.replace("\n", newline)
    return text


def parse_config_text(text, path="the Attune config file"):
    """Parse a whole config file; ConfigError naming ``path`` when it is not a YAML mapping."""
    yaml = _yaml()
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # line and column only: PyYAML's own message quotes the file, which may hold tokens (issue 8 item 5)
        raise ConfigError("%s is not valid YAML, refusing to rewrite it: %s" % (path, describe_yaml_error(exc)))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("%s must contain a mapping at the top level (found %s), refusing to rewrite it" % (path, type(data).__name__))
    return data


def _line_start(text, index):
    """Index of the first character of the line holding ``index`` (after a byte order mark on the first line)."""
    start = max(text.rfind("\n", 0, index), text.rfind("\r", 0, index)) + 1
    if start == 0 and text.startswith(BOM):
        start = len(BOM)
    return start


def _is_outside_filler(line):
    """Blank lines and column-0 comments at the end of a block belong to what follows."""
    stripped = line.strip()
    return not stripped or line[0] == "#"


def block_spans(text):
    """``[(start, end)]`` character ranges of every top-level ``pack_registry`` entry (end exclusive).

    The keys are found by PyYAML's composer, not by matching text, so every spelling of the key is found: plain,
    quoted, escaped (``"pack\\x5Fregistry"``), tagged (``!!str``), explicit (``? pack_registry``), after a byte order
    mark, with any line ending.  A block runs from the line of its key to the line of the next top-level key, without
    the blank lines and column-0 comments just before that key (they belong to it).  None when the top level is not a
    block mapping (a flow mapping cannot be spliced line by line).
    """
    yaml = _yaml()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if node is None:
        return []
    if not isinstance(node, yaml.MappingNode) or node.flow_style:
        return None
    starts = [_line_start(text, key.start_mark.index) for key, _unused in node.value]
    spans = []
    for position, (key, _unused) in enumerate(node.value):
        if not (isinstance(key, yaml.ScalarNode) and key.tag == "tag:yaml.org,2002:str" and key.value == SECTION_NAME):
            continue
        start = starts[position]
        end = starts[position + 1] if position + 1 < len(starts) else len(text)
        lines = text[start:end].splitlines(True)
        while len(lines) > 1 and _is_outside_filler(lines[-1]):
            end -= len(lines.pop())
        spans.append((start, end))
    return spans


def splice(text, block):
    """Replace the top-level ``pack_registry`` block(s) of ``text`` by ``block``, or append it."""
    newline = _newline_of(text)
    yaml = _yaml()
    try:
        spans = block_spans(text)
    except yaml.YAMLError:
        spans = None
    if not spans:
        prefix = text
        if prefix and not prefix.endswith(("\n", "\r")):
            prefix += newline
        if prefix.strip(BOM + " \t\r\n") and not prefix.endswith(newline * 2):
            prefix += newline
        return prefix + block
    result = []
    position = 0
    for number, (start, end) in enumerate(spans):
        result.append(text[position:start])
        if number == 0:
            result.append(block)
            if end < len(text) and not text[start:end].endswith(("\n", "\r")):
                result.append(newline)
        position = end
    result.append(text[position:])
    return "".join(result)


def _newline_of(text):
    if "\r\n" in text:
        return "\r\n"
    if "\r" in text and "\n" not in text:
        return "\r"
    return "\n"


def _same(left, right):
    if left == right:
        return True
    yaml = _yaml()
    try:  # values such as .nan are never equal to themselves; compare their canonical dumps
        return yaml.safe_dump(left, sort_keys=True) == yaml.safe_dump(right, sort_keys=True)
    except yaml.YAMLError:  # pragma: no cover - data that came from safe_load always dumps
        return False


def _count_sections(text):
    """How many top-level ``pack_registry`` keys ``text`` has (PyYAML keeps the last one of duplicates silently)."""
    yaml = _yaml()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(node, yaml.MappingNode):
        return 0
    return sum(1 for key, _unused in node.value if isinstance(key, yaml.ScalarNode) and key.value == SECTION_NAME
               and key.tag == "tag:yaml.org,2002:str")


def _others(data):
    return dict((key, value) for key, value in data.items() if key != SECTION_NAME)


def plan_update(text, desired, path="the Attune config file"):
    """Plan writing ``desired`` (a :func:`file_form` section) into the file whose current text is ``text``.

    ``text`` is ``None`` when the file does not exist.  Raises ConfigError when
    the current file cannot be parsed (it is then never rewritten).
    """
    yaml = _yaml()
    if text is None:
        block = render_block(desired)
        return UpdatePlan(block, True, None, desired, True, True)
    data = parse_config_text(text, path)
    before = data.get(SECTION_NAME) if SECTION_NAME in data else None
    # a duplicate key would keep an old block (and its old token) in the file although PyYAML reads the last one
    if SECTION_NAME in data and _same(before, desired) and _count_sections(text) == 1:
        return UpdatePlan(text, False, before, desired, True, False)
    newline = _newline_of(text)
    new_text = splice(text, render_block(desired, newline))
    try:
        new_data = parse_config_text(new_text, path)
        single = _count_sections(new_text) == 1
    except (ConfigError, yaml.YAMLError):
        new_data = None
    if new_data is not None and single and _same(_others(new_data), _others(data)) and _same(new_data.get(SECTION_NAME), desired):
        return UpdatePlan(new_text, True, before, desired, True, False)
    # Splicing would change another section: keep every value (and the line endings and byte order mark), lose the
    # comments.
    merged = dict(data)
    merged[SECTION_NAME] = desired
    new_text = (BOM if text.startswith(BOM) else "") + _dump(merged).replace("\n", newline)
    check = parse_config_text(new_text, path)
    if not (_same(_others(check), _others(data)) and _same(check.get(SECTION_NAME), desired)):  # pragma: no cover - defensive
        raise ConfigError("%s: cannot write the pack_registry section without changing other sections" % path)
    return UpdatePlan(new_text, True, before, desired, False, False)


def _index_key(entry):
    if not isinstance(entry, dict):
        return None
    return entry.get("name") or entry.get("url")


def redact_section(section, previous=None):
    """A display copy of a section: header values and unknown keys redacted, URLs without credentials.

    With ``previous`` (the section it replaces), a header whose value differs
    from the same header of the same registry (matched by name, else URL) is
    shown as ``<redacted, changed>`` so that a token rotation is visible in a
    diff without showing either token.
    """
    if section is None:
        return None
    if not isinstance(section, dict):
        return "<not a mapping: %s>" % type(section).__name__
    old_headers = {}
    if isinstance(previous, dict) and isinstance(previous.get("indices"), list):
        for entry in previous["indices"]:
            if isinstance(entry, dict) and isinstance(entry.get("headers"), dict):
                old_headers[_index_key(entry)] = dict((str(k).lower(), v) for k, v in entry["headers"].items())
    result = {}
    for key, value in section.items():
        if key not in SECTION_KEYS:
            result[key] = REDACTED
        elif key == "indices" and isinstance(value, list):
            result[key] = [_redact_entry(entry, old_headers, previous is not None) for entry in value]
        else:
            result[key] = copy.deepcopy(value)
    return result


def _redact_entry(entry, old_headers, compare):
    if not isinstance(entry, dict):
        return REDACTED
    result = {}
    known_old = old_headers.get(_index_key(entry), {})
    for key, value in entry.items():
        if key == "url":
            result[key] = redact_url(value)
        elif key == "headers":
            if not isinstance(value, dict):
                result[key] = REDACTED
                continue
            headers = {}
            for name, header_value in value.items():
                changed = compare and known_old.get(str(name).lower(), object()) != header_value
                headers[name] = REDACTED_CHANGED if changed else REDACTED
            result[key] = headers
        elif key in INDEX_KEYS:
            result[key] = copy.deepcopy(value)
        else:
            result[key] = REDACTED
    return result


def diff_text(section):
    """YAML text of a (redacted) section for a diff; empty when there is none."""
    if section is None:
        return ""
    return _dump({SECTION_NAME: section})
