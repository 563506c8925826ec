# -*- coding: utf-8 -*-
# Copyright (c) 2026, attune.packs contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Private to this collection: semantic versions and pack specs (may change without notice).

A *spec* is ``ref`` or ``ref@constraint`` where the constraint is one of

* ``latest`` (or nothing): the highest release (pre-releases only when the
  ref has no release at all);
* an exact version ``2.1.0`` (``=2.1.0`` too; build metadata is ignored when
  comparing, an exact string match is preferred);
* a caret range ``^2.1`` / ``^2.1.0`` (same major; for ``0.x`` the same minor);
* a tilde range ``~2.1`` / ``~2.1.0`` (same minor);
* comparisons ``>=2.0``, ``>2.0.1``, ``<3``, ``<=2.5``, ``!=2.2.0`` joined by
  commas (AND), spaces anywhere are ignored; ``2.x`` / ``2.1.*`` wildcards.

Pre-releases satisfy a range only if the range itself names a pre-release
with the same major.minor.patch (npm's rule), so ``^2.1`` never picks
``3.0.0-beta.1`` nor ``2.2.0-rc.1``.
"""

from __future__ import annotations

import re

from ansible_collections.attune.packs.plugins.module_utils._base._errors import SpecError

REF_PATTERN = re.compile(r"^[a-z][a-z0-9_-]*\Z")
VERSION_PATTERN = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z.-]+))?(?:\+([0-9A-Za-z.-]+))?\Z")
# the index schema's own (looser) version pattern: leading zeros allowed, one suffix
INDEX_VERSION_PATTERN = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+(?:[-+][0-9A-Za-z.-]+)?\Z")
_LOOSE = re.compile(r"^v?([0-9]+)\.([0-9]+)\.([0-9]+)(?:-([0-9A-Za-z.-]+?))?(?:\+([0-9A-Za-z.-]+))?\Z")
_PARTIAL = re.compile(r"^v?([0-9]+|[xX*])(?:\.([0-9]+|[xX*]))?(?:\.([0-9]+|[xX*]))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?\Z")
_OPERATOR = re.compile(r"^(>=|<=|!=|==|>|<|=|\^|~)?(.*)$")
# MAJOR, MINOR and PATCH are u64 in the semver crate Attune uses; larger numbers are not versions (and a 5,000-digit
# one would exceed Python's int() digit limit with a bare ValueError).
MAX_COMPONENT = 2 ** 64 - 1


def _component(digits, original, what="version"):
    if len(digits) > 20 or int(digits) > MAX_COMPONENT:
        raise SpecError("invalid %s %r: a number is larger than %d (MAJOR, MINOR and PATCH are 64-bit)"
                        % (what, _short(original), MAX_COMPONENT))
    return int(digits)


def _short(text):
    text = str(text)
    return text if len(text) <= 80 else text[:60] + "...(%d characters)" % len(text)


class Version(object):
    """A parsed semantic version, totally ordered by SemVer 2.0 precedence."""

    __slots__ = ("major", "minor", "patch", "prerelease", "build", "text", "_key")

    def __init__(self, major, minor, patch, prerelease=(), build="", text=None):
        self.major = major
        self.minor = minor
        self.patch = patch
        self.prerelease = tuple(prerelease)
        self.build = build
        self.text = text if text is not None else self._render()
        # numeric identifiers compare as numbers: by length without leading zeros, then digit by digit (no int(): a
        # 5,000-digit identifier would exceed Python's int() digit limit)
        pre_key = tuple((0, len(p.lstrip("0")), p.lstrip("0")) if p.isdigit() else (1, 0, p) for p in self.prerelease)
        # a release sorts after all of its pre-releases
        self._key = (major, minor, patch, 0 if self.prerelease else 1, pre_key)

    def _render(self):
        text = "%d.%d.%d" % (self.major, self.minor, self.patch)
        if self.prerelease:
            text += "-" + ".".join(self.prerelease)
        if self.build:
            text += "+" + self.build
        return text

    @classmethod
    def parse(cls, text):
        match = _LOOSE.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise SpecError("invalid version %r: expected MAJOR.MINOR.PATCH with optional -prerelease/+build" % (_short(text),))
        major, minor, patch, pre, build = match.groups()
        major, minor, patch = (_component(item, text) for item in (major, minor, patch))
        return cls(major, minor, patch, tuple(pre.split(".")) if pre else (), build or "", text.strip())

    @property
    def is_prerelease(self):
        return bool(self.prerelease)

    @property
    def release(self):
        return (self.major, self.minor, self.patch)

    def __eq__(self, other):
        return isinstance(other, Version) and self._key == other._key

    def __ne__(self, other):
        return not self.__eq__(other)

    def __lt__(self, other):
        return self._key < other._key

    def __le__(self, other):
        return self._key <= other._key

    def __gt__(self, other):
        return self._key > other._key

    def __ge__(self, other):
        return self._key >= other._key

    def __hash__(self):
        return hash(self._key)

    def __str__(self):
        return self.text

    def __repr__(self):
        return "Version(%r)" % self.text


def try_parse_version(text):
    try:
        return Version.parse(text)
    except SpecError:
        return None


class _Comparator(object):
    __slots__ = ("op", "version")

    def __init__(self, op, version):
        self.op = op
        self.version = version

    def test(self, version):
        key, other = version._key, self.version._key
        if self.op == ">=":
            return key >= other
        if self.op == ">":
            return key > other
        if self.op == "<=":
            return key <= other
        if self.op == "<":
            return key < other
        if self.op == "!=":
            return key != other
        return key == other


def _partial(text, original):
    match = _PARTIAL.match(text)
    if not match:
        raise SpecError("invalid version constraint %r" % original)
    parts = []
    for item in match.group(1, 2, 3):
        if item is None or item in ("x", "X", "*"):
            break
        parts.append(_component(item, original, "version constraint"))
    pre = tuple(match.group(4).split(".")) if match.group(4) else ()
    return parts, pre


def _bump(parts, index):
    """Smallest version above every version that starts with ``parts[:index + 1]``."""
    bumped = list(parts[:index + 1])
    bumped[index] += 1
    bumped += [0] * (3 - len(bumped))
    return Version(bumped[0], bumped[1], bumped[2], ("0",))  # x.y.z-0 is below x.y.z and every other pre-release


def _lower(parts, pre):
    padded = list(parts) + [0] * (3 - len(parts))
    return Version(padded[0], padded[1], padded[2], pre)


def _expand(item, original):
    """Turn one constraint item into comparators."""
    op, rest = _OPERATOR.match(item).groups()
    if not rest:
        raise SpecError("invalid version constraint %r: operator without a version" % original)
    parts, pre = _partial(rest, original)
    if op in (None, "=", "=="):
        if len(parts) == 3:
            return [_Comparator("==", Version.parse(rest.lstrip("v")))]
        if not parts:
            return []  # '*' or 'x': anything
        return [_Comparator(">=", _lower(parts, ())), _Comparator("<", _bump(parts, len(parts) - 1))]
    if op == "^":
        if not parts:
            return []
        low = _lower(parts, pre)
        # first non-zero component is the one that may not change
        index = 0
        while index < len(parts) - 1 and parts[index] == 0:
            index += 1
        return [_Comparator(">=", low), _Comparator("<", _bump(parts, index))]
    if op == "~":
        if not parts:
            return []
        low = _lower(parts, pre)
        index = 1 if len(parts) >= 2 else 0
        return [_Comparator(">=", low), _Comparator("<", _bump(parts, index))]
    if not parts:
        raise SpecError("invalid version constraint %r: %s needs a version" % (original, op))
    if op == "!=":
        return [_Comparator("!=", _lower(parts, pre))]
    if len(parts) < 3:  # partial versions with comparisons: >2.1 means >=2.2.0, <=2.1 means <2.2.0
        if op == ">":
            return [_Comparator(">=", _bump(parts, len(parts) - 1))]
        if op == "<=":
            return [_Comparator("<", _bump(parts, len(parts) - 1))]
    return [_Comparator(op, _lower(parts, pre))]


class Constraint(object):
    """A version constraint: ``latest``, an exact version, or a range."""

    def __init__(self, text):
        self.text = text
        raw = "".join((text or "").split())
        self.latest = raw in ("", "latest", "*")
        self.exact = None
        self._comparators = []
        self._pre_releases = set()
        if self.latest:
            return
        if raw.lower() == "latest":
            self.latest = True
            return
        items = raw.split(",")
        if any(not item for item in items):
            raise SpecError("invalid version constraint %r: empty item between commas" % text)
        for item in items:
            comparators = _expand(item, text)
            self._comparators.extend(comparators)
            for comparator in comparators:
                if comparator.version.prerelease and comparator.version.prerelease != ("0",):
                    self._pre_releases.add(comparator.version.release)
        if len(items) == 1 and len(self._comparators) == 1 and self._comparators[0].op == "==":
            self.exact = items[0].lstrip("=").lstrip("v")

    def __str__(self):
        return "latest" if self.latest else self.text

    def matches(self, version):
        if self.latest:
            return True
        if version.prerelease and version.release not in self._pre_releases:
            return False
        return all(comparator.test(version) for comparator in self._comparators)

    def select(self, versions):
        """Return the best of ``versions`` (an iterable of (Version, item)) or None.

        An exact constraint prefers an identical version string (build
        metadata included) over a merely equal one.
        """
        candidates = [(version, item) for version, item in versions if version is not None]
        if self.exact is not None:
            for version, item in candidates:
                if version.text == self.exact:
                    return version, item
        if self.latest:
            releases = [pair for pair in candidates if not pair[0].prerelease]
            pool = releases or candidates
        else:
            pool = [pair for pair in candidates if self.matches(pair[0])]
        if not pool:
            return None
        best = pool[0]
        for pair in pool[1:]:
            if pair[0] > best[0]:
                best = pair
        return best


# issue 18 item 4: every refused spec lists what is accepted
SPEC_FORMS = ("accepted forms: ref, ref@latest, ref@2.1.0 (exact; =2.1.0 too), ref@^2.1 (same major), ref@~2.1 (same minor), "
              "ref@>=2.0,<3 (>=, >, <=, <, != joined by commas), ref@2.x or ref@2.1.*")


class PackSpec(object):
    """``ref[@constraint]``."""

    __slots__ = ("text", "ref", "constraint")

    def __init__(self, text, ref, constraint):
        self.text = text
        self.ref = ref
        self.constraint = constraint

    @classmethod
    def parse(cls, text):
        if not isinstance(text, str) or not text.strip():
            raise SpecError("invalid pack spec %r: %s" % (text, SPEC_FORMS))
        text = text.strip()
        ref, sep, constraint = text.partition("@")
        ref = ref.strip()
        if not REF_PATTERN.match(ref):
            hint = ""
            if REF_PATTERN.match(ref.lower()):
                hint = " (did you mean %s?)" % ref.lower()
            raise SpecError(
                "invalid pack spec %r: ref %r must match ^[a-z][a-z0-9_-]*$ (lowercase, no dots)%s" % (text, ref, hint),
                pack=ref or None,
            )
        if sep and not constraint.strip():
            raise SpecError("invalid pack spec %r: nothing after '@'; %s" % (text, SPEC_FORMS), pack=ref)
        try:
            parsed = Constraint(constraint.strip() if sep else "")
        except SpecError as exc:
            raise SpecError("invalid pack spec %r: %s; %s" % (text, exc.message, SPEC_FORMS), pack=ref)
        return cls(text, ref, parsed)

    def __str__(self):
        return self.text

    def __repr__(self):
        return "PackSpec(%r)" % self.text
