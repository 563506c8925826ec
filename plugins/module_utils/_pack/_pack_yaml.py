# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: the pack.yaml rules, wherever the pack is installed (may change without notice).

What makes a tree a pack Attune registers, independent of the install target (the packs_dir store,
``_packdir``, or an upload to a running Attune, ``_attune._attune_packs``):

* :func:`validate_ref`: a pack ref is ``^[a-z][a-z0-9_-]*$`` (schema.rs ``RefValidator::validate_pack_ref``)
  and at most 200 characters, which also rules out any path traversal when a ref names a directory;
* :func:`load_pack_yaml`: ``pack.yaml`` at the top of the tree, read as Attune's registration reads it
  (routes/packs.rs ``register_pack_internal`` and ``install_pack``): UTF-8, at most
  :data:`PACK_YAML_MAX_BYTES`, a regular file (no symlink), parsed with YAML 1.2 scalars and duplicate keys
  refused as serde_yaml_ng does, ``ref`` and ``version`` required strings (:data:`REQUIRED_PACK_FIELDS`);
* :func:`check_pack_identity`: its ``ref``/``version`` are the resolved entry's (:func:`read_pack_yaml` does both);
* :func:`find_pack_root`: the directory of an extracted archive or a git checkout that holds the pack (below).

:func:`find_pack_root` returns the directory that holds ``pack.yaml``,
in Attune's order (``installer.rs`` ``PackInstaller::find_pack_directory``):

1. ``directory`` itself when it has ``pack.yaml``;
2. else ``directory/pack`` when it has ``pack.yaml``;
3. else the first subdirectory (one level down) that has ``pack.yaml``.
   Attune takes the first in ``read_dir`` order, which the file system
   decides; here the subdirectories are visited in byte order of their
   names, so the choice is deterministic (it equals Attune's whenever only
   one subdirectory has a ``pack.yaml``, the normal case of a code-host
   archive with its single top-level directory).

The same order applies to git checkouts (``_git.clone``) and archives.

PyYAML is imported when a pack.yaml is read (an install), not by a converged run (``_lazy.YAML``).  Extraction
(``_extract.prepare_archive``) builds on these rules; this file imports nothing of it, so a module that only reads
installed packs does not carry the extractor.
"""

from __future__ import annotations

import errno
import os
import re
import stat

from ansible_collections.attune.packs.plugins.module_utils._base._errors import AttuneError, InvalidPackStructure
from ansible_collections.attune.packs.plugins.module_utils._base._lazy import YAML
from ansible_collections.attune.packs.plugins.module_utils._registry._version import REF_PATTERN

PACK_FILE = "pack.yaml"
PACK_SUBDIR = "pack"
PACK_YAML_MAX_BYTES = 1024 * 1024
REQUIRED_PACK_FIELDS = ("ref", "version")  # Attune: packs.rs register_pack_internal

_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


def validate_ref(ref, pack=None):
    """Return ``ref`` if it is a valid pack ref (which also rules out any path traversal)."""
    if not isinstance(ref, str) or not REF_PATTERN.fullmatch(ref) or len(ref) > 200:
        raise InvalidPackStructure("invalid pack ref %r: expected lowercase letters, digits, '_' and '-', starting with a letter" % (ref,), pack=pack)
    return ref


def read_small_file(path, limit, what, pack):
    """The bytes of the regular file ``path`` (at most ``limit``), or None when it does not exist.

    A symlink, anything but a regular file, or a larger file is :class:`InvalidPackStructure` naming ``what``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _O_NOFOLLOW | _O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidPackStructure("%s is a symlink" % what, pack=pack)
        raise AttuneError("cannot read %s: %s" % (what, exc.strerror or exc), pack=pack, cause=exc)
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise InvalidPackStructure("%s is not a regular file" % what, pack=pack)
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise InvalidPackStructure("%s is larger than %d bytes" % (what, limit), pack=pack)
    return data


def _describe_value(value):
    if value is None:
        return "null"
    return "%s %r" % (type(value).__name__, value)


# pack.yaml is parsed the way Attune's serde_yaml_ng does (YAML 1.2 core schema) where PyYAML's YAML 1.1 rules would
# change the verdict on a ref or version: ``yes``/``no``/``on``/``off``/``y``/``n`` stay strings, dates stay strings,
# and a key given twice is an error (serde_yaml_ng refuses duplicate mapping keys; PyYAML keeps the last silently).
_YAML12_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_pack_yaml_loader = None


def _loader():
    global _pack_yaml_loader  # pylint: disable=global-statement
    if _pack_yaml_loader is not None:
        return _pack_yaml_loader
    yaml = YAML.load()
    base = getattr(yaml, "CSafeLoader", None) or yaml.SafeLoader

    class PackYamlLoader(base):  # pylint: disable=too-many-ancestors
        pass

    resolvers = {}
    for first, items in base.yaml_implicit_resolvers.items():
        kept = [(tag, regexp) for tag, regexp in items if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:timestamp")]
        if kept:
            resolvers[first] = kept
    PackYamlLoader.yaml_implicit_resolvers = resolvers
    PackYamlLoader.add_implicit_resolver("tag:yaml.org,2002:bool", _YAML12_BOOL, list("tTfF"))

    def construct_mapping(loader, node, deep=False):
        seen = set()
        for key_node, _value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable key: PyYAML refuses it below
                duplicate = False
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, "duplicate key %r" % (key,), key_node.start_mark)
        return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)

    PackYamlLoader.add_constructor("tag:yaml.org,2002:map", construct_mapping)
    _pack_yaml_loader = PackYamlLoader
    return PackYamlLoader


def load_pack_yaml(tree, pack=None):
    """Read and validate ``tree/pack.yaml`` as Attune's registration does; return the mapping.

    Attune: crates/api/src/routes/packs.rs ``register_pack_internal`` (and ``install_pack``): ``ref`` must be a
    string (``as_str``) accepted by schema.rs ``RefValidator::validate_pack_ref`` (``^[a-z][a-z0-9_-]*$``) and
    ``version`` must be a string; nothing else is required.  The label is ``name`` when it is a string, else the
    ref; ``description`` is used when it is a string and ignored otherwise; other fields (keywords, runtime_deps,
    dependencies, config_schema, metadata, ...) never make registration fail (non-strings in lists are skipped).
    Returns the mapping as written.
    Raises :class:`InvalidPackStructure` with a message naming the problem.
    """
    yaml = YAML.load()
    if yaml is None:
        raise AttuneError("PyYAML is required to read pack.yaml", pack=pack)
    data = read_small_file(os.path.join(tree, PACK_FILE), PACK_YAML_MAX_BYTES, PACK_FILE, pack)
    if data is None:
        raise InvalidPackStructure("no %s at the top of the pack tree" % PACK_FILE, pack=pack)
    try:
        text = data.decode("utf-8")  # Attune reads it with fs::read_to_string: UTF-8 only
    except UnicodeDecodeError as exc:
        raise InvalidPackStructure("%s is not UTF-8 text (byte %d)" % (PACK_FILE, exc.start), pack=pack, cause=exc)
    try:
        content = yaml.load(text, Loader=_loader())  # nosec - safe loader
    except yaml.YAMLError as exc:
        raise InvalidPackStructure("%s is not valid YAML: %s" % (PACK_FILE, exc), pack=pack, cause=exc)
    if not isinstance(content, dict):
        raise InvalidPackStructure("%s must be a mapping with 'ref' and 'version', not %s" % (PACK_FILE, _describe_value(content)), pack=pack)
    for field in REQUIRED_PACK_FIELDS:
        if field not in content:
            raise InvalidPackStructure("%s is missing required field '%s'" % (PACK_FILE, field), pack=pack)
        value = content[field]
        if not isinstance(value, str):
            hint = " (quote it in YAML)" if isinstance(value, (int, float, bool)) else ""
            raise InvalidPackStructure("%s field '%s' must be a string, got %s%s" % (PACK_FILE, field, _describe_value(value), hint), pack=pack)
    if not REF_PATTERN.fullmatch(content["ref"]):
        raise InvalidPackStructure(
            "%s ref %r is invalid: expected lowercase letters, digits, '_' and '-', starting with a letter" % (PACK_FILE, content["ref"]), pack=pack
        )
    return content


def check_pack_identity(content, expected_ref=None, expected_version=None, pack=None):
    """Raise unless pack.yaml's ``ref``/``version`` equal the resolved entry's."""
    if expected_ref is not None and content.get("ref") != expected_ref:
        raise InvalidPackStructure("%s ref '%s' does not match the resolved entry '%s'" % (PACK_FILE, content.get("ref"), expected_ref), pack=pack)
    if expected_version is not None and content.get("version") != expected_version:
        raise InvalidPackStructure(
            "%s version '%s' does not match the resolved entry version '%s'" % (PACK_FILE, content.get("version"), expected_version), pack=pack
        )
    return content


def read_pack_yaml(tree, expected_ref=None, expected_version=None, pack=None):
    """:func:`load_pack_yaml` then :func:`check_pack_identity`."""
    return check_pack_identity(load_pack_yaml(tree, pack=pack), expected_ref, expected_version, pack=pack)


def _is_real_dir(path):
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _is_real_file(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def find_pack_root(directory, pack=None, what="the archive"):
    """Return the directory holding ``pack.yaml``: root, then ``pack/``, then the first subdirectory (byte order) that has one.

    Attune: installer.rs ``PackInstaller::find_pack_directory`` (root, ``pack/``, first subdirectory in ``read_dir``
    order; here sorted, see the module docstring).  Symlinks are never followed (they are refused anyway).
    """
    if _is_real_file(os.path.join(directory, PACK_FILE)):
        return directory
    subdir = os.path.join(directory, PACK_SUBDIR)
    if _is_real_dir(subdir) and _is_real_file(os.path.join(subdir, PACK_FILE)):
        return subdir
    names = sorted(os.listdir(directory), key=lambda n: n.encode("utf-8", "surrogateescape"))
    for name in names:
        candidate = os.path.join(directory, name)
        if name != ".git" and _is_real_dir(candidate) and _is_real_file(os.path.join(candidate, PACK_FILE)):
            return candidate
    if not names:
        raise InvalidPackStructure("%s is empty (no %s)" % (what, PACK_FILE), pack=pack)
    raise InvalidPackStructure("no %s in %s: looked at its root, %s/ and each top-level directory" % (PACK_FILE, what, PACK_SUBDIR), pack=pack)
