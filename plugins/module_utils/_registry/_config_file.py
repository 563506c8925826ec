# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: rewrite the ``pack_registry`` section of an Attune config file (may change without notice).

Everything the ``attune_registry_config`` module does; the module itself is
its documentation, its argument spec and one call to :func:`update_file`.

Text/YAML logic (no Ansible, no file system access):

* :func:`section_from_option` validates the module's ``pack_registry`` option
  with :func:`~._config.validate_section`; :func:`file_form` turns the
  normalised section into what is written: every key with an explicit value,
  in the order of attune-format.md section 2.
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

The file (imports nothing from Ansible; the running module is passed in):

* :func:`update_file` reads the current file, plans, decides the mode (a file
  that holds header values is never left readable by others), computes the
  result and the redacted diff, and, unless in check mode, makes the backup and
  replaces the file atomically (owner, group and mode on the temporary file
  before the rename).  It returns the module's result or raises
  :class:`UpdateFailed` with the failed result; the file is then as it was.
"""

from __future__ import annotations

import copy
import errno
import grp
import os
import pwd
import re
import stat

from ansible_collections.attune.packs.plugins.module_utils._base._fs import atomic_write, chown_like
from ansible_collections.attune.packs.plugins.module_utils._base._lazy import dump_block_yaml, yaml_or_raise
from ansible_collections.attune.packs.plugins.module_utils._registry._config import (
    INDEX_KEYS, SECTION_KEYS, describe_yaml_error, redact_url, validate_section,
)
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


def _drop_none(value):
    if isinstance(value, dict):
        return dict((k, _drop_none(v)) for k, v in value.items() if v is not None)
    if isinstance(value, list):
        return [_drop_none(item) for item in value]
    return value


def section_from_option(given, variable_prefix=None):
    """The normalised section of the module's ``pack_registry`` option (:func:`~._config.validate_section`).

    Suboptions the argument spec left ``None`` get their defaults; header values
    are kept exactly as given.  A ConfigError names the key
    (``pack_registry.indices[1] (corp).headers``) or, with ``variable_prefix``,
    the role variable (``registry_config_indices[1] (corp).headers``).
    """
    section = _drop_none(given or {})
    # header values are data, not structure: keep them exactly as given
    for original, cleaned in zip((given or {}).get("indices") or [], section.get("indices") or []):
        if isinstance(original, dict) and original.get("headers") is not None:
            cleaned["headers"] = original["headers"]
    try:
        return validate_section(section, origin=SECTION_NAME)
    except ConfigError as exc:
        message = str(exc)
        if variable_prefix:
            # pack_registry.indices[1] (corp).headers -> registry_config_indices[1] (corp).headers, everywhere in the message
            message = re.sub(r"\b%s\." % re.escape(SECTION_NAME), lambda match: variable_prefix, message)
        raise ConfigError("invalid pack_registry configuration: %s" % message)


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


class UpdateFailed(Exception):
    """:func:`update_file` failed; the file is as it was.

    ``msg`` is the message and ``result`` every other field of the failed
    result (``changed`` and ``path`` where the module's result has them, the
    ``error`` of a ConfigError).  Neither holds a header value.
    """

    def __init__(self, msg, **result):
        super(UpdateFailed, self).__init__(msg)
        self.msg = msg
        self.result = result


def update_file(module, path, given, backup=False, create_dirs=True, variable_prefix=None):
    """Write the ``pack_registry`` option ``given`` into the config file ``path``; the module's result.

    ``module`` is the running AnsibleModule: its check mode, diff mode and file
    arguments (owner, group, mode, SELinux, attributes, ``unsafe_writes``)
    apply, and owners, moves and backups are made through it as in every
    module.  A symlink ``path`` is written through to the file it names.  The
    file is rewritten only when its section differs (:func:`plan_update`);
    otherwise only owner, group and mode are corrected.  Without a requested
    mode, an existing file that will hold header values and is readable by
    others becomes 0600 (with a warning).  In check mode nothing is written,
    not even a directory or a backup.  Header values are redacted in the
    result and the diff.  Raises :class:`UpdateFailed`; failures of the
    module's own helpers (owner change, backup) are its ``fail_json``.
    """
    requested_path = path
    if os.path.islink(path):
        path = os.path.realpath(path)  # write through a symlink to the file it names
    result = dict(changed=False, path=path)
    try:
        normalised = section_from_option(given, variable_prefix)
    except ConfigError as exc:
        raise UpdateFailed(str(exc), error=exc.to_dict(), **result) from exc
    desired = file_form(normalised)

    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory) and not create_dirs:
        raise UpdateFailed("directory %s of the Attune config file does not exist (set create_dirs=true to create it)" % directory, **result)
    text, current_stat = read_current(path)
    try:
        plan = plan_update(text, desired, path)
    except ConfigError as exc:
        raise UpdateFailed(str(exc), error=exc.to_dict(), **result) from exc

    file_args = module.load_file_common_arguments(module.params, path=path)
    check_owner_group(file_args, requested_path)
    mode = target_mode(module, file_args["mode"], current_stat, requested_path)
    tightened = None
    if file_args["mode"] is None and current_stat is not None and has_header_values(desired) and mode & 0o007:
        # a file that holds a header value is never left readable by others: 0644 -> 0600 (issue 8 item 13)
        tightened = (mode, mode & ~0o077)
        mode = tightened[1]
    file_args["mode"] = mode
    result.update(
        pack_registry=redact_section(desired),
        content_changed=plan.changed,
        created=plan.created,
        comments_preserved=plan.comments_preserved,
        mode_tightened=tightened is not None,
    )
    if tightened is not None:
        module.warn("%s holds registry header values and was readable by others (mode 0%03o): its mode becomes 0%03o; "
                    "set mode to choose another one" % (path, tightened[0], tightened[1]))
    want_diff = module._diff  # pylint: disable=protected-access
    diffs = [section_diff(path, plan)] if want_diff else []

    if plan.changed:
        diffs.extend(_replace_file(module, path, plan, file_args, current_stat, backup, result))
    else:
        diffs.extend(_correct_attributes(module, path, plan, file_args, want_diff, result))
    if tightened is not None:
        result["msg"] += "; mode tightened from 0%03o to 0%03o (the file holds header values)" % tightened
    if diffs:
        result["diff"] = diffs
    return result


def section_diff(path, plan):
    """The diff of the ``pack_registry`` section, header values ``<redacted>`` (``<redacted, changed>`` when rotated)."""
    return dict(
        before_header="%s (pack_registry)" % path,
        after_header="%s (pack_registry)" % path,
        before=diff_text(redact_section(plan.before)),
        after=diff_text(redact_section(plan.after, previous=plan.before)),
    )


def _correct_attributes(module, path, plan, file_args, want_diff, result):
    """The section is up to date: owner, group and mode only.  Returns the attribute diffs."""
    attr_diff = {}
    result["changed"] = module.set_fs_attributes_if_different(file_args, False, diff=attr_diff if want_diff else None)
    diffs = []
    if attr_diff.get("before") or attr_diff.get("after"):
        attr_diff.setdefault("before_header", path)
        attr_diff.setdefault("after_header", path)
        diffs.append(attr_diff)
    result["msg"] = "pack_registry in %s is up to date (%s)%s" % (
        path, count_message(plan.after), "; owner, group or mode changed" if result["changed"] else "")
    return diffs


def _replace_file(module, path, plan, file_args, current_stat, backup, result):
    """The section changes: backup, then the new text atomically (neither in check mode).  Returns the mode diffs."""
    result["changed"] = True
    mode = file_args["mode"]
    diffs = []
    if current_stat is not None:
        attr_diff = {"before": {}, "after": {}}
        if stat.S_IMODE(current_stat.st_mode) != mode:
            attr_diff["before"]["mode"] = "0%03o" % stat.S_IMODE(current_stat.st_mode)
            attr_diff["after"]["mode"] = "0%03o" % mode
            diffs.append(attr_diff)
    if backup and current_stat is not None:
        if module.check_mode:
            result["backup_file"] = module.backup_local(path)  # only computes the name in check mode
        else:
            result["backup_file"] = make_backup(module, path, file_args, mode)
    if not module.check_mode:
        directory = os.path.dirname(path) or "."
        try:
            if not os.path.isdir(directory):
                os.makedirs(directory, 0o755)
            write_file(module, path, plan.text, file_args, mode, current_stat)
        except Exception as exc:  # pylint: disable=broad-except
            if result.get("backup_file") and os.path.exists(result["backup_file"]):
                os.unlink(result["backup_file"])
                del result["backup_file"]
            raise UpdateFailed("cannot write %s: %s" % (path, exc), **result) from exc
        # SELinux context and file attributes, which cannot be set before the rename
        module.set_fs_attributes_if_different(file_args, False)
    verb = "would be written to" if module.check_mode else "written to"
    result["msg"] = "pack_registry %s %s (%s)%s" % (
        verb, path, count_message(plan.after), "" if plan.comments_preserved else "; the file was rewritten as a whole, comments were not kept")
    return diffs


def read_current(path):
    """``(text or None, stat or None)`` of the config file; UpdateFailed (changing nothing) when it cannot be used."""
    try:
        current_stat = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None, None
        raise UpdateFailed("cannot access %s: %s" % (path, exc.strerror or exc), path=path) from exc
    if not stat.S_ISREG(current_stat.st_mode):
        raise UpdateFailed("%s exists and is not a regular file" % path, path=path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except (IOError, OSError) as exc:
        raise UpdateFailed("cannot read %s: %s" % (path, exc.strerror or exc), path=path) from exc
    try:
        return data.decode("utf-8"), current_stat
    except UnicodeDecodeError:
        raise UpdateFailed("%s is not UTF-8 text, refusing to rewrite it" % path, path=path) from None


def check_owner_group(file_args, path):
    """UpdateFailed before anything is written when the owner or group does not exist (``path``: for the result)."""
    for kind, value, lookup in (("owner", file_args["owner"], pwd.getpwnam), ("group", file_args["group"], grp.getgrnam)):
        if value is None or str(value).isdigit():
            continue
        try:
            lookup(value)
        except KeyError:
            raise UpdateFailed("%s %r does not exist on this host" % (kind, value), path=path) from None


def target_mode(module, requested, current_stat, path):
    """The octal mode the new file gets: the requested one, else the current file's, else 0600 (``path``: for the result)."""
    base = stat.S_IMODE(current_stat.st_mode) if current_stat else 0o600
    if requested is None:
        return base
    if isinstance(requested, int):
        return requested
    try:
        return int(requested, 8)
    except ValueError:
        pass

    class _Stat(object):
        st_mode = (current_stat.st_mode if current_stat else stat.S_IFREG | base)

    try:
        return module._symbolic_mode_to_octal(_Stat, requested)  # pylint: disable=protected-access
    except Exception as exc:  # pylint: disable=broad-except
        raise UpdateFailed("mode must be in octal or symbolic form: %s" % exc, path=path) from exc


def _apply_owner_mode(module, path, file_args, mode):
    """Owner, group and mode of ``path`` (the temporary file or the backup)."""
    module.set_owner_if_different(path, file_args["owner"], False)
    module.set_group_if_different(path, file_args["group"], False)
    os.chmod(path, mode)


def write_file(module, path, text, file_args, mode, current_stat):
    """Atomically replace ``path``; owner, group and mode are on the temporary file before the rename."""

    def prepare(tmp):
        if current_stat is not None:
            chown_like(tmp, current_stat)  # keep the current owner unless another one is requested (as root)
        _apply_owner_mode(module, tmp, file_args, mode)

    def replace(tmp, target):
        if current_stat is not None:
            # keep_dest_attrs=False: atomic_move must not copy the old mode over the one set above
            module.atomic_move(tmp, target, unsafe_writes=module.params["unsafe_writes"], keep_dest_attrs=False)
        else:
            # atomic_move() chmods a file it creates to 0666 & ~umask after the rename, which would expose the
            # tokens until the mode is set again: rename in the same directory ourselves instead (atomic too).
            os.rename(tmp, target)
            if module.selinux_enabled():
                module.set_context_if_different(target, module.selinux_default_context(target), False)

    with atomic_write(path, prepare=prepare, replace=replace) as stream:  # the temporary file is 0600 until prepared
        stream.write(text.encode("utf-8", "surrogateescape"))  # = Ansible's to_bytes(text, errors="surrogate_or_strict")


def make_backup(module, path, file_args, mode):
    """``module.backup_local`` under a private umask, then the new file's owner, group and mode."""
    old_umask = os.umask(0o077)
    try:
        backup = module.backup_local(path)
    finally:
        os.umask(old_umask)
    _apply_owner_mode(module, backup, file_args, mode)
    return backup


def has_header_values(section):
    return any(entry.get("headers") for entry in section.get("indices") or [])


def count_message(section):
    count = len(section["indices"])
    return "%d registr%s" % (count, "y" if count == 1 else "ies")
